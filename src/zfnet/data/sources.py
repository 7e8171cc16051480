"""Source images: listing an ImageFolder split and decoding one file to its centre SxS crop (paper Sec. 3).

Input is any ImageFolder-layout split, `<root>/<class>/<files>` (files may sit in nested folders below
the class folder).

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
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from zfnet.errors import UserError

logger = logging.getLogger("zfnet.prepare")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"})
MAX_PIXELS = 200_000_000
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})

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
