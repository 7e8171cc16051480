"""Tile layouts for figures (zfnet.tiles): mosaics of equal tiles, the Fig. 2 block mosaic."""

from __future__ import annotations

import numpy as np

from zfnet.tiles import block_mosaic, mosaic


def test_block_mosaic_layout():
    tiles = [np.full((4, 4, 3), v) for v in np.linspace(0, 1, 9)]
    grid = mosaic(tiles, 3, pad=1)
    assert grid.shape == (3 * 5 + 1, 3 * 5 + 1, 3)
    assert (grid[1:5, 1:5] == 0).all() and (grid[11:15, 11:15] == 1).all()
    panel = block_mosaic([tiles] * 4)
    gap = max(2, 16 // 12)
    assert panel.shape == (2 * (16 + gap) + gap,) * 2 + (3,)
