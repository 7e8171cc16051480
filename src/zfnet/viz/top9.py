"""Fig. 2: the top-9 projections of each chosen map beside their image patches (stage `visualize`)."""

from __future__ import annotations

import numpy as np

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

