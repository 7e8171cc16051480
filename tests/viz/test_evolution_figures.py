"""Fig. 4 and the convergence plot, drawn from an EvolutionResult built by hand (no network)."""

import numpy as np
import pytest

from zfnet.experiments.evolution import EvolutionResult
from zfnet.viz.evolution import convergence_figure, layer_figure
from zfnet.viz.figures import plt

EPOCHS = [1, 2, 5]


def result() -> EvolutionResult:
    metrics = {"epochs": EPOCHS, "images": 30, "split": "train"}
    for layer, scale in (("conv1", 1.0), ("conv3", 2.0)):
        metrics[layer] = {"maps": [4, 7], "top1_mean": {},
                          "distance_to_last": {"epoch_005": 0.0, "epoch_002": 0.3 * scale, "epoch_001": 0.5 * scale}}
    tiles = [[np.full((6, 6, 3), (r * 3 + c) / 6) for c in range(3)] for r in range(2)]
    return EvolutionResult(EPOCHS, ["conv1", "conv3"], {"conv1": [4, 7], "conv3": [4, 7]},
                           {"conv1": tiles, "conv3": tiles}, metrics)


def test_one_row_per_map_one_column_per_epoch():
    fig = layer_figure(result(), "conv1", "alexnet")
    assert len(fig.axes) == 2 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == ["epoch 1", "epoch 2", "epoch 5"]
    assert [fig.axes[i].get_ylabel() for i in (0, 3)] == ["map 4", "map 7"]
    assert np.isclose(fig.axes[5].get_images()[0].get_array()[0, 0, 0], 5 / 6)  # map 7 at epoch 5
    assert "over 30 train images" in fig._suptitle.get_text()
    plt.close(fig)


def test_convergence_draws_each_layers_distance_in_epoch_order():
    fig = convergence_figure(result(), "zfnet")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["conv1", "conv3"]
    assert list(lines[1].get_xdata()) == EPOCHS
    assert list(lines[1].get_ydata()) == pytest.approx([1.0, 0.6, 0.0])
    plt.close(fig)
