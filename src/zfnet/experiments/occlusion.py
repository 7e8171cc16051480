"""Occlusion sensitivity over a set of images (paper Fig. 7).

    result = run(model, images, labels, cfg.occlusion, notes=notes, untrained=control, seed=0, normalize_down=False)
    result.metrics        # what metrics/occlusion_<model>.json holds
    result.evidence       # per image, what the report's intervals resample
    result.rows           # {class index: [OcclusionRow]}: the Fig. 7 panels (zfnet.viz.occlusion draws them)

A grey square (`settings.fill` in the network's input space; 0 is the per-pixel mean) slides over each
image (`zfnet.probes.occlusion`, the exact incremental engine by default). Per image and position: p(true
class), the most probable class, and the total activation of the layer-5 map that is strongest on the
unoccluded image.

Measured over the images with annotations (`notes`: per image a `zfnet.data.annotations.Annotation`, or None
when the dataset has none), definitions in `zfnet.probes.occlusion_measures`:
* `pointing_game`: the largest drop in p(true) falls within the tolerance of the object's box
  (15 px at 224 px, scaled to the input), beside the centre baseline that always points at the middle;
  also over the "evident" images only (p(true) drops by at least 0.01 somewhere: elsewhere the
  largest drop is rounding noise); `pointing_game_mask`: the same against the object's mask;
* `p_true_drop`: the mean drop when the occluder lies on the object against background only (masks);
* `top_label_change`: the share of positions whose top label differs from the unoccluded image's
  (also on the object and on background only);
* `layer5_map_drop`: Fig. 7(b)'s claim: the relative drop of the strongest layer-5 map's total where
  the occluder covers the centre of mass of that map's deconvnet projection, against elsewhere.

Negative control (`untrained`): the same architecture freshly initialized by its own `init` scheme from
`seed` (`zfnet.nets.training.untrained_like`), never trained, swept on the same images with the same
occluder grid, mode and batch: its p(true) drops on the object and background and its layer-5 map drop in
the metrics (under "untrained"), its per-image columns in the evidence (no maps, no figures). Covering the
spot that drives a layer-5 map lowers that map whatever the weights: a claim the control shows too says
nothing about learning.

Panel (c) of each figure row shows the map's projection in this image, then (`others`: the visualize stage's
conv5 top-k over every validation image, and those images) its top activations in other images.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from zfnet.data.images import ImageSet
from zfnet.probes import occlusion_measures as M
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.occlusion import Approximation, Sweep, occlusion_sweep
from zfnet.probes.projections import project_top, projection_tile, receptive_window
from zfnet.probes.top9 import TopK, top_activations
from zfnet.tiles import mosaic

log = logging.getLogger("zfnet")

IMAGES_PER_CALL = 8  # images per sweep call: the progress bar's step
EVIDENT_DROP = 0.01  # an image whose p(true) never drops by this much gives the pointing game no evidence (ours)
EVIDENCE_MEANS = ("object_p_true", "background_p_true", "object_log_odds", "background_log_odds")
TABLE_COLUMNS = ["image", "class", "p_true", "top_label", "max_drop", "pointing_hit", "object_drop",
                 "background_drop", "label_change_share", "layer5_map"]


@dataclass
class OcclusionRow:
    """Everything one row of the Fig. 7 figure shows (numpy arrays; image HWC in [0, 1])."""

    image: np.ndarray
    label: int
    layer5_total: np.ndarray  # (G, G)
    channel: int
    projection: np.ndarray  # HWC in [0, 1]: panel (c), this image's tile first
    p_true: np.ndarray  # (G, G)
    top_label: np.ndarray  # (G, G) class indices
    base_p_true: float
    caption: str = ""


@dataclass
class OcclusionResult:
    """What `run` measured: the maps, the per-image measures, the metrics and evidence as the stage writes them,
    and the figure rows."""

    sweep: Sweep  # the trained net's maps, on the CPU
    per_image: dict[str, Tensor]  # (N,) float64 each: see `per_image`
    covering: Tensor  # (N,) the layer-5 map's relative drop covering its projection's centre ...
    elsewhere: Tensor  # ... and elsewhere
    labels: Tensor  # (N,)
    indices: list[int]  # the images' positions in their dataset
    metrics: dict
    evidence: dict[str, list]  # the control's columns under "untrained"
    rows: dict[int, list[OcclusionRow]]  # the figure rows per class index
    seconds: float  # the trained net's sweep
    untrained_sweep: Sweep | None = None
    untrained_seconds: float | None = None

    def speed(self) -> dict[str, float | None]:
        """Wall-clock seconds of the sweeps (not deterministic: for the log and W&B, never the metrics file)."""
        return {"seconds": self.seconds, "positions_per_s": self.sweep.p_true.numel() / self.seconds,
                "untrained_seconds": self.untrained_seconds}

    def maps(self) -> dict[str, Tensor]:
        """Every map of the sweep and the images' dataset indices (`image_index`)."""
        return {**self.sweep._asdict(), "image_index": torch.as_tensor(self.indices)}


def run(model: nn.Module, images: ImageSet, labels: Tensor, settings, *, seed: int, normalize_down: bool,
        notes: Sequence | None = None, untrained: nn.Module | None = None,
        others: tuple[TopK, ImageSet] | None = None) -> OcclusionResult:
    """Sweep `model` (eval mode; its device is used) over `images` with true `labels`, then measure.

    `settings`: the occlusion config section (patch, stride, fill, mode, approximate, batch_size,
    figure_per_class, pointing_tolerance, object_share); `notes`: per image its Annotation or None (None: no
    annotations); `untrained`: the negative control's net (built from `seed`), or None for none;
    `normalize_down`: the deconvnet's option (visualize.normalize_down); `others`: see the module docstring."""
    size, device = images.crop, _device(model)
    approximation = Approximation(**settings.approximate) if settings.mode == "approximate" else None
    started = time.perf_counter()
    sweep = run_sweep(model, images, labels, settings, approximation, device)
    seconds = time.perf_counter() - started
    log.info("%d images x %d occluder positions in %.1f s (%.0f positions/s, mode %s)", len(images),
             sweep.p_true[0].numel(), seconds, sweep.p_true.numel() / seconds, settings.mode)

    per = per_image(sweep, notes, settings, size)
    deconv = Deconvnet(model, normalize_down=normalize_down)
    covering, elsewhere = layer5_drops(sweep, projection_centres(deconv, images, sweep.channel, device), settings)
    metrics = {"images": len(images), "patch": settings.patch, "stride": settings.stride,
               "grid": sweep.p_true.shape[-1], "fill": settings.fill, "mode": settings.mode,
               "base_top1_error": float((sweep.base_label.cpu() != labels).double().mean()),
               **measure(per, settings, size), "layer5_map_drop": map_drop(covering, elsewhere)}
    evidence_columns = evidence(sweep, per, covering, elsewhere, labels, images.indices)
    result = OcclusionResult(sweep, per, covering, elsewhere, labels, list(images.indices), metrics,
                             evidence_columns, {}, seconds)
    if untrained is not None:
        started = time.perf_counter()
        metrics["untrained"], evidence_columns["untrained"], result.untrained_sweep = untrained_control(
            untrained, images, labels, notes, settings, seed, normalize_down, approximation)
        result.untrained_seconds = time.perf_counter() - started
        log.info("untrained (the negative control): the same sweep in %.1f s", result.untrained_seconds)
    result.rows = figure_rows(model, deconv, images, sweep, labels, settings.figure_per_class, others)
    return result


def run_sweep(model, images: ImageSet, labels: Tensor, settings, approximation, device,
              desc: str = "occlusion") -> Sweep:
    """`occlusion_sweep` over `images`, IMAGES_PER_CALL at a time, gathered on the CPU."""
    parts = []
    starts = range(0, len(images), IMAGES_PER_CALL)
    for start in tqdm(starts, desc=desc, unit="batch", disable=None):
        part = slice(start, min(start + IMAGES_PER_CALL, len(images)))
        batch = images.inputs(range(part.start, part.stop)).to(device)
        sweep = occlusion_sweep(model, batch, labels[part].to(device), settings.patch, settings.stride,
                                settings.fill, settings.mode, settings.batch_size, approximation)
        parts.append(Sweep(*(field.cpu() for field in sweep)))
    return Sweep(*(torch.cat(fields) for fields in zip(*parts)))


def untrained_control(model, images, labels, notes, settings, seed: int, normalize_down: bool,
                      approximation) -> tuple[dict, dict, Sweep]:
    """The negative control: `model` (untrained) swept like the trained net; (its metrics block: the p(true) drops
    on object and background and the layer-5 map drop; its per-image evidence, the columns the claims read;
    its sweep)."""
    device, size = _device(model), images.crop
    sweep = run_sweep(model, images, labels, settings, approximation, device, desc="untrained occlusion")
    per = per_image(sweep, notes, settings, size)
    deconv = Deconvnet(model, normalize_down=normalize_down)
    covering, elsewhere = layer5_drops(sweep, projection_centres(deconv, images, sweep.channel, device), settings)
    metrics = {"seed": seed, "init": model.options["init"],
               "base_top1_error": float((sweep.base_label != labels).double().mean()),
               "p_true_drop": measure(per, settings, size)["p_true_drop"],
               "layer5_map_drop": map_drop(covering, elsewhere)}
    columns = evidence(sweep, per, covering, elsewhere, labels, range(len(labels)))
    del columns["image"], columns["label"]  # the trained net's columns name them: the same images in the same order
    return metrics, {"seed": seed, **columns}, sweep


def per_image(sweep: Sweep, notes, settings, size: int) -> dict[str, Tensor]:
    """(N,) float64 per image: the largest drop in p(true), the share of positions whose top label
    changes, pointing-game hits (largest drop and centre baseline, against box and mask), and the mean
    drop and label-change share on the object and on background only; NaN where an image has no box
    or no mask (or no such position)."""
    n = len(sweep.p_true)
    drop = sweep.base_p_true[:, None, None] - sweep.p_true
    changed = (sweep.top_label != sweep.base_label[:, None, None]).double()
    result = {"max_drop": drop.flatten(1).amax(dim=1).double(), "label_change": changed.mean(dim=(1, 2))}
    for name in ("hit_box", "centre_hit_box", "hit_mask", "centre_hit_mask", "object_drop", "background_drop",
                 "object_label_change", "background_label_change", *EVIDENCE_MEANS):
        result[name] = torch.full((n,), float("nan"), dtype=torch.float64)
    notes = notes or [None] * n
    patch, stride, share = settings.patch, settings.stride, settings.object_share
    tolerance = settings.pointing_tolerance * size / 224
    boxed = [i for i, note in enumerate(notes) if note is not None and note.box is not None]
    if boxed:
        boxes = torch.tensor([notes[i].box for i in boxed], dtype=torch.float64)
        result["hit_box"][boxed] = M.pointing_hits(drop[boxed], boxes, patch, stride, tolerance).double()
        result["centre_hit_box"][boxed] = M.centre_hits(boxes, size, tolerance).double()
    masked = [i for i, note in enumerate(notes) if note is not None and note.mask is not None]
    if masked:
        masks = torch.from_numpy(np.stack([notes[i].mask for i in masked]))
        points = M.largest_drop_points(drop[masked], patch, stride)
        centre = torch.full((len(masked), 2), size / 2, dtype=torch.float64)
        result["hit_mask"][masked] = M.mask_hits(points, masks, tolerance).double()
        result["centre_hit_mask"][masked] = M.mask_hits(centre, masks, tolerance).double()
        cover = M.object_coverage(masks, patch, stride)
        result["object_drop"][masked], result["background_drop"][masked] = M.drop_on_object(
            drop[masked], cover, share)
        result["object_label_change"][masked], result["background_label_change"][masked] = M.drop_on_object(
            changed[masked], cover, share)
        for name, values in (("p_true", sweep.p_true), ("log_odds", sweep.log_odds)):
            result[f"object_{name}"][masked], result[f"background_{name}"][masked] = M.drop_on_object(
                values[masked], cover, share)
    return result


def measure(per: dict[str, Tensor], settings, size: int) -> dict:
    """The per-image results of `per_image` summed up over the images."""
    changes = per["label_change"]
    result = {"top_label_change": {"positions": float(changes.mean()), "images": float((changes > 0).double().mean())},
              "pointing_game": None, "pointing_game_mask": None, "p_true_drop": None}
    tolerance = settings.pointing_tolerance * size / 224
    boxed = ~per["hit_box"].isnan()
    if boxed.any():
        evident = boxed & (per["max_drop"] >= EVIDENT_DROP)
        result["pointing_game"] = {
            "accuracy": _nanmean(per["hit_box"]), "centre_baseline": _nanmean(per["centre_hit_box"]),
            "accuracy_where_evident": _nanmean(per["hit_box"][evident]),
            "evident_images": int(evident.sum()), "evident_drop": EVIDENT_DROP,
            "tolerance_px": tolerance, "images": int(boxed.sum())}
    masked = ~per["hit_mask"].isnan()
    if masked.any():
        result["pointing_game_mask"] = {"accuracy": _nanmean(per["hit_mask"]),
                                        "centre_baseline": _nanmean(per["centre_hit_mask"]),
                                        "tolerance_px": tolerance, "images": int(masked.sum())}
        on_object, background = per["object_drop"][masked], per["background_drop"][masked]
        result["p_true_drop"] = {"object": _nanmean(on_object), "background": _nanmean(background),
                                 "object_minus_background": _nanmean(on_object - background),
                                 "images": int(masked.sum()), "object_share": settings.object_share}
        result["top_label_change"].update(on_object=_nanmean(per["object_label_change"]),
                                          background=_nanmean(per["background_label_change"]))
    return result


def projection_centres(deconv, images, channels, device, batch_size: int = 64) -> Tensor:
    """(N, 2) the centre of mass of each image's projection of its layer-5 map's strongest activation."""
    centres = []
    for start in range(0, len(images), batch_size):
        part = range(start, min(start + batch_size, len(images)))
        projection = deconv.project(images.inputs(part).to(device), "conv5", channels[part.start:part.stop].to(device))
        centres.append(M.energy_centroids(projection))
    return torch.cat(centres)


def layer5_drops(sweep: Sweep, centres: Tensor, settings) -> tuple[Tensor, Tensor]:
    """Fig. 7(b)'s claim, per image ((N,) each): the map's relative drop (base - occluded) / base, averaged
    over the positions covering its projection's centre and over the others (NaN where there are none)."""
    relative = (sweep.base_total[:, None, None] - sweep.layer5_total) / sweep.base_total[:, None, None].clamp(min=1e-12)
    return M.masked_means(relative, M.covers(centres, sweep.p_true.shape[-1], settings.patch, settings.stride))


def map_drop(covering: Tensor, elsewhere: Tensor) -> dict:
    """`layer5_drops` summed up over the images."""
    return {"covering_projection": _nanmean(covering), "elsewhere": _nanmean(elsewhere),
            "images_covered": int((~covering.isnan()).sum()),
            "share_of_images_where_covering_drops_more": _nanmean((covering > elsewhere).double()
                                                                  [~(covering.isnan() | elsewhere.isnan())])}


def evidence(sweep: Sweep, per: dict[str, Tensor], covering, elsewhere, labels, indices) -> dict[str, list]:
    """Per image (unit i at index i of every list), what the report's intervals resample: p(true) and its
    log-odds unoccluded, their means with the occluder on the object and on background only (None: no mask,
    or no such position), and the layer-5 map's relative drop covering its projection and elsewhere."""
    columns = {"image": list(indices), "label": labels.tolist(), "p_true": sweep.base_p_true,
               "log_odds": sweep.base_log_odds, **{name: per[name] for name in EVIDENCE_MEANS},
               "layer5_covering_drop": covering, "layer5_elsewhere_drop": elsewhere}
    return {name: values if isinstance(values, list) else [_rounded(v) for v in values.double().tolist()]
            for name, values in columns.items()}


def table_rows(result: OcclusionResult, classes: Sequence[str]) -> list[list]:
    """One row per image, in TABLE_COLUMNS order (`classes`: the class names)."""
    sweep, per, rows = result.sweep, result.per_image, []
    for n, index in enumerate(result.indices):
        rows.append([index, classes[int(result.labels[n])], float(sweep.base_p_true[n]),
                     classes[int(sweep.base_label[n])], float(per["max_drop"][n]), _or_none(per["hit_box"][n], bool),
                     _or_none(per["object_drop"][n]), _or_none(per["background_drop"][n]),
                     float(per["label_change"][n]), int(sweep.channel[n])])
    return rows


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _nanmean(values: Tensor) -> float | None:
    kept = values[~values.isnan()]
    return float(kept.mean()) if len(kept) else None


def _or_none(value: Tensor, kind=float):
    return None if math.isnan(float(value)) else kind(value)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- figure rows


def figure_rows(model, deconv, images: ImageSet, sweep: Sweep, labels: Tensor, per_class_count: int,
                others: tuple[TopK, ImageSet] | None = None) -> dict[int, list[OcclusionRow]]:
    """The first `per_class_count` images of each class, as Fig. 7 rows."""
    per_class: dict[int, list[int]] = {}
    for n, label in enumerate(labels.tolist()):
        if len(per_class.setdefault(label, [])) < per_class_count:
            per_class[label].append(n)
    if not any(per_class.values()):
        return {}
    window = receptive_window(model, "conv5")
    rows: dict[int, list[OcclusionRow]] = {}
    for label, members in sorted(per_class.items()):
        for n in members:
            channel = int(sweep.channel[n])
            tiles = [outlined(own_projection(deconv, images, n, channel, window, model))]
            if others is not None:
                tiles += other_projections(deconv, others, channel, window, exclude=images.indices[n])
            rows.setdefault(label, []).append(OcclusionRow(
                image=images.raw(n).permute(1, 2, 0).numpy() / 255.0, label=label,
                layer5_total=sweep.layer5_total[n].numpy(), channel=channel, projection=mosaic(tiles, ncols=3),
                p_true=sweep.p_true[n].numpy(), top_label=sweep.top_label[n].numpy(),
                base_p_true=float(sweep.base_p_true[n]), caption=f"val image {images.indices[n]}"))
    return rows


def own_projection(deconv, images: ImageSet, n: int, channel: int, window, model) -> np.ndarray:
    """The projection of map `channel`'s strongest conv5 activation in image n, as a tile."""
    top = top_activations(model, [images.inputs([n]).to(_device(deconv.model))], ["conv5"], k=1)["conv5"]
    top = TopK(top.values, torch.full_like(top.image_index, n), top.y, top.x)  # image n of `images`
    projection = project_top(deconv, images, "conv5", top, [channel])
    return projection_tile(projection[0, 0], window, int(top.y[channel, 0]), int(top.x[channel, 0]))


def other_projections(deconv, others: tuple[TopK, ImageSet], channel: int, window, exclude: int,
                      count: int = 8) -> list[np.ndarray]:
    """Tiles of map `channel`'s top activations in other images (at most `count`; never dataset image `exclude`)."""
    top, every_image = others
    projections = project_top(deconv, every_image, "conv5", top, [channel])[0]
    tiles = []
    for rank in range(top.values.shape[1]):
        if top.values[channel, rank] > 0 and int(top.image_index[channel, rank]) != exclude and len(tiles) < count:
            tiles.append(projection_tile(projections[rank], window, int(top.y[channel, rank]),
                                         int(top.x[channel, rank])))
    return tiles


def outlined(tile: np.ndarray, colour=(1.0, 0.0, 0.0)) -> np.ndarray:
    """A copy of `tile` with a one-pixel frame in `colour`."""
    tile = tile.copy()
    tile[[0, -1], :] = colour
    tile[:, [0, -1]] = colour
    return tile
