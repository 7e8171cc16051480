"""The Fig. 6 measures on filters and patterns whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zfnet.probes.filters import (
    band_shares,
    dead_filters,
    lattice_share,
    periodic_component,
    spectral_make_up,
    white_noise_shares,
)


def gaussian(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def cosine(size: int, fy: float, fx: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64)
    return torch.cos(2 * math.pi * (fy * r[:, None] + fx * r[None, :]))


def checkerboard(size: int) -> torch.Tensor:
    r = torch.arange(size)
    return ((r[:, None] + r[None, :]) % 2 * 2 - 1).double()


def colour(plane: torch.Tensor) -> torch.Tensor:
    return plane.expand(3, *plane.shape)


# --------------------------------------------------------------------------- dead filters


def test_zeroed_filters_are_dead_by_norm():
    weight = torch.randn(10, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    weight[[2, 7]] = 0
    weight[4] *= 0.01  # near zero
    dead = dead_filters(weight)
    assert dead.tolist() == [i in (2, 4, 7) for i in range(10)]
    assert dead.double().mean().item() == pytest.approx(0.3)


def test_silent_filters_are_dead_by_response():
    weight = torch.randn(6, 3, 7, 7, generator=torch.Generator().manual_seed(1))
    response = torch.tensor([5.0, 4.0, 0.0, 6.0, 0.1, 5.5])  # map 2 never fires, map 4 barely
    assert dead_filters(weight).sum() == 0
    assert dead_filters(weight, response).tolist() == [False, False, True, False, True, False]


def test_dead_share_does_not_depend_on_scale():
    weight = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    weight[0] = 0
    response = torch.rand(8, generator=torch.Generator().manual_seed(3)) + 0.5
    assert torch.equal(dead_filters(weight, response), dead_filters(weight * 1000, response * 1e-3))


# --------------------------------------------------------------------------- spectra


def test_band_shares_sum_to_one():
    weight = torch.randn(12, 3, 11, 11, generator=torch.Generator().manual_seed(0))
    shares = band_shares(weight)
    assert shares.shape == (12, 3)
    torch.testing.assert_close(shares.sum(dim=1), torch.ones(12, dtype=torch.float64))
    assert (shares >= 0).all()


def test_known_filters_fall_in_their_band():
    blob = colour(gaussian(7, 1.5))  # smooth: low
    stripes = colour(cosine(11, 0.0, 0.25))  # 0.25 cycles/px: mid (1/6 .. 1/3)
    board = colour(checkerboard(7))  # Nyquist in both directions: high
    weight = torch.zeros(3, 3, 11, 11, dtype=torch.float64)
    weight[0, :, 2:9, 2:9] = blob
    weight[1] = stripes
    weight[2, :, 2:9, 2:9] = board
    shares = band_shares(weight)
    assert shares.argmax(dim=1).tolist() == [0, 1, 2]
    assert shares[0, 0] > 0.9 and shares[2, 2] > 0.6


def test_white_noise_spreads_by_band_area():
    weight = torch.randn(400, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    shares = band_shares(weight, size=16).mean(dim=0)  # no padding: DFT bins are independent
    area_low, area_mid = math.pi / 36, math.pi / 9 - math.pi / 36
    torch.testing.assert_close(shares, torch.tensor([area_low, area_mid, 1 - area_low - area_mid],
                                                    dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(shares, white_noise_shares(16), atol=0.02, rtol=0)
    padded = band_shares(weight[:, :, :7, :7], size=64).mean(dim=0)  # zero padding keeps the spectrum flat
    torch.testing.assert_close(padded, white_noise_shares(64), atol=0.02, rtol=0)


def test_zero_filter_has_no_make_up_and_is_left_out():
    weight = torch.zeros(2, 3, 7, 7)
    weight[1, :, 3, 3] = 1.0  # a delta: flat spectrum
    shares = band_shares(weight)
    assert shares[0].isnan().all() and not shares[1].isnan().any()
    make_up = spectral_make_up(weight)
    assert sum(make_up["energy"].values()) == pytest.approx(1.0)
    assert sum(make_up["dominant"].values()) == pytest.approx(1.0)


def test_make_up_of_a_mixed_bank():
    weight = torch.zeros(4, 3, 7, 7, dtype=torch.float64)
    weight[:3] = colour(gaussian(7, 1.5))
    weight[3] = colour(checkerboard(7))
    dominant = spectral_make_up(weight)["dominant"]
    assert dominant == pytest.approx({"low": 0.75, "mid": 0.0, "high": 0.25})


# --------------------------------------------------------------------------- aliasing


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


def test_stride4_reconstruction_aliases_more_than_stride1_and_blurred():
    """What a layer-2 deconv reconstruction is: a smooth positive map of layer-1 activations,
    upsampled by the conv1 stride and filtered with its (random, broadband) filters."""
    g = torch.Generator().manual_seed(0)
    filters = torch.randn(8, 3, 11, 11, generator=g, dtype=torch.float64)

    def reconstruction(stride: int) -> torch.Tensor:
        size = 64 // stride
        activations = F.interpolate(torch.rand(1, 8, 4, 4, generator=g, dtype=torch.float64), size=size,
                                    mode="bilinear", align_corners=False)
        return F.conv_transpose2d(activations, filters, stride=stride)[0, :, 8:56, 8:56]

    stride4 = lattice_share(reconstruction(4), 4).item()
    stride1 = lattice_share(reconstruction(1), 4).item()
    blur = colour(gaussian(13, 2.0))[:, None]  # (3, 1, 13, 13), depthwise
    blurred = lattice_share(F.conv2d(reconstruction(4)[None], blur, groups=3)[0], 4).item()
    assert stride4 > 0.3 > 0.05 > max(stride1, blurred)


def test_lattice_share_batches():
    images = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    shares = lattice_share(images, 4)
    assert shares.shape == (5,)
    torch.testing.assert_close(shares[2], lattice_share(images[2], 4))
