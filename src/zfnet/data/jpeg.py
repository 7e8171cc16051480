"""The JPEG codec of prepared shards (`prepare.codec: jpeg`): one encoder, interchangeable decoders.

Encoding always goes through Pillow (its wheels bundle libjpeg-turbo) with fixed settings, so the bytes
a prepare run writes never depend on which optional decoder happens to be installed: baseline JPEG,
4:2:0 chroma subsampling, optimized Huffman tables (smaller files, same pixels, no decode cost).

Decoding writes straight into a caller's uint8 (S, S, 3) array (a row of a preallocated batch). The
decoders all run libjpeg-turbo with its accurate integer IDCT and smooth chroma upsampling, so they
return the same pixels bit for bit (tests/data/test_jpeg_shards.py checks it), which is what lets the
mean image be computed at prepare time by whichever decoder the loader later uses:
- `simplejpeg` (a dependency; the fastest measured here, see benchmarks/jpeg_codec.py) is strict: a
  stream libjpeg calls corrupt raises, not only one that ends early;
- `pillow` is the fallback where simplejpeg cannot be imported. It raises on a truncated stream but,
  like libjpeg's defaults, decodes through corrupt entropy-coded data with a warning.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

try:  # a dependency, but a platform without its wheel still works, on Pillow
    import simplejpeg
except ImportError:  # pragma: no cover - exercised by forcing decoder="pillow" in the tests
    simplejpeg = None

DECODERS = ("simplejpeg", "pillow")
_PILLOW_SUBSAMPLING_420 = 2


class CorruptJpeg(Exception):
    """Bytes that do not decode to the expected image; the message says why in a few words."""


def default_decoder() -> str:
    return "simplejpeg" if simplejpeg is not None else "pillow"


def check_decoder(name: str) -> str:
    if name not in DECODERS:
        raise ValueError(f"unknown JPEG decoder {name!r}; expected one of {', '.join(DECODERS)}")
    if name == "simplejpeg" and simplejpeg is None:
        raise ValueError("the simplejpeg decoder is not installed (pip install simplejpeg)")
    return name


def encode(image: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes at `quality` (1-100), with the fixed settings above."""
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="JPEG", quality=quality,
                                            subsampling=_PILLOW_SUBSAMPLING_420, optimize=True)
    return buffer.getvalue()


def decode_into(data, out: np.ndarray, decoder: str) -> None:
    """Decode the JPEG `data` (any bytes-like object) into `out`, a writable uint8 (S, S, 3) array.

    Raises CorruptJpeg when the bytes do not decode, or decode to another size or colour layout.
    """
    try:
        if decoder == "simplejpeg":
            decoded = simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
        else:
            decoded = _pillow_decode(data)
    except (ValueError, OSError, SyntaxError, EOFError, UnidentifiedImageError) as e:
        raise CorruptJpeg(" ".join(str(e).split()) or type(e).__name__) from None
    if decoded.shape != out.shape:
        raise CorruptJpeg(f"decodes to {decoded.shape}, expected {out.shape}")
    if decoded is not out and not np.shares_memory(decoded, out):
        out[...] = decoded


def decode(data, size: int, decoder: str) -> np.ndarray:
    """Decode into a new uint8 (size, size, 3) array (see decode_into)."""
    out = np.empty((size, size, 3), np.uint8)
    decode_into(data, out, decoder)
    return out


def _pillow_decode(data) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if img.format != "JPEG":
            raise ValueError(f"a {img.format} image, not a JPEG")
        if img.mode != "RGB":
            raise ValueError(f"a {img.mode} JPEG, not RGB")
        img.load()
        return np.asarray(img)
