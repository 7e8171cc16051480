"""Tables 2 and 3 and a training run as figures: one bar per number, one panel per side."""

import matplotlib.pyplot as plt
import pytest
import torch

from zfnet import paper
from zfnet.studies.tables import table2, table3
from zfnet.viz.tables import table2_figure, table3_figure
from zfnet.viz.training import run_figures


def bar_widths(ax) -> list[float]:
    return [bar.get_width() for bar in ax.patches]


def test_table2_shows_the_paper_s_and_our_errors_side_by_side():
    rows = table2({"zf": (0.25, 0.05)}, {"zf": ["zfnet"]})
    fig = table2_figure(rows)
    paper_ax, ours_ax = fig.axes[:2]
    assert [t.get_text() for t in paper_ax.get_yticklabels()] == [row["label"] for row in rows]
    zf = [row["entry"] for row in rows].index("zf")
    assert bar_widths(ours_ax)[zf] == 5.0 and bar_widths(ours_ax)[len(rows) + zf] == 25.0   # top-5 bars, then top-1
    printed = paper.numbers("table2_imagenet")["rows"]["zf"]
    assert bar_widths(paper_ax)[len(rows) + zf] == printed["val_top1"]
    plt.close(fig)


def test_table3_has_a_panel_for_the_paper_ours_and_the_change_from_the_base_model():
    rows = table3({})
    fig = table3_figure(rows)
    assert len(fig.axes) == 3 and len(fig.axes[2].patches) == 2 * len(rows)
    plt.close(fig)


def test_a_run_s_figures_are_its_curves_and_its_conv1_filters():
    history = [{"epoch": e, "train/loss": 2.0 / e, "val/loss": 2.1 / e, "train/top1_error": 0.9 / e,
                "val/top1_error": 0.8 / e, "val/top5_error": 0.3 / e} for e in (1, 2, 3)]
    figures = run_figures(history, torch.randn(6, 3, 5, 5), "zfnet")
    assert list(figures) == ["curves", "conv1_filters"]
    loss_ax, error_ax = figures["curves"].axes
    assert [list(line.get_ydata()) for line in loss_ax.lines] == [pytest.approx([2.0, 1.0, 2 / 3]),
                                                                   pytest.approx([2.1, 1.05, 0.7])]
    assert len(error_ax.lines) == 3 and figures["conv1_filters"].axes[0].get_title() == "zfnet conv1 filters"
    for figure in figures.values():
        plt.close(figure)
