"""Occlusion figures: the paper's Fig. 7 panels for some images, and the measures over the whole set.

    for stem, fig in stage_figures(result, classes, "zfnet"): ...   # Fig. 7 per class, then the measures
    fig = occlusion_figure(rows, patch=16, stride=8, classes=names, title="zfnet")   # one row per image
    fig = measures_figure({"zfnet": metrics, "alexnet": metrics}, title="...")

Each row has the paper's five panels: (a) the image with the occluder's positions (dots at the
centres, the square drawn where p(true) drops most); (b) the total activation of the layer-5 map
that is strongest on the unoccluded image, against the occluder's position; (c) that map's strongest
activation in this image projected by the deconvnet (the first tile, outlined), beside its top
activations in other validation images; (d) p(true class); (e) the most probable class, with a
legend. Maps are drawn over the image's pixel extent, each cell centred on its occluder's centre.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from zfnet.experiments.occlusion import OcclusionResult, OcclusionRow
from zfnet.viz.figures import plt

# OcclusionRow lives with the result it belongs to; it stays importable from here too
__all__ = ["OcclusionRow", "measures_figure", "occlusion_figure", "stage_figures"]


def _extent(side: int, patch: int, stride: int) -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) centring cell [i, j] on its occluder's centre."""
    first = patch / 2 - stride / 2
    last = patch / 2 + (side - 1) * stride + stride / 2
    return first, last, last, first


def stage_figures(result: OcclusionResult, classes: Sequence[str], name: str) -> Iterator[tuple[str, plt.Figure]]:
    """(file stem, figure), one at a time: `fig7_<class>` for each class `result` has figure rows of, then
    `measures` when the pointing game was measured (the images had annotations)."""
    patch, stride = result.metrics["patch"], result.metrics["stride"]
    for class_index, rows in result.rows.items():
        title = (f"{name}: occlusion sensitivity (Fig. 7), {patch} px grey square, stride {stride}, "
                 f"class {classes[class_index]}")
        yield f"fig7_{classes[class_index]}", occlusion_figure(rows, patch, stride, classes, title)
    if result.metrics["pointing_game"] is not None:
        title = f"{name}: occlusion measures over {result.metrics['images']} validation images"
        yield "measures", measures_figure({name: result.metrics}, title)


def occlusion_figure(rows: Sequence[OcclusionRow], patch: int, stride: int, classes: Sequence[str],
                     title: str) -> plt.Figure:
    fig, axes = plt.subplots(len(rows), 5, figsize=(16, 3.3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        _draw_row(ax_row, row, patch, stride, classes)
    for ax, name in zip(axes[0], ["(a) input image", "(b) layer-5 map total", "(c) deconvnet projections",
                                  "(d) p(true class)", "(e) most probable class"]):
        ax.set_title(name + "\n" + ax.get_title(), fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _draw_row(axes, row: OcclusionRow, patch: int, stride: int, classes: Sequence[str]) -> None:
    side = row.p_true.shape[0]
    size = row.image.shape[0]
    extent = _extent(side, patch, stride)
    centres = np.arange(side) * stride + patch / 2
    drop = row.base_p_true - row.p_true
    i, j = np.unravel_index(int(np.argmax(drop)), drop.shape)

    a = axes[0]
    a.imshow(row.image)
    yy, xx = np.meshgrid(centres, centres, indexing="ij")
    a.scatter(xx.ravel(), yy.ravel(), s=2, c="white", alpha=0.6)
    a.add_patch(plt.Rectangle((j * stride - 0.5, i * stride - 0.5), patch, patch, fill=False, ec="red", lw=1.5))
    a.set_title(f"{classes[row.label]} (p={row.base_p_true:.2f}); {row.caption}", fontsize=8)

    b = axes[1]
    shown = b.imshow(row.layer5_total, cmap="jet", extent=extent)
    b.set_xlim(0, size), b.set_ylim(size, 0)
    b.set_title(f"map {row.channel}", fontsize=8)
    plt.colorbar(shown, ax=b, fraction=0.046)

    c = axes[2]
    c.imshow(row.projection)
    c.set_title(f"map {row.channel}: this image (outlined), then others", fontsize=8)

    d = axes[3]
    shown = d.imshow(row.p_true, cmap="jet", vmin=0, vmax=1, extent=extent)
    d.set_xlim(0, size), d.set_ylim(size, 0)
    d.set_title(f"min {row.p_true.min():.2f} at the red square", fontsize=8)
    plt.colorbar(shown, ax=d, fraction=0.046)

    e = axes[4]
    present = sorted(set(np.unique(row.top_label).tolist()))
    colours = plt.get_cmap("tab20")
    coloured = np.zeros((*row.top_label.shape, 3))
    for k in present:
        coloured[row.top_label == k] = colours(k % 20)[:3]
    e.imshow(coloured, extent=extent)
    e.set_xlim(0, size), e.set_ylim(size, 0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(k % 20)) for k in present]
    names = [classes[k] + (" (true)" if k == row.label else "") for k in present]
    e.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])


def measures_figure(measures: dict[str, dict], title: str) -> plt.Figure:
    """Per model: pointing-game accuracy (box and mask) beside the centre baseline; mean p(true) drop on the object
    against background only; share of positions whose top label changes."""
    names = list(measures)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    games = [("box", "pointing_game"), ("mask", "pointing_game_mask")]
    for k, (target, key) in enumerate(games):
        results = [measures[n].get(key) or {} for n in names]
        offset = (k - 0.5) * 0.4
        axes[0].bar(x + offset - 0.1, [r.get("accuracy", np.nan) for r in results], 0.2,
                    label=f"largest drop, {target}", color=f"C{2 * k}")
        axes[0].bar(x + offset + 0.1, [r.get("centre_baseline", np.nan) for r in results], 0.2,
                    label=f"centre baseline, {target}", color=f"C{2 * k + 1}")
    axes[0].set_ylim(0, 1.15), axes[0].set_title("pointing game (hit rate)", fontsize=9)
    drops = [measures[n]["p_true_drop"] for n in names]
    axes[1].bar(x - 0.2, [d["object"] for d in drops], 0.4, label="occluder on the object")
    axes[1].bar(x + 0.2, [d["background"] for d in drops], 0.4, label="background only")
    axes[1].set_title("mean drop in p(true)", fontsize=9)
    changes = [measures[n]["top_label_change"]["positions"] for n in names]
    axes[2].bar(x, changes, 0.5)
    axes[2].set_title("share of positions whose top label changes", fontsize=9)
    for ax in axes:
        ax.set_xticks(x, names)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2), axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
