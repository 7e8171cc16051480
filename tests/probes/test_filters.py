"""The Fig. 6 measures on filter banks and networks built to have, and to lack, each property.

Every measure is checked on a pair of banks (or networks) it must tell apart; expected values come
from the construction or a hand computation, never from the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as tF

from zfnet.nets.models import build_model, get_layer
from zfnet.probes.filters import (
    above_nyquist_share,
    band_counts,
    band_of,
    band_shares,
    centroid_frequency,
    dead_filter_criteria,
    feature_grid,
    filter_rms,
    frequency_histogram,
    interior_positions,
    lattice_share,
    model_shift_sensitivity,
    near_init_threshold,
    neighbour_correlation,
    noise_conv1,
    peak_frequency,
    periodic_component,
    shift_sensitivity,
    spectral_flatness,
    spread,
    white_noise_above_nyquist,
    white_noise_lattice_share,
    white_noise_shares,
)

INIT, RADIUS = 0.01, 0.1  # conv1's init std and the renormalization radius of the default run


def gaussian(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def cosine(size: int, fy: float, fx: float, phase: float = 0.0) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64)
    return torch.cos(2 * math.pi * (fy * r[:, None] + fx * r[None, :]) + phase)


def gabor(size: int, frequency: float, theta: float, sigma: float, phase: float = 0.0) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = r[:, None], r[None, :]
    u = x * math.cos(theta) + y * math.sin(theta)
    return torch.exp(-(x**2 + y**2) / (2 * sigma**2)) * torch.cos(2 * math.pi * frequency * u + phase)


def colour(plane: torch.Tensor, weights=(1.0, 0.6, -0.8)) -> torch.Tensor:
    return torch.stack([plane * w for w in weights])


def at_rms(filters: torch.Tensor, rms: float) -> torch.Tensor:
    return filters / filters.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() * rms


def gabor_bank(count: int, size: int, frequencies, seed: int = 0) -> torch.Tensor:
    """`count` colour Gabors (count, 3, size, size), cycling through `frequencies`, random orientation
    and phase, envelope a quarter of the size: live, structured filters."""
    g = torch.Generator().manual_seed(seed)
    filters = []
    for i in range(count):
        theta, phase = (torch.rand(2, generator=g, dtype=torch.float64) * math.pi * torch.tensor([1.0, 2.0])).tolist()
        tint = (torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1).tolist()
        filters.append(colour(gabor(size, frequencies[i % len(frequencies)], theta, size / 4, phase), tint))
    return torch.stack(filters)


def noise_bank(count: int, size: int, std: float, seed: int) -> torch.Tensor:
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std


# --------------------------------------------------------------------------- dead filters


def test_near_init_threshold_is_the_log_scale_midpoint():
    assert near_init_threshold(INIT, RADIUS) == pytest.approx(math.sqrt(0.01 * 0.1))  # 0.0316
    assert near_init_threshold(INIT, RADIUS, 0.25) == pytest.approx(0.01 * 10**0.25)
    with pytest.raises(ValueError):
        near_init_threshold(0.1, 0.1)


@pytest.mark.parametrize("size", [7, 11])  # ZF's and AlexNet's conv1
def test_dead_criteria_on_a_bank_of_known_dead_and_live_filters(size):
    """live: Gabors at the radius; dead: i.i.d. noise at the init scale, shrunk noise (weight decay) and
    zeros. Two decoys, each failing exactly one test: Gabors at the init scale (small but structured)
    and noise at the radius (unstructured but grown)."""
    live = at_rms(gabor_bank(8, size, (0.05, 0.12, 0.2, 0.3, 0.42)), RADIUS)
    dead = noise_bank(8, size, INIT, seed=1)
    shrunk = noise_bank(2, size, INIT / 3, seed=2)
    zero = torch.zeros(1, 3, size, size, dtype=torch.float64)
    small_structured = at_rms(gabor_bank(3, size, (0.08, 0.25, 0.4), seed=3), INIT)
    big_noise = noise_bank(3, size, RADIUS, seed=4)
    bank = torch.cat([live, dead, shrunk, zero, small_structured, big_noise])
    kinds = ["live"] * 8 + ["dead"] * 11 + ["small_structured"] * 3 + ["big_noise"] * 3

    masks = dead_filter_criteria(bank, INIT, RADIUS)
    assert masks["near_init"].tolist() == [k in ("dead", "small_structured") for k in kinds]
    assert masks["white_spectrum"].tolist() == [k in ("dead", "big_noise") for k in kinds]
    assert masks["low_correlation"].tolist() == [k in ("dead", "big_noise") for k in kinds]
    assert masks["dead"].tolist() == [k == "dead" for k in kinds]
    assert float(masks["thresholds"]["rms"]) == pytest.approx(math.sqrt(INIT * RADIUS))


@pytest.mark.parametrize("size", [7, 11])
def test_noise_floor_is_calibrated(size):
    """By construction of the thresholds, fresh white noise passes each spectral test with probability
    1 - quantile, and no Gabor does."""
    noise = noise_bank(2000, size, INIT, seed=10)
    masks = dead_filter_criteria(noise, INIT, RADIUS, quantile=0.05)
    for test in ("white_spectrum", "low_correlation"):
        assert masks[test].double().mean().item() == pytest.approx(0.95, abs=0.015)
    gabors = dead_filter_criteria(gabor_bank(200, size, torch.linspace(0.0, 0.45, 10).tolist(), seed=11),
                                  INIT, RADIUS, quantile=0.05)
    assert not gabors["white_spectrum"].any() and not gabors["low_correlation"].any()


def test_spectral_statistics_by_hand():
    delta = torch.zeros(1, 3, 7, 7, dtype=torch.float64)
    delta[0, :, 3, 3] = 1.0  # flat spectrum
    assert spectral_flatness(delta).item() == pytest.approx(1.0)
    grating = colour(cosine(8, 0.0, 0.25))[None]  # power on two of 64 bins
    assert spectral_flatness(grating).item() < 1e-3
    constant = torch.ones(1, 3, 7, 7, dtype=torch.float64)
    assert neighbour_correlation(constant).item() == pytest.approx(1.0)
    checker = colour(cosine(7, 0.5, 0.5))[None]  # (-1)^(x+y): r = -1 right and down, +1 on the diagonals
    assert neighbour_correlation(checker).item() == pytest.approx(1.0)
    vertical_stripes = colour(cosine(7, 0.0, 0.25))[None]  # cos(pi/2 x): r right = 0, r down = 1
    assert neighbour_correlation(vertical_stripes).item() == pytest.approx(1.0)
    assert neighbour_correlation(delta).item() == 0.0 and neighbour_correlation(0 * delta).item() == 0.0
    noise = noise_bank(5, 7, 1.0, seed=0)
    torch.testing.assert_close(spectral_flatness(noise * 1000), spectral_flatness(noise))  # scale free


# --------------------------------------------------------------------------- spectral make-up


def test_peak_frequency_finds_the_grating():
    """Gabors whose envelope bandwidth, 1/(2 pi 4) = 0.04 cycles/px, is well below their frequency:
    the peak is the grating's frequency, to one bin of the 64-point FFT."""
    frequencies = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    bank = torch.stack([colour(gabor(15, f, theta, 4.0))
                        for f in frequencies for theta in (0.0, math.pi / 3)])
    expected = torch.tensor(frequencies, dtype=torch.float64).repeat_interleave(2)
    torch.testing.assert_close(peak_frequency(bank), expected, atol=1 / 64, rtol=0)
    torch.testing.assert_close(centroid_frequency(bank), expected, atol=0.03, rtol=0)


def test_colour_blob_is_low_and_zero_filter_has_none():
    blob = colour(gaussian(7, 1.5)) + 0.05  # a smooth colour blob: energy at and next to DC
    bank = torch.stack([blob, torch.zeros(3, 7, 7, dtype=torch.float64)])
    peak = peak_frequency(bank)
    assert peak[0].item() == pytest.approx(1 / 64)  # DC is excluded: the first ring
    assert band_of(peak).tolist() == [0, -1] and peak[1].isnan()
    assert centroid_frequency(bank)[1].isnan()


def test_histogram_tells_low_and_high_from_broadband():
    """Fig. 6(b)'s 'some low, some high, none mid' against 'every filter broadband'. The bank-mean band
    shares (the old measure) are the same for both; the per-filter histograms are not."""
    low, high = 0.06, 0.42
    bimodal = torch.cat([gabor_bank(10, 15, (low,), seed=0), gabor_bank(10, 15, (high,), seed=1)])
    bimodal = at_rms(bimodal, 1.0)
    both = at_rms(gabor_bank(20, 15, (low,), seed=0), 1.0) + at_rms(gabor_bank(20, 15, (high,), seed=1), 1.0)
    torch.testing.assert_close(band_shares(bimodal).mean(0), band_shares(both).mean(0), atol=0.05, rtol=0)

    # peaks: half low, half high, none mid, for the bimodal bank
    assert band_counts(peak_frequency(bimodal)) == pytest.approx({"low": 0.5, "mid": 0.0, "high": 0.5})
    # centroids: the bimodal bank stays at its two ends, the broadband bank sits in the middle
    assert band_counts(centroid_frequency(bimodal)) == pytest.approx({"low": 0.5, "mid": 0.0, "high": 0.5})
    assert band_counts(centroid_frequency(both)) == pytest.approx({"low": 0.0, "mid": 1.0, "high": 0.0})
    # (each broadband filter's peak is one of its two gratings: the peak alone would not tell these
    # banks apart, which is why the centroid is reported beside it)
    assert band_counts(peak_frequency(both))["mid"] == 0.0
    # a bank covering the mid band fills it
    mid = gabor_bank(20, 15, (0.2, 0.25, 0.3), seed=2)
    assert band_counts(peak_frequency(mid))["mid"] == 1.0


def test_white_noise_peaks_spread_by_band_area():
    """White noise has no preferred frequency: its peaks fall in each band in proportion to the band's
    area of the spectrum, (pi/36, pi/9 - pi/36, rest) of the unit square for the disc bands."""
    peaks = peak_frequency(noise_bank(3000, 11, 1.0, seed=5))
    area_low, area_mid = math.pi / 36, math.pi / 9 - math.pi / 36
    shares = band_counts(peaks)
    assert shares["low"] == pytest.approx(area_low, abs=0.03)
    assert shares["mid"] == pytest.approx(area_mid, abs=0.03)
    torch.testing.assert_close(white_noise_shares(256), torch.tensor(
        [area_low, area_mid, 1 - area_low - area_mid], dtype=torch.float64), atol=0.005, rtol=0)


def test_an_empty_bank_has_no_values():
    """A bank whose filters are all dead leaves nothing to measure (the stage drops dead filters)."""
    empty = torch.zeros(0, 3, 7, 7)
    for measure in (peak_frequency, centroid_frequency, spectral_flatness, neighbour_correlation):
        assert measure(empty).shape == (0,)
    assert above_nyquist_share(empty, 4).shape == (0,)
    assert band_counts(peak_frequency(empty)) == {"low": None, "mid": None, "high": None}


def test_frequency_histogram_by_hand():
    values = torch.tensor([0.01, 0.06, 0.07, 0.74, 0.9, float("nan")], dtype=torch.float64)
    counts = frequency_histogram(values)
    assert len(counts) == 15 and sum(counts) == 5
    assert counts[0] == 1 and counts[1] == 2 and counts[-1] == 2  # the last bin takes what lies beyond


def test_spread_by_hand():
    s = spread(torch.tensor([4.0, 1.0, 3.0, 2.0, 5.0, float("nan")]))
    assert s == {"n": 5, "median": 3.0, "q25": 2.0, "q75": 4.0, "min": 1.0, "max": 5.0}
    assert spread(torch.tensor([]))["median"] is None


# --------------------------------------------------------------------------- aliasing: filters


def test_above_nyquist_share_of_exact_gratings():
    """Whole-period gratings on a 32x32 filter with no padding put all power on two DFT bins, so the
    share is 0, 1 or (on the boundary) 1/2 by hand. 0.1875 cycles/px is above stride 4's Nyquist
    (0.125) and below stride 2's (0.25)."""
    bank = torch.stack([colour(cosine(32, 0.0, f, 0.4)) for f in (2 / 32, 6 / 32, 12 / 32, 4 / 32)])
    bank = torch.cat([bank, colour(cosine(32, 6 / 32, 2 / 32))[None]])  # diagonal: fy above stride 4's
    torch.testing.assert_close(above_nyquist_share(bank, 4, size=32),
                               torch.tensor([0.0, 1.0, 1.0, 0.5, 1.0], dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(above_nyquist_share(bank, 2, size=32),
                               torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-9, rtol=0)


def test_above_nyquist_separates_smooth_from_fine_filters_and_white_noise_scores_the_floor():
    smooth = gabor_bank(10, 11, (0.0, 0.03, 0.06), seed=0)
    fine = gabor_bank(10, 11, (0.19, 0.2, 0.21), seed=1)  # between 1/8 and 1/4
    assert above_nyquist_share(smooth, 4).max() < 0.1 and above_nyquist_share(fine, 4).min() > 0.8
    assert above_nyquist_share(fine, 2).max() < 0.3
    delta = torch.zeros(1, 3, 11, 11, dtype=torch.float64)
    delta[0, :, 5, 5] = 1.0  # exactly flat spectrum
    assert above_nyquist_share(delta, 4).item() == pytest.approx(1 - 1 / 16)
    assert above_nyquist_share(delta, 2).item() == pytest.approx(1 - 1 / 4)
    assert white_noise_above_nyquist(4) == 1 - 1 / 16 and white_noise_above_nyquist(2) == 0.75
    noise = above_nyquist_share(noise_bank(500, 11, 1.0, seed=3), 4).mean().item()
    assert noise == pytest.approx(1 - 1 / 16, abs=0.01)


# --------------------------------------------------------------------------- aliasing: features


def test_shift_sensitivity_of_a_sampled_grating_by_hand():
    """A layer that samples every J = 4 pixels. Gratings of 0.05 and 0.3 cycles/px give the *same*
    sampled map (0.3 * 4 = 1.2 cycles per sample aliases to 0.2), so nothing computed from the map
    alone can tell them apart; under sub-step shifts S(d) = |sin(pi f d) / sin(pi f J)|: 0.266 at d = 1
    for the alias-free grating, 1.376 for the aliased one."""
    step = 4

    def sample(x):
        return x[..., ::step, ::step]

    side = 40 * step + step  # 40 samples: whole periods of the 0.2-cycle sampled pattern
    slow, fast = (cosine(side, 0.0, f, 0.7).expand(1, 1, side, side) for f in (0.05, 0.3))
    torch.testing.assert_close(sample(slow[..., :-step, :-step]), sample(fast[..., :-step, :-step]))
    for image, f in ((slow, 0.05), (fast, 0.3)):
        expected = [abs(math.sin(math.pi * f * d) / math.sin(math.pi * f * step)) for d in (1, 2, 3)]
        torch.testing.assert_close(shift_sensitivity(sample, image, step, (1, 2, 3))[0],
                                   torch.tensor(expected, dtype=torch.float64))


def test_shift_sensitivity_needs_sub_step_shifts():
    with pytest.raises(ValueError):
        shift_sensitivity(lambda x: x[..., ::4, ::4], torch.zeros(1, 1, 20, 20), 4, (1, 4))


def test_feature_grid_by_hand():
    """conv2 step and receptive field from the layer table: ZF 7/2 pad 1, pool 3/2, 5/2 pad 0 ->
    step 8, field 7 + 2*2 + 4*4 = 27 from -1; AlexNet 11/4 pad 2, pool 3/2, 5/1 pad 2 -> step 8,
    field 11 + 2*4 + 4*8 = 51 from -2 - 2*8 = -18."""
    zf = build_model("zfnet", 3, input_size=64, width=0.125)
    alex = build_model("alexnet", 3, input_size=64, width=0.125)
    assert feature_grid(zf, "conv2") == (8, -1, 27)
    assert feature_grid(alex, "conv2") == (8, -18, 51)
    # on 64-px inputs: AlexNet -18 + 8y >= 0 -> y >= 3, -18 + 8y + 51 <= 64 -> y <= 3; ZF y in 1..4
    assert interior_positions(8, -18, 51, 64) == (3, 4)
    assert interior_positions(8, -1, 27, 64) == (1, 5)
    assert interior_positions(8, 0, 27, 64) == (0, 5)


@pytest.mark.parametrize("name", ["alexnet", "zfnet"])
def test_network_with_fine_first_layer_filters_is_shift_sensitive(name):
    """The same small network, its conv1 filters either smooth (Gaussian blobs: nothing above any
    Nyquist) or fine gratings at 0.35 cycles/px (above both strides' Nyquist). The smooth one changes
    under a 1-px shift by about d/step of a whole step (1/8), the fine one by about a whole step."""
    torch.manual_seed(0)
    model = build_model(name, 3, input_size=64, width=0.25, init="fan_in").eval()
    conv1 = get_layer(model, "conv1")
    count, _, k, _ = conv1.weight.shape
    smooth = torch.stack([colour(gabor(k, 0.0, 0.0, k / 4)) * (-1) ** i for i in range(count)])
    fine = torch.stack([colour(gabor(k, 0.35, math.pi * i / count, k / 4)) for i in range(count)])
    images = torch.randn(6, 3, 88, 88, generator=torch.Generator().manual_seed(0))

    def conv2_map(x):
        for layer, module in model.features.named_children():
            x = module(x)
            if layer == "relu2":
                return x

    # 80-px inputs (88 less the step): positions whose receptive fields touch no padding, by hand as in
    # test_feature_grid_by_hand: AlexNet y in 3..5 ((80 + 18 - 51) // 8 = 5), ZF y in 1..6
    interior = {"alexnet": (3, 6), "zfnet": (1, 7)}[name]
    result = {}
    for kind, bank in (("smooth", smooth), ("fine", fine)):
        with torch.no_grad():
            conv1.weight.copy_(at_rms(bank, RADIUS))
        s, step = model_shift_sensitivity(model, "conv2", images)
        assert step == 8 and s.shape == (6, 3)
        with torch.no_grad():
            torch.testing.assert_close(s, shift_sensitivity(conv2_map, images, 8, (1, 2, 3), interior))
        result[kind] = s[:, 0].median().item()
    assert result["smooth"] < 0.45 < 0.7 < result["fine"]


def test_noise_conv1_keeps_each_filter_rms():
    torch.manual_seed(0)
    model = build_model("alexnet", 3, input_size=64, width=0.125)
    before = get_layer(model, "conv1").weight.detach().clone()
    noisy = noise_conv1(model, seed=0)
    after = get_layer(noisy, "conv1").weight.detach()
    torch.testing.assert_close(filter_rms(after), filter_rms(before), rtol=1e-5, atol=0)
    assert not torch.allclose(after, before)
    assert torch.equal(get_layer(model, "conv1").weight, before)  # the original is untouched
    torch.testing.assert_close(noise_conv1(model, seed=0).features.conv1.weight, after)  # seeded


# --------------------------------------------------------------------------- aliasing: projections


def test_periodic_component_is_the_mean_tile():
    image = torch.arange(2 * 8 * 8, dtype=torch.float64).reshape(2, 8, 8)
    tile = periodic_component(image, 4)
    expected = torch.stack([image[:, i : i + 4, j : j + 4] for i in (0, 4) for j in (0, 4)]).mean(0)
    torch.testing.assert_close(tile, expected)


@pytest.mark.parametrize("period", [2, 4])
def test_lattice_share_equals_dft_energy_on_the_lattice(period):
    image = torch.randn(3, 24, 20, generator=torch.Generator().manual_seed(period), dtype=torch.float64)
    power = torch.fft.fft2(image).abs().pow(2).sum(dim=0)
    h, w = image.shape[-2:]
    on_lattice = torch.zeros(h, w, dtype=torch.bool)
    on_lattice[:: h // period, :: w // period] = True
    on_lattice[0, 0] = False  # the DC term (mean) is not counted
    expected = power[on_lattice].sum() / power[1:].sum().add(power[0, 1:].sum())
    torch.testing.assert_close(lattice_share(image, period), expected)


def test_pure_lattice_pattern_scores_one_and_smooth_image_near_zero():
    tile = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert lattice_share(tile.repeat(1, 8, 8), 4).item() == pytest.approx(1.0)
    smooth = colour(cosine(32, 0.03, 0.05)) + colour(gaussian(32, 6.0)) * 100
    assert lattice_share(smooth, 4).item() < 0.01
    assert lattice_share(torch.zeros(3, 8, 8), 4).item() == 0.0


def test_white_noise_lattice_share_depends_on_the_window():
    """The review's artefact: on white noise a 48-px window scores 4x less than a 24-px one, which is
    (p^2 - 1) / (N - 1) by hand; on equal windows the floors are equal."""
    g = torch.Generator().manual_seed(0)
    for window in (24, 48):
        measured = lattice_share(torch.randn(3000, 3, window, window, generator=g, dtype=torch.float64), 4)
        assert measured.mean().item() == pytest.approx(15 / (window**2 - 1), rel=0.03)
        assert white_noise_lattice_share(window, 4) == pytest.approx(15 / (window**2 - 1))
    assert white_noise_lattice_share(24) / white_noise_lattice_share(48) == pytest.approx(4, rel=0.01)


def test_stride4_reconstruction_aliases_more_than_stride1_and_blurred():
    """What a layer-2 deconv reconstruction is: a smooth positive map of layer-1 activations,
    upsampled by the conv1 stride and filtered with its (random, broadband) filters."""
    g = torch.Generator().manual_seed(0)
    filters = torch.randn(8, 3, 11, 11, generator=g, dtype=torch.float64)

    def reconstruction(stride: int) -> torch.Tensor:
        size = 64 // stride
        activations = tF.interpolate(torch.rand(1, 8, 4, 4, generator=g, dtype=torch.float64), size=size,
                                     mode="bilinear", align_corners=False)
        return tF.conv_transpose2d(activations, filters, stride=stride)[0, :, 8:56, 8:56]

    stride4 = lattice_share(reconstruction(4), 4).item()
    stride1 = lattice_share(reconstruction(1), 4).item()
    blur = colour(gaussian(13, 2.0), (1.0, 1.0, 1.0))[:, None]  # (3, 1, 13, 13), depthwise
    blurred = lattice_share(tF.conv2d(reconstruction(4)[None], blur, groups=3)[0], 4).item()
    assert stride4 > 0.3 > 0.05 > max(stride1, blurred)


def test_lattice_share_batches():
    images = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    shares = lattice_share(images, 4)
    assert shares.shape == (5,)
    torch.testing.assert_close(shares[2], lattice_share(images[2], 4))
