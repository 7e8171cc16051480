"""Stage `occlusion@<model>`: occlusion sensitivity over the validation set (paper Fig. 7).

    python pipelines/occlusion.py model=alexnet [occlusion.patch=24 occlusion.stride=4 occlusion.images=100]

A grey square (`occlusion.fill` in the network's input space; 0 is the per-pixel mean) slides over each
validation image (`zfnet.probes.occlusion`, the exact incremental engine by default). Per image and
position: p(true class), the most probable class, and the total activation of the layer-5 map that
is strongest on the unoccluded image.

Measured over the images the dataset annotates (metadata.jsonl beside the class folders; the
built-in data has one), definitions in `zfnet.probes.occlusion_measures`:
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
the metrics, its per-image columns in the evidence (no maps, no figures). Covering the spot that drives a
layer-5 map lowers that map whatever the weights: a claim the control shows too says nothing about learning.

Outputs: plots/occlusion_<model>/fig7_<class>.png (the five panels for `figure_per_class` images of
each class) and measures.png; outputs/occlusion/<model>/maps.pt (every map); metrics/occlusion_<model>.json;
evidence/occlusion_<model>.json (per image: p(true) and its log-odds unoccluded and averaged over the object
and background positions, the layer-5 map's drops; `evidence`; the control's under "untrained"); W&B: the figures and a per-image table.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from zfnet.data.annotations import read_annotations
from zfnet.data.images import image_set, subset
from zfnet.data.prepare import PreparedSplit
from zfnet.io import atomic_path, save_figure
from zfnet.nets.training import load_trained, untrained_like
from zfnet.pipeline import stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.probes import occlusion_measures as M
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.occlusion import Approximation, Sweep, occlusion_sweep
from zfnet.probes.projections import project_top, projection_tile, receptive_window
from zfnet.probes.top9 import TopK, top_activations
from zfnet.tiles import mosaic
from zfnet.viz.occlusion import OcclusionRow, measures_figure, occlusion_figure

IMAGES_PER_CALL = 8  # images per sweep call: the progress bar's step
EVIDENT_DROP = 0.01  # an image whose p(true) never drops by this much gives the pointing game no evidence (ours)


def main(cfg) -> None:
    key, occ = cfg.model, cfg.occlusion
    device = device_for(cfg.trainer.accelerator)
    model, hparams = load_trained(stage.checkpoint_path(cfg, key), device)
    split = PreparedSplit(Path(cfg.paths.prepared) / "val")
    indices = subset(len(split), occ.images, cfg.seed)
    images = image_set(split, hparams, indices)
    labels = torch.as_tensor(split.labels[indices], dtype=torch.long)
    approximation = Approximation(**occ.approximate) if occ.mode == "approximate" else None

    started = time.perf_counter()
    sweep = run_sweep(model, images, labels, occ, approximation, device)
    seconds = time.perf_counter() - started
    positions = sweep.p_true[0].numel() * len(images)
    stage.log.info("%s: %d images x %d occluder positions in %.1f s (%.0f positions/s, mode %s)", key,
                   len(images), sweep.p_true[0].numel(), seconds, positions / seconds, occ.mode)
    save_maps(Path(cfg.paths.outputs) / "occlusion" / key / "maps.pt", sweep, indices)

    notes = annotations(cfg, split, indices, hparams["crop"])
    per = per_image(sweep, notes, occ, hparams["crop"])
    deconv = Deconvnet(model, normalize_down=cfg.visualize.normalize_down)
    covering, elsewhere = layer5_drops(sweep, projection_centres(deconv, images, sweep.channel, device), occ)
    metrics = {"images": len(images), "patch": occ.patch, "stride": occ.stride, "grid": sweep.p_true.shape[-1],
               "fill": occ.fill, "mode": occ.mode,
               "base_top1_error": float((sweep.base_label.cpu() != labels).double().mean()),
               **measure(per, occ, hparams["crop"]), "layer5_map_drop": map_drop(covering, elsewhere)}
    started = time.perf_counter()
    metrics["untrained"], control = untrained_control(untrained_like(hparams, cfg.seed, device), cfg, images, labels,
                                                      notes, hparams["crop"], approximation, device)
    control_seconds = time.perf_counter() - started
    stage.log.info("%s untrained (the negative control): the same sweep in %.1f s", key, control_seconds)
    # deterministic values only in the metrics file: speed goes to the log and W&B

    plots = stage.plot_dir(cfg, f"occlusion_{key}")
    figures = {}
    rows_per_class = figure_rows(cfg, model, deconv, hparams, images, split, sweep, labels, indices)
    for class_index, rows in rows_per_class.items():
        path = plots / f"fig7_{split.classes[class_index]}.png"
        title = (f"{key}: occlusion sensitivity (Fig. 7), {occ.patch} px grey square, stride {occ.stride}, "
                 f"class {split.classes[class_index]}")
        save_figure(occlusion_figure(rows, occ.patch, occ.stride, split.classes, title), path)
        figures[f"occlusion/{key}/fig7_{split.classes[class_index]}"] = path
    if metrics["pointing_game"] is not None:
        path = plots / "measures.png"
        save_figure(measures_figure({key: metrics}, f"{key}: occlusion measures over {len(images)} "
                                                    "validation images"), path)
        figures[f"occlusion/{key}/measures"] = path
    with Tracker(cfg, "occlusion", name=f"occlusion-{key}") as tracker:
        tracker.images(figures)
        tracker.table(f"occlusion/{key}/images", TABLE_COLUMNS, table_rows(sweep, per, labels, indices, split.classes))
        speed = {"seconds": seconds, "positions_per_s": positions / seconds, "untrained_seconds": control_seconds}
        tracker.summary({f"occlusion/{key}/{name}": value for name, value in stage.flat_numbers({**metrics, **speed}).items()})
        stage.write_evidence(cfg, f"occlusion_{key}", {**evidence(sweep, per, covering, elsewhere, labels, indices),
                                                        "untrained": control})
        stage.write_metrics(cfg, f"occlusion_{key}", metrics)


def run_sweep(model, images, labels, occ, approximation, device, desc: str = "occlusion") -> Sweep:
    parts = []
    starts = range(0, len(images), IMAGES_PER_CALL)
    for start in tqdm(starts, desc=desc, unit="batch", disable=None):
        part = slice(start, min(start + IMAGES_PER_CALL, len(images)))
        batch = images.inputs(range(part.start, part.stop)).to(device)
        sweep = occlusion_sweep(model, batch, labels[part].to(device), occ.patch, occ.stride, occ.fill, occ.mode,
                                occ.batch_size, approximation)
        parts.append(Sweep(*(field.cpu() for field in sweep)))
    return Sweep(*(torch.cat(fields) for fields in zip(*parts)))


def untrained_control(model, cfg, images, labels, notes, size: int, approximation, device) -> tuple[dict, dict]:
    """The negative control: `model` (untrained) swept like the trained net; (its metrics block: the p(true) drops
    on object and background and the layer-5 map drop; its per-image evidence, the columns the claims read)."""
    occ = cfg.occlusion
    sweep = run_sweep(model, images, labels, occ, approximation, device, desc="untrained occlusion")
    per = per_image(sweep, notes, occ, size)
    deconv = Deconvnet(model, normalize_down=cfg.visualize.normalize_down)
    covering, elsewhere = layer5_drops(sweep, projection_centres(deconv, images, sweep.channel, device), occ)
    metrics = {"seed": cfg.seed, "init": model.options["init"],
               "base_top1_error": float((sweep.base_label != labels).double().mean()),
               "p_true_drop": measure(per, occ, size)["p_true_drop"], "layer5_map_drop": map_drop(covering, elsewhere)}
    columns = evidence(sweep, per, covering, elsewhere, labels, range(len(labels)))
    del columns["image"], columns["label"]  # the trained net's columns name them: the same images in the same order
    return metrics, {"seed": cfg.seed, **columns}


def annotations(cfg, split: PreparedSplit, indices: list[int], crop: int):
    """Per image its Annotation (boxes, mask) when the dataset has metadata.jsonl, else None."""
    root = Path(cfg.data.root)
    if not (root / "metadata.jsonl").is_file():
        stage.log.warning("%s has no metadata.jsonl: no object boxes or masks, so no pointing game or "
                          "object/background drops (the maps and figures are still made)", root)
        return None
    paths = [f"{cfg.data.val_dir}/{split.files[i]}" for i in indices]
    return read_annotations(root, paths, split.size, crop)


def per_image(sweep: Sweep, notes, occ, size: int) -> dict[str, torch.Tensor]:
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
    tolerance = occ.pointing_tolerance * size / 224
    boxed = [i for i, note in enumerate(notes) if note is not None and note.box is not None]
    if boxed:
        boxes = torch.tensor([notes[i].box for i in boxed], dtype=torch.float64)
        result["hit_box"][boxed] = M.pointing_hits(drop[boxed], boxes, occ.patch, occ.stride, tolerance).double()
        result["centre_hit_box"][boxed] = M.centre_hits(boxes, size, tolerance).double()
    masked = [i for i, note in enumerate(notes) if note is not None and note.mask is not None]
    if masked:
        masks = torch.from_numpy(np.stack([notes[i].mask for i in masked]))
        points = M.largest_drop_points(drop[masked], occ.patch, occ.stride)
        centre = torch.full((len(masked), 2), size / 2, dtype=torch.float64)
        result["hit_mask"][masked] = M.mask_hits(points, masks, tolerance).double()
        result["centre_hit_mask"][masked] = M.mask_hits(centre, masks, tolerance).double()
        cover = M.object_coverage(masks, occ.patch, occ.stride)
        result["object_drop"][masked], result["background_drop"][masked] = M.drop_on_object(
            drop[masked], cover, occ.object_share)
        result["object_label_change"][masked], result["background_label_change"][masked] = M.drop_on_object(
            changed[masked], cover, occ.object_share)
        for name, values in (("p_true", sweep.p_true), ("log_odds", sweep.log_odds)):
            result[f"object_{name}"][masked], result[f"background_{name}"][masked] = M.drop_on_object(
                values[masked], cover, occ.object_share)
    return result


def measure(per: dict[str, torch.Tensor], occ, size: int) -> dict:
    """The per-image results of `per_image` summed up over the images."""
    changes = per["label_change"]
    result = {"top_label_change": {"positions": float(changes.mean()), "images": float((changes > 0).double().mean())},
              "pointing_game": None, "pointing_game_mask": None, "p_true_drop": None}
    tolerance = occ.pointing_tolerance * size / 224
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
                                 "images": int(masked.sum()), "object_share": occ.object_share}
        result["top_label_change"].update(on_object=_nanmean(per["object_label_change"]),
                                          background=_nanmean(per["background_label_change"]))
    return result


def projection_centres(deconv, images, channels, device, batch_size: int = 64) -> torch.Tensor:
    """(N, 2) the centre of mass of each image's projection of its layer-5 map's strongest activation."""
    centres = []
    for start in range(0, len(images), batch_size):
        part = range(start, min(start + batch_size, len(images)))
        projection = deconv.project(images.inputs(part).to(device), "conv5", channels[part.start:part.stop].to(device))
        centres.append(M.energy_centroids(projection))
    return torch.cat(centres)


def layer5_drops(sweep: Sweep, centres: torch.Tensor, occ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fig. 7(b)'s claim, per image ((N,) each): the map's relative drop (base - occluded) / base, averaged
    over the positions covering its projection's centre and over the others (NaN where there are none)."""
    relative = (sweep.base_total[:, None, None] - sweep.layer5_total) / sweep.base_total[:, None, None].clamp(min=1e-12)
    return M.masked_means(relative, M.covers(centres, sweep.p_true.shape[-1], occ.patch, occ.stride))


def map_drop(covering: torch.Tensor, elsewhere: torch.Tensor) -> dict:
    """`layer5_drops` summed up over the images."""
    return {"covering_projection": _nanmean(covering), "elsewhere": _nanmean(elsewhere),
            "images_covered": int((~covering.isnan()).sum()),
            "share_of_images_where_covering_drops_more": _nanmean((covering > elsewhere).double()
                                                                  [~(covering.isnan() | elsewhere.isnan())])}


EVIDENCE_MEANS = ("object_p_true", "background_p_true", "object_log_odds", "background_log_odds")


def evidence(sweep: Sweep, per: dict[str, torch.Tensor], covering, elsewhere, labels, indices) -> dict[str, list]:
    """Per image (unit i at index i of every list), what the report's intervals resample: p(true) and its
    log-odds unoccluded, their means with the occluder on the object and on background only (None: no mask,
    or no such position), and the layer-5 map's relative drop covering its projection and elsewhere."""
    columns = {"image": list(indices), "label": labels.tolist(), "p_true": sweep.base_p_true,
               "log_odds": sweep.base_log_odds, **{name: per[name] for name in EVIDENCE_MEANS},
               "layer5_covering_drop": covering, "layer5_elsewhere_drop": elsewhere}
    return {name: values if isinstance(values, list) else [_rounded(v) for v in values.double().tolist()]
            for name, values in columns.items()}


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _nanmean(values: torch.Tensor) -> float | None:
    kept = values[~values.isnan()]
    return float(kept.mean()) if len(kept) else None


TABLE_COLUMNS = ["image", "class", "p_true", "top_label", "max_drop", "pointing_hit", "object_drop",
                 "background_drop", "label_change_share", "layer5_map"]


def table_rows(sweep: Sweep, per: dict[str, torch.Tensor], labels, indices, classes) -> list[list]:
    rows = []
    for n, index in enumerate(indices):
        rows.append([index, classes[int(labels[n])], float(sweep.base_p_true[n]), classes[int(sweep.base_label[n])],
                     float(per["max_drop"][n]), _or_none(per["hit_box"][n], bool), _or_none(per["object_drop"][n]),
                     _or_none(per["background_drop"][n]), float(per["label_change"][n]), int(sweep.channel[n])])
    return rows


def _or_none(value: torch.Tensor, kind=float):
    return None if math.isnan(float(value)) else kind(value)


# --------------------------------------------------------------------------- figure rows


def figure_rows(cfg, model, deconv, hparams, images, split, sweep: Sweep, labels, indices
                ) -> dict[int, list[OcclusionRow]]:
    """The first `figure_per_class` measured images of each class, as Fig. 7 rows."""
    per_class: dict[int, list[int]] = {}
    for n, label in enumerate(labels.tolist()):
        if len(per_class.setdefault(label, [])) < cfg.occlusion.figure_per_class:
            per_class[label].append(n)
    if not any(per_class.values()):
        return {}
    others = top9_of_others(cfg, split, hparams)
    window = receptive_window(model, "conv5")
    rows: dict[int, list[OcclusionRow]] = {}
    for label, members in sorted(per_class.items()):
        for n in members:
            channel = int(sweep.channel[n])
            tiles = [outlined(own_projection(deconv, images, n, channel, window, model))]
            if others is not None:
                tiles += other_projections(deconv, others, channel, window, exclude=indices[n])
            rows.setdefault(label, []).append(OcclusionRow(
                image=images.raw(n).permute(1, 2, 0).numpy() / 255.0, label=label,
                layer5_total=sweep.layer5_total[n].numpy(), channel=channel, projection=mosaic(tiles, ncols=3),
                p_true=sweep.p_true[n].numpy(), top_label=sweep.top_label[n].numpy(),
                base_p_true=float(sweep.base_p_true[n]), caption=f"val image {indices[n]}"))
    return rows


def own_projection(deconv, images, n: int, channel: int, window, model) -> np.ndarray:
    """The projection of map `channel`'s strongest conv5 activation in image n, as a tile."""
    top = top_activations(model, [images.inputs([n]).to(deconv_device(deconv))], ["conv5"], k=1)["conv5"]
    top = TopK(top.values, torch.full_like(top.image_index, n), top.y, top.x)  # image n of `images`
    projection = project_top(deconv, images, "conv5", top, [channel])
    return projection_tile(projection[0, 0], window, int(top.y[channel, 0]), int(top.x[channel, 0]))


def top9_of_others(cfg, split, hparams):
    """(the visualize stage's conv5 top-9, every validation image), or None when that stage has not run."""
    path = Path(cfg.paths.outputs) / "visualize" / cfg.model / "top9.pt"
    if not path.is_file():
        stage.log.warning("%s not found (run visualize@%s): panel (c) shows this image's projection only",
                          path, cfg.model)
        return None
    conv5 = torch.load(path, weights_only=True)["conv5"]
    return TopK(conv5["values"], conv5["image_index"], conv5["y"], conv5["x"]), image_set(split, hparams)


def other_projections(deconv, others, channel: int, window, exclude: int, count: int = 8) -> list[np.ndarray]:
    """Tiles of map `channel`'s top activations in other validation images (at most `count`)."""
    top, every_image = others
    projections = project_top(deconv, every_image, "conv5", top, [channel])[0]
    tiles = []
    for rank in range(top.values.shape[1]):
        if top.values[channel, rank] > 0 and int(top.image_index[channel, rank]) != exclude and len(tiles) < count:
            tiles.append(projection_tile(projections[rank], window, int(top.y[channel, rank]),
                                         int(top.x[channel, rank])))
    return tiles


def deconv_device(deconv) -> torch.device:
    return next(deconv.model.parameters()).device


def outlined(tile: np.ndarray, colour=(1.0, 0.0, 0.0)) -> np.ndarray:
    tile = tile.copy()
    tile[[0, -1], :] = colour
    tile[:, [0, -1]] = colour
    return tile


def save_maps(path: Path, sweep: Sweep, indices: list[int]) -> None:
    with atomic_path(path) as tmp:
        torch.save({**sweep._asdict(), "image_index": torch.as_tensor(indices)}, tmp)


if __name__ == "__main__":
    stage.run("occlusion", main)
