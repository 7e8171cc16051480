"""ZFNet against AlexNet at layers 1 and 2, drawn and measured (paper Fig. 6; stage `architecture`).

    result = run({"zfnet": (model, hparams), ...}, Subset(split, indices), shift_images, cfg.visualize.architecture,
                 seed=0, batch_size=64, normalize_down=False)

Per model: its conv1 filters as one mosaic (Fig. 6 a-c) and the projections of the strongest activation over
`images` of a random set of conv2 maps (Fig. 6 d-e), with these measures (definitions in zfnet.probes.filters;
every per-filter or per-image measure is reported as its spread: n, median, quartiles, extremes):

* `conv1_dead`: the three dead-filter tests (RMS near the init scale, spectrum indistinguishable from
  white noise, low neighbour correlation) and their conjunction, with the thresholds used. The init
  RMS is the model's `init_std` (conv1 is N(0, init_std^2) in every init scheme); the radius is the
  checkpoint's `renorm_radius`, or the paper's 0.1 for a checkpoint trained without renormalization.
* `conv1_peak_frequency`, `conv1_centroid_frequency`: over the live (not dead) conv1 filters, the
  spread, the share in the low/mid/high thirds of Nyquist, and the histogram on `frequency_edges`;
  `white_noise_band_shares` is what white-noise filters would give.
* `conv1_above_nyquist`: each live conv1 filter's share of power above its stride's Nyquist
  frequency 1/(2 stride); `white_noise` = 1 - 1/stride^2, its value for an untrained filter.
* `shift`: S(d), the change of `shift_layer` features under a d-pixel input shift relative to the
  change under one whole grid step, per image, for d in `shifts`; `noise_conv1` is the same model
  with white-noise conv1 filters (the model's own floor); `smooth` = d / step, the alias-free guide.
* `conv2_lattice`: the share of energy on the period-`alias_period` lattice of each conv2
  projection and of the image patch under it, on windows of one size for every model
  (`alias_window`, default the smallest conv2 receptive field, centred on each one), with the white
  noise value for that window.

`ArchitectureResult.measures` is the stage's metrics/architecture.json ({label: measures}); `evidence` its
evidence/architecture.json (per filter and per projection, what the report's intervals resample).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from zfnet.data.images import image_set
from zfnet.data.loading import normalize
from zfnet.errors import UserError
from zfnet.nets.models import get_layer
from zfnet.probes import filters as F
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.projections import choose_maps, cut, project_top, receptive_window, responsive_maps, signed_stretch
from zfnet.probes.top9 import top_activations
from zfnet.tiles import filter_mosaic, mosaic, to_hwc

PAPER_RADIUS = 0.1  # the paper's RMS radius: the learned scale when a checkpoint was trained without it
log = logging.getLogger("zfnet")


@dataclass
class ArchitectureResult:
    measures: dict[str, dict]  # {label: measures}: the metrics, as the stage writes them
    samples: dict[str, dict]  # {label: per-filter / per-image tensors}: rms, dead, peak, centroid, ... (figures)
    filters: dict[str, np.ndarray]  # {label: conv1 filter mosaic (H, W, 3)}
    projections: dict[str, np.ndarray]  # {label: mosaic of conv2 projections (H, W, 3)}
    window: int  # the side of the equal conv2 lattice windows
    evidence: dict  # the per-unit values the report resamples (see `evidence`)


def run(models: dict[str, tuple[torch.nn.Module, dict]], images, shift_images: torch.Tensor, settings, *,
        seed: int, batch_size: int, normalize_down: bool, workers: int = 0) -> ArchitectureResult:
    """Fig. 6 for every `models` entry ({label: (eval-mode model, checkpoint hparams)}), in that order.

    `images`: a dataset of (uint8 CHW image, label) at the prepared size (e.g. a Subset of a PreparedSplit), which
    each model sees through its own hparams (mean, crop, input_scale); conv2's strongest activations are searched
    over all of them. `shift_images`: (n, 3, H, W) uint8 images for the shift measure. `settings`: the
    `visualize.architecture` config section (shift_layer, shifts, alias_window, alias_period, conv2_maps,
    spectrum_size, dead_rms_position, dead_noise_quantile, noise_samples)."""
    first = next(iter(models.values()))[0]
    step = F.feature_grid(first, settings.shift_layer)[0]
    if max(settings.shifts) >= step:
        raise UserError(f"visualize.architecture.shifts: {list(settings.shifts)} must all be below the "
                        f"{settings.shift_layer} grid step, {step} px")
    window = alias_window(settings.alias_window, settings.alias_period,
                          [receptive_window(model, "conv2").size for model, _ in models.values()])

    measures, samples, filters, projections = {}, {}, {}, {}
    for label, (model, hparams) in models.items():
        model_images = image_set(images, hparams)
        shift_inputs = normalize(shift_images, hparams["mean"], float(hparams.get("input_scale", 1.0)))
        measures[label], samples[label], filters[label], projections[label] = compare(
            model, hparams, model_images, shift_inputs, window, settings, seed=seed, batch_size=batch_size,
            normalize_down=normalize_down, workers=workers)
        _log(label, measures[label], settings.shifts[0])
    return ArchitectureResult(measures, samples, filters, projections, window, evidence(samples))


def alias_window(configured: int | None, period: int, receptive_fields: list[int]) -> int:
    """The one window side every model's lattice share is measured on: `configured`, or the smallest
    conv2 receptive field; floored to a multiple of the period."""
    side = configured if configured is not None else min(receptive_fields)
    side = (side // period) * period
    if side < period:
        raise ValueError(f"alias window {side} is smaller than the period {period}")
    return side


def compare(model, hparams, images, shift_inputs, window: int, settings, *, seed: int, batch_size: int,
            normalize_down: bool, workers: int = 0) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """One model's Fig. 6 measures, its per-filter / per-image values (for the figure), its conv1
    filter mosaic and its conv2 projection mosaic. `images` is an ImageSet as this model sees it."""
    conv1 = get_layer(model, "conv1")
    weight = conv1.weight.detach().cpu()
    stride = conv1.stride[0]
    init_rms = float(model.options["init_std"])  # conv1 ~ N(0, init_std^2) under every init scheme
    radius = hparams.get("renorm_radius") or PAPER_RADIUS
    if not radius > init_rms:
        raise UserError(f"conv1 init RMS {init_rms} is not below the RMS radius {radius}: "
                        "a dead filter (one still at its init scale) cannot be told from a learned one")
    criteria = F.dead_filter_criteria(weight, init_rms, radius, settings.dead_rms_position, settings.dead_noise_quantile,
                                      settings.noise_samples, seed)
    dead = criteria["dead"]
    live = weight[~dead]
    rms = F.filter_rms(weight)
    peak = F.peak_frequency(live, settings.spectrum_size)
    centroid = F.centroid_frequency(live, settings.spectrum_size)
    above = F.above_nyquist_share(live, stride, settings.spectrum_size)

    shifts = list(settings.shifts)
    shift, step = F.model_shift_sensitivity(model, settings.shift_layer, shift_inputs, shifts, batch_size)
    noisy = F.noise_conv1(model, seed)
    shift_noise, _ = F.model_shift_sensitivity(noisy, settings.shift_layer, shift_inputs, shifts, batch_size)
    del noisy

    batches = images.batches(batch_size, workers, next(model.parameters()).device)
    top = top_activations(model, batches, ["conv2"], k=1)["conv2"]
    maps = choose_maps(responsive_maps(top), settings.conv2_maps, seed, "conv2")
    field = receptive_window(model, "conv2")
    raw = project_top(Deconvnet(model, normalize_down), images, "conv2", top, maps, batch_size)
    crops, patches, tiles = [], [], []
    for m, channel in enumerate(maps):
        y, x = int(top.y[channel, 0]), int(top.x[channel, 0])
        tiles.append(to_hwc(signed_stretch(cut(raw[m, 0], *field.origin(y, x), field.size))))
        crops.append(centred_cut(raw[m, 0], field, y, x, window))
        patches.append(centred_cut(images.raw(int(top.image_index[channel, 0])), field, y, x, window))
    crops_t = torch.from_numpy(np.stack(crops)) if crops else torch.zeros(0, 3, window, window)
    patches_t = torch.from_numpy(np.stack(patches)) if patches else crops_t
    lattice, patch_lattice = F.lattice_share(crops_t, settings.alias_period), F.lattice_share(patches_t, settings.alias_period)

    dead_measures = {"share": _share(dead), "count": int(dead.sum())}
    dead_measures.update({f"{name}_share": _share(criteria[name])
                          for name in ("near_init", "white_spectrum", "low_correlation")})
    dead_measures["thresholds"] = {name: float(value) for name, value in criteria["thresholds"].items()}
    dead_measures.update({"init_rms": init_rms, "radius": float(radius)})
    measures = {
        "conv1_filters": len(weight),
        "conv1_live_filters": len(live),
        "conv1_stride": stride,
        "conv1_rms": F.spread(rms),
        # Fig. 6(a): without renormalization a few filters dominate; 1 would be a bank of equal norms
        "conv1_rms_max_over_median": float(rms.max() / rms.median()),
        "conv1_dead": dead_measures,
        "conv1_peak_frequency": frequency_measures(peak),
        "conv1_centroid_frequency": frequency_measures(centroid),
        "frequency_edges": list(F.FREQUENCY_EDGES),
        "white_noise_band_shares": dict(zip(F.BANDS, F.white_noise_shares(settings.spectrum_size).tolist())),
        "conv1_above_nyquist": {"spread": F.spread(above), "nyquist": 1 / (2 * stride),
                                "white_noise": F.white_noise_above_nyquist(stride)},
        "shift": {"layer": settings.shift_layer, "step": step, "images": len(shift_inputs), "shifts": shifts,
                  "model": {str(d): F.spread(shift[:, i]) for i, d in enumerate(shifts)},
                  "noise_conv1": {str(d): F.spread(shift_noise[:, i]) for i, d in enumerate(shifts)},
                  "smooth": {str(d): d / step for d in shifts}},
        "conv2_maps_projected": len(maps),
        "conv2_lattice": {"window": window, "period": settings.alias_period,
                          "projections": F.spread(lattice), "patches": F.spread(patch_lattice),
                          "white_noise": F.white_noise_lattice_share(crops_t.shape[-1], settings.alias_period)},
    }
    samples = {"rms": rms, "dead": dead, "peak": peak, "centroid": centroid, "above_nyquist": above, "shift": shift,
               "shift_noise": shift_noise, "lattice": lattice, "patch_lattice": patch_lattice}
    tiles = tiles or [np.ones((field.size, field.size, 3))]
    return (measures, samples, filter_mosaic(weight, shared_scale=True),
            mosaic(tiles, int(np.ceil(np.sqrt(len(tiles))))))


def evidence(samples: dict[str, dict]) -> dict:
    """The per-unit values behind each model's measures, for the report's intervals: per conv1 filter its RMS and
    whether it is dead (1) or not (0); per live filter its centroid frequency and power share above Nyquist; per
    projected conv2 map its lattice share; and the band edges that make a centroid "mid" (6 digits; null: NaN)."""
    def values(tensor: torch.Tensor) -> list:
        return [round(v, 6) if np.isfinite(v) else None for v in tensor.double().tolist()]

    return {"mid_band": list(F.BAND_EDGES), **{label: {
        "dead": s["dead"].int().tolist(), "rms": values(s["rms"]), "centroid_frequency": values(s["centroid"]),
        "above_nyquist": values(s["above_nyquist"]), "lattice": values(s["lattice"])} for label, s in samples.items()}}


def centred_cut(image, field, y: int, x: int, window: int) -> np.ndarray:
    """The window x window square at the centre of activation (y, x)'s receptive field `field` (a
    zfnet.probes.projections.Window), from a (C, H, W) image; the part outside the image is 0."""
    y0, x0 = field.origin(y, x)
    offset = (field.size - window) // 2
    return cut(image, y0 + offset, x0 + offset, window)


def frequency_measures(frequency: torch.Tensor) -> dict:
    """Spread, band shares and histogram (on F.FREQUENCY_EDGES) of per-filter frequencies."""
    return {"spread": F.spread(frequency), "band_shares": F.band_counts(frequency),
            "histogram": F.frequency_histogram(frequency)}


def _share(mask: torch.Tensor) -> float:
    return float(mask.double().mean()) if len(mask) else float("nan")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _log(label: str, m: dict, shift: int) -> None:
    log.info("%s: dead conv1 %.3f; live peak frequency median %s, mid share %s; above Nyquist median "
             "%s (noise %.3f); S(%d) median %s (noise conv1 %s)", label, m["conv1_dead"]["share"],
             _fmt(m["conv1_peak_frequency"]["spread"]["median"]),
             _fmt(m["conv1_peak_frequency"]["band_shares"]["mid"]),
             _fmt(m["conv1_above_nyquist"]["spread"]["median"]), m["conv1_above_nyquist"]["white_noise"],
             shift, _fmt(m["shift"]["model"][str(shift)]["median"]),
             _fmt(m["shift"]["noise_conv1"][str(shift)]["median"]))
