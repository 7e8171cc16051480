"""Figure building blocks (matplotlib, headless). Functions return figures; callers save them."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zfnet.tiles import stretch, to_hwc  # noqa: E402


def image_grid(
    images: Sequence,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cell: float = 1.4,
    title: str | None = None,
    normalize: bool = False,
) -> plt.Figure:
    """Images in a grid; uint8 shown as is, floats shown as is in [0,1] or contrast-stretched."""
    count = len(images)
    ncols = ncols or math.ceil(math.sqrt(count))
    nrows = max(1, math.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell, nrows * cell + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        image = to_hwc(images[i])
        if normalize or (image.dtype != np.uint8 and (image.min() < 0 or image.max() > 1)):
            image = stretch(image)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def curves_figure(rows: list[dict], key: str):
    epochs = [row["epoch"] for row in rows]
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name in ("train/loss", "val/loss"):
        loss_ax.plot(epochs, [row.get(name) for row in rows], marker=".", label=name)
    for name in ("train/top1_error", "val/top1_error", "val/top5_error"):
        error_ax.plot(epochs, [row.get(name) for row in rows], marker=".", label=name)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title=f"{key}: loss")
    error_ax.set(xlabel="epoch", ylabel="error", ylim=(0, 1), title=f"{key}: error (centre crop)")
    for ax in (loss_ax, error_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
