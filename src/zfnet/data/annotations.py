"""Object boxes, masks, part boxes and keypoints of a dataset, in the coordinates of the network's input.

    notes = read_annotations("data/synthetic/imagenet", ["val/dog_face/dog_face_00001.JPEG"], size=128, crop=112)
    notes[0].box            # [x0, y0, x1, y1] in the 112 x 112 input (floats, x1/y1 exclusive)
    notes[0].parts["nose"]  # the same for a part box
    notes[0].mask           # (112, 112) bool, the object's pixels, or None when the metadata names no mask

The metadata is the built-in dataset's `metadata.jsonl` format, which real data can follow too: one
JSON object per line with "path" (relative to the dataset root), "box" [x0, y0, x1, y1] in the
original image's pixels (of the image as viewers show it, upright after its EXIF orientation, which is
how `prepare` decodes it), optional "part_boxes" {name: box}, "keypoints" {name: [x, y]}, "mask" (a
PNG path relative to the root), "rotation" (degrees) and "class".

The geometry follows the images: `prepare` resizes the centre square of the smallest side to `size`
(`zfnet.data.prepare.load_rgb`), and the network sees the centre `crop` of that
(`zfnet.data.loading.center_crop`). Coordinates may fall outside [0, crop) when an object is cut off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import ExifTags, Image

from zfnet.errors import UserError

QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height when turned upright


class Geometry(NamedTuple):
    """original pixel (x, y) -> input pixel ((x - left) * scale - offset, (y - top) * scale - offset)."""

    left: float
    top: float
    scale: float
    offset: int

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.left) * self.scale - self.offset, (y - self.top) * self.scale - self.offset

    def box(self, box: Sequence[float]) -> list[float]:
        x0, y0 = self.point(box[0], box[1])
        x1, y1 = self.point(box[2], box[3])
        return [x0, y0, x1, y1]


def geometry(width: int, height: int, size: int, crop: int) -> Geometry:
    """How a width x height image maps into the network input (centre square -> size -> centre crop)."""
    side = min(width, height)
    offset = int(round((size - crop) / 2))  # zfnet.data.loading.center_crop's rounding
    return Geometry((width - side) / 2, (height - side) / 2, size / side, offset)


@dataclass
class Annotation:
    """One image's annotations in input coordinates."""

    path: str
    label: int | None
    class_name: str | None
    box: list[float] | None
    parts: dict[str, list[float]] = field(default_factory=dict)
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)
    rotation: float | None = None
    mask: np.ndarray | None = None


def read_metadata(path: str | Path) -> dict[str, dict]:
    """metadata.jsonl as {record["path"]: record}; a UserError naming the file and line when malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: metadata file not found (expected one JSON object per line)")
    records = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            raise UserError(f"{path}:{number}: expected a JSON object with a \"path\" string")
        box = record.get("box")
        if box is not None and not _is_box(box):
            raise UserError(f"{path}:{number}: \"box\" must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {box!r}")
        for name, part in (record.get("part_boxes") or {}).items():
            if not _is_box(part):
                raise UserError(f"{path}:{number}: part_boxes[{name!r}] must be [x0, y0, x1, y1], got {part!r}")
        records[record["path"]] = record
    return records


def _is_box(box) -> bool:
    return (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
            and box[0] < box[2] and box[1] < box[3])


def read_annotations(root: str | Path, paths: Sequence[str], size: int, crop: int,
                     metadata: dict[str, dict] | None = None, masks: bool = True) -> list[Annotation | None]:
    """The annotation of each of `paths` (relative to `root`) in the network's input coordinates, None
    for an image the metadata does not list. `metadata` defaults to root/metadata.jsonl."""
    root = Path(root)
    metadata = read_metadata(root / "metadata.jsonl") if metadata is None else metadata
    return [_annotation(root, p, metadata[p], size, crop, masks) if p in metadata else None for p in paths]


def _annotation(root: Path, path: str, record: dict, size: int, crop: int, masks: bool) -> Annotation:
    image_file = root / path
    try:
        with Image.open(image_file) as img:
            width, height = img.size
            if img.getexif().get(ExifTags.Base.Orientation) in QUARTER_TURNS:
                width, height = height, width  # `prepare` decodes the image upright, turned a quarter
    except OSError as e:
        raise UserError(f"{image_file}: cannot read the image the metadata lists ({e})") from None
    geo = geometry(width, height, size, crop)
    box = record.get("box")
    return Annotation(
        path=path,
        label=record.get("label"),
        class_name=record.get("class"),
        box=geo.box(box) if box is not None else None,
        parts={name: geo.box(b) for name, b in (record.get("part_boxes") or {}).items()},
        keypoints={name: geo.point(*xy) for name, xy in (record.get("keypoints") or {}).items()},
        rotation=record.get("rotation"),
        mask=_mask(root / record["mask"], size, crop) if masks and record.get("mask") else None,
    )


def _mask(path: Path, size: int, crop: int) -> np.ndarray:
    """The object mask, resized and cropped as its image was (nearest neighbour), as bool (crop, crop)."""
    try:
        with Image.open(path) as img:
            mask = img.convert("L")
            width, height = mask.size
            side = min(width, height)
            left, top = (width - side) / 2, (height - side) / 2
            square = mask.resize((size, size), Image.Resampling.NEAREST, box=(left, top, left + side, top + side))
    except OSError as e:
        raise UserError(f"{path}: cannot read the object mask ({e})") from None
    offset = int(round((size - crop) / 2))
    return np.asarray(square)[offset:offset + crop, offset:offset + crop] > 0
