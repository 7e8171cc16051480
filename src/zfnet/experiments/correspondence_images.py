"""The images the correspondence experiment (`zfnet.experiments.correspondence`) measures: read from a folder with a
`metadata.jsonl` (the built-in faces or any data in the same format) and loaded as the network sees them.

    notes, inputs = load_faces(root, cfg.correspondence, hparams)   # hparams: the checkpoint's mean, crop, input_scale

Chosen: the images in `settings.split` (None: all), of `settings.classes` (None: every class with an image that
has all of `settings.parts`), that carry every part box, and are frontal: |rotation| <= `settings.max_rotation`
(None: no filter; with a limit, an image without a "rotation" is left out). An image whose part box falls wholly
outside the network's centre crop is left out too; so is a class with fewer than `images_per_draw` images left
(with a warning). A choice that leaves nothing is a UserError naming the config key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from zfnet.data.annotations import Annotation, read_annotations, read_metadata
from zfnet.data.loading import center_crop, normalize
from zfnet.data.prepare import BadImage, load_rgb
from zfnet.errors import UserError
from zfnet.experiments.correspondence import RANDOM
from zfnet.probes.correspondence import pixel_box

log = logging.getLogger("zfnet")


def load_faces(root: Path, settings, hparams: dict) -> tuple[list[Annotation], torch.Tensor]:
    """The chosen images' annotations (input coordinates, ordered by class then path) and the images as the
    network `hparams` describes sees them (N, 3, crop, crop)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"correspondence.root: {root}: folder not found (expected images and a metadata.jsonl)")
    mean, crop = hparams["mean"], hparams["crop"]
    notes = select_images(root, settings, mean.shape[-1], crop)
    return notes, load_inputs(root, notes, mean, float(hparams["input_scale"]), crop)


def select_images(root: Path, settings, size: int, crop: int) -> list[Annotation]:
    """The frontal images with every part, of the chosen classes, annotated in input coordinates,
    ordered by class then path; a UserError naming the config key when the choice leaves none."""
    metadata = read_metadata(root / "metadata.jsonl")
    records = [r for r in metadata.values() if settings.split is None or r.get("split") == settings.split]
    if not records:
        splits = sorted({str(r.get("split")) for r in metadata.values()})
        raise UserError(f"correspondence.split: no image of {root / 'metadata.jsonl'} is in split "
                        f"{settings.split!r} (splits there: {', '.join(splits)})")
    parts = list(settings.parts)
    if settings.random and RANDOM in parts:
        raise UserError(f"correspondence.parts: {RANDOM!r} names the random row; rename that part")
    present = set().union(*((r.get("part_boxes") or {}) for r in records))
    for part in parts:
        if part not in present:
            raise UserError(f"correspondence.parts: no image has a {part!r} box in {root / 'metadata.jsonl'} "
                            f"(part boxes there: {', '.join(sorted(present)) or 'none'})")
    complete = [r for r in records if all(p in (r.get("part_boxes") or {}) for p in parts)]
    classes = set(settings.classes) if settings.classes is not None else {class_of(r) for r in complete}
    for name in classes - {class_of(r) for r in complete}:
        raise UserError(f"correspondence.classes: class {name!r} has no image with all of {parts}")
    chosen = [r for r in complete if class_of(r) in classes and frontal(r, settings.max_rotation)]
    if not chosen:
        raise UserError(f"correspondence.max_rotation: none of the {len(complete)} images with all of {parts} "
                        f"has |rotation| <= {settings.max_rotation} degrees (set correspondence.max_rotation=null "
                        "to keep images without a \"rotation\")")
    chosen.sort(key=lambda r: (class_of(r), r["path"]))
    notes = read_annotations(root, [r["path"] for r in chosen], size, crop, metadata=metadata)
    for note, record in zip(notes, chosen):
        note.class_name = class_of(record)
    return keep_usable(notes, parts, settings.images_per_draw, crop)


def class_of(record: dict) -> str:
    """The record's "class", or its folder's name when it has none."""
    return record.get("class") or Path(record["path"]).parent.name


def frontal(record: dict, max_rotation: float | None) -> bool:
    if max_rotation is None:
        return True
    rotation = record.get("rotation")
    return rotation is not None and abs(rotation) <= max_rotation


def keep_usable(notes: list[Annotation], parts: list[str], k: int, crop: int) -> list[Annotation]:
    """Drop images with a part outside the crop, then classes with fewer than k images (warnings)."""
    inside = [n for n in notes if all(_area(pixel_box(n.parts[p], crop, crop)) > 0 for p in parts)]
    if len(inside) < len(notes):
        log.warning("%d of %d images left out: a part box lies outside the %d px centre crop",
                    len(notes) - len(inside), len(notes), crop)
    counts = {c: sum(n.class_name == c for n in inside) for c in {n.class_name for n in inside}}
    for name, count in sorted(counts.items()):
        if count < k:
            log.warning("class %s left out: %d usable images, fewer than correspondence.images_per_draw=%d",
                        name, count, k)
    kept = [n for n in inside if counts[n.class_name] >= k]
    if not kept:
        raise UserError(f"correspondence.images_per_draw: no class has {k} usable frontal images with all of "
                        f"{parts} (per class: {counts or 'none'})")
    return kept


def _area(box) -> int:
    x0, y0, x1, y1 = box
    return max(x1 - x0, 0) * max(y1 - y0, 0)


def load_inputs(root: Path, notes: list[Annotation], mean: torch.Tensor, scale: float, crop: int) -> torch.Tensor:
    """The images as the network sees them: decoded as `prepare` does, mean-subtracted, centre-cropped."""
    images = []
    for note in notes:
        try:
            images.append(torch.tensor(load_rgb(root / note.path, mean.shape[-1])).permute(2, 0, 1))
        except BadImage as e:
            raise UserError(f"{root / note.path}: {e.reason}") from None
    return center_crop(normalize(torch.stack(images), mean, scale), crop)
