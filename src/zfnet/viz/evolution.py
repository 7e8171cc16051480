"""Fig. 4: the strongest projection of each chosen map at each training snapshot (stage `evolution`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zfnet.viz.figures import plt


def evolution_figure(tiles: Sequence[Sequence[np.ndarray]], epochs: Sequence[int], maps: Sequence[int],
                     title: str) -> plt.Figure:
    """Fig. 4 style: one row per feature map, one column per training snapshot."""
    nrows, ncols = len(tiles), len(epochs)
    cell = 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell + 0.6, nrows * cell + 0.6), squeeze=False)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            ax = axes[r, c]
            ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {epochs[c]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"map {maps[r]}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

