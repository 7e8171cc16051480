"""Stage `architecture`: ZFNet against AlexNet at layers 1 and 2, drawn and measured (paper Fig. 6).

    python pipelines/architecture.py [visualize.architecture.no_renorm_checkpoint=outputs/norenorm/best.ckpt]

Every entry of `models` (and, when given, a checkpoint trained without RMS renormalization, Fig. 6a)
is loaded from its train checkpoint. Drawn: the conv1 filters side by side (Fig. 6 a-c) and the
projections of the strongest validation activation of a random set of conv2 maps (Fig. 6 d-e).
Measured per model (definitions in zfnet.probes.filters; every per-filter or per-image measure is
reported as its spread: n, median, quartiles, extremes):

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

Outputs: plots/architecture/{conv1_filters,conv2_projections,measures}.png;
metrics/architecture.json ({label: measures}); evidence/architecture.json (`evidence`: per filter and per
projection, what the report's intervals resample); W&B: the figures and the measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zfnet.data.images import image_set, subset
from zfnet.data.loading import normalize
from zfnet.data.prepare import PreparedSplit
from zfnet.errors import UserError
from zfnet.io import save_figure
from zfnet.nets.models import get_layer
from zfnet.nets.training import load_trained
from zfnet.pipeline import stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.probes import filters as F
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.projections import choose_maps, cut, project_top, receptive_window, responsive_maps, signed_stretch
from zfnet.probes.top9 import top_activations
from zfnet.tiles import mosaic
from zfnet.viz.architecture import measures_figure, side_by_side
from zfnet.viz.figures import filter_mosaic, to_hwc

PAPER_RADIUS = 0.1  # the paper's RMS radius: the learned scale when a checkpoint was trained without it


def main(cfg) -> None:
    vis, arch = cfg.visualize, cfg.visualize.architecture
    device = device_for(cfg.trainer.accelerator)
    checkpoints = {key: stage.checkpoint_path(cfg, key) for key in cfg.models}
    if arch.no_renorm_checkpoint:
        checkpoints[None] = Path(arch.no_renorm_checkpoint)
    split = PreparedSplit(Path(cfg.paths.prepared) / "val")
    indices = subset(len(split), vis.top9.images, cfg.seed)
    shift_indices = subset(len(split), arch.shift_images, cfg.seed)
    raw_shift_images = torch.stack([split[i][0] for i in shift_indices])

    loaded = {}
    for key, path in checkpoints.items():
        model, hparams = load_trained(path, device)
        # entries of `models` keep their names; the extra checkpoint is named for what it is
        label = key or f"{hparams['arch']['name']}_no_renorm_checkpoint"
        loaded[label] = model, hparams
    step = F.feature_grid(next(iter(loaded.values()))[0], arch.shift_layer)[0]
    if max(arch.shifts) >= step:
        raise UserError(f"visualize.architecture.shifts: {list(arch.shifts)} must all be below the "
                        f"{arch.shift_layer} grid step, {step} px")
    window = alias_window(arch.alias_window, arch.alias_period,
                          [receptive_window(model, "conv2").size for model, _ in loaded.values()])

    measures, samples, filters, projections = {}, {}, {}, {}
    for label, (model, hparams) in loaded.items():
        images = image_set(split, hparams, indices)
        shift_inputs = normalize(raw_shift_images, hparams["mean"], float(hparams.get("input_scale", 1.0)))
        measures[label], samples[label], filters[label], projections[label] = compare(
            model, hparams, images, shift_inputs, window, cfg)
        m = measures[label]
        stage.log.info("%s: dead conv1 %.3f; live peak frequency median %s, mid share %s; above Nyquist median "
                       "%s (noise %.3f); S(%d) median %s (noise conv1 %s)", label, m["conv1_dead"]["share"],
                       _fmt(m["conv1_peak_frequency"]["spread"]["median"]),
                       _fmt(m["conv1_peak_frequency"]["band_shares"]["mid"]),
                       _fmt(m["conv1_above_nyquist"]["spread"]["median"]), m["conv1_above_nyquist"]["white_noise"],
                       arch.shifts[0], _fmt(m["shift"]["model"][str(arch.shifts[0])]["median"]),
                       _fmt(m["shift"]["noise_conv1"][str(arch.shifts[0])]["median"]))

    plots = stage.plot_dir(cfg, "architecture")
    labels = list(measures)
    figures = {
        "conv1_filters": side_by_side([filters[m] for m in labels], [f"{m} conv1" for m in labels],
                                      "Layer-1 filters (Fig. 6 a-c)"),
        "conv2_projections": side_by_side([projections[m] for m in labels], [f"{m} conv2" for m in labels],
                                          "Layer-2 features: strongest activation of random maps, projected "
                                          "(Fig. 6 d-e)", cell=5.0),
        "measures": measures_figure(measures, samples, "Architecture selection (Fig. 6), measured"),
    }
    paths = {}
    for name, fig in figures.items():
        paths[f"architecture/{name}"] = plots / f"{name}.png"
        save_figure(fig, paths[f"architecture/{name}"])
    with Tracker(cfg, "architecture") as tracker:
        tracker.images(paths)
        tracker.summary({"architecture": measures})
    stage.write_evidence(cfg, "architecture", evidence(samples))   # before the metrics: they say "done"
    stage.write_metrics(cfg, "architecture", measures)


def alias_window(configured: int | None, period: int, receptive_fields: list[int]) -> int:
    """The one window side every model's lattice share is measured on: `configured`, or the smallest
    conv2 receptive field; floored to a multiple of the period."""
    side = configured if configured is not None else min(receptive_fields)
    side = (side // period) * period
    if side < period:
        raise ValueError(f"alias window {side} is smaller than the period {period}")
    return side


def compare(model, hparams, images, shift_inputs, window: int, cfg) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """One model's Fig. 6 measures, its per-filter / per-image values (for the figure), its conv1
    filter mosaic and its conv2 projection mosaic."""
    vis, arch = cfg.visualize, cfg.visualize.architecture
    conv1 = get_layer(model, "conv1")
    weight = conv1.weight.detach().cpu()
    stride = conv1.stride[0]
    init_rms = float(model.options["init_std"])  # conv1 ~ N(0, init_std^2) under every init scheme
    radius = hparams.get("renorm_radius") or PAPER_RADIUS
    if not radius > init_rms:
        raise UserError(f"conv1 init RMS {init_rms} is not below the RMS radius {radius}: "
                        "a dead filter (one still at its init scale) cannot be told from a learned one")
    criteria = F.dead_filter_criteria(weight, init_rms, radius, arch.dead_rms_position, arch.dead_noise_quantile,
                                      arch.noise_samples, cfg.seed)
    dead = criteria["dead"]
    live = weight[~dead]
    rms = F.filter_rms(weight)
    peak = F.peak_frequency(live, arch.spectrum_size)
    centroid = F.centroid_frequency(live, arch.spectrum_size)
    above = F.above_nyquist_share(live, stride, arch.spectrum_size)

    shifts = list(arch.shifts)
    shift, step = F.model_shift_sensitivity(model, arch.shift_layer, shift_inputs, shifts, vis.batch_size)
    noisy = F.noise_conv1(model, cfg.seed)
    shift_noise, _ = F.model_shift_sensitivity(noisy, arch.shift_layer, shift_inputs, shifts, vis.batch_size)
    del noisy

    batches = images.batches(vis.batch_size, cfg.trainer.num_workers, next(model.parameters()).device)
    top = top_activations(model, batches, ["conv2"], k=1)["conv2"]
    maps = choose_maps(responsive_maps(top), arch.conv2_maps, cfg.seed, "conv2")
    field = receptive_window(model, "conv2")
    raw = project_top(Deconvnet(model, vis.normalize_down), images, "conv2", top, maps, vis.batch_size)
    crops, patches, tiles = [], [], []
    for m, channel in enumerate(maps):
        y, x = int(top.y[channel, 0]), int(top.x[channel, 0])
        tiles.append(to_hwc(signed_stretch(cut(raw[m, 0], *field.origin(y, x), field.size))))
        crops.append(centred_cut(raw[m, 0], field, y, x, window))
        patches.append(centred_cut(images.raw(int(top.image_index[channel, 0])), field, y, x, window))
    crops_t = torch.from_numpy(np.stack(crops)) if crops else torch.zeros(0, 3, window, window)
    patches_t = torch.from_numpy(np.stack(patches)) if patches else crops_t
    lattice, patch_lattice = F.lattice_share(crops_t, arch.alias_period), F.lattice_share(patches_t, arch.alias_period)

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
        "white_noise_band_shares": dict(zip(F.BANDS, F.white_noise_shares(arch.spectrum_size).tolist())),
        "conv1_above_nyquist": {"spread": F.spread(above), "nyquist": 1 / (2 * stride),
                                "white_noise": F.white_noise_above_nyquist(stride)},
        "shift": {"layer": arch.shift_layer, "step": step, "images": len(shift_inputs), "shifts": shifts,
                  "model": {str(d): F.spread(shift[:, i]) for i, d in enumerate(shifts)},
                  "noise_conv1": {str(d): F.spread(shift_noise[:, i]) for i, d in enumerate(shifts)},
                  "smooth": {str(d): d / step for d in shifts}},
        "conv2_maps_projected": len(maps),
        "conv2_lattice": {"window": window, "period": arch.alias_period,
                          "projections": F.spread(lattice), "patches": F.spread(patch_lattice),
                          "white_noise": F.white_noise_lattice_share(crops_t.shape[-1], arch.alias_period)},
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
    zfnet.viz.visualize.Window), from a (C, H, W) image; the part outside the image is 0."""
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


if __name__ == "__main__":
    stage.run("architecture", main)
