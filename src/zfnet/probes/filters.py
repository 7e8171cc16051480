"""Measures behind the architecture comparison (paper Fig. 6): dead filters, spectra, aliasing.

The paper judges layers 1 and 2 by eye: AlexNet's layer-1 filters are "a mix of extremely high and low
frequency information, with little coverage of the mid frequencies" with some "dead" filters, and its
layer-2 visualizations show "aliasing artifacts caused by the large stride 4 used in the 1st layer
convolutions". These functions turn each remark into numbers, one value per filter (or per image), so
a bank is described by the spread of its values, not by one mean. All are functions of tensors (and,
for the functional measure, of a network) without I/O; the definitions are ours, the paper gives none.
Frequencies are in cycles per input pixel for every model (Nyquist of the input is 0.5), so AlexNet's
11x11 and ZFNet's 7x7 filters are compared on one axis.

Dead filters (`dead_filter_criteria`)
    A layer-1 filter is dead when it looks like what it was at initialization: i.i.d. noise at about
    the init scale. Three per-filter tests, each against a reference the caller passes or a seeded
    white-noise floor; dead = all three:

    * near init scale: its RMS is at most init_rms * (radius / init_rms) ** position, i.e. `position`
      of the way from the init RMS to the renormalization radius on a log scale (default 0.5: the
      geometric mean, 0.032 for init 0.01 and radius 0.1). A learned filter grows to the radius cap;
      one that never learned keeps about its init RMS (or less, after weight decay).
    * white spectrum: its spectral flatness (`spectral_flatness`: geometric over arithmetic mean of
      the k x k DFT power, colour planes summed) is at least the `quantile` point of the flatness of
      i.i.d. Gaussian filters of the same shape: its spectrum cannot be told from white noise.
    * low neighbour correlation: the largest |correlation| between the filter and itself shifted by
      one pixel (right, down and the two diagonals; `neighbour_correlation`) is at most the
      1 - `quantile` point of the same for i.i.d. Gaussian filters. Any smooth blob, edge or grating
      (even one at Nyquist, which correlates at -1) exceeds it.

    The noise floors are scale free (both statistics ignore the filter's scale) and come from
    `noise_samples` Gaussian filters drawn with a fixed seed, so the thresholds are deterministic.

Spectral make-up (`peak_frequency`, `centroid_frequency`)
    For each filter: zero-padded to `size` x `size`, power summed over the colour planes, the DC bin
    (f = 0) left out. The peak frequency is the radial frequency sqrt(fx^2 + fy^2) of the strongest
    remaining bin; the centroid is their power-weighted mean radial frequency. Leaving DC out keeps
    every peak off 0, while a filter dominated by its mean colour (a colour blob) still peaks on the
    first rings, i.e. counts as low (removing each plane's mean instead would turn a blob into a
    centre-surround peaking near 1/k, a mid frequency for 7x7).
    A bank is described by the histogram of these over its live filters (dead ones left out, since
    they are noise), and by the share of filters falling in the low [0, 1/6), mid [1/6, 1/3) and high
    [1/3, ...) thirds of Nyquist (`band_of`). "Some low, some high, none mid" shows as an empty mid
    band; "all broadband" as centroids piled in the middle. White noise puts peaks in proportion to
    each band's area (`white_noise_shares`: about 0.09, 0.26, 0.65).

Aliasing, direct (`above_nyquist_share`)
    Each filter's share of power at frequencies its layer's output grid cannot represent: the conv
    output is sampled every `stride` pixels, whose Nyquist frequency is 1/(2 * stride) per axis, so a
    frequency (fx, fy) aliases unless |fx| <= 1/(2s) and |fy| <= 1/(2s) (a square: the sampling
    lattice is separable). Bins exactly on that boundary count half. White noise scores exactly
    1 - 1/s^2 (0.75 for ZF's stride 2, 0.9375 for AlexNet's 4; `white_noise_above_nyquist`) when
    2 * s divides the padded size; a smooth filter scores near 0.

Aliasing, functional (`shift_sensitivity`)
    How much a layer's features change when the input moves by d pixels, for d smaller than the
    layer's grid step J (its total stride: 8 for conv2 of both ZF and AlexNet, 16 for pool2). A shift
    by J moves the features by exactly one grid position, so

        S(d) = || phi(T_d x) - phi(x) || / || phi(T_J x) - phi(x) ||

    (norms over channels, the positions whose receptive fields lie inside both inputs, and shifts
    along x and along y together) compares the change under a sub-step shift with the change under
    one whole step of the same features: each model is measured against its own feature roughness,
    which makes models with different receptive fields and conv1 strides comparable. Features that
    vary smoothly across the grid (alias free) give a small S(d) growing with d, d/J in the limit of
    slow variation (sampling a grating of f cycles per pixel gives |sin(pi f d) / sin(pi f J)|:
    0.27 at d = 1 for f = 0.05, J = 4); features that alias, where a one-pixel move scrambles the
    sampled pattern, give S(d) near or above 1 at every d (1.38 at d = 1 for f = 0.3, J = 4, whose
    samples are identical to those of f = 0.05). A network whose conv1 filters are white noise at
    the same RMS (`noise_conv1`) gives the model's own noise floor.

Aliasing of projections (`lattice_share`)
    The share of an image's energy (its mean removed) at the frequencies of a period-p lattice,
    (m/p, n/p) cycles per pixel for integer m, n not both 0: the energy of its periodic component,
    the average of its p x p tiles, repeated (Parseval). A layer-2 reconstruction is a sum of layer-1
    filters placed on the layer-1 stride grid, so a grid artefact of stride s puts energy on the
    period-s lattice. White noise scores (p^2 - 1) / (N - 1) for N pixels
    (`white_noise_lattice_share`), so the share depends on the window: compare models on windows of
    one size.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

BANDS = ("low", "mid", "high")
BAND_EDGES = (1 / 6, 1 / 3)  # cycles per pixel: thirds of Nyquist (0.5)
FREQUENCY_EDGES = tuple(i * 0.05 for i in range(16))  # histogram bins of radial frequency, 0 .. 0.75
NEIGHBOUR_LAGS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (dy, dx)


# --------------------------------------------------------------------------- summaries


def spread(values: Tensor | Sequence[float]) -> dict[str, float | int | None]:
    """Median, quartiles, extremes and count of the finite values; None for each statistic when
    there are none (JSON has no NaN)."""
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    values = values[values.isfinite()]
    if len(values) == 0:
        return {"n": 0, "median": None, "q25": None, "q75": None, "min": None, "max": None}
    q = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"n": len(values), "median": q[1], "q25": q[0], "q75": q[2],
            "min": float(values.min()), "max": float(values.max())}


# --------------------------------------------------------------------------- dead filters


def filter_rms(weight: Tensor) -> Tensor:
    """RMS of each filter of a conv weight (out, in, kh, kw) -> (out,)."""
    return weight.detach().double().pow(2).mean(dim=(1, 2, 3)).sqrt()


def spectral_flatness(weight: Tensor) -> Tensor:
    """(out,) geometric over arithmetic mean of each filter's k x k DFT power (no padding, so white
    noise gives independent bins), colour planes summed; 1 for a flat spectrum, near 0 for a peaked
    one. A filter of zeros has no structure and gets 1."""
    filters = weight.detach().double().cpu()
    if len(filters) == 0:
        return filters.new_zeros(0)
    power = torch.fft.fft2(filters).abs().pow(2).sum(dim=1).flatten(1)
    mean = power.mean(dim=1)
    floor = (mean * 1e-12).clamp_min(torch.finfo(torch.float64).tiny)
    geometric = power.clamp_min(floor[:, None]).log().mean(dim=1).exp()
    return torch.where(mean > 0, geometric / mean.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(mean))


def neighbour_correlation(weight: Tensor) -> Tensor:
    """(out,) the largest |correlation| of each filter with itself shifted by one pixel along
    `NEIGHBOUR_LAGS`: sum(a * b) / sqrt(sum(a^2) sum(b^2)) over the overlapping pixels of all colour
    planes (uncentred: weights start at mean 0). 0 for a filter of zeros."""
    w = weight.detach().double().cpu()
    k_h, k_w = w.shape[-2:]
    best = torch.zeros(len(w), dtype=torch.float64)
    for dy, dx in NEIGHBOUR_LAGS:
        a = w[..., : k_h - dy, max(0, -dx): k_w - max(0, dx)]  # pixel (y, x)
        b = w[..., dy:, max(0, dx): k_w - max(0, -dx)]  # pixel (y + dy, x + dx)
        num = (a * b).sum(dim=(1, 2, 3))
        den = (a.pow(2).sum(dim=(1, 2, 3)) * b.pow(2).sum(dim=(1, 2, 3))).sqrt()
        r = torch.where(den > 0, num / den.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(num))
        best = torch.maximum(best, r.abs())
    return best


def noise_floor(shape: Sequence[int], samples: int = 2000, seed: int = 0) -> dict[str, Tensor]:
    """The spectral flatness and neighbour correlation of `samples` i.i.d. Gaussian filters of
    `shape` (in, kh, kw), drawn with `seed`: what a filter that learned nothing scores."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(samples, *shape, generator=generator, dtype=torch.float64)
    return {"flatness": spectral_flatness(noise), "correlation": neighbour_correlation(noise)}


def near_init_threshold(init_rms: float, radius: float, position: float = 0.5) -> float:
    """The RMS below which a filter counts as still at its init scale: `position` of the way from
    `init_rms` to the renormalization `radius` on a log scale."""
    if not (init_rms > 0 and radius > init_rms):
        raise ValueError(f"need 0 < init_rms < radius, got init_rms={init_rms}, radius={radius}")
    if not 0 < position < 1:
        raise ValueError(f"position must be in (0, 1), got {position}")
    return init_rms * (radius / init_rms) ** position


def dead_filter_criteria(weight: Tensor, init_rms: float, radius: float, position: float = 0.5,
                         quantile: float = 0.01, noise_samples: int = 2000, seed: int = 0) -> dict[str, Tensor]:
    """Boolean (out,) masks of the three dead-filter tests and their conjunction (module docstring):
    {"near_init", "white_spectrum", "low_correlation", "dead"}, and under "thresholds" the three
    thresholds used (rms, flatness, correlation) as 0-d tensors.

    `init_rms`: the filters' RMS at initialization (conv1 is drawn from N(0, init_std^2) in every init
    scheme of `zfnet.nets.models`, so init_std); `radius`: the RMS renormalization radius (0.1).
    """
    floor = noise_floor(weight.shape[1:], noise_samples, seed)
    q = torch.tensor([quantile, 1 - quantile], dtype=torch.float64)
    flatness_threshold = torch.quantile(floor["flatness"], q[0])
    correlation_threshold = torch.quantile(floor["correlation"], q[1])
    rms_threshold = torch.tensor(near_init_threshold(init_rms, radius, position), dtype=torch.float64)
    near_init = filter_rms(weight).cpu() <= rms_threshold
    white = spectral_flatness(weight) >= flatness_threshold
    low = neighbour_correlation(weight) <= correlation_threshold
    return {"near_init": near_init, "white_spectrum": white, "low_correlation": low,
            "dead": near_init & white & low,
            "thresholds": {"rms": rms_threshold, "flatness": flatness_threshold,
                           "correlation": correlation_threshold}}


# --------------------------------------------------------------------------- spectra


def radial_frequency(size: int) -> Tensor:
    """(size, size) radial frequency of each 2-D DFT bin, in cycles per pixel (0 to about 0.707)."""
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    return (f[:, None] ** 2 + f[None, :] ** 2).sqrt()


def _padded_power(weight: Tensor, size: int) -> Tensor:
    """(out, size, size) DFT power of each filter zero-padded to size x size, colour planes summed."""
    filters = weight.detach().double().cpu()
    if size < max(filters.shape[-2:]):
        raise ValueError(f"size {size} is smaller than the {tuple(filters.shape[-2:])} filters")
    if len(filters) == 0:  # (MKL's FFT refuses empty batches)
        return filters.new_zeros(0, size, size)
    return torch.fft.fft2(filters, s=(size, size)).abs().pow(2).sum(dim=1)


def peak_frequency(weight: Tensor, size: int = 64) -> Tensor:
    """(out,) radial frequency (cycles per pixel) of each filter's strongest spectral bin other than DC
    (f = 0); NaN for a filter with no power off DC."""
    power = _padded_power(weight, size).flatten(1)
    power[:, 0] = -1.0  # DC excluded
    peak = power.argmax(dim=1)
    frequency = radial_frequency(size).flatten()[peak]
    return torch.where(power.max(dim=1).values > 0, frequency, torch.nan)


def centroid_frequency(weight: Tensor, size: int = 64) -> Tensor:
    """(out,) power-weighted mean radial frequency of each filter, the DC bin left out; NaN for a
    filter with no power off DC."""
    power = _padded_power(weight, size).flatten(1)
    power[:, 0] = 0.0
    total = power.sum(dim=1)
    centroid = (power * radial_frequency(size).flatten()).sum(dim=1) / total.clamp_min(torch.finfo(total.dtype).tiny)
    return torch.where(total > 0, centroid, torch.nan)


def band_of(frequency: Tensor, edges: tuple[float, float] = BAND_EDGES) -> Tensor:
    """(n,) band index of each frequency: 0 low, 1 mid, 2 high; -1 for NaN."""
    band = (frequency >= edges[0]).long() + (frequency >= edges[1]).long()
    return torch.where(frequency.isnan(), -1, band)


def band_counts(frequency: Tensor, edges: tuple[float, float] = BAND_EDGES) -> dict[str, float | None]:
    """Share of the (finite) frequencies in each band; None for each when there are none."""
    band = band_of(frequency, edges)
    band = band[band >= 0]
    if len(band) == 0:
        return dict.fromkeys(BANDS)
    counts = torch.bincount(band, minlength=3).double() / len(band)
    return dict(zip(BANDS, counts.tolist()))


def frequency_histogram(frequency: Tensor, edges: Sequence[float] = FREQUENCY_EDGES) -> list[int]:
    """Counts of the finite frequencies in the bins [edges[i], edges[i+1]); the last bin also takes
    everything beyond its upper edge."""
    frequency = frequency[frequency.isfinite()].double()
    inner = torch.tensor(edges[1:-1], dtype=torch.float64)
    index = torch.bucketize(frequency, inner, right=True)
    return torch.bincount(index, minlength=len(edges) - 1).tolist()


def band_shares(weight: Tensor, size: int = 64, edges: tuple[float, float] = BAND_EDGES) -> Tensor:
    """(out, 3) share of each filter's spectral energy (DC included) in the low, mid and high bands;
    rows sum to 1, NaN for a filter of zeros. Averaged over a bank this cannot tell a bank of some low
    and some high filters from one whose every filter holds both: use the per-filter peaks instead."""
    power = _padded_power(weight, size)
    radius = radial_frequency(size)
    low, mid = radius < edges[0], (radius >= edges[0]) & (radius < edges[1])
    energy = torch.stack([power[:, band].sum(dim=1) for band in (low, mid, ~(low | mid))], dim=1)
    total = energy.sum(dim=1, keepdim=True)
    return torch.where(total > 0, energy / total.clamp_min(torch.finfo(total.dtype).tiny), torch.nan)


def white_noise_shares(size: int = 64, edges: tuple[float, float] = BAND_EDGES) -> Tensor:
    """(3,) each band's share of the DFT bins: the band shares of a flat spectrum, and the chance that
    a white-noise filter's peak falls in each band."""
    radius = radial_frequency(size)
    low = (radius < edges[0]).double().mean()
    mid = ((radius >= edges[0]) & (radius < edges[1])).double().mean()
    return torch.stack([low, mid, 1 - low - mid])


# --------------------------------------------------------------------------- aliasing: filters


def _inside_weight(size: int, nyquist: float) -> Tensor:
    """(size,) 1 for DFT frequencies below `nyquist` in magnitude, 1/2 on it, 0 above."""
    f = torch.fft.fftfreq(size, dtype=torch.float64).abs()
    on = (f - nyquist).abs() < 1e-9
    return torch.where(on, 0.5, (f < nyquist).double())


def above_nyquist_share(weight: Tensor, stride: int, size: int = 64) -> Tensor:
    """(out,) each filter's share of power (DC included) outside the square |fx|, |fy| <= 1/(2 stride):
    what aliases when its output is sampled every `stride` pixels. NaN for a filter of zeros."""
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    power = _padded_power(weight, size)
    inside_1d = _inside_weight(size, 1 / (2 * stride))
    inside = (power * inside_1d[:, None] * inside_1d[None, :]).sum(dim=(1, 2))
    total = power.sum(dim=(1, 2))
    share = 1 - inside / total.clamp_min(torch.finfo(total.dtype).tiny)
    return torch.where(total > 0, share.clamp(0, 1), torch.nan)


def white_noise_above_nyquist(stride: int) -> float:
    """The above-Nyquist share of a flat spectrum: 1 - 1/stride^2."""
    return 1 - 1 / stride**2


# --------------------------------------------------------------------------- aliasing: features


def shift_sensitivity(features: Callable[[Tensor], Tensor], images: Tensor, step: int,
                      shifts: Sequence[int] = (1, 2, 3), valid: tuple[int, int] | None = None) -> Tensor:
    """(n, len(shifts)) S(d) of each image for each shift d (module docstring).

    `images` (n, C, H, W): the unshifted input is the top-left (H - step) x (W - step) window, the
    shifted ones the same window moved d pixels right or down, so every input is real image content.
    `features` maps a batch of inputs to (n, K, h, w); `step` is its grid step J in input pixels;
    `valid` = (lo, hi): the feature rows and columns kept (those whose receptive fields lie inside the
    input), all when None. An image whose features do not change under a whole step gets NaN.
    """
    shifts = list(shifts)
    if not shifts or min(shifts) < 1 or max(shifts) >= step:
        raise ValueError(f"shifts must lie in [1, {step - 1}] (below the grid step {step}), got {shifts}")
    h, w = images.shape[-2] - step, images.shape[-1] - step
    if h < 1 or w < 1:
        raise ValueError(f"images {tuple(images.shape[-2:])} are not larger than the step {step}")

    def crop(y: int, x: int) -> Tensor:
        phi = features(images[..., y:y + h, x:x + w]).double()
        return phi if valid is None else phi[..., valid[0]:valid[1], valid[0]:valid[1]]

    base = crop(0, 0)

    def change(d: int) -> Tensor:  # squared change, shifts along x and y together
        return sum((crop(*offset) - base).pow(2).flatten(1).sum(dim=1) for offset in ((0, d), (d, 0)))

    whole = change(step)
    ratios = [change(d) / whole.clamp_min(torch.finfo(whole.dtype).tiny) for d in shifts]
    return torch.where(whole[:, None] > 0, torch.stack(ratios, dim=1).sqrt(), torch.nan)


def _layer_output(model: nn.Module, layer: str) -> Callable[[Tensor], Tensor]:
    """images -> the map of `layer` (a conv's rectified output; see deconv.output_module_name)."""
    from zfnet.probes.deconv import output_module_name

    stop = output_module_name(model, layer)

    def run(x: Tensor) -> Tensor:
        for name, module in model.features.named_children():
            x = module(x)
            if name == stop:
                return x
        raise ValueError(f"layer {layer!r} not reached")

    return run


def feature_grid(model: nn.Module, layer: str) -> tuple[int, int, int]:
    """(step, start, size) of `layer`: activation y sees input rows start + y*step .. + size."""
    from zfnet.probes.top9 import receptive_field

    far, big = 1000, (10**9, 10**9)
    y0, y1, _, _ = receptive_field(model, layer, far, far, input_size=big)
    step = receptive_field(model, layer, far + 1, far + 1, input_size=big)[0] - y0
    return step, y0 - far * step, y1 - y0


def interior_positions(step: int, start: int, size: int, side: int) -> tuple[int, int]:
    """(lo, hi): the feature positions lo <= y < hi whose receptive field, start + y*step .. + size,
    lies inside an input of `side` pixels (touches no padding)."""
    lo = -(start // step) if start < 0 else 0  # ceil(-start / step)
    return lo, (side - size - start) // step + 1


@torch.no_grad()
def model_shift_sensitivity(model: nn.Module, layer: str, images: Tensor, shifts: Sequence[int] = (1, 2, 3),
                            batch_size: int = 32) -> tuple[Tensor, int]:
    """S(d) (n, len(shifts)) of `model`'s `layer` on `images` (n, 3, H, W), and the layer's grid step.

    Kept positions: those whose receptive field lies inside the (H - step) x (W - step) inputs, so
    zero padding at the borders does not count.
    """
    step, start, size = feature_grid(model, layer)
    side = min(images.shape[-2:]) - step
    lo, hi = interior_positions(step, start, size, side)
    if hi <= lo:
        raise ValueError(f"{layer}: no position's receptive field ({size} px) fits in {side} px inputs")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    run = _layer_output(model, layer)
    try:
        out = [shift_sensitivity(run, images[i:i + batch_size].to(device), step, shifts, (lo, hi)).cpu()
               for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out), step


def noise_conv1(model: nn.Module, seed: int = 0, layer: str = "conv1") -> nn.Module:
    """A copy of `model` whose `layer` filters are i.i.d. Gaussian noise, each at its original RMS
    (biases kept): the white-noise floor of the functional aliasing measure."""
    noisy = copy.deepcopy(model)
    conv = dict(noisy.features.named_children())[layer]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        noise = torch.randn(conv.weight.shape, generator=generator, dtype=torch.float64)
        noise = noise / filter_rms(noise).view(-1, 1, 1, 1) * filter_rms(conv.weight).cpu().view(-1, 1, 1, 1)
        conv.weight.copy_(noise.to(conv.weight))
    return noisy


# --------------------------------------------------------------------------- aliasing: projections


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


def white_noise_lattice_share(window: int, period: int = 4) -> float:
    """Expected `lattice_share` of white noise on a window x window image: (p^2 - 1) / (N - 1), N the
    pixels left after cropping to multiples of p (mean-removed Gaussian noise is isotropic in the N - 1
    dimensions left, and the lattice spans p^2 - 1 of them)."""
    side = (window // period) * period
    if side < period or side * side <= 1:
        raise ValueError(f"window {window} is smaller than the period {period}")
    return (period**2 - 1) / (side * side - 1)
