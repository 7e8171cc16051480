"""Deconvnet projections cut to receptive fields (zfnet.probes.projections): windows, cuts, tiles, map choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zfnet.probes.deconv import Deconvnet
from zfnet.probes.projections import (
    choose_maps,
    cut,
    patch_tile,
    project_top,
    projection_tile,
    receptive_window,
    responsive_maps,
    signed_stretch,
)
from zfnet.probes.top9 import receptive_field, top_activations

from probe_inputs import CROP, image_set, random_model


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv5"])
def test_receptive_window_matches_receptive_field(name, layer):
    model = random_model(name)
    window = receptive_window(model, layer)
    for y, x in [(0, 0), (1, 2), (3, 0)]:
        y0, x0 = window.origin(y, x)
        clipped = receptive_field(model, layer, y, x, input_size=CROP)
        assert clipped == (max(y0, 0), min(y0 + window.size, CROP), max(x0, 0), min(x0 + window.size, CROP))


def test_cut_places_the_visible_part_and_fills_the_rest():
    image = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(2, 6, 6)
    tile = cut(image, -2, 3, 5, fill=-1.0)
    assert tile.shape == (2, 5, 5)
    np.testing.assert_array_equal(tile[:, 2:, :3], image[:, :3, 3:].numpy())
    assert (tile[:, :2] == -1).all() and (tile[:, :, 3:] == -1).all()
    np.testing.assert_array_equal(cut(image, 1, 1, 3), image[:, 1:4, 1:4].numpy())
    assert (cut(image, 10, 10, 3, fill=7.0) == 7).all()  # entirely outside


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_project_top_projects_each_activation_on_its_own_image(name):
    model = random_model(name)
    images = image_set()
    top = top_activations(model, images.batches(5), ["conv2"], k=3)["conv2"]
    maps = [0, 4, 7]
    projections = project_top(Deconvnet(model), images, "conv2", top, maps, batch_size=4)
    assert projections.shape == (3, 3, 3, CROP, CROP)
    for m, channel in enumerate(maps):
        for rank in range(3):
            i, y, x = (int(f[channel, rank]) for f in (top.image_index, top.y, top.x))
            alone = Deconvnet(model).project(images.inputs([i]), "conv2", channel, (y, x))[0]
            torch.testing.assert_close(projections[m, rank], alone)
            # the projection lives inside the activation's receptive field
            y0, y1, x0, x1 = receptive_field(model, "conv2", y, x, input_size=CROP)
            outside = projections[m, rank].abs().clone()
            outside[:, y0:y1, x0:x1] = 0
            assert outside.max() == 0 and projections[m, rank].abs().max() > 0


def test_tiles_are_the_receptive_field_in_unit_range():
    model = random_model("zfnet")
    window = receptive_window(model, "conv2")
    projection = torch.randn(3, CROP, CROP)
    tile = projection_tile(projection, window, 0, 0)
    assert tile.shape == (window.size, window.size, 3) and 0 <= tile.min() and tile.max() <= 1
    assert np.isclose(np.abs(tile - 0.5).max(), 0.5)  # the extremes reach black or white
    assert (tile[0] == 0.5).all()  # the row above the image (start -1) is blank grey
    image = torch.randint(0, 256, (3, CROP, CROP), dtype=torch.uint8)
    patch = patch_tile(image, window, 2, 3)
    y0, x0 = window.origin(2, 3)
    np.testing.assert_allclose(patch[0, 0], image[:, y0, x0].numpy() / 255.0)


def test_signed_stretch_keeps_zero_at_grey():
    out = signed_stretch(torch.tensor([-1.0, 0.0, 3.0]), quantile=1.0)
    np.testing.assert_allclose(out, [0.5 - 1 / 6, 0.5, 1.0], rtol=1e-6)
    assert (signed_stretch(np.zeros(4)) == 0.5).all()
    # one outlier clips instead of greying out everything else
    values = np.concatenate([np.linspace(-1, 1, 999), [1000.0]])
    out = signed_stretch(values)
    assert out[-1] == 1.0 and out[0] < 0.02 and (0 <= out).all() and (out <= 1).all()


def test_choose_maps_draws_among_responsive_ones():
    model = random_model("zfnet")
    top = top_activations(model, image_set().batches(6), ["conv3"], k=2)["conv3"]
    fire = responsive_maps(top)
    assert all(top.values[c, 0] > 0 for c in fire)
    chosen = choose_maps(fire, 5, seed=0, layer="conv3")
    assert len(chosen) == 5 and set(chosen) <= set(fire) and chosen == sorted(chosen)
    assert chosen == choose_maps(fire, 5, seed=0, layer="conv3") != choose_maps(fire, 5, seed=0, layer="conv4")
    assert choose_maps([3, 1], 5, seed=0, layer="conv3") == [1, 3]

