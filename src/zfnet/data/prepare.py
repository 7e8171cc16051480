"""Preprocessing (paper Sec. 3): smallest side to S, centre SxS crop, shards, per-pixel mean.

Input is any ImageFolder-layout split, `<root>/<class>/<files>`; listing and decoding one file
(`list_images`, `load_rgb`, the decoding policy) live in zfnet.data.sources. Output, per split, in
`out_dir`: the shards of zfnet.data.shards (their layout is described there) in one of two codecs,

    raw    the uint8 crops as they are (S * S * 3 bytes per image: 196,608 at 256 px)
    jpeg   the same crops re-encoded as JPEG at `quality` (zfnet.data.jpeg.encode), about 10x smaller
           at quality 90 (benchmarks/jpeg_codec.py), for datasets whose raw shards outgrow the disk

and beside them

    index.json   classes, size, shards, kept relative paths in stored order, skipped count (+ codec, quality)
    mean.npy     float32 (S, S, 3) per-pixel mean over all kept images (train split only), computed from
                 the pixels the loader returns: for jpeg the DECODED JPEG pixels, not the raw crops
    skipped.tsv  one line per skipped file: relative path <TAB> reason

Atomic, resumable output: shards are written into a fixed work folder `<out_dir>.partial/`,
each file atomically, followed by a small marker file `_resume/shard_NNNNN.json` (the
commit point of that shard: kept input indices and skip reasons). Shard k always covers the
same input files [k * shard_size, (k + 1) * shard_size), so it holds at most shard_size
images (fewer where files were skipped; a shard with none is left out of index.json, which
is why shard numbers may have gaps). `_resume/plan.json` holds a fingerprint of the plan
(file list with labels, S, shard_size, codec, JPEG quality, FORMAT_VERSION); a run whose
fingerprint matches reuses the committed shards whose files pass `zfnet.data.shards.check_shard`
(the reader's own check: sizes, offsets against the shard file, labels), any other plan wipes the
work folder, so a resume never mixes codecs or qualities (file contents are not hashed: a file
replaced under the same name needs the work folder deleted by hand). Only after index.json is
written is the work folder renamed onto `out_dir` (via `atomic_path`), so a crash never
leaves an `out_dir` that looks complete; an older `out_dir` stays until it is replaced.
The plan's fingerprint goes along as `out_dir/.plan.json`: a later run with the same plan keeps a
published split whose shards pass the reader's check, without decoding anything, so a run killed in
the val split (or after it) does not prepare train again. One run per output folder at a time.

Memory is bounded whatever the dataset size: the main process holds one shard buffer plus
the decoded images of at most ~shard_size in-flight inputs. Work (decoding, and JPEG encoding
with its decode-back for the mean) is submitted to the pool in chunks through a bounded window
(`_bounded_ordered_map`) rather than `Pool.imap`, whose result cache grows without limit when an
early chunk is slow. A `ProcessPoolExecutor` is used rather than `multiprocessing.Pool` because a
worker killed by the OOM killer or a decoder crash then fails the run (resumable) instead of hanging it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from zfnet.data import jpeg
from zfnet.data.shards import CODECS, PreparedSplit, ShardError, check_shard, save_npy, shard_entry, write_shard
from zfnet.data.sources import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    BadImage,
    _centre_square,  # noqa: F401 (zfnet.probes.invariance_scenes imports it from here)
    list_images,
    load_rgb,
)
from zfnet.errors import UserError
from zfnet.io import atomic_path, write_json, write_text

__all__ = ["BadImage", "CODECS", "FORMAT_VERSION", "IMAGE_EXTENSIONS", "MAX_PIXELS", "PreparedSplit",
           "list_images", "load_rgb", "prepare_split"]

logger = logging.getLogger("zfnet.prepare")

PLAN_FILE = ".plan.json"  # in a published split: the fingerprint of the plan that wrote it
FORMAT_VERSION = 2  # bump when decoding or the shard layout changes: invalidates partial work (2: codecs)
_CHUNK_SIZE = 16


@dataclasses.dataclass(frozen=True)
class _Output:
    """What a worker makes of one decoded crop: the crop itself (raw), or its JPEG bytes and, when the
    mean needs them, the pixels those bytes decode to (jpeg)."""

    codec: str
    quality: int
    size: int
    pixels: bool

    def __call__(self, image: np.ndarray):
        if self.codec == "raw":
            return image
        data = jpeg.encode(image, self.quality)
        return data, (jpeg.decode(data, self.size, jpeg.default_decoder()) if self.pixels else None)



def _decode_one(index: int, path: str, output: _Output) -> tuple[int, object, str]:
    try:
        return index, output(load_rgb(path, output.size)), ""
    except BadImage as e:
        return index, None, e.reason
    except Exception as e:  # one odd file must not end a run over a million
        return index, None, f"unexpected {type(e).__name__}: {e}"


def _decode_chunk(chunk: list[tuple[int, str]], output: _Output) -> list[tuple[int, object, str]]:
    return [_decode_one(index, path, output) for index, path in chunk]


def _bounded_ordered_map(executor, func, chunks: Iterable, max_pending: int) -> Iterator:
    """Like Pool.imap over chunks, but with at most `max_pending` chunks submitted and unread."""
    chunks = iter(chunks)
    pending = collections.deque(executor.submit(func, c) for c in itertools.islice(chunks, max_pending))
    while pending:
        results = pending.popleft().result()
        pending.extend(executor.submit(func, c) for c in itertools.islice(chunks, 1))
        yield from results


@contextlib.contextmanager
def _decoded(jobs: list[tuple[int, str]], output: _Output, workers: int, max_in_flight: int):
    """Yield an iterator of (index, output(crop) or None, reason) for `jobs`, in order."""
    if workers <= 1 or len(jobs) <= _CHUNK_SIZE:
        yield (_decode_one(index, path, output) for index, path in jobs)
        return
    chunk_size = max(1, min(_CHUNK_SIZE, len(jobs) // (4 * workers)))
    chunks = (jobs[i:i + chunk_size] for i in range(0, len(jobs), chunk_size))
    max_pending = max(2 * workers, max_in_flight // chunk_size)
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers)
    try:
        yield _bounded_ordered_map(executor, functools.partial(_decode_chunk, output=output), chunks, max_pending)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- plan and resume


@dataclasses.dataclass(frozen=True)
class _Plan:
    split_dir: Path
    classes: list[str]
    entries: list[tuple[str, int]]
    size: int
    shard_size: int
    codec: str
    quality: int | None  # jpeg only

    @property
    def num_shards(self) -> int:
        return math.ceil(len(self.entries) / self.shard_size)

    def shard_range(self, k: int) -> range:
        return range(k * self.shard_size, min((k + 1) * self.shard_size, len(self.entries)))

    def fingerprint(self) -> str:
        text = json.dumps([FORMAT_VERSION, self.size, self.shard_size, self.codec, self.quality, self.classes,
                           self.entries])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class _ShardRecord:
    shard: int
    kept: list[int]  # input indices, in order
    skipped: list[tuple[int, str]]  # (input index, reason)

    @property
    def count(self) -> int:
        return len(self.kept)


def _marker_path(work: Path, k: int) -> Path:
    return work / "_resume" / f"shard_{k:05d}.json"


def _work_dir(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".partial")


def _committed_shards(work: Path, plan: _Plan) -> dict[int, _ShardRecord]:
    """Shards a previous run with the same plan finished; wipes `work` if the plan differs."""
    plan_file = work / "_resume" / "plan.json"
    fingerprint = plan.fingerprint()
    if work.exists() and _read_json(plan_file).get("fingerprint") != fingerprint:
        logger.info("discarding %s: left by a run with a different plan", work)
        shutil.rmtree(work)
    if not plan_file.exists():
        write_json(plan_file, {"fingerprint": fingerprint, "num_files": len(plan.entries), "size": plan.size,
                               "shard_size": plan.shard_size, "codec": plan.codec, "quality": plan.quality})
    records = {}
    for k in range(plan.num_shards):
        record = _read_committed(work, plan, k)
        if record is not None:
            records[k] = record
    return records


def _read_committed(work: Path, plan: _Plan, k: int) -> _ShardRecord | None:
    marker = _read_json(_marker_path(work, k))
    if not marker:
        return None
    record = _ShardRecord(k, marker["kept"], [(i, r) for i, r in marker["skipped"]])
    if record.count:
        try:
            check_shard(work, shard_entry(plan.codec, k, record.count), plan.codec, plan.size)
        except ShardError as e:
            logger.info("redoing shard %d of %s: %s", k, work, e)
            return None
    return record


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- writing


def _write_shard(work: Path, record: _ShardRecord, codec: str, images, labels: np.ndarray) -> None:
    if record.count:
        write_shard(work, codec, record.shard, images, labels)
    write_json(_marker_path(work, record.shard),  # the commit point: written last
               {"kept": record.kept, "skipped": [list(s) for s in record.skipped]})


def _collect_shard(plan: _Plan, k: int, results: Iterator, pixels: np.ndarray | None, bar
                   ) -> tuple[_ShardRecord, list[bytes]]:
    """Read shard k's results off the ordered stream: crops (or decoded JPEGs) into `pixels`, JPEG bytes
    into the list returned."""
    record, encoded = _ShardRecord(k, [], []), []
    for expected in plan.shard_range(k):
        index, item, reason = next(results)
        assert index == expected, (index, expected)
        if item is None:
            record.skipped.append((index, reason))
            logger.warning("skipped %s: %s", plan.entries[index][0], reason)
            bar.update(1)
            continue
        if plan.codec == "jpeg":
            data, item = item
            encoded.append(data)
        if pixels is not None:
            pixels[record.count] = item
        record.kept.append(index)
        bar.update(1)
    return record, encoded


def _run_missing_shards(plan: _Plan, work: Path, records: dict[int, _ShardRecord], workers: int,
                        progress: bool, mean_sum: np.ndarray | None) -> int:
    """Decode and write every shard not in `records`; returns how many inputs it decoded."""
    todo = [k for k in range(plan.num_shards) if k not in records]
    jobs = [(i, str(plan.split_dir / plan.entries[i][0])) for k in todo for i in plan.shard_range(k)]
    output = _Output(plan.codec, plan.quality or 0, plan.size, pixels=mean_sum is not None)
    needs_pixels = plan.codec == "raw" or mean_sum is not None
    pixels = (np.empty((min(plan.shard_size, max(len(jobs), 1)), plan.size, plan.size, 3), np.uint8)
              if needs_pixels else None)
    all_labels = np.array([label for _, label in plan.entries], dtype=np.int64)
    with _decoded(jobs, output, workers, max_in_flight=plan.shard_size) as results, \
            tqdm(total=len(plan.entries), initial=len(plan.entries) - len(jobs), unit="img",
                 desc=f"prepare {plan.split_dir.name}", disable=not progress) as bar:
        for k in todo:
            record, encoded = _collect_shard(plan, k, results, pixels, bar)
            images = pixels[:record.count] if needs_pixels else None
            _write_shard(work, record, plan.codec, images if plan.codec == "raw" else encoded,
                         all_labels[record.kept])
            if mean_sum is not None:
                mean_sum += images.sum(axis=0, dtype=np.float64)
            records[k] = record
    return len(jobs)


def _add_reused_sums(work: Path, plan: _Plan, records: dict[int, _ShardRecord], reused: Iterable[int],
                     mean_sum: np.ndarray, workers: int) -> None:
    """Add the pixel sums of the shards a resumed run reuses (JPEG shards decode in the pool)."""
    entries = [shard_entry(plan.codec, k, records[k].count) for k in reused if records[k].count]
    pixel_sum = functools.partial(_shard_pixel_sum, work, codec=plan.codec, size=plan.size)
    if plan.codec == "jpeg" and workers > 1 and len(entries) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(entries))) as executor:
            sums = list(executor.map(pixel_sum, entries))
    else:
        sums = map(pixel_sum, entries)
    for total in sums:
        mean_sum += total


def _shard_pixel_sum(folder: Path, entry: dict, codec: str, size: int) -> np.ndarray:
    """float64 (S, S, 3) sum of a written shard's images, as the loader will return them."""
    if codec == "raw":
        return np.load(folder / entry["images"], mmap_mode="r").sum(axis=0, dtype=np.float64)
    offsets, data = np.load(folder / entry["offsets"]), np.fromfile(folder / entry["images"], np.uint8)
    total, image = np.zeros((size, size, 3), np.int64), np.empty((size, size, 3), np.uint8)
    for j in range(entry["count"]):
        try:
            jpeg.decode_into(data[offsets[j]:offsets[j + 1]], image, jpeg.default_decoder())
        except jpeg.CorruptJpeg as e:
            raise UserError(f"{folder / entry['images']}: image {j} of this unfinished shard does not decode ({e}); "
                            f"delete {folder} and prepare again") from None
        total += image
    return total.astype(np.float64)


def _check_every_class_kept(plan: _Plan, records: Sequence[_ShardRecord]) -> None:
    kept_labels = {plan.entries[i][1] for r in records for i in r.kept}
    empty = sorted({label for _, label in plan.entries} - kept_labels)
    if empty:
        label = empty[0]
        path, reason = next((plan.entries[i][0], reason) for r in records for i, reason in r.skipped
                            if plan.entries[i][1] == label)
        raise UserError(f"{plan.split_dir / plan.classes[label]}: no valid image in this class folder"
                        f" (e.g. {path}: {reason}; {len(empty)} such folders)")


def _write_index(work: Path, plan: _Plan, records: Sequence[_ShardRecord]) -> list[tuple[str, str]]:
    skipped = [(plan.entries[i][0], reason) for r in records for i, reason in r.skipped]
    lines = "".join(f"{path}\t{' '.join(reason.split())}\n" for path, reason in skipped)
    write_text(work / "skipped.tsv", lines)
    index = {
        "classes": plan.classes,
        "num_images": sum(r.count for r in records),
        "size": plan.size,
        "shards": [shard_entry(plan.codec, r.shard, r.count) for r in records if r.count],
        "files": [plan.entries[i][0] for r in records for i in r.kept],
        "skipped": len(skipped),
    }
    if plan.codec != "raw":  # a raw index stays byte for byte what it was before codecs existed
        index.update(codec=plan.codec, quality=plan.quality)
    write_json(work / "index.json", index)
    return skipped


def _publish(work: Path, out_dir: Path) -> None:
    os.replace(work / "_resume" / "plan.json", work / PLAN_FILE)
    shutil.rmtree(work / "_resume")
    with atomic_path(out_dir) as tmp:
        os.replace(work, tmp)


def _already_prepared(out_dir: Path, plan: _Plan, compute_mean: bool) -> dict | None:
    """The summary of a published `out_dir` prepared by this very plan, or None (then it is prepared again)."""
    if _read_json(out_dir / PLAN_FILE).get("fingerprint") != plan.fingerprint():
        return None
    if compute_mean and not (out_dir / "mean.npy").is_file():
        return None
    try:
        split = PreparedSplit(out_dir)  # opening checks every shard's files, as the loader would
    except UserError as e:
        logger.warning("preparing %s again: %s", out_dir, e)
        return None
    lines = (out_dir / "skipped.tsv").read_text(encoding="utf-8").splitlines()
    skipped = [tuple(line.split("\t", 1)) for line in lines if line]
    return {"out_dir": str(out_dir), "num_images": len(split), "skipped": skipped,
            "bytes": _folder_bytes(out_dir), "reused_shards": plan.num_shards}


def _folder_bytes(folder: Path) -> int:
    """The prepared data's size: the shards, index, mean and skip list (not the hidden plan record)."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_options(size: int, shard_size: int, codec: str, quality: int) -> None:
    if size < 1 or shard_size < 1:
        raise UserError(f"size and shard_size must be positive (got size={size}, shard_size={shard_size})")
    if codec not in CODECS:
        raise UserError(f"prepare.codec: got {codec!r}, expected one of: {', '.join(CODECS)}")
    if codec == "jpeg" and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise UserError(f"prepare.quality: got {quality!r}, expected an integer in [1, 100]")


# ----------------------------------------------------------------------------- entry point


def prepare_split(split_dir, out_dir, size: int, *, classes: Sequence[str] | None = None,
                  compute_mean: bool, shard_size: int = 1024, codec: str = "raw", quality: int = 90,
                  workers: int | None = None, progress: bool = True) -> dict:
    """Prepare one split into `out_dir` (see the module docstring); returns a summary.

    `codec` is "raw" or "jpeg" (`quality` 1-100 applies to jpeg only). Summary: out_dir, num_images,
    skipped [(relative path, reason)], seconds, images_per_s (inputs decoded by this run per second of
    the whole call), bytes (of out_dir), reused_shards. `workers` <= 1 decodes in this process.
    """
    _check_options(size, shard_size, codec, quality)
    start = time.perf_counter()
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    workers = workers if workers is not None else _default_workers()
    class_names, entries = list_images(split_dir, classes)
    plan = _Plan(split_dir, class_names, entries, size, shard_size, codec, quality if codec == "jpeg" else None)
    work = _work_dir(out_dir)
    done = _already_prepared(out_dir, plan, compute_mean)
    if done is not None:
        logger.info("kept %s: already prepared from the same files with the same settings", out_dir)
        seconds = time.perf_counter() - start
        return {**done, "seconds": seconds, "images_per_s": 0.0}

    records = _committed_shards(work, plan)
    reused = sorted(records)
    if reused:
        logger.info("resuming %s: reusing %d of %d shards", work, len(reused), plan.num_shards)
    mean_sum = np.zeros((size, size, 3), np.float64) if compute_mean else None
    decoded = _run_missing_shards(plan, work, records, workers, progress, mean_sum)
    ordered = [records[k] for k in range(plan.num_shards)]
    _check_every_class_kept(plan, ordered)

    num_images = sum(r.count for r in ordered)
    if mean_sum is not None:
        _add_reused_sums(work, plan, records, reused, mean_sum, workers)
        save_npy(work / "mean.npy", (mean_sum / num_images).astype(np.float32))
    skipped = _write_index(work, plan, ordered)
    _publish(work, out_dir)

    seconds = time.perf_counter() - start
    logger.info("prepared %s -> %s (%s): %d images, %d skipped (listed in %s), %.1f s", split_dir, out_dir,
                codec if codec == "raw" else f"jpeg, quality {quality}", num_images, len(skipped),
                out_dir / "skipped.tsv", seconds)
    return {"out_dir": str(out_dir), "num_images": num_images, "skipped": skipped, "seconds": seconds,
            "images_per_s": decoded / seconds if seconds > 0 else 0.0,
            "bytes": _folder_bytes(out_dir), "reused_shards": len(reused)}
