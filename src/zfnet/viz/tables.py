"""Figures of Tables 2 and 3 (matplotlib, Agg; the caller saves them): ours beside the paper's, per row."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

OURS, PAPER = "tab:blue", "tab:gray"


def _bars(ax, labels: list[str], series: dict[str, list[float | None]], colors: list[str], title: str) -> None:
    """Horizontal grouped bars, one group per label (top to bottom); a missing value leaves a gap."""
    y = np.arange(len(labels))
    height = 0.8 / len(series)
    for i, ((name, values), color) in enumerate(zip(series.items(), colors)):
        shown = [np.nan if v is None else v for v in values]
        ax.barh(y + (i - (len(series) - 1) / 2) * height, shown, height, label=name, color=color)
    ax.set_yticks(y, labels)
    if not ax.yaxis_inverted():  # axes sharing y share the inversion: flip it once
        ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def table3_figure(rows: list[dict[str, Any]]):
    """Train and val top-1 error per row, the paper's and ours, and each row's change from its base model."""
    labels = [row["label"] for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.45 * len(rows) + 1.8), sharey=True)
    for ax, side, color in ((axes[0], "paper", PAPER), (axes[1], "ours", OURS)):
        _bars(ax, labels, {"train top-1": [r[side]["train_top1"] for r in rows],
                           "val top-1": [r[side]["val_top1"] for r in rows]},
              ["#bbbbbb" if side == "paper" else "#9ecae1", color],
              f"{'Paper (ImageNet)' if side == 'paper' else 'Ours'}: error %")
    _bars(axes[2], labels, {"paper": [r["paper"]["delta_val_top1"] for r in rows],
                            "ours": [r["ours"]["delta_val_top1"] for r in rows]},
          [PAPER, OURS], "val top-1 error minus its base model's (points)")
    axes[2].axvline(0, color="black", linewidth=0.8)
    fig.suptitle("Table 3: architecture changes, each retrained from scratch", fontsize=11)
    fig.tight_layout()
    return fig


def table2_figure(rows: list[dict[str, Any]]):
    """Val top-1 and top-5 error of each single model and ensemble: the paper's, and ours on its own scale."""
    labels = [row["label"] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(rows) + 1.8), sharey=True)
    for ax, side, colors in ((axes[0], "paper", ["#bbbbbb", PAPER]), (axes[1], "ours", ["#9ecae1", OURS])):
        _bars(ax, labels, {"val top-5": [r[side]["val_top5"] for r in rows],
                           "val top-1": [r[side]["val_top1"] for r in rows]},
              colors, f"{'Paper (ImageNet)' if side == 'paper' else 'Ours'}: error %")
    fig.suptitle("Table 2: single models and ensembles (softmax averaged over independently seeded models)",
                 fontsize=11)
    fig.tight_layout()
    return fig
