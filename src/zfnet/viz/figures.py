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
