"""Correspondence figures (paper Table 1 and Fig. 8): our Delta beside the paper's, and the masked examples.

    fig = table1_figure(result, "zfnet")          # result: zfnet.experiments.correspondence.run's
    fig = fig8_figure(result, "zfnet")
    fig = table_figure(table, paper, layers, title)   # table[group][occlusion][layer] = {"mean", "std", ...}
    fig = examples_figure(rows, boxes, columns, row_names, title)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from zfnet.experiments.correspondence import PAPER, CorrespondenceResult
from zfnet.viz.figures import plt

VARIANTS = (("", "sign(0) = 0 its own value (as compared with the paper)"),
            ("_ignore_zeros", "coordinates where both e_i and e_j are 0 left out"))


def table1_figure(result: CorrespondenceResult, name: str) -> plt.Figure:
    """Table 1 of `result` (the network `name`'s): each class and the average beside the paper's values."""
    metrics = result.metrics
    layers = {"layer5": f"layer 5 ({result.layers['layer5']})", "layer7": "layer 7 (relu7)"}
    title = (f"{name}: Table 1, Delta over {metrics['draws']} draws of {metrics['images_per_draw']} frontal "
             "images per class (bars: ours, mean ± std)")
    labels = {c: f"{c} ({r['images']} images)" for c, r in metrics["classes"].items()}
    return table_figure(result.groups, PAPER, layers, title, labels)


def fig8_figure(result: CorrespondenceResult, name: str) -> plt.Figure:
    """Fig. 8 of `result` (the network `name`'s): the first images of each class and their occluded copies."""
    return examples_figure(*result.examples, f"{name}: Fig. 8, the occluded images (red: occluder)")


def table_figure(table: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
                 paper: Mapping[str, Mapping[str, tuple[float, float]]], layers: Mapping[str, str],
                 title: str, labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Bars of Delta (mean +- std over the draws) per occlusion, one bar per group (face class, then the
    "average"), in a panel per layer (columns) and zero convention (rows); the paper's values as black
    diamonds with their error bars; below, the "average" numbers beside the paper's as a table.
    `layers` maps the table's layer keys to panel titles, `labels` the groups to legend entries."""
    groups = list(table)
    labels = labels or {}
    occlusions = list(next(iter(table.values())))
    x = np.arange(len(occlusions))
    width = 0.8 / (len(groups) + 1)  # one slot per group, one for the paper
    fig = plt.figure(figsize=(4.8 * len(layers), 3.4 * len(VARIANTS) + 0.35 * len(occlusions) + 0.8))
    grid = fig.add_gridspec(len(VARIANTS) + 1, len(layers),
                            height_ratios=[3.4] * len(VARIANTS) + [0.35 * len(occlusions) + 0.5])
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(len(layers))] for r in range(len(VARIANTS))])
    for row, (suffix, caption) in enumerate(VARIANTS):
        for col, (layer, name) in enumerate(layers.items()):
            ax = axes[row, col]
            for g, group in enumerate(groups):
                means = [table[group][o][layer][f"mean{suffix}"] for o in occlusions]
                stds = [table[group][o][layer][f"std{suffix}"] for o in occlusions]
                average = group == "average"
                ax.bar(x + (g - len(groups) / 2) * width, means, width, yerr=stds, capsize=2,
                       color="0.35" if average else f"C{g}", label=labels.get(group, group), error_kw={"linewidth": 0.8})
            known = [i for i, o in enumerate(occlusions) if o in paper]
            if known:
                ax.errorbar(x[known] + (len(groups) / 2) * width,
                            [paper[occlusions[i]][layer][0] for i in known],
                            yerr=[paper[occlusions[i]][layer][1] for i in known], fmt="D", color="black",
                            markersize=5, capsize=2, linewidth=0.8, label="paper (Table 1)")
            ax.set_xticks(x, [o.replace("_", " ") for o in occlusions])
            ax.set_title(f"{name}\n{caption}", fontsize=8.5)
            ax.set_ylabel("Delta: share of signs that differ", fontsize=8)
            ax.set_ylim(bottom=0)
            ax.grid(axis="y", linewidth=0.4, alpha=0.6)
            if row == 0 and col == len(layers) - 1:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if "average" in table:
        numbers_table(fig.add_subplot(grid[len(VARIANTS), :]), table["average"], paper, layers)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def numbers_table(ax, average: Mapping[str, Mapping[str, Mapping[str, float]]],
                  paper: Mapping[str, Mapping[str, tuple[float, float]]], layers: Mapping[str, str]) -> None:
    """Table 1 as text: per occlusion and layer, our average (both zero conventions) and the paper's value."""
    pm = lambda mean, std: f"{mean:.3f} ± {std:.3f}"  # noqa: E731
    columns, rows = [], []
    for layer, name in layers.items():
        columns += [f"{name}: ours", "ours, zeros left out", "paper"]
    for o, row in average.items():
        cells = []
        for layer in layers:
            s = row[layer]
            cells += [pm(s["mean"], s["std"]), pm(s["mean_ignore_zeros"], s["std_ignore_zeros"]),
                      pm(*paper[o][layer]) if o in paper else "-"]
        rows.append(cells)
    ax.axis("off")
    cells = ax.table(cellText=rows, rowLabels=[o.replace("_", " ") for o in average], colLabels=columns,
                     loc="center", cellLoc="center")
    cells.auto_set_font_size(False)
    cells.set_fontsize(8)
    cells.scale(1, 1.3)
    ax.set_title("Table 1, average over the classes (mean ± std over the draws)", fontsize=9)


def examples_figure(rows: Sequence[Sequence[np.ndarray]], boxes: Sequence[Sequence[tuple[int, int, int, int] | None]],
                    columns: Sequence[str], row_names: Sequence[str], title: str, cell: float = 1.6) -> plt.Figure:
    """Fig. 8: one row per image, one column per view (HWC uint8), each occluder outlined in red."""
    nrows, ncols = len(rows), len(columns)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell, nrows * cell + 0.5), squeeze=False)
    for r, (images, row_boxes) in enumerate(zip(rows, boxes)):
        for c, (image, box) in enumerate(zip(images, row_boxes)):
            ax = axes[r, c]
            ax.imshow(image, interpolation="nearest")
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="red",
                                           linewidth=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c].replace("_", " "), fontsize=8)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=6.5)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
