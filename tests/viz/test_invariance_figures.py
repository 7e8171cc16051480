"""Fig. 5's per-class figure: a legend where it can be read, none where it would cover the panels."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from zfnet.viz.invariance import ClassCurve, class_curves_figure  # noqa: E402


def curves(count: int) -> list[ClassCurve]:
    flat = {key: np.linspace(0, 1, 5) for key in ("layer1", "layer7", "p_true")}
    return [ClassCurve(f"class{i}", "all classes", 1, flat, {k: np.zeros(5) for k in flat}) for i in range(count)]


@pytest.mark.parametrize("classes, legend", [(3, True), (12, True), (40, False)])
def test_the_legend_is_drawn_only_for_few_classes(classes, legend):
    fig = class_curves_figure(curves(classes), np.arange(5.0), "rotation", "title")
    ax = fig.axes[2]
    assert (ax.get_legend() is not None) == legend
    assert len(ax.lines) == classes                      # every class is still drawn
    if not legend:
        assert any(f"{classes} classes" in t.get_text() for t in ax.texts)
