"""Writing the built-in dataset to disk.

`generate(spec, out_dir)` writes, under out_dir:
    classes.json                                             catalog + the spec that made it
    imagenet/train/<class>/<class>_00001.JPEG                pretraining classes (ImageNet-2012 layout)
    imagenet/val/<class>/<class>_00001.JPEG
    imagenet/masks/{train,val}/<class>/<class>_00001.png     object masks (1-bit PNG)
    imagenet/metadata.jsonl                                  one line per image, paths relative to imagenet/
    caltech101/101_ObjectCategories/<class>/image_0001.jpg   transfer classes (torchvision layout)
    caltech101/masks/<class>/image_0001.png
    caltech101/metadata.jsonl
    caltech256/256_ObjectCategories/001.<class>/001_0001.jpg
    caltech256/masks/001.<class>/001_0001.png
    caltech256/metadata.jsonl
A metadata line holds: path, mask, split ("train"/"val"; "all" for Caltech), class, label (index
of the class folder in sorted order, as ImageFolder numbers them), box [x0, y0, x1, y1] (pixels,
x1/y1 exclusive), keypoints and part_boxes (pixels), rotation, scale, center and distractors.
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

from zfnet.data.synthetic.catalogue import CLASS_ORDER, SyntheticSpec, class_catalog
from zfnet.data.synthetic.render import render
from zfnet.errors import UserError
from zfnet.io import atomic_path

# ----------------------------------------------------------------------------- writing a dataset


class Job(NamedTuple):
    dataset: str
    split: str
    class_name: str
    label: int  # index among the dataset's class folders in sorted order (= ImageFolder's target)
    index: int  # 1-based image number within the class
    image: str  # path relative to the dataset root
    mask: str


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
    for label, (name, folder) in enumerate(zip(catalog["caltech256"], catalog["caltech256_folders"])):
        for i in range(1, spec.transfer_per_class + 1):
            stem = f"{folder}/{label + 1:03d}_{i:04d}"
            jobs.append(Job("caltech256", "all", name, label, i, f"256_ObjectCategories/{stem}.jpg",
                            f"masks/{stem}.png"))
    return jobs


def _image_seed(spec: SyntheticSpec, job: Job) -> np.random.SeedSequence:
    # crc32, not hash(): str hashes are randomised per process.
    return np.random.SeedSequence([spec.seed, zlib.crc32(job.dataset.encode()), zlib.crc32(job.split.encode()),
                                   CLASS_ORDER.index(job.class_name), job.index])


def _render_job(spec: SyntheticSpec, root: Path, job: Job) -> dict:
    rng = np.random.default_rng(_image_seed(spec, job))
    image, meta = render(job.class_name, rng, spec.image_size, spec=spec)
    dataset_root = root / job.dataset
    image.save(dataset_root / job.image, "JPEG", quality=spec.jpeg_quality)
    Image.fromarray(meta.pop("mask")).save(dataset_root / job.mask, "PNG")
    meta["rotation"], meta["scale"] = round(meta["rotation"], 3), round(meta["scale"], 4)
    meta["center"] = [round(v, 2) for v in meta["center"]]
    return {"path": job.image, "mask": job.mask, "split": job.split, "label": job.label, **meta}


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
        for folder in sorted({(Path(j.dataset) / p).parent for j in jobs for p in (j.image, j.mask)}):
            (root / folder).mkdir(parents=True, exist_ok=True)
        records = _run(spec, root, jobs, workers, progress)
        for dataset in sorted({j.dataset for j in jobs}):
            lines = [json.dumps(r, sort_keys=True) for j, r in zip(jobs, records) if j.dataset == dataset]
            (root / dataset / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        (root / "classes.json").write_text(json.dumps({"spec": asdict(spec), **catalog}, indent=2) + "\n")
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    seconds = time.perf_counter() - start
    counts: dict[str, int] = {}
    for job in jobs:
        key = f"imagenet/{job.split}" if job.dataset == "imagenet" else job.dataset
        counts[key] = counts.get(key, 0) + 1
    return {"counts": counts, "classes": {"imagenet": len(catalog["pretrain"]),
                                          "caltech101": len(catalog["caltech101"]),
                                          "caltech256": len(catalog["caltech256"])},
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
