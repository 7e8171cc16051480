"""zfnet.experiments.evolution.run on three tiny random "snapshots" and a handful of random images: no stage,
no files (but find_snapshots, which lists a folder)."""

from __future__ import annotations

import copy
import gc
import weakref
from types import SimpleNamespace

import numpy as np
import pytest

from zfnet.errors import UserError
from zfnet.experiments import evolution
from zfnet.nets.models import get_layer
from zfnet.probes.projections import receptive_window

from probe_inputs import image_set, random_model, rectified

LAYERS = ["conv2", "conv5"]
SETTINGS = SimpleNamespace(layers=LAYERS, batch_size=8, normalize_down=False,
                           evolution=SimpleNamespace(maps=3, split="val"))


@pytest.fixture(scope="module")
def case():
    """Epochs 1, 4, 10: independent random networks (10, the last, passed as a network; the others as
    loaders that make fresh copies, which the result must not keep alive)."""
    final, images = random_model("zfnet", seed=10), image_set(8)
    calls, loaded = [], []

    def loader(epoch, seed):
        def load():
            calls.append(epoch)
            model = copy.deepcopy(random_model("zfnet", seed=seed))
            loaded.append(weakref.ref(model))
            return model
        return load

    snapshots = {4: loader(4, 4), 10: final, 1: loader(1, 1)}
    result = evolution.run(snapshots, images, SETTINGS, seed=0)
    return result, images, calls, loaded


def test_loaders_are_called_once_each_last_epoch_first_and_not_kept(case):
    result, _, calls, loaded = case
    assert calls == [4, 1] and result.epochs == [1, 4, 10]
    gc.collect()
    assert len(loaded) == 2 and all(ref() is None for ref in loaded)  # nothing in the result holds them


def test_metrics_agree_with_weights_and_activations_recomputed_here(case):
    result, images, _, _ = case
    metrics = result.metrics
    assert [metrics[k] for k in ("epochs", "images", "split")] == [[1, 4, 10], 8, "val"]
    final = random_model("zfnet", seed=10)
    inputs = images.inputs(range(len(images)))
    for layer in LAYERS:
        maps = metrics[layer]["maps"]
        assert maps == result.maps[layer] and len(maps) == 3
        assert (rectified(final, inputs, layer).amax(dim=(0, 2, 3))[maps] > 0).all()  # they fire at the last
        for epoch, seed in ((1, 1), (4, 4), (10, 10)):
            weight = get_layer(random_model("zfnet", seed=seed), layer).weight.detach().double().numpy()
            last = get_layer(final, layer).weight.detach().double().numpy()
            distance = np.linalg.norm((weight - last).ravel()) / np.linalg.norm(last.ravel())
            key = f"epoch_{epoch:03d}"
            assert metrics[layer]["distance_to_last"][key] == pytest.approx(distance, rel=1e-9)
            strongest = rectified(random_model("zfnet", seed=seed), inputs, layer).amax(dim=(0, 2, 3))[maps]
            assert metrics[layer]["top1_mean"][key] == pytest.approx(float(strongest.double().mean()), rel=1e-5)
        assert metrics[layer]["distance_to_last"]["epoch_010"] == 0 < metrics[layer]["distance_to_last"]["epoch_001"]
        assert result.distances(layer) == [metrics[layer]["distance_to_last"][f"epoch_{e:03d}"] for e in (1, 4, 10)]


def test_tiles_are_one_row_per_map_one_column_per_epoch(case):
    result, _, _, _ = case
    for layer in LAYERS:
        size = receptive_window(random_model("zfnet", seed=10), layer).size
        rows = result.tiles[layer]
        assert len(rows) == 3 and all(len(row) == 3 for row in rows)
        assert all(tile.shape == (size, size, 3) and 0 <= tile.min() and tile.max() <= 1 for row in rows for tile in row)
        assert not np.array_equal(rows[0][0], rows[0][-1])  # another network, another strongest activation


def test_find_snapshots_orders_epochs_numerically_and_refuses_an_empty_folder(tmp_path):
    for name in ("epoch_010.ckpt", "epoch_2.ckpt", "best.ckpt", "last.ckpt", "epoch_003.ckpt.tmp", "epoch_x.ckpt"):
        (tmp_path / name).touch()
    assert evolution.find_snapshots(tmp_path) == {2: tmp_path / "epoch_2.ckpt", 10: tmp_path / "epoch_010.ckpt"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=f"{empty}: no epoch_NNN.ckpt snapshots"):
        evolution.find_snapshots(empty)
