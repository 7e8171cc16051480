"""Measures behind the architecture comparison (paper Fig. 6): dead filters, spectra, aliasing.

The paper judges layer 1 and 2 by eye: AlexNet's layer-1 filters are "a mix of extremely high and low
frequency information, with little coverage of the mid frequencies" with some "dead" filters, and its
layer-2 visualizations show "aliasing artifacts caused by the large stride 4 used in the 1st layer
convolutions". These functions turn each remark into a number. All are pure functions of tensors;
the definitions are ours (the paper gives none):

* Dead filter (`dead_filters`): a layer-1 filter is dead when it (a) never really responds: its
  strongest rectified response over the validation images is at most `threshold` (default 5%) of the
  median over the layer's filters of that strongest response (this includes never positive), or
  (b) has near-zero weights: its L2 norm is at most `threshold` of the median filter norm. Both are
  relative to the layer's median, so the test does not depend on the input scale (pixels in
  [-128, 128]) or on whether RMS renormalization capped the norms.

* Spectral make-up (`band_shares`): each filter (C, k, k) is zero-padded to `size` x `size` and
  Fourier-transformed; its power |F|^2, summed over the colour planes, is split by radial frequency
  sqrt(fx^2 + fy^2) (cycles per input pixel; Nyquist is 0.5) into thirds of Nyquist: low [0, 1/6),
  mid [1/6, 1/3), high [1/3, ...) (the corners of the square beyond Nyquist count as high). The
  three shares of each filter sum to 1; the DC term (a filter's mean colour) counts as low. Because
  the bands differ in area, white noise gives about (0.087, 0.262, 0.651) (`white_noise_shares`):
  what an untrained (randomly initialized) filter bank scores. Frequencies are per input pixel for every
  model, so AlexNet's 11x11 and ZFNet's 7x7 filters are compared on one axis.

* Aliasing (`lattice_share`): the share of an image's energy (its mean removed) at the frequencies of
  a period-`p` lattice, (m/p, n/p) cycles per pixel for integer m, n not both 0. This energy is
  exactly that of the image's periodic component: the average of its p x p tiles, repeated
  (Parseval), which is how it is computed. A layer-2 reconstruction is a sum of layer-1 filters
  placed on the layer-1 stride grid, so a grid artefact of stride s puts energy on the period-s
  lattice; smooth or natural image structure puts almost none there (a share near p^2 / pixels for
  white noise). The period-4 lattice contains the period-2 one, so with p = 4 (AlexNet's conv1 stride)
  ZFNet's stride-2 grid, if it showed, would be counted too: one measure, fair to both models.
"""

from __future__ import annotations

import torch
from torch import Tensor

BANDS = ("low", "mid", "high")
BAND_EDGES = (1 / 6, 1 / 3)  # cycles per pixel: thirds of Nyquist (0.5)


def filter_norms(weight: Tensor) -> Tensor:
    """L2 norm of each filter of a conv weight (out, in, kh, kw) -> (out,)."""
    return weight.detach().flatten(1).norm(dim=1)


def dead_filters(weight: Tensor, max_response: Tensor | None = None, threshold: float = 0.05) -> Tensor:
    """Boolean (out,) mask of dead filters (see the module docstring).

    `max_response`: each filter's strongest rectified response over a dataset (out,), e.g. the top-1
    value of `zfnet.probes.top9.top_activations`; without it only the weight-norm test applies.
    """
    norms = filter_norms(weight).double()
    dead = norms <= threshold * norms.median()
    if max_response is not None:
        response = max_response.detach().double().cpu()
        dead |= response <= threshold * response.median().clamp_min(0)
    return dead


def radial_frequency(size: int) -> Tensor:
    """(size, size) radial frequency of each 2-D DFT bin, in cycles per pixel (0 to about 0.707)."""
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    return (f[:, None] ** 2 + f[None, :] ** 2).sqrt()


def band_shares(weight: Tensor, size: int = 64, edges: tuple[float, float] = BAND_EDGES) -> Tensor:
    """(out, 3) share of each filter's spectral energy in the low, mid and high bands; rows sum to 1.

    A filter with no energy at all (all zeros) gets a row of NaN: it has no spectral make-up.
    """
    filters = weight.detach().double().cpu()
    k = filters.shape[-1]
    if size < k:
        raise ValueError(f"band_shares: size {size} is smaller than the {k}x{k} filters")
    power = torch.fft.fft2(filters, s=(size, size)).abs().pow(2).sum(dim=1)  # (out, size, size)
    radius = radial_frequency(size)
    low, mid = radius < edges[0], (radius >= edges[0]) & (radius < edges[1])
    high = ~(low | mid)
    energy = torch.stack([power[:, band].sum(dim=1) for band in (low, mid, high)], dim=1)
    total = energy.sum(dim=1, keepdim=True)
    return torch.where(total > 0, energy / total.clamp_min(torch.finfo(total.dtype).tiny), torch.nan)


def white_noise_shares(size: int = 64, edges: tuple[float, float] = BAND_EDGES) -> Tensor:
    """(3,) the band shares a white-noise filter has on average: a flat spectrum, so each band's share of
    the DFT bins. The reference for a filter bank that has learned no frequency preference."""
    radius = radial_frequency(size)
    low = (radius < edges[0]).double().mean()
    mid = ((radius >= edges[0]) & (radius < edges[1])).double().mean()
    return torch.stack([low, mid, 1 - low - mid])


def spectral_make_up(weight: Tensor, size: int = 64) -> dict[str, dict[str, float]]:
    """A filter bank's make-up: the mean band shares over its filters (each filter weighs the same),
    and the share of filters whose energy is mostly in each band. Filters with no energy are left out."""
    shares = band_shares(weight, size)
    shares = shares[~shares.isnan().any(dim=1)]
    if len(shares) == 0:
        nothing = dict.fromkeys(BANDS, float("nan"))
        return {"energy": nothing, "dominant": dict(nothing)}
    mean = shares.mean(dim=0)
    dominant = torch.bincount(shares.argmax(dim=1), minlength=3).double() / len(shares)
    return {"energy": dict(zip(BANDS, mean.tolist())), "dominant": dict(zip(BANDS, dominant.tolist()))}


def periodic_component(image: Tensor, period: int) -> Tensor:
    """The mean p x p tile of `image` (..., H, W), cropped at the bottom/right to multiples of p: (..., p, p)."""
    h, w = (image.shape[-2] // period) * period, (image.shape[-1] // period) * period
    if h == 0 or w == 0:
        raise ValueError(f"image {tuple(image.shape[-2:])} is smaller than the period {period}")
    tiles = image[..., :h, :w].unflatten(-2, (h // period, period)).unflatten(-1, (w // period, period))
    return tiles.mean(dim=(-4, -2))


def lattice_share(image: Tensor, period: int = 4) -> Tensor:
    """Share of the mean-removed energy of `image` (..., C, H, W) on the period-p frequency lattice.

    Returns (...): one value per image, colour planes pooled. The image is first cropped at the
    bottom/right to multiples of p (so the lattice frequencies fall exactly on DFT bins). An image
    without any variation gets 0.
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    image = image.detach().double()
    h, w = (image.shape[-2] // period) * period, (image.shape[-1] // period) * period
    image = image[..., :h, :w]
    centred = image - image.mean(dim=(-2, -1), keepdim=True)
    tile = periodic_component(centred, period)  # its mean is 0: the DC was removed with the image's
    lattice = tile.pow(2).sum(dim=(-3, -2, -1)) * (h // period) * (w // period)
    total = centred.pow(2).sum(dim=(-3, -2, -1))
    return torch.where(total > 0, lattice / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))
