"""zfnet.experiments.top9.run on a tiny random network and a dozen random images: no stage, no files."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zfnet.errors import UserError
from zfnet.experiments import top9
from zfnet.probes.projections import receptive_window

from probe_inputs import image_set, random_model, rectified

LAYERS = ["conv2", "conv5"]
SPLIT_INDICES = [11, 3, 7, 0, 5, 9, 2, 10, 1]  # the images' places in their "split": not 0..n-1
K = 9  # the paper's k, as many as the images: some shown map fires on fewer, leaving blanks


def settings(maps: int = 3, k: int = K, layers=LAYERS):
    return SimpleNamespace(layers=layers, batch_size=16, normalize_down=False, top9=SimpleNamespace(k=k, maps=maps))


@pytest.fixture(scope="module")
def case():
    model, images = random_model("zfnet"), image_set(12, indices=SPLIT_INDICES)
    return model, images, top9.run(model, images, settings(), seed=0)


def test_metrics_agree_with_activations_recomputed_by_a_hook(case):
    """Per map, its maximum over every image and position, read off a forward hook: the metrics' silent
    share, top-1 and top-k means follow from them by hand."""
    model, images, result = case
    assert list(result.metrics) == ["images", *LAYERS] and result.metrics["images"] == len(SPLIT_INDICES)
    for layer in LAYERS:
        per_image = rectified(model, images.inputs(range(len(images))), layer).amax(dim=(2, 3)).double()  # (N, C)
        strongest = per_image.max(dim=0).values
        topk = per_image.topk(K, dim=0).values
        expected = {"maps": per_image.shape[1], "silent_share": float((strongest <= 0).double().mean()),
                    "top1_mean": float(strongest.mean()), "topk_mean": float(topk.mean())}
        assert result.metrics[layer] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["conv5"]["silent_share"] > 0  # the case has maps that never fire


def test_shown_maps_fire_and_their_tiles_are_the_receptive_field(case):
    model, _, result = case
    blanks = 0
    for layer in LAYERS:
        maps, top = result.maps[layer], result.top[layer]
        assert len(maps) == 3 and maps == sorted(set(maps)) and all(top.values[c, 0] > 0 for c in maps)
        size = receptive_window(model, layer).size
        for tiles in (result.projections[layer], result.patches[layer]):
            assert len(tiles) == 3 and all(len(block) == K for block in tiles)
            for m, channel in enumerate(maps):
                for rank, tile in enumerate(tiles[m]):
                    assert tile.shape == (size, size, 3) and 0 <= tile.min() and tile.max() <= 1
                    # white exactly where the map fires on fewer than k images
                    assert (tile == 1).all() == bool(top.values[channel, rank] <= 0)
                    blanks += bool(top.values[channel, rank] <= 0)
    assert blanks > 0, "the case needs a shown map that fires on fewer than k images"
    other = top9.run(model, image_set(12, indices=SPLIT_INDICES), settings(layers=["conv5"]), seed=1)
    assert other.metrics["conv5"] == result.metrics["conv5"]  # the seed draws the maps shown, nothing else
    assert other.maps["conv5"] != result.maps["conv5"]


def test_saved_and_table_name_split_indices(case):
    _, _, result = case
    saved = result.saved()
    assert list(saved) == LAYERS
    for layer, fields in saved.items():
        top = result.top[layer]
        expected = torch.tensor([[SPLIT_INDICES[i] for i in row] for row in top.image_index.tolist()])
        assert torch.equal(fields["image_index"], expected)
        assert torch.equal(fields["values"], top.values) and torch.equal(fields["y"], top.y)
    rows = result.table_rows()
    fired = sum(int((result.top[layer].values[result.maps[layer]] > 0).sum()) for layer in LAYERS)
    assert len(rows) == fired and [r[0] for r in rows] == sorted(r[0] for r in rows)
    layer, channel, rank, value, image, projection, patch = rows[0]
    top = result.top[layer]
    assert value == float(top.values[channel, rank - 1]) > 0
    assert image == SPLIT_INDICES[int(top.image_index[channel, rank - 1])]
    assert projection.dtype == patch.dtype == np.uint8 and projection.shape == patch.shape


def test_a_layer_that_is_not_a_conv_layer_is_refused():
    with pytest.raises(UserError, match="visualize.layers: fc6"):
        top9.run(random_model("zfnet"), image_set(2), settings(layers=["conv1", "fc6"]), seed=0)
