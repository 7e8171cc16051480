"""Figure building blocks (matplotlib, headless). Functions return figures; callers save them."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
