"""The transfer datasets, listed by torchvision's own classes and decoded as for pretraining.

    caltech101: torchvision.datasets.Caltech101(root)   root/caltech101/101_ObjectCategories/<class>/image_0001.jpg
                (torchvision leaves out BACKGROUND_Google; background=True adds its image_*.jpg as the last class)
    caltech256: torchvision.datasets.Caltech256(root)   root/caltech256/256_ObjectCategories/001.<class>/001_0001.jpg
                (the last folder, 257.clutter in the real set, is dropped unless clutter=True)
    pascal:     torchvision.datasets.VOCDetection(root, year="2012", image_set=...)
                root/VOCdevkit/VOC2012/{JPEGImages,Annotations,ImageSets/Main}

All with download=False. torchvision decides which files belong to a dataset and their labels; the
pixels go through the prepare stage's decoder (`zfnet.data.prepare.load_rgb`: smallest side to S,
centre S x S crop, the same policy for odd files), and files it cannot decode are skipped and reported.
VOC targets are per class: 1 if the image holds a non-difficult object of the class, 0 if it holds only
difficult ones (ignored when scoring, as in VOC), -1 otherwise.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from zfnet.data.prepare import BadImage, load_rgb
from zfnet.errors import UserError

log = logging.getLogger("zfnet")


class TargetSet(NamedTuple):
    images: np.ndarray  # uint8 (N, S, S, 3)
    labels: np.ndarray  # (N,) class indices (Caltech) or (N, K) int8 targets 1 / 0 / -1 (VOC)
    classes: list[str]
    files: list[str]
    skipped: list[tuple[str, str]]  # (file, reason)


class Listing(NamedTuple):
    files: list[str]
    labels: np.ndarray
    classes: list[str]


def _open(key: str, factory, root: str | Path, folder: str):
    if not (Path(root) / folder).is_dir():
        raise UserError(f"transfer.roots.{key}: {root} has no {folder}/ (torchvision's layout; see conf/transfer)")
    try:
        return factory()
    except (RuntimeError, OSError, ValueError) as err:
        raise UserError(f"transfer.roots.{key}: torchvision cannot read {Path(root) / folder}: {err}") from None


BACKGROUND = "BACKGROUND_Google"  # Caltech-101's clutter folder: Google results for "things", no object category


def list_caltech(name: str, root: str | Path, clutter: bool = False, background: bool = False) -> Listing:
    """Files, labels and classes of Caltech-101 or Caltech-256 under torchvision's `root`; Caltech-256's
    clutter class only if `clutter`, Caltech-101's BACKGROUND_Google only if `background` (as the last class,
    so the other classes keep their labels and hence their folds)."""
    from torchvision.datasets import Caltech101, Caltech256

    if name == "caltech101":
        dataset = _open(name, lambda: Caltech101(str(root), target_type="category", download=False), root,
                        "caltech101/101_ObjectCategories")
        folder = Path(dataset.root) / "101_ObjectCategories"
        files = [folder / dataset.categories[y] / f"image_{i:04d}.jpg" for y, i in zip(dataset.y, dataset.index)]
        if background:
            return _with_background(name, root, folder, files, dataset)
    elif name == "caltech256":
        dataset = _open(name, lambda: Caltech256(str(root), download=False), root, "caltech256/256_ObjectCategories")
        folder = Path(dataset.root) / "256_ObjectCategories"
        files = [folder / dataset.categories[y] / f"{y + 1:03d}_{i:04d}.jpg" for y, i in zip(dataset.y, dataset.index)]
    else:
        raise UserError(f"transfer dataset {name!r}: expected caltech101 or caltech256")
    labels, classes = np.asarray(dataset.y, dtype=np.int64), list(dataset.categories)
    if name == "caltech256" and not clutter:
        kept_classes = [c for c in classes if not c.endswith(".clutter")]
        new_label = {classes.index(c): k for k, c in enumerate(kept_classes)}
        keep = [k for k, y in enumerate(labels) if int(y) in new_label]
        files = [files[k] for k in keep]
        labels = np.asarray([new_label[int(labels[k])] for k in keep], dtype=np.int64)
        classes = kept_classes
    if not files:
        raise UserError(f"transfer.roots.{name}: {root} holds no images")
    return Listing([str(f) for f in files], labels, classes)


def _with_background(name: str, root, folder: Path, files: list[Path], dataset) -> Listing:
    extra = sorted((folder / BACKGROUND).glob("image_*.jpg"))
    if not extra:
        raise UserError(f"transfer.caltech101.background: {folder / BACKGROUND} holds no image_*.jpg "
                        "(set it to false to leave the background class out)")
    labels = np.concatenate([np.asarray(dataset.y, dtype=np.int64),
                             np.full(len(extra), len(dataset.categories), dtype=np.int64)])
    return Listing([str(f) for f in [*files, *extra]], labels, [*dataset.categories, BACKGROUND])


def list_voc(root: str | Path, image_set: str, classes: list[str] | None = None) -> Listing:
    """Files and (N, K) targets of VOC 2012 `image_set` (train, val, trainval). Classes default to the
    sorted object names found in this set."""
    import xml.etree.ElementTree as ET

    from torchvision.datasets import VOCDetection

    dataset = _open("pascal", lambda: VOCDetection(str(root), year="2012", image_set=image_set, download=False),
                    root, "VOCdevkit/VOC2012")
    objects = []
    for path in dataset.annotations:
        try:
            annotation = VOCDetection.parse_voc_xml(ET.parse(path).getroot())["annotation"]
        except (OSError, ET.ParseError, KeyError) as err:
            raise UserError(f"{path}: not a VOC annotation ({err})") from None
        objects.append([(o["name"], o.get("difficult", "0") == "1") for o in annotation.get("object", [])])
    classes = classes or sorted({name for found in objects for name, _ in found})
    targets = np.full((len(objects), len(classes)), -1, dtype=np.int8)
    for row, found in enumerate(objects):
        for name, difficult in found:
            if name not in classes:
                raise UserError(f"{dataset.annotations[row]}: object {name!r} is not a class of the training set")
            column = classes.index(name)
            targets[row, column] = max(targets[row, column], 0 if difficult else 1)
    return Listing(list(dataset.images), targets, classes)


def _decode(path: str, size: int) -> tuple[np.ndarray | None, str]:
    try:
        return load_rgb(path, size), ""
    except BadImage as err:
        return None, err.reason
    except Exception as err:  # one odd file must not end the run
        return None, f"unexpected {type(err).__name__}: {err}"


def decode(listing: Listing, size: int, workers: int = 1, progress: bool = True) -> TargetSet:
    """Decode every listed file to (S, S, 3) uint8; undecodable files are skipped and reported."""
    work = functools.partial(_decode, size=size)
    bar = dict(total=len(listing.files), desc="decode", unit="img", disable=not progress)
    if workers > 1 and len(listing.files) > 64:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(work, listing.files, chunksize=16), **bar))
    else:
        results = [work(f) for f in tqdm(listing.files, **bar)]
    kept = [k for k, (image, _) in enumerate(results) if image is not None]
    skipped = [(listing.files[k], reason) for k, (image, reason) in enumerate(results) if image is None]
    images = np.stack([results[k][0] for k in kept]) if kept else np.zeros((0, size, size, 3), np.uint8)
    return TargetSet(images, listing.labels[kept], listing.classes, [listing.files[k] for k in kept], skipped)


def list_target(settings, name: str) -> dict[str, Listing]:
    """The files and labels of dataset `name` under `settings.roots[name]` (settings: the `transfer` config
    section), as torchvision lists them: {"all"} (Caltech) or {"train", "test"} (PASCAL's two image sets)."""
    root = settings.roots[name]
    if name == "pascal":
        train = list_voc(root, settings.pascal.train_set)
        return {"train": train, "test": list_voc(root, settings.pascal.test_set, classes=train.classes)}
    clutter = bool(settings.caltech256.clutter) if name == "caltech256" else False  # `transfer.dataset` is validated
    background = bool(settings.caltech101.background) if name == "caltech101" else False
    return {"all": list_caltech(name, root, clutter=clutter, background=background)}


def decode_splits(listings: dict[str, Listing], size: int, name: str, workers: int = 1) -> dict[str, TargetSet]:
    """Every split of `listings` decoded at `size` (`decode`), logged per split; skipped files warned of."""
    data = {split: decode(listing, size, workers=workers) for split, listing in listings.items()}
    for split, target in data.items():
        log.info("%s %s: %d images of %d classes at %d px, %d skipped", name, split, len(target.images),
                 len(target.classes), size, len(target.skipped))
    if skipped := skipped_rows(data):
        log.warning("%s: skipped %d files, e.g. %s", name, len(skipped),
                    "; ".join(f"{path} ({reason})" for _, path, reason in skipped[:3]))
    return data


def skipped_rows(data: dict[str, TargetSet]) -> list[list[str]]:
    """[split, file, reason] of every file the decoder skipped."""
    return [[split, path, reason] for split, target in data.items() for path, reason in target.skipped]
