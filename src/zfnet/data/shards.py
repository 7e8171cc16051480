"""The prepared shard format: file names, writing, the check that a shard holds what its index says, reading.

A prepared split (`zfnet.data.prepare.prepare_split` writes it) is a folder of shards plus index.json.
Shard k, by codec:

    raw   images_0000k.npy      uint8 (n, S, S, 3), plain np.save, read through np.load(mmap_mode="r")
    jpeg  images_0000k.jpg.bin  the n images' JPEG bytes, concatenated
          offsets_0000k.npy     int64 (n + 1,): image j is bytes [offsets[j], offsets[j + 1]); offsets[0] = 0
                                and offsets[n] = the .jpg.bin file's size
    both  labels_0000k.npy      int64 (n,)

index.json: {"classes", "num_images", "size", "shards": [{"images", "labels", ["offsets",] "count"}],
"files": kept relative paths in stored order, "skipped": count}, plus "codec": "jpeg" and "quality"
for a jpeg split (an index without "codec" is raw, as every split written before jpeg existed).

`check_shard` is the one test of a shard's files, shared by prepare's resume (a committed shard whose
files fail it is decoded again) and the reader (which refuses the split with one line naming the shard
and the image), so prepare can never leave a shard the reader would take as good.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import json
import math
import os
import resource
from pathlib import Path

import numpy as np
import torch

from zfnet.data import jpeg
from zfnet.errors import UserError
from zfnet.io import atomic_path

CODECS = ("raw", "jpeg")


# ----------------------------------------------------------------------------- names


def images_name(codec: str, k: int) -> str:
    return f"images_{k:05d}.npy" if codec == "raw" else f"images_{k:05d}.jpg.bin"


def labels_name(k: int) -> str:
    return f"labels_{k:05d}.npy"


def offsets_name(k: int) -> str:
    return f"offsets_{k:05d}.npy"


def shard_entry(codec: str, k: int, count: int) -> dict:
    """The shard's index.json entry."""
    entry = {"images": images_name(codec, k), "labels": labels_name(k), "count": count}
    if codec == "jpeg":
        entry["offsets"] = offsets_name(k)
    return entry


# ----------------------------------------------------------------------------- writing


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a bare name
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())


def _save_bytes(path: Path, chunks: list[bytes]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.writelines(chunks)
            f.flush()
            os.fsync(f.fileno())


def write_shard(folder: Path, codec: str, k: int, images, labels: np.ndarray) -> None:
    """Write shard k's files, each atomically: `images` is a uint8 (n, S, S, 3) array (raw) or a list of
    n JPEG byte strings (jpeg). The caller commits the shard afterwards (prepare's marker file)."""
    if codec == "raw":
        save_npy(folder / images_name(codec, k), images)
    else:
        _save_bytes(folder / images_name(codec, k), images)
        save_npy(folder / offsets_name(k), np.cumsum([0] + [len(data) for data in images], dtype=np.int64))
    save_npy(folder / labels_name(k), labels.astype(np.int64))


# ----------------------------------------------------------------------------- checking


class ShardError(Exception):
    """A shard whose files do not hold what its entry says. `file` is the file at fault, `position` the
    first image (within the shard) that cannot be read, or None where no single image is to blame."""

    def __init__(self, file: str, reason: str, position: int | None = None):
        super().__init__(f"{file}: {reason}")
        self.file, self.reason, self.position = file, reason, position


@dataclasses.dataclass
class ShardContents:
    labels: np.ndarray  # int64 (n,)
    offsets: np.ndarray | None  # int64 (n + 1,), jpeg only


def check_shard(folder: Path, entry: dict, codec: str, size: int) -> ShardContents:
    """Check shard `entry`'s files against its count and the image size S (sizes and headers only: no
    image is decoded); return its labels and offsets. Raises ShardError."""
    count = entry["count"]
    labels = _load_small(folder, entry["labels"])
    if labels.shape != (count,) or labels.dtype.kind not in "iu":
        raise ShardError(entry["labels"], f"holds {labels.dtype} {labels.shape}, expected int64 ({count},)")
    offsets = None
    if codec == "raw":
        _check_raw_images(folder, entry["images"], count, size)
    else:
        offsets = _load_small(folder, entry["offsets"])
        _check_offsets(folder, entry, offsets, count)
    return ShardContents(labels.astype(np.int64, copy=False), offsets)


def _load_small(folder: Path, name: str) -> np.ndarray:
    try:
        return np.load(folder / name)
    except FileNotFoundError:
        raise ShardError(name, "missing") from None
    except (OSError, ValueError, EOFError) as e:  # what np.load raises for a cut or foreign file
        raise ShardError(name, f"not a readable .npy file ({' '.join(str(e).split())})") from None


def _check_raw_images(folder: Path, name: str, count: int, size: int) -> None:
    expected = (count, size, size, 3)
    try:
        with open(folder / name, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            data_start = f.tell()
            file_bytes = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise ShardError(name, "missing") from None
    except (OSError, ValueError, EOFError) as e:
        raise ShardError(name, f"not a readable .npy file ({' '.join(str(e).split())})", 0) from None
    if shape != expected or dtype != np.uint8 or fortran:
        raise ShardError(name, f"holds {dtype} {shape}, expected uint8 {expected}")
    image_bytes = size * size * 3
    whole = (file_bytes - data_start) // image_bytes
    if whole < count:
        raise ShardError(name, f"truncated: {file_bytes} bytes, {data_start + count * image_bytes} expected",
                         max(whole, 0))


def _check_offsets(folder: Path, entry: dict, offsets: np.ndarray, count: int) -> None:
    name, offsets_file = entry["images"], entry["offsets"]
    if offsets.shape != (count + 1,) or offsets.dtype.kind not in "iu":
        raise ShardError(offsets_file, f"holds {offsets.dtype} {offsets.shape}, expected int64 ({count + 1},)")
    try:
        file_bytes = (folder / name).stat().st_size
    except FileNotFoundError:
        raise ShardError(name, "missing") from None
    steps = np.diff(offsets)
    if offsets[0] != 0 or (steps <= 0).any():
        position = 0 if offsets[0] != 0 else int(np.flatnonzero(steps <= 0)[0])
        raise ShardError(offsets_file, f"offsets do not rise from 0 (at entry {position}): not {name}'s offsets",
                         position)
    if file_bytes < offsets[-1]:
        raise ShardError(name, f"truncated: {file_bytes} bytes, its offsets ({offsets_file}) end at {offsets[-1]}",
                         int(np.searchsorted(offsets, file_bytes, side="right")) - 1)
    if file_bytes > offsets[-1]:
        raise ShardError(name, f"{file_bytes} bytes, but its offsets ({offsets_file}) end at {offsets[-1]}: "
                         "the two files do not belong together")


# ----------------------------------------------------------------------------- reading


class PreparedSplit(torch.utils.data.Dataset):
    """A prepared split of either codec, read through per-shard memmaps.

    Items are (uint8 CHW tensor, label), or (uint8 HWC array, label) with as_tensor=False; `get_batch`
    reads a whole batch as uint8 NHWC. Augmentation and mean subtraction belong to the training code.
    `mean` is the split's mean.npy when present, else the array or .npy path passed (e.g. the train
    mean for val). Every shard is checked at construction (`check_shard`: file sizes, headers,
    offsets, labels; no decoding), and a JPEG that fails to decode when read raises too: both as a
    UserError naming the shard file and the image. Memmaps open lazily in each process (the object
    pickles without them) and at most `max_open_shards` stay open, each holding a file descriptor.
    `decoder` picks the JPEG decoder (zfnet.data.jpeg.DECODERS; default: the fastest installed).
    """

    def __init__(self, root, *, mean=None, as_tensor: bool = True, max_open_shards: int | None = None,
                 decoder: str | None = None):
        self.root = Path(root)
        index = _read_index(self.root / "index.json")
        self.codec: str = index.get("codec", "raw")
        if self.codec not in CODECS:
            raise UserError(f"{self.root / 'index.json'}: codec {self.codec!r}, expected one of {', '.join(CODECS)}")
        self.quality: int | None = index.get("quality")
        self.classes: list[str] = index["classes"]
        self.size: int = index["size"]
        self.files: list[str] = index["files"]
        self.as_tensor = as_tensor
        self.decoder = jpeg.check_decoder(decoder or jpeg.default_decoder()) if self.codec == "jpeg" else None
        shards = index["shards"]
        self._image_names = [s["images"] for s in shards]
        self._starts = np.cumsum([0] + [s["count"] for s in shards]).tolist()
        contents = [self._checked(k, entry) for k, entry in enumerate(shards)]
        self._offsets = [c.offsets for c in contents]
        self.labels = np.concatenate([c.labels for c in contents]) if contents else np.empty(0, np.int64)
        self.mean = self._load_mean(mean)
        self.max_open_shards = max_open_shards or _default_max_open()
        self._open: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def _checked(self, k: int, entry: dict) -> ShardContents:
        try:
            return check_shard(self.root, entry, self.codec, self.size)
        except ShardError as e:
            raise UserError(f"{self.root / e.file}: {e.reason}; {self._images_text(k, e.position)}; "
                            "prepare the split again") from None

    def _images_text(self, k: int, position: int | None) -> str:
        if position is None:
            return f"images {self._starts[k]}-{self._starts[k + 1] - 1} of this split"
        return f"image {self._starts[k] + position} ({self._file(self._starts[k] + position)})"

    def _file(self, i: int) -> str:
        return self.files[i] if i < len(self.files) else "path not in index.json"

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
        image = np.empty((self.size, self.size, 3), np.uint8)  # a writable copy, not a view of the memmap
        self._read_into(k, i - self._starts[k], image)
        label = int(self.labels[i])
        if not self.as_tensor:
            return image, label
        return torch.from_numpy(image).permute(2, 0, 1), label

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole batch read: uint8 NHWC images (n, S, S, 3) and int64 labels (n,), in the order given.

        The training loader's contract (no per-image tensors, no CPU permute): the DataLoader calls
        this once per batch through a batch sampler. Indices are grouped by shard (each shard is looked
        up once per batch); each image goes straight into the preallocated batch: a raw row is one copy
        out of the page cache (a fancy-index read plus a scatter copies twice and measured 2-4x slower at
        256 px), a JPEG decodes in place.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} images")
        batch = _batch_buffer((len(indices), self.size, self.size, 3))
        images = batch.numpy()
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1
        for k in np.unique(shard_of).tolist():
            rows = np.flatnonzero(shard_of == k)
            for row, position in zip(rows.tolist(), (indices[rows] - self._starts[k]).tolist()):
                self._read_into(k, position, images[row])
        return batch, torch.from_numpy(self.labels[indices])

    def _read_into(self, k: int, position: int, out: np.ndarray) -> None:
        """Image `position` of shard k into `out`, a uint8 (S, S, 3) array."""
        data = self._shard(k)
        if self.codec == "raw":
            out[...] = data[position]
            return
        offsets = self._offsets[k]
        try:
            jpeg.decode_into(data[offsets[position]:offsets[position + 1]], out, self.decoder)
        except jpeg.CorruptJpeg as e:
            raise UserError(f"{self.root / self._image_names[k]}: {self._images_text(k, position)} does not "
                            f"decode as a {self.size}x{self.size} RGB JPEG ({e}); prepare the split again") from None

    def _shard(self, k: int) -> np.ndarray:
        data = self._open.get(k)
        if data is None:
            data = self._open[k] = self._map(k)
            if len(self._open) > self.max_open_shards:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(k)
        return data

    def _map(self, k: int) -> np.ndarray:
        path = self.root / self._image_names[k]
        try:  # plain ndarray views of the map: slicing a np.memmap costs a subclass object per image
            if self.codec == "raw":
                return np.load(path, mmap_mode="r").view(np.ndarray)
            return np.memmap(path, np.uint8, mode="r").view(np.ndarray)
        except (OSError, ValueError) as e:  # changed since the check at construction
            raise UserError(f"{path}: cannot be read ({' '.join(str(e).split())}); "
                            f"{self._images_text(k, None)}; prepare the split again") from None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()
        return state


def _batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """A uint8 tensor to read a batch into; in a DataLoader worker it lives in shared memory (as
    default_collate's output does), so handing it to the main process copies nothing."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(math.prod(shape))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


def _read_index(path: Path) -> dict:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{path}: missing or unreadable; prepare the split first") from None
    missing = [key for key in ("classes", "size", "files", "shards") if key not in index]
    if missing:
        raise UserError(f"{path}: lacks {', '.join(missing)}; prepare the split again")
    return index


def _default_max_open() -> int:
    """A quarter of the open-file limit, after raising the process's soft limit towards its hard one (up to
    65,536): ImageNet's JPEG train split is 1,252 shards, and random batches reach into most of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
        if wanted > soft:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
                soft = wanted
    return 1024 if soft == resource.RLIM_INFINITY else max(8, soft // 4)
