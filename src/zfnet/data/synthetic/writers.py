"""Writing the built-in dataset to disk.

`generate(spec, out_dir)` writes, under out_dir:
    classes.json                                             catalog + the spec that made it
    imagenet/train/<class>/<class>_00001.JPEG                pretraining classes (ImageNet-2012 layout)
    imagenet/val/<class>/<class>_00001.JPEG
    imagenet/masks/{train,val}/<class>/<class>_00001.png     object masks (1-bit PNG)
    imagenet/metadata.jsonl                                  one line per image, paths relative to imagenet/
    caltech101/101_ObjectCategories/<class>/image_0001.jpg   transfer classes (torchvision layout)
    caltech101/101_ObjectCategories/BACKGROUND_Google/image_0001.jpg   clutter, no object
    caltech101/masks/<class>/image_0001.png
    caltech101/metadata.jsonl
    caltech256/256_ObjectCategories/001.<class>/001_0001.jpg
    caltech256/256_ObjectCategories/013.clutter/013_0001.jpg clutter, no object (numbered after the last class)
    caltech256/masks/001.<class>/001_0001.png
    caltech256/metadata.jsonl
    VOCdevkit/VOC2012/JPEGImages/2012_000001.jpg             scenes of the transfer classes (PASCAL VOC 2012)
    VOCdevkit/VOC2012/Annotations/2012_000001.xml
    VOCdevkit/VOC2012/ImageSets/Main/{train,val,trainval}.txt, <class>_{train,val,trainval}.txt
torchvision's Caltech101, Caltech256 and VOCDetection(year="2012") read these trees as they are (see
`voc` for the VOC files). Clutter images (background and distractors only, transfer_per_class of
them) stand for Caltech-101's BACKGROUND_Google, which torchvision drops from the categories, and for
the real Caltech-256's last folder 257.clutter, here numbered right after our last class (013.clutter
with 12 classes) so that it stays last, as torchvision's file naming by folder position needs.
A metadata line holds: path, mask, split ("train"/"val"; "all" for Caltech), class, label (index
of the class folder in sorted order, as torchvision's Caltech101/256 number them, and ImageFolder
for imagenet/ and caltech256/; BACKGROUND_Google, not a class, -1), box [x0, y0, x1, y1] (pixels, x1/y1 exclusive), keypoints and
part_boxes (pixels), rotation, scale, center and distractors. Clutter lines hold path, mask (null),
split, class ("BACKGROUND_Google", "clutter"), label, box (null) and distractors.
Masks live outside the class folders so ImageFolder-style loaders never see them. Each image is
rendered from its own SeedSequence(seed, dataset, split, class, index): the files do not depend on
worker count or order, and the same spec gives byte-identical files (on the same platform).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from zfnet.data.synthetic import voc
from zfnet.data.synthetic.catalogue import CLASS_ORDER, SyntheticSpec, class_catalog
from zfnet.data.synthetic.render import render, render_clutter, render_scene
from zfnet.errors import UserError
from zfnet.io import atomic_path

# ----------------------------------------------------------------------------- writing a dataset


class Job(NamedTuple):
    dataset: str
    split: str
    class_name: str
    label: int  # index among the dataset's class folders in sorted order (= torchvision's target; -1: none)
    index: int  # 1-based image number within the class (VOC: the image's number)
    image: str  # path relative to the dataset folder
    mask: str | None  # path of the mask (None for clutter; the annotation XML for VOC scenes)
    kind: str = "object"  # "object": one object; "clutter": no object; "scene": a VOC scene
    seed_class: int | None = None  # class number in the image seed (None: the class's index in CLASS_ORDER)
    choices: tuple[str, ...] = ()  # scene: the classes its further objects are drawn from


# Class numbers in the image seeds of images that are not of one catalogue class.
SEED_CLASS = {"BACKGROUND_Google": len(CLASS_ORDER), "clutter": len(CLASS_ORDER) + 1, "scene": len(CLASS_ORDER) + 2}


def _folder(dataset: str) -> str:
    return voc.VOC_DIR if dataset == "voc2012" else dataset


def _jobs(spec: SyntheticSpec, catalog: dict) -> list[Job]:
    jobs = []
    pretrain = sorted(catalog["pretrain"])
    for split, count in (("train", spec.train_per_class), ("val", spec.val_per_class)):
        for label, name in enumerate(pretrain):
            for i in range(1, count + 1):
                stem = f"{name}/{name}_{i:05d}"
                jobs.append(Job("imagenet", split, name, label, i, f"{split}/{stem}.JPEG", f"masks/{split}/{stem}.png"))
    for label, name in enumerate(sorted(catalog["caltech101"])):
        for i in range(1, spec.transfer_per_class + 1):
            stem = f"{name}/image_{i:04d}"
            jobs.append(Job("caltech101", "all", name, label, i, f"101_ObjectCategories/{stem}.jpg",
                            f"masks/{stem}.png"))
    if catalog["caltech101"]:
        jobs += _clutter_jobs(spec, "caltech101", "BACKGROUND_Google", -1, "101_ObjectCategories/BACKGROUND_Google/image")
    for label, (name, folder) in enumerate(zip(catalog["caltech256"], catalog["caltech256_folders"])):
        for i in range(1, spec.transfer_per_class + 1):
            stem = f"{folder}/{label + 1:03d}_{i:04d}"
            jobs.append(Job("caltech256", "all", name, label, i, f"256_ObjectCategories/{stem}.jpg",
                            f"masks/{stem}.png"))
    if catalog["caltech256"]:
        n = len(catalog["caltech256"])  # the clutter folder comes last in sorted order: label n, number n + 1
        jobs += _clutter_jobs(spec, "caltech256", "clutter", n, f"256_ObjectCategories/{n + 1:03d}.clutter/{n + 1:03d}")
    choices = tuple(catalog["voc2012"])
    number = 0
    for split, count in (("train", spec.voc_train), ("val", spec.voc_val)):
        for i in range(count):  # the first object's class cycles through the classes: each has positives
            number += 1
            stem = voc.image_id(number)
            jobs.append(Job("voc2012", split, choices[i % len(choices)], -1, number, f"JPEGImages/{stem}.jpg",
                            f"Annotations/{stem}.xml", "scene", SEED_CLASS["scene"], choices))
    return jobs


def _clutter_jobs(spec: SyntheticSpec, dataset: str, name: str, label: int, stem: str) -> list[Job]:
    return [Job(dataset, "all", name, label, i, f"{stem}_{i:04d}.jpg", None, "clutter", SEED_CLASS[name])
            for i in range(1, spec.transfer_per_class + 1)]


def _image_seed(spec: SyntheticSpec, job: Job) -> np.random.SeedSequence:
    # crc32, not hash(): str hashes are randomised per process.
    seed_class = CLASS_ORDER.index(job.class_name) if job.seed_class is None else job.seed_class
    return np.random.SeedSequence([spec.seed, zlib.crc32(job.dataset.encode()), zlib.crc32(job.split.encode()),
                                   seed_class, job.index])


def _render_job(spec: SyntheticSpec, root: Path, job: Job) -> dict:
    rng = np.random.default_rng(_image_seed(spec, job))
    dataset_root = root / _folder(job.dataset)
    if job.kind == "scene":
        return _render_scene_job(spec, dataset_root, job, rng)
    if job.kind == "clutter":
        image, meta = render_clutter(rng, spec.image_size, spec)
        image.save(dataset_root / job.image, "JPEG", quality=spec.jpeg_quality)
        return {"path": job.image, "mask": None, "split": job.split, "class": job.class_name, "label": job.label,
                "box": None, **meta}
    image, meta = render(job.class_name, rng, spec.image_size, spec=spec)
    image.save(dataset_root / job.image, "JPEG", quality=spec.jpeg_quality)
    Image.fromarray(meta.pop("mask")).save(dataset_root / job.mask, "PNG")
    meta["rotation"], meta["scale"] = round(meta["rotation"], 3), round(meta["scale"], 4)
    meta["center"] = [round(v, 2) for v in meta["center"]]
    return {"path": job.image, "mask": job.mask, "split": job.split, "label": job.label, **meta}


def _render_scene_job(spec: SyntheticSpec, voc_root: Path, job: Job, rng: np.random.Generator) -> dict:
    count = 1 + int(rng.integers(spec.voc_max_objects))
    names = [job.class_name] + [job.choices[k] for k in rng.integers(len(job.choices), size=count - 1)]
    image, meta = render_scene(names, rng, spec.image_size, spec)
    image.save(voc_root / job.image, "JPEG", quality=spec.jpeg_quality)
    image_id = Path(job.image).stem
    (voc_root / job.mask).write_text(voc.annotation_xml(image_id, spec.image_size, meta["objects"]))
    return {"id": image_id, "split": job.split,
            "objects": [{"class": obj["class"], "difficult": obj["difficult"]} for obj in meta["objects"]]}


def _render_chunk(task: tuple[SyntheticSpec, Path, list[Job]]) -> list[dict]:
    spec, root, jobs = task
    return [_render_job(spec, root, job) for job in jobs]


def generate(spec: SyntheticSpec, out_dir: str | Path, *, workers: int | None = None, progress: bool = True) -> dict:
    """Write the whole dataset under out_dir (replaced atomically) and return a summary:
    counts per dataset/split, images, bytes on disk, seconds and images_per_s."""
    catalog = class_catalog(spec)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not (isinstance(workers, int) and workers >= 1):
        raise UserError(f"workers={workers!r}: expected a positive integer")
    jobs = _jobs(spec, catalog)
    start = time.perf_counter()
    with atomic_path(out_dir) as root:
        for folder in sorted({(Path(_folder(j.dataset)) / p).parent for j in jobs for p in (j.image, j.mask) if p}):
            (root / folder).mkdir(parents=True, exist_ok=True)
        records = _run(spec, root, jobs, workers, progress)
        for dataset in sorted({j.dataset for j in jobs} - {"voc2012"}):
            lines = [json.dumps(r, sort_keys=True) for j, r in zip(jobs, records) if j.dataset == dataset]
            (root / dataset / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        if catalog["voc2012"]:
            voc.write_image_sets(root / voc.VOC_DIR, catalog["voc2012"],
                                 [r for j, r in zip(jobs, records) if j.dataset == "voc2012"])
        (root / "classes.json").write_text(json.dumps({"spec": asdict(spec), **catalog}, indent=2) + "\n")
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    seconds = time.perf_counter() - start
    counts: dict[str, int] = {}
    for job in jobs:
        key = f"{job.dataset}/{job.split}" if job.dataset in ("imagenet", "voc2012") else job.dataset
        counts[key] = counts.get(key, 0) + 1
    return {"counts": counts, "classes": {"imagenet": len(catalog["pretrain"]),
                                          "caltech101": len(catalog["caltech101"]),
                                          "caltech256": len(catalog["caltech256"]),
                                          "voc2012": len(catalog["voc2012"])},
            "images": len(jobs), "bytes": size, "seconds": seconds, "images_per_s": len(jobs) / max(seconds, 1e-9)}


def _run(spec: SyntheticSpec, root: Path, jobs: list[Job], workers: int, progress: bool) -> list[dict]:
    chunk = max(4, min(64, len(jobs) // (workers * 8) or 1))
    tasks = [(spec, root, jobs[i:i + chunk]) for i in range(0, len(jobs), chunk)]
    pool = multiprocessing.get_context().Pool(min(workers, len(tasks))) if workers > 1 and len(tasks) > 1 else None
    records: list[dict] = []
    with pool or contextlib.nullcontext(), tqdm(total=len(jobs), unit="img", desc="synthetic",
                                                 disable=not progress) as bar:
        for batch in (pool.imap if pool else map)(_render_chunk, tasks):  # in order: records follow jobs
            records += batch
            bar.update(len(batch))
    return records


def read_metadata(dataset_root: str | Path, split: str | None = None) -> list[dict]:
    """The records of `<dataset_root>/metadata.jsonl` (optionally one split); paths are relative to the root."""
    lines = Path(dataset_root, "metadata.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line]
    return [r for r in records if split is None or r["split"] == split]
