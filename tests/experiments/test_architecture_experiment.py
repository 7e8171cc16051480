"""zfnet.experiments.architecture.run called directly on two tiny networks with planted conv1 banks (no stage).

Width 0.25 gives 24 conv1 filters. ZF: filters 0-11 are Gabors at 0.25 cycles/px (the mid third of Nyquist) at the
0.1 RMS radius, the rest stay at their N(0, 0.01^2) init. AlexNet: filters 0-2 are 0.04 and 3-5 are 0.42 cycles/px
Gabors at the radius, the rest at init. Init noise passes each spectral dead-filter test with probability 0.99, so
at most a couple of noise filters may count as live; everything else is fixed by construction.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zfnet.errors import UserError
from zfnet.experiments.architecture import alias_window, centred_cut, run
from zfnet.nets.models import build_model, get_layer
from zfnet.probes.projections import Window

SIZE, CROP, IMAGES, SHIFT_IMAGES, MAPS = 72, 64, 8, 6, 4
PLANTED = {"zfnet": {i: 0.25 for i in range(12)}, "alexnet": {i: (0.04 if i < 3 else 0.42) for i in range(6)}}


def settings(**changes):
    values = dict(no_renorm_checkpoint=None, dead_rms_position=0.5, dead_noise_quantile=0.01, noise_samples=300,
                  spectrum_size=32, shift_layer="conv2", shifts=[1, 2, 3], shift_images=SHIFT_IMAGES,
                  conv2_maps=MAPS, alias_period=4, alias_window=None)
    return SimpleNamespace(**{**values, **changes})


def gabor(size: int, frequency: float, theta: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = r[:, None], r[None, :]
    plane = torch.exp(-(x**2 + y**2) / (2 * (size / 4) ** 2)) * torch.cos(
        2 * math.pi * frequency * (x * math.cos(theta) + y * math.sin(theta)))
    bank = torch.stack([plane, 0.6 * plane, -0.8 * plane])
    return bank / bank.pow(2).mean().sqrt() * 0.1  # at the RMS radius: a learned filter


def planted_model(name: str, seed: int):
    torch.manual_seed(seed)
    model = build_model(name, 3, input_size=CROP, width=0.25, init="fan_in").eval()
    with torch.no_grad():
        weight = get_layer(model, "conv1").weight
        for i, frequency in PLANTED[name].items():
            weight[i] = gabor(weight.shape[-1], frequency, theta=0.4 * i)
    hparams = {"arch": {"name": name, **model.options}, "num_classes": 3, "crop": CROP, "renorm_radius": 0.1,
               "input_scale": 0.02, "mean": torch.full((3, SIZE, SIZE), 110.0)}
    return model, hparams


def draw_images(count: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    images = np.repeat(rng.integers(40, 200, (count, 3, 1, 1)), SIZE, 2).repeat(SIZE, 3).astype(np.uint8)
    for image in images:
        y, x = rng.integers(0, SIZE - 24, 2)
        image[rng.integers(3), y:y + 24, x:x + 24] = 255  # a bright square
    return torch.from_numpy(images)


@pytest.fixture(scope="module")
def inputs():
    models = {name: planted_model(name, seed) for seed, name in enumerate(("zfnet", "alexnet"))}
    images = [(image, 0) for image in draw_images(IMAGES, seed=1)]
    return models, images, draw_images(SHIFT_IMAGES, seed=2)


@pytest.fixture(scope="module")
def result(inputs):
    models, images, shift_images = inputs
    return run(models, images, shift_images, settings(), seed=0, batch_size=5, normalize_down=False)


def test_every_model_is_measured_in_order_with_its_planted_bank(inputs, result):
    models = inputs[0]
    assert list(result.measures) == list(result.samples) == list(result.filters) == ["zfnet", "alexnet"]
    zfnet, alexnet = result.measures["zfnet"], result.measures["alexnet"]
    assert zfnet["conv1_stride"] == 2 and alexnet["conv1_stride"] == 4
    for name, measures in result.measures.items():
        planted = len(PLANTED[name])
        assert measures["conv1_filters"] == 24
        assert planted <= measures["conv1_live_filters"] <= planted + 2
        assert measures["conv1_dead"]["radius"] == 0.1 and measures["conv1_dead"]["init_rms"] == 0.01
        weight = get_layer(models[name][0], "conv1").weight.detach().double()
        rms = weight.pow(2).mean((1, 2, 3)).sqrt().numpy()  # by hand, not by zfnet.probes.filters
        assert measures["conv1_rms"]["median"] == pytest.approx(np.median(rms), rel=1e-5)
        lower_middle = np.sort(rms)[(len(rms) - 1) // 2]  # torch.median's median of an even count
        assert measures["conv1_rms_max_over_median"] == pytest.approx(rms.max() / lower_middle, rel=1e-5)
        assert result.filters[name].ndim == 3 and result.filters[name].shape[-1] == 3
        assert result.projections[name].ndim == 3 and result.projections[name].shape[-1] == 3
    live_mid = round(zfnet["conv1_centroid_frequency"]["band_shares"]["mid"] * zfnet["conv1_live_filters"])
    assert live_mid >= 12  # the planted 0.25 cycles/px bank, in [1/6, 1/3)
    assert alexnet["conv1_above_nyquist"]["spread"]["max"] > 0.9  # the 0.42 gratings, far above 1/8
    assert alexnet["conv1_above_nyquist"]["spread"]["min"] < 0.1  # the 0.04 gratings, far below it


def test_shift_and_lattice_use_the_settings_and_equal_windows(result):
    # ZF's conv2 field: 7 (conv1) + 2 * 2 (pool1, 3 wide at jump 2) + 4 * 4 (conv2, 5 wide at jump 4) = 27,
    # AlexNet's is wider; floored to the period 4: 24 for both
    assert result.window == 24
    for measures in result.measures.values():
        shift = measures["shift"]
        assert shift["step"] == 8 and shift["images"] == SHIFT_IMAGES and shift["shifts"] == [1, 2, 3]
        assert shift["smooth"] == {"1": 1 / 8, "2": 2 / 8, "3": 3 / 8}
        assert shift["model"] != shift["noise_conv1"]  # the white-noise conv1 control is another network
        lattice = measures["conv2_lattice"]
        assert lattice["window"] == 24 and lattice["period"] == 4
        assert lattice["projections"]["n"] == lattice["patches"]["n"] == measures["conv2_maps_projected"] == MAPS


def test_evidence_agrees_with_the_measures(inputs, result):
    evidence = result.evidence
    assert set(evidence) == {"mid_band", "zfnet", "alexnet"} and evidence["mid_band"] == pytest.approx([1 / 6, 1 / 3])
    for name, measures in result.measures.items():
        units, live = evidence[name], measures["conv1_live_filters"]
        assert len(units["dead"]) == 24 and sum(units["dead"]) == 24 - live == measures["conv1_dead"]["count"]
        assert not any(units["dead"][i] for i in PLANTED[name])  # the planted Gabors are live
        weight = get_layer(inputs[0][name][0], "conv1").weight.detach().double()
        assert units["rms"] == pytest.approx(weight.pow(2).mean((1, 2, 3)).sqrt().tolist(), abs=2e-6)
        assert len(units["centroid_frequency"]) == len(units["above_nyquist"]) == live
        assert len(units["lattice"]) == MAPS
        for key, spread in (("above_nyquist", measures["conv1_above_nyquist"]["spread"]),
                            ("lattice", measures["conv2_lattice"]["projections"])):
            assert np.median(units[key]) == pytest.approx(spread["median"], abs=1e-6)
        mid = sum(1 / 6 <= f < 1 / 3 for f in units["centroid_frequency"])
        assert mid == round(measures["conv1_centroid_frequency"]["band_shares"]["mid"] * live)
    json.dumps(evidence, allow_nan=False)  # NaN is written as null


def test_one_model_alone_measures_the_same_and_a_missing_radius_is_the_papers(inputs, result):
    """Same seed, same numbers; a model's measures do not depend on its neighbours (ZF sets the window either
    way); a checkpoint trained without renormalization is judged against the paper's radius, 0.1."""
    models, images, shift_images = inputs
    model, hparams = models["zfnet"]
    alone = run({"zfnet": (model, {**hparams, "renorm_radius": None})}, images, shift_images, settings(),
                seed=0, batch_size=5, normalize_down=False)
    assert json.dumps(alone.measures["zfnet"]) == json.dumps(result.measures["zfnet"])
    assert alone.evidence["zfnet"] == result.evidence["zfnet"]


def test_bad_settings_are_refused(inputs):
    models, images, shift_images = inputs
    with pytest.raises(UserError, match="visualize.architecture.shifts"):
        run(models, images, shift_images, settings(shifts=[1, 8]), seed=0, batch_size=5, normalize_down=False)
    model, hparams = models["zfnet"]
    with pytest.raises(UserError, match="is not below the RMS radius"):
        run({"zfnet": (model, {**hparams, "renorm_radius": 0.005})}, images, shift_images, settings(),
            seed=0, batch_size=5, normalize_down=False)


def test_alias_window_by_hand():
    assert alias_window(None, 4, [27, 51]) == 24
    assert alias_window(30, 4, [27, 51]) == 28
    assert alias_window(None, 3, [27]) == 27
    with pytest.raises(ValueError, match="smaller than the period"):
        alias_window(3, 4, [27])


def test_centred_cut_pads_outside_the_image():
    # a 9-px field at origin (-4, -4) + 2 * (1, 3) = (-2, 2); its centred 5-px square starts at (0, 4)
    # and its 7-px square at (-1, 3): one zero row on top
    image = torch.arange(3 * 10 * 10, dtype=torch.float32).reshape(3, 10, 10)
    field = Window(9, 2, -4)
    np.testing.assert_array_equal(centred_cut(image, field, 1, 3, 5), image[:, 0:5, 4:9].numpy())
    seven = centred_cut(image, field, 1, 3, 7)
    assert (seven[:, 0] == 0).all()
    np.testing.assert_array_equal(seven[:, 1:], image[:, 0:6, 3:10].numpy())
