"""Stage `manifest`: list what the pipeline reads of the datasets, so that DVC never hashes them.

    python pipelines/manifest.py [data=imagenet data.root=/datasets/imagenet]

DVC runs this stage on every `dvc repro` (always_changed): it walks the folders once (`zfnet.data.manifest`:
relative path, size and mtime per file; no file is opened) and writes into `paths.manifest`:

    train.tsv, val.tsv          data.root's train_dir and val_dir (what prepare reads)
    metadata.tsv                data.root's metadata.jsonl by content (size, SHA-256; what occlusion and
                                invariance read), or "# metadata.jsonl: absent"
    other.tsv                   the rest of data.root (the built-in data's masks/, which occlusion reads)
    transfer_<dataset>.tsv      the folder torchvision reads under transfer.roots.<dataset>, or "# ...: absent"

The stages after it depend on these small files instead of the trees, so an unchanged tree costs DVC
one walk here and nothing else; a changed one reruns what reads it.
"""

from __future__ import annotations

import time
from pathlib import Path

from zfnet.data import manifest
from zfnet.errors import UserError
from zfnet.io import atomic_path
from zfnet.pipeline import stage

# The folder torchvision's dataset class reads under each transfer root (zfnet.transfer.datasets).
TRANSFER_FOLDERS = {"caltech101": "caltech101/101_ObjectCategories",
                    "caltech256": "caltech256/256_ObjectCategories",
                    "pascal": "VOCdevkit/VOC2012"}


def main(cfg) -> None:
    started = time.perf_counter()
    root = Path(cfg.data.root)
    splits = {"train": root / cfg.data.train_dir, "val": root / cfg.data.val_dir}
    for split, folder in splits.items():
        if not folder.is_dir():
            raise UserError(f"data.root: {folder} is not a folder (expected {root}/{cfg.data.train_dir}/<class>/"
                            f"<images> and {root}/{cfg.data.val_dir}/<class>/<images>)")
    files = {f"{split}.tsv": manifest.render(manifest.scan(folder)) for split, folder in splits.items()}
    files["metadata.tsv"] = manifest.file_record(root / "metadata.jsonl", "metadata.jsonl")
    files["other.tsv"] = manifest.render(manifest.scan(root, skip=[cfg.data.train_dir, cfg.data.val_dir,
                                                                   "metadata.jsonl"]))
    for dataset, transfer_root in cfg.transfer.roots.items():
        folder = Path(transfer_root) / TRANSFER_FOLDERS[dataset]
        files[f"transfer_{dataset}.tsv"] = (manifest.render(manifest.scan(folder)) if folder.is_dir()
                                            else f"# {folder}: absent\n")
    write_folder(Path(cfg.paths.manifest), files)
    listed = {name: text.count("\n") - 1 for name, text in files.items() if text.startswith(f"# {manifest.FORMAT}")}
    stage.log.info("manifest: %d files listed in %.1f s (%s)", sum(listed.values()), time.perf_counter() - started,
                   ", ".join(f"{name}: {count}" for name, count in listed.items()))


def write_folder(out: Path, files: dict[str, str]) -> None:
    """Replace `out` with a folder holding `files` in one rename (file names may hold any bytes the
    file system gave: they are written back as they came)."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, text in files.items():
            (tmp / name).write_bytes(text.encode("utf-8", "surrogateescape"))


if __name__ == "__main__":
    stage.run("manifest", main)
