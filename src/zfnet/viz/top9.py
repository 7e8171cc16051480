"""Fig. 2: the top-9 projections of each chosen map beside their image patches (stage `visualize`)."""

from __future__ import annotations

import numpy as np

from zfnet.experiments.top9 import Top9Result
from zfnet.tiles import block_mosaic
from zfnet.viz.figures import plt


def top_figure(projections: np.ndarray, patches: np.ndarray, title: str) -> plt.Figure:
    """Fig. 2 style: the projection blocks beside the matching patch blocks."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.3))
    for ax, image, name in zip(axes, (projections, patches), ("projections", "image patches")):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def layer_figure(result: Top9Result, layer: str, key: str) -> plt.Figure:
    """The Fig. 2 panel of one layer of `result` (a layer with maps shown) of model `key`."""
    title = (f"{key} {layer}: top {result.top[layer].values.shape[1]} activations of {len(result.maps[layer])} "
             f"random maps over {len(result.indices)} validation images")
    return top_figure(block_mosaic(result.projections[layer]), block_mosaic(result.patches[layer]), title)
