"""Invariance figures (paper Fig. 5): example images under each transform, and class-averaged curves.

    fig = fig5_figure([Fig5Row(...), ...], example_names, title)     # a row per transform, 4 columns
    fig = class_curves_figure(panel_rows, values, families, kind, title)
    figs = figures(result, "zfnet")    # {"fig5", "classes_<transform>", "rerendered"}: those the result has

Fig. 5 keeps the paper's four columns per transform: (1) the example images (rows) at a few steps
(columns) as the network sees them (the centre crop, after the transform); (2) the raw Euclidean
distance between the layer-1 vectors of the transformed and the original image; (3) the same at
layer 7; (4) p(true class). One line per example image. The class figure shows, per class family
(columns), the distance divided by the original vector's norm at layer 1 and layer 7 and p(true)
(rows), one line per class: the mean over its images, with a band of +-1 standard deviation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zfnet.experiments.invariance import ClassCurve, Fig5Row, InvarianceResult
from zfnet.probes.invariance import KINDS
from zfnet.viz.figures import plt

__all__ = ["ClassCurve", "Fig5Row", "class_curves_figure", "fig5_figure", "figures"]

AXIS_LABEL = {"translation": "vertical shift (px of the prepared image, + = down)",
              "scale": "scale (zoom about the centre)",
              "rotation": "rotation (degrees, counter-clockwise)"}


def fig5_figure(rows: Sequence[Fig5Row], names: Sequence[str], title: str) -> plt.Figure:
    fig, axes = plt.subplots(len(rows), 4, figsize=(19, 4.2 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.25, 1, 1, 1]})
    colours = plt.cm.tab10(np.arange(len(names)) % 10)
    for ax_row, row in zip(axes, rows):
        _views(ax_row[0], row, names, colours)
        for ax, values, label in zip(ax_row[1:], (row.layer1, row.layer7, row.p_true),
                                     ("layer 1: distance to original", "layer 7: distance to original",
                                      "p(true class)")):
            for n, name in enumerate(names):
                ax.plot(row.values, values[n], "-o", ms=3, color=colours[n], label=name)
            ax.set_xlabel(AXIS_LABEL[row.kind], fontsize=8)
            ax.set_title(f"{row.kind}: {label}", fontsize=9)
            ax.grid(alpha=0.3)
        ax_row[3].set_ylim(-0.03, 1.03)
        ax_row[3].legend(fontsize=7, loc="best", framealpha=0.6)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _views(ax, row: Fig5Row, names: Sequence[str], colours) -> None:
    """The example images (rows) at the shown steps (columns), with a coloured bar naming each row."""
    images, shown, height, width, _ = row.views.shape
    pad = 2
    canvas = np.ones((images * (height + pad), shown * (width + pad) + 6, 3))
    for i in range(images):
        y = i * (height + pad)
        canvas[y:y + height, :4] = colours[i][:3]
        for j in range(shown):
            x = 6 + j * (width + pad)
            canvas[y:y + height, x:x + width] = row.views[i, j]
    ax.imshow(canvas)
    ax.set_xticks([6 + j * (width + pad) + width / 2 for j in range(shown)])
    ax.set_xticklabels([f"{v:g}" for v in row.shown], fontsize=7)
    ax.set_yticks([i * (height + pad) + height / 2 for i in range(images)])
    ax.set_yticklabels(names, fontsize=7)
    for label, colour in zip(ax.get_yticklabels(), colours):
        label.set_color(colour)
    ax.set_title(f"{row.kind}: the images (the network's view)", fontsize=9)


LEGEND_CLASSES = 12   # more curves than this in one panel get no legend

MEASURES = (("layer1", "layer 1: distance / original norm"), ("layer7", "layer 7: distance / original norm"),
            ("p_true", "p(true class)"))


def class_curves_figure(curves: Sequence[ClassCurve], values: np.ndarray, kind: str, title: str,
                        marks: dict[str, Sequence[float]] | None = None) -> plt.Figure:
    """Rows: the three measures; columns: the class families; a line and band per class. `marks`
    {class: angles} draws dotted lines (e.g. a class's symmetry angles) in its colour on the p(true) row."""
    families = sorted({c.family for c in curves})
    fig, axes = plt.subplots(3, len(families), figsize=(5.2 * len(families), 10), squeeze=False, sharex=True)
    top = max([float(c.mean[key].max() + c.std[key].max()) for c in curves for key in ("layer1", "layer7")] + [1e-9])
    for column, family in enumerate(families):
        members = [c for c in curves if c.family == family]
        colours = plt.cm.tab10(np.arange(len(members)) % 10)
        for (key, label), ax in zip(MEASURES, axes[:, column]):
            for curve, colour in zip(members, colours):
                mean, std = curve.mean[key], curve.std[key]
                ax.plot(values, mean, color=colour, lw=1.5, label=f"{curve.name} ({curve.images})")
                ax.fill_between(values, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
                for angle in (marks or {}).get(curve.name, ()) if key == "p_true" else ():
                    ax.axvline(angle, color=colour, ls=":", lw=1)
            ax.set_ylim(-0.03, 1.03) if key == "p_true" else ax.set_ylim(0, top * 1.05)
            ax.set_title(f"{family}: {label}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[2, column].set_xlabel(AXIS_LABEL[kind], fontsize=8)
        if len(members) <= LEGEND_CLASSES:
            axes[2, column].legend(fontsize=7, loc="best", framealpha=0.6)
        else:  # ImageNet's 1000 classes: a legend would cover the panels; the evidence file names every curve
            axes[2, column].text(0.99, 0.97, f"{len(members)} classes (legend omitted)", transform=axes[2, column].transAxes,
                                 ha="right", va="top", fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def figures(result: InvarianceResult, name: str) -> dict[str, plt.Figure]:
    """The figures of one `zfnet.experiments.invariance.run` on the network `name`, by file stem: `fig5` (when it
    has examples), `classes_<transform>` (the class curves; the rotation one marks the symmetry angles) and
    `rerendered` (when the scenes were re-rendered)."""
    result_figures = {}
    if result.fig5:
        result_figures["fig5"] = fig5_figure(result.fig5, result.fig5_names, f"{name}: invariance (Fig. 5), layer 1 = "
                                             f"{result.metrics['layer1']}, layer 7 = {result.metrics['layer7']}")
    for kind in KINDS:
        result_figures[f"classes_{kind}"] = class_curves_figure(
            result.class_curves[kind], result.values[kind].numpy(), kind,
            f"{name}: {kind}, mean +- std over each class's images ({len(result.indices)} validation images measured)",
            result.marks if kind == "rotation" else None)
    if result.rerendered:
        result_figures["rerendered"] = fig5_figure(result.rerendered, result.rerendered_names, f"{name}: invariance, "
                                                   "the scene re-rendered with only the object moved (no distractors; "
                                                   "beyond the paper)")
    return result_figures
