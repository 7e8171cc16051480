"""Preprocessing (paper Sec. 3): smallest side to S, centre SxS crop, uint8 shards, per-pixel mean.

Input is any ImageFolder-layout split, `<root>/<class>/<files>` (files may sit in nested
folders below the class folder). Output, per split, in `out_dir`:

    images_00000.npy   uint8 (n, S, S, 3), plain np.save, so np.load(mmap_mode="r") works
    labels_00000.npy   int64 (n,)
    index.json         {"classes", "num_images", "size", "shards": [{"images", "labels", "count"}],
                        "files": kept relative paths in stored order, "skipped": count}
    mean.npy           float32 (S, S, 3) per-pixel mean over all kept images (train split only)
    skipped.tsv        one line per skipped file: relative path <TAB> reason

Decoding policy (the paper is silent on all of it):
- Files are decoded by content, not extension (a PNG named .JPEG is fine). EXIF orientation
  is applied first (`ImageOps.exif_transpose`).
- Strict truncation: a file PIL reports as truncated is skipped with reason "truncated"
  rather than decoded partially (`ImageFile.LOAD_TRUNCATED_IMAGES` stays at its default,
  False). A half-grey image would be a silently wrong training example.
- Transparency (RGBA, LA, palette or grey with a transparent colour) is composited onto
  black, i.e. the colour is premultiplied by alpha. Black does not depend on dataset
  statistics, and it keeps whatever colour hides under fully transparent pixels out.
- 16-bit samples (modes I;16* and I, the latter assumed to hold 16-bit values) are scaled
  to 8 bit with round(v * 255 / 65535); PIL's own conversion would clip them at 255.
- Grey, palette, CMYK and other modes go through PIL's `convert("RGB")`.
- Images above MAX_PIXELS (200 MP) are skipped with a reason; PIL's decompression-bomb
  limit is raised to that bound at import so that it does not interfere below it.
  JPEGs are decoded with `Image.draft`, i.e. DCT-domain downscaling by up to 8, so even a
  12000x9000 JPEG costs little.
- Resampling: resizing the smallest side to S and cropping the centre SxS is done in one
  step, by resampling the centred square of side min(w, h) to SxS (`resize(box=...)`);
  this is the same result minus the integer rounding of an intermediate size, and skips
  resampling the margins that the crop throws away. Filter: BICUBIC (antialiased when
  shrinking: PIL scales the kernel support with the reduction factor), with
  reducing_gap=3.0 (a box pre-reduction for large factors, which PIL's documentation
  describes as indistinguishable from full resampling).

Atomic, resumable output: shards are written into a fixed work folder `<out_dir>.partial/`,
each file atomically, followed by a small marker file `_resume/shard_NNNNN.json` (the
commit point of that shard: kept input indices and skip reasons). Shard k always covers the
same input files [k * shard_size, (k + 1) * shard_size), so it holds at most shard_size
images (fewer where files were skipped; a shard with none is left out of index.json, which
is why shard numbers may have gaps). `_resume/plan.json` holds a fingerprint of the plan
(file list with labels, S, shard_size, FORMAT_VERSION); a run whose fingerprint matches
reuses the committed shards, any other wipes the work folder (file contents are not hashed:
a file replaced under the same name needs the work folder deleted by hand). Only after index.json is
written is the work folder renamed onto `out_dir` (via `atomic_path`), so a crash never
leaves an `out_dir` that looks complete; an older `out_dir` stays until it is replaced.
One run per output folder at a time.

Memory is bounded whatever the dataset size: the main process holds one shard buffer plus
the decoded images of at most ~shard_size in-flight inputs. Work is submitted to the pool
in chunks through a bounded window (`_bounded_ordered_map`) rather than `Pool.imap`,
whose result cache grows without limit when an early chunk is slow. A
`ProcessPoolExecutor` is used rather than `multiprocessing.Pool` because a worker killed
by the OOM killer or a decoder crash then fails the run (resumable) instead of hanging it.
"""

from __future__ import annotations

import bisect
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
import resource
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from zfnet.errors import UserError
from zfnet.io import atomic_path, write_json, write_text

logger = logging.getLogger("zfnet.prepare")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"})
MAX_PIXELS = 200_000_000
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0
FORMAT_VERSION = 1  # bump when decoding or the shard layout changes: invalidates partial work

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_CHUNK_SIZE = 16

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class BadImage(Exception):
    """A file that must be skipped; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------- listing


def list_images(split_dir, classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """Return (classes, [(path relative to split_dir, label)]) of an ImageFolder split.

    Classes are the sorted class folder names unless `classes` is given (the val split
    reusing the train split's list); then every class folder must be one of them. Files
    are sorted, hidden files and folders are ignored, extensions match case-insensitively.
    """
    root = Path(split_dir)
    if not root.exists():
        raise UserError(f"{root}: image folder not found")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (expected <split>/<class>/<images>)")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UserError(f"{root}: no class folders (expected <split>/<class>/<images>)")
    classes = folders if classes is None else list(classes)
    label_of = {name: label for label, name in enumerate(classes)}
    unknown = [name for name in folders if name not in label_of]
    if unknown:
        raise UserError(f"{root / unknown[0]}: class folder not among the {len(classes)} given classes"
                        f" ({len(unknown)} such folders)")
    entries: list[tuple[str, int]] = []
    for name in folders:
        files = _image_files(root, name)
        if not files:
            raise UserError(f"{root / name}: class folder has no image files"
                            f" ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        entries.extend((f, label_of[name]) for f in files)
    return classes, entries


def _image_files(root: Path, class_name: str) -> list[str]:
    found = []
    for folder, subfolders, names in os.walk(root / class_name, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root)
        for name in names:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            found.append((rel_folder / name).as_posix())
    return sorted(found)


# ----------------------------------------------------------------------------- decoding


def load_rgb(path, size: int) -> np.ndarray:
    """Decode one file to its centre SxS crop, (S, S, 3) uint8. Raises BadImage to skip it."""
    try:
        if os.path.getsize(path) == 0:
            raise BadImage("empty file")
        with Image.open(path) as img:
            _check_pixels(img.size)
            img.draft(None, _draft_size(img.size, size))  # JPEG only; a no-op for other formats
            img.load()
            img = _exif_upright(img)
            return _centre_square(_to_rgb(img), size)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not a decodable image") from None
    except Image.DecompressionBombError:
        raise BadImage(f"too large (over {MAX_PIXELS} pixels)") from None
    except OSError as e:
        if "truncated" in str(e).lower():
            raise BadImage("truncated") from None
        raise BadImage(f"unreadable ({e})") from None
    except (SyntaxError, ValueError, EOFError) as e:  # what PIL raises for corrupt headers and streams
        raise BadImage(f"corrupt ({e})") from None


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise BadImage(f"too large ({width}x{height}, over {MAX_PIXELS} pixels)")
    if width == 0 or height == 0:
        raise BadImage(f"empty image ({width}x{height})")


def _draft_size(size: tuple[int, int], target: int) -> tuple[int, int]:
    """The smallest decode size whose smallest side still reaches `target`."""
    width, height = size
    scale = target / min(width, height)
    return math.ceil(width * scale), math.ceil(height * scale)


def _exif_upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception as e:  # a broken EXIF block should not cost an otherwise good image
        logger.debug("ignoring unreadable EXIF: %s", e)
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _SIXTEEN_BIT_MODES:
        img = _sixteen_to_eight_bit(img)
    try:
        if img.mode in _ALPHA_MODES or "transparency" in img.info:
            return _composite_on_black(img.convert("RGBA"))
        return img if img.mode == "RGB" else img.convert("RGB")
    except ValueError:
        raise BadImage(f"unsupported image mode {img.mode}") from None


def _sixteen_to_eight_bit(img: Image.Image) -> Image.Image:
    values = np.clip(np.asarray(img).astype(np.uint32), 0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def _composite_on_black(rgba: Image.Image) -> Image.Image:
    black = Image.new("RGB", rgba.size)
    black.paste(rgba, mask=rgba.getchannel("A"))
    return black


def _centre_square(img: Image.Image, size: int) -> np.ndarray:
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    square = img.resize((size, size), RESAMPLE, box=(left, top, left + side, top + side),
                        reducing_gap=REDUCING_GAP)
    return np.asarray(square, dtype=np.uint8)


def _decode_one(index: int, path: str, size: int) -> tuple[int, np.ndarray | None, str]:
    try:
        return index, load_rgb(path, size), ""
    except BadImage as e:
        return index, None, e.reason
    except Exception as e:  # one odd file must not end a run over a million
        return index, None, f"unexpected {type(e).__name__}: {e}"


def _decode_chunk(chunk: list[tuple[int, str]], size: int) -> list[tuple[int, np.ndarray | None, str]]:
    return [_decode_one(index, path, size) for index, path in chunk]


def _bounded_ordered_map(executor, func, chunks: Iterable, max_pending: int) -> Iterator:
    """Like Pool.imap over chunks, but with at most `max_pending` chunks submitted and unread."""
    chunks = iter(chunks)
    pending = collections.deque(executor.submit(func, c) for c in itertools.islice(chunks, max_pending))
    while pending:
        results = pending.popleft().result()
        pending.extend(executor.submit(func, c) for c in itertools.islice(chunks, 1))
        yield from results


@contextlib.contextmanager
def _decoded(jobs: list[tuple[int, str]], size: int, workers: int, max_in_flight: int):
    """Yield an iterator of (index, array or None, reason) for `jobs`, in order."""
    if workers <= 1 or len(jobs) <= _CHUNK_SIZE:
        yield (_decode_one(index, path, size) for index, path in jobs)
        return
    chunk_size = max(1, min(_CHUNK_SIZE, len(jobs) // (4 * workers)))
    chunks = (jobs[i:i + chunk_size] for i in range(0, len(jobs), chunk_size))
    max_pending = max(2 * workers, max_in_flight // chunk_size)
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=workers)
    try:
        yield _bounded_ordered_map(executor, functools.partial(_decode_chunk, size=size), chunks, max_pending)
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

    @property
    def num_shards(self) -> int:
        return math.ceil(len(self.entries) / self.shard_size)

    def shard_range(self, k: int) -> range:
        return range(k * self.shard_size, min((k + 1) * self.shard_size, len(self.entries)))

    def fingerprint(self) -> str:
        text = json.dumps([FORMAT_VERSION, self.size, self.shard_size, self.classes, self.entries])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class _ShardRecord:
    shard: int
    kept: list[int]  # input indices, in order
    skipped: list[tuple[int, str]]  # (input index, reason)

    @property
    def count(self) -> int:
        return len(self.kept)


def _images_name(k: int) -> str:
    return f"images_{k:05d}.npy"


def _labels_name(k: int) -> str:
    return f"labels_{k:05d}.npy"


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
        write_json(plan_file, {"fingerprint": fingerprint, "num_files": len(plan.entries),
                               "size": plan.size, "shard_size": plan.shard_size})
    records = {}
    for k in range(plan.num_shards):
        record = _read_committed(work, k)
        if record is not None:
            records[k] = record
    return records


def _read_committed(work: Path, k: int) -> _ShardRecord | None:
    marker = _read_json(_marker_path(work, k))
    if not marker:
        return None
    record = _ShardRecord(k, marker["kept"], [(i, r) for i, r in marker["skipped"]])
    if record.count and not _shard_files_hold(work, k, record.count):
        return None
    return record


def _shard_files_hold(work: Path, k: int, count: int) -> bool:
    try:
        images = np.load(work / _images_name(k), mmap_mode="r")
        labels = np.load(work / _labels_name(k), mmap_mode="r")
    except (OSError, ValueError):
        return False
    return images.shape[0] == count and labels.shape == (count,)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- writing


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a bare name
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())


def _write_shard(work: Path, record: _ShardRecord, images: np.ndarray, labels: np.ndarray) -> None:
    if record.count:
        _save_npy(work / _images_name(record.shard), images)
        _save_npy(work / _labels_name(record.shard), labels)
    write_json(_marker_path(work, record.shard),  # the commit point: written last
               {"kept": record.kept, "skipped": [list(s) for s in record.skipped]})


def _collect_shard(plan: _Plan, k: int, results: Iterator, buffer: np.ndarray, bar) -> _ShardRecord:
    """Read shard k's results off the ordered stream into `buffer`."""
    record = _ShardRecord(k, [], [])
    for expected in plan.shard_range(k):
        index, image, reason = next(results)
        assert index == expected, (index, expected)
        if image is None:
            record.skipped.append((index, reason))
            logger.warning("skipped %s: %s", plan.entries[index][0], reason)
        else:
            buffer[record.count] = image
            record.kept.append(index)
        bar.update(1)
    return record


def _run_missing_shards(plan: _Plan, work: Path, records: dict[int, _ShardRecord], workers: int,
                        progress: bool, mean_sum: np.ndarray | None) -> int:
    """Decode and write every shard not in `records`; returns how many inputs it decoded."""
    todo = [k for k in range(plan.num_shards) if k not in records]
    jobs = [(i, str(plan.split_dir / plan.entries[i][0])) for k in todo for i in plan.shard_range(k)]
    buffer = np.empty((min(plan.shard_size, max(len(jobs), 1)), plan.size, plan.size, 3), np.uint8)
    all_labels = np.array([label for _, label in plan.entries], dtype=np.int64)
    with _decoded(jobs, plan.size, workers, max_in_flight=plan.shard_size) as results, \
            tqdm(total=len(plan.entries), initial=len(plan.entries) - len(jobs), unit="img",
                 desc=f"prepare {plan.split_dir.name}", disable=not progress) as bar:
        for k in todo:
            record = _collect_shard(plan, k, results, buffer, bar)
            images = buffer[:record.count]
            _write_shard(work, record, images, all_labels[record.kept])
            if mean_sum is not None:
                mean_sum += images.sum(axis=0, dtype=np.float64)
            records[k] = record
    return len(jobs)


def _add_reused_sums(work: Path, records: dict[int, _ShardRecord], reused: Iterable[int],
                     mean_sum: np.ndarray) -> None:
    for k in reused:
        if records[k].count:
            mean_sum += np.load(work / _images_name(k), mmap_mode="r").sum(axis=0, dtype=np.float64)


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
    write_json(work / "index.json", {
        "classes": plan.classes,
        "num_images": sum(r.count for r in records),
        "size": plan.size,
        "shards": [{"images": _images_name(r.shard), "labels": _labels_name(r.shard), "count": r.count}
                   for r in records if r.count],
        "files": [plan.entries[i][0] for r in records for i in r.kept],
        "skipped": len(skipped),
    })
    return skipped


def _publish(work: Path, out_dir: Path) -> None:
    shutil.rmtree(work / "_resume")
    with atomic_path(out_dir) as tmp:
        os.replace(work, tmp)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------- entry point


def prepare_split(split_dir, out_dir, size: int, *, classes: Sequence[str] | None = None,
                  compute_mean: bool, shard_size: int = 1024, workers: int | None = None,
                  progress: bool = True) -> dict:
    """Prepare one split into `out_dir` (see the module docstring); returns a summary.

    Summary: out_dir, num_images, skipped [(relative path, reason)], seconds, images_per_s
    (inputs decoded by this run per second of the whole call), bytes (of out_dir),
    reused_shards. `workers` <= 1 decodes in this process.
    """
    if size < 1 or shard_size < 1:
        raise UserError(f"size and shard_size must be positive (got size={size}, shard_size={shard_size})")
    start = time.perf_counter()
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    class_names, entries = list_images(split_dir, classes)
    plan = _Plan(split_dir, class_names, entries, size, shard_size)
    work = _work_dir(out_dir)

    records = _committed_shards(work, plan)
    reused = sorted(records)
    if reused:
        logger.info("resuming %s: reusing %d of %d shards", work, len(reused), plan.num_shards)
    mean_sum = np.zeros((size, size, 3), np.float64) if compute_mean else None
    decoded = _run_missing_shards(plan, work, records, workers if workers is not None else _default_workers(),
                                  progress, mean_sum)
    ordered = [records[k] for k in range(plan.num_shards)]
    _check_every_class_kept(plan, ordered)

    num_images = sum(r.count for r in ordered)
    if mean_sum is not None:
        _add_reused_sums(work, records, reused, mean_sum)
        _save_npy(work / "mean.npy", (mean_sum / num_images).astype(np.float32))
    skipped = _write_index(work, plan, ordered)
    _publish(work, out_dir)

    seconds = time.perf_counter() - start
    logger.info("prepared %s -> %s: %d images, %d skipped (listed in %s), %.1f s",
                split_dir, out_dir, num_images, len(skipped), out_dir / "skipped.tsv", seconds)
    return {"out_dir": str(out_dir), "num_images": num_images, "skipped": skipped, "seconds": seconds,
            "images_per_s": decoded / seconds if seconds > 0 else 0.0,
            "bytes": _folder_bytes(out_dir), "reused_shards": len(reused)}


# ----------------------------------------------------------------------------- reading


class PreparedSplit(torch.utils.data.Dataset):
    """A prepared split read through per-shard memmaps.

    Items are (uint8 CHW tensor, label), or (uint8 HWC array, label) with as_tensor=False;
    augmentation and mean subtraction belong to the training code. `mean` is the
    split's mean.npy when present, else the array or .npy path passed (e.g. the train mean
    for val). Memmaps open lazily in each process (the object pickles without them) and at
    most `max_open_shards` stay open, each holding a file descriptor.
    """

    def __init__(self, root, *, mean=None, as_tensor: bool = True, max_open_shards: int | None = None):
        self.root = Path(root)
        index = _read_json(self.root / "index.json")
        if not index:
            raise UserError(f"{self.root / 'index.json'}: missing or unreadable; prepare the split first")
        self.classes: list[str] = index["classes"]
        self.size: int = index["size"]
        self.files: list[str] = index["files"]
        self.as_tensor = as_tensor
        self._image_names = [s["images"] for s in index["shards"]]
        self._starts = np.cumsum([0] + [s["count"] for s in index["shards"]]).tolist()
        self.labels = (np.concatenate([np.load(self.root / s["labels"]) for s in index["shards"]])
                       if index["shards"] else np.empty(0, np.int64))
        self.mean = self._load_mean(mean)
        self.max_open_shards = max_open_shards or _default_max_open()
        self._open: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def _load_mean(self, mean) -> np.ndarray | None:
        if mean is None:
            own = self.root / "mean.npy"
            return np.load(own) if own.exists() else None
        array = np.asarray(np.load(mean) if isinstance(mean, (str, os.PathLike)) else mean, np.float32)
        if array.shape != (self.size, self.size, 3):
            raise UserError(f"mean has shape {array.shape}, expected {(self.size, self.size, 3)} for {self.root}")
        return array

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, i):
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        k = bisect.bisect_right(self._starts, i) - 1
        image = np.array(self._shard(k)[i - self._starts[k]])  # a writable copy, not a view of the memmap
        label = int(self.labels[i])
        if not self.as_tensor:
            return image, label
        return torch.from_numpy(image).permute(2, 0, 1), label

    def _shard(self, k: int) -> np.ndarray:
        images = self._open.get(k)
        if images is None:
            images = self._open[k] = np.load(self.root / self._image_names[k], mmap_mode="r")
            if len(self._open) > self.max_open_shards:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(k)
        return images

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()
        return state


def _default_max_open() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1024 if soft == resource.RLIM_INFINITY else max(8, soft // 4)
