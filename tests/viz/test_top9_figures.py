"""Fig. 2's panel, drawn from a Top9Result built by hand (no network): the blocks of each shown map side by side."""

import numpy as np
import torch

from zfnet.experiments.top9 import Top9Result
from zfnet.probes.top9 import TopK
from zfnet.viz.figures import plt
from zfnet.viz.top9 import layer_figure


def result(maps: int, k: int, size: int) -> Top9Result:
    values = torch.linspace(1, 0, k).repeat(8, 1)
    top = TopK(values, torch.zeros(8, k, dtype=torch.long), torch.zeros(8, k, dtype=torch.long),
               torch.zeros(8, k, dtype=torch.long))
    projections = [[np.full((size, size, 3), 0.25) for _ in range(k)] for _ in range(maps)]
    patches = [[np.full((size, size, 3), 0.75) for _ in range(k)] for _ in range(maps)]
    return Top9Result({"conv2": top}, list(range(40, 53)), {"conv2": list(range(maps))}, {"conv2": projections},
                      {"conv2": patches}, {}, 1.0)


def test_the_panel_shows_projections_beside_patches_in_square_blocks():
    fig = layer_figure(result(maps=4, k=9, size=5), "conv2", "zfnet")
    left, right = (ax.get_images()[0].get_array() for ax in fig.axes)
    # 4 maps -> 2x2 blocks; 9 tiles of 5 px -> a 3x3 grid of 3*6+1 = 19 px; gaps between blocks max(2, 19//12) = 2
    assert left.shape == right.shape == (2 * (19 + 2) + 2, 2 * (19 + 2) + 2, 3)
    assert np.isclose(left[3, 3, 0], 0.25) and np.isclose(right[3, 3, 0], 0.75)  # inside the first tile
    assert fig._suptitle.get_text() == "zfnet conv2: top 9 activations of 4 random maps over 13 validation images"
    plt.close(fig)
