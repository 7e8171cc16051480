"""Images as numpy arrays laid out for figures: contrast stretches, CHW -> HWC, tile mosaics, the layer-1
filter mosaic. Plain arrays, no matplotlib: the training callback and the experiments build them, the
figures in `zfnet.viz` draw them."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def stretch(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch any array to [0, 1] for display (a constant array becomes mid-grey)."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = image.min(), image.max()
    if hi - lo < 1e-12:
        return np.full_like(image, 0.5)
    return (image - lo) / (hi - lo)


def to_hwc(image) -> np.ndarray:
    """Accept CHW or HWC arrays/tensors; return HWC numpy (grey images stay 2-D)."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def filter_mosaic(weight, pad: int = 1, shared_scale: bool = False) -> np.ndarray:
    """(out, 3, k, k) filter tensor -> one RGB uint8 mosaic, each filter contrast-stretched on its own.

    shared_scale=True stretches the whole bank with one range instead, so a few filters that dominate
    (Fig. 6a, training without RMS renormalization) stand out and the rest look faint.
    """
    filters = weight.detach().float().cpu()
    count, _, size, _ = filters.shape
    flat = filters.reshape(count, -1)
    if shared_scale:
        flat = flat.reshape(1, -1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    filters = (filters - lo) / (hi - lo).clamp_min(1e-12)
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    cell = size + pad
    mosaic = np.ones((rows * cell + pad, columns * cell + pad, 3), dtype=np.float32)
    for index in range(count):
        r, c = divmod(index, columns)
        tile = filters[index, :3].permute(1, 2, 0).numpy()
        mosaic[pad + r * cell: pad + r * cell + size, pad + c * cell: pad + c * cell + size] = tile
    return (mosaic * 255).round().astype(np.uint8)


def mosaic(tiles: Sequence[np.ndarray], ncols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Equal-size HWC tiles in a grid, `pad` pixels of `fill` between and around them."""
    h, w = tiles[0].shape[:2]
    nrows = math.ceil(len(tiles) / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), fill, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        tile = np.asarray(tile, dtype=np.float32)
        if tile.ndim == 2:
            tile = np.repeat(tile[..., None], 3, axis=2)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return out


def block_mosaic(blocks: Sequence[Sequence[np.ndarray]], pad: int = 1) -> np.ndarray:
    """Each block (k tiles) as a square grid, the blocks themselves in a square grid with wider gaps.

    The paper's Fig. 2 panel: one 3x3 block per feature map.
    """
    per_block = math.ceil(math.sqrt(len(blocks[0])))
    grids = [mosaic(block, per_block, pad=pad) for block in blocks]
    gap = max(2, grids[0].shape[0] // 12)
    return mosaic(grids, math.ceil(math.sqrt(len(grids))), pad=gap, fill=1.0)

