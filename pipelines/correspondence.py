"""Stage `correspondence@<model>`: is an object part encoded the same way across images? (paper Sec. 4.3,
Table 1, Fig. 8)

    python pipelines/correspondence.py model=zfnet [correspondence.layer5=pool5] [correspondence.draws=1000]
    python pipelines/correspondence.py model=zfnet correspondence.root=/data/faces correspondence.split=null \\
        correspondence.max_rotation=null        # a folder of images + metadata.jsonl in the same format

Images: those listed in `<root>/metadata.jsonl` (root null: the built-in `paths.synthetic`/imagenet) in
`correspondence.split`, of `correspondence.classes` (null: every class with an image that has all of
`correspondence.parts`), that carry every part box, and are frontal: |rotation| <= `max_rotation`
(null: no filter; with a limit, an image without a "rotation" is left out). An image whose part box
falls wholly outside the network's centre crop is left out too; so is a class with fewer than
`images_per_draw` images left (with a warning).

In each image each part is occluded in turn (its box rounded outward to pixels, filled with `fill`
in the input space: 0 = the per-pixel mean, grey). The "random" row (`random: true`) occludes one
box per image, at a seeded random position inside the object (`zfnet.probes.correspondence.random_box`),
whose height and width are the mean of that image's part-box heights and widths (rounded): one row,
as in the paper's table, the size of a typical part. For layer 5 (`layer5`: pool5, what fc6 reads;
relu5, rectified conv5; auto, the default: whichever of the two is nearest the paper's 6 x 6 pool5 map
at this input size, relu5 at 112 px and pool5 at 224; the metrics name it under "layers" and give its
shape under "layer_shapes") and layer 7 (relu7: rectified fc7), e_i = x_i - x~_i and Delta is the mean
share of coordinates whose signs differ over the ordered pairs of `images_per_draw` images, reported
as mean +- std over `draws` seeded draws within one class (the paper's 5 dog images); the draws are
the same for every occlusion and layer of a class. "average" is the mean over the classes of the
class means and of the class stds. Zeros: see `zfnet.probes.correspondence` (the strict Delta, the
paper's; ignoring coordinates zero in both images; and "changed in both": only the coordinates nonzero
in both e_i and e_j, so a unit that fired in one image only does not count as a sign change).

Negative control (`untrained`): the same architecture freshly initialized by its own `init` scheme from
`seed`, never trained, measured on the same images, occluders and draws: its average table in the metrics,
its per-pair Deltas in the evidence. A claim it also shows says nothing about learning (a random box sits
at a different place in each image, a part at about the same place: geometry alone can separate them).

Outputs: metrics/correspondence_<model>.json; evidence/correspondence_<model>.json (per class: the
image paths; per draw its image indices and per pair of images the two indices (into the paths), with
the Delta of each row and layer, for the paper's Delta and for "changed in both": what the report's
paired intervals use); plots/correspondence_<model>/
{table1,fig8}.png; W&B: both figures and a table of every number beside the paper's.

With `data.name` other than synthetic (experiment=paper) and `root` null, the built-in faces are not
generated: the stage writes {"ran": false, "reason"} as its metrics and a NOT_RUN.txt in its plot folder
(`zfnet.pipeline.not_run`), and the report shows Table 1 as not run.
"""

from __future__ import annotations

import math
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from zfnet.data.annotations import Annotation, read_annotations, read_metadata
from zfnet.data.loading import center_crop, normalize
from zfnet.data.prepare import BadImage, load_rgb
from zfnet.errors import UserError
from zfnet.io import save_figure
from zfnet.nets.training import load_trained, untrained_like
from zfnet.pipeline import not_run, stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.probes.correspondence import (
    draw_statistics,
    draw_subsets,
    layer_features,
    layer_shapes,
    mean_and_std,
    nearest_map,
    occlude,
    pairwise_changed_in_both,
    pairwise_sign_disagreement,
    pixel_box,
    random_box,
    subset_means,
    zero_share,
)
from zfnet.viz.correspondence import examples_figure, table_figure

# Table 1 of the paper, (mean, std) per occluded part and layer (PAPER.md sec. 4).
PAPER = {
    "right_eye": {"layer5": (0.067, 0.007), "layer7": (0.069, 0.015)},
    "left_eye": {"layer5": (0.069, 0.007), "layer7": (0.068, 0.013)},
    "nose": {"layer5": (0.079, 0.017), "layer7": (0.069, 0.011)},
    "random": {"layer5": (0.107, 0.017), "layer7": (0.073, 0.014)},
}
RANDOM = "random"
EXAMPLES_PER_CLASS = 2  # Fig. 8 rows per class
LAYER5_CHOICES = ("pool5", "relu5")  # in the order `auto` prefers on a tie: pool5 is the paper's tensor


def main(cfg) -> None:
    key, corr = cfg.model, cfg.correspondence
    started = time.perf_counter()
    root = Path(corr.root or Path(cfg.paths.synthetic) / "imagenet")
    reason = not_run.builtin_reason(cfg, root, "correspondence.root",
                                    "a folder of images with part boxes in a metadata.jsonl")
    if reason:
        not_run.write(cfg, f"correspondence_{key}", reason, plots=[f"correspondence_{key}"], evidence=True)
        return
    device = device_for(cfg.trainer.accelerator)
    model, hparams = load_trained(stage.checkpoint_path(cfg, key), device)
    if not root.is_dir():
        raise UserError(f"correspondence.root: {root}: folder not found (expected images and a metadata.jsonl)")
    size, crop, scale = hparams["mean"].shape[-1], hparams["crop"], float(hparams["input_scale"])
    notes = select_images(root, corr, size, crop)
    inputs = load_inputs(root, notes, hparams["mean"], scale, crop)
    boxes = occluder_boxes(notes, list(corr.parts), corr.random, crop, cfg.seed)
    layers = {"layer5": choose_layer5(model, corr.layer5, crop), "layer7": "relu7"}
    results, per_class = measure(model, notes, inputs, boxes, layers, corr, cfg.seed, cfg.visualize.batch_size)
    untrained = untrained_like(hparams, cfg.seed, device)
    control, control_classes = measure(untrained, notes, inputs, boxes, layers, corr, cfg.seed, cfg.visualize.batch_size)

    metrics = summarize(results, notes, boxes, corr, layers)
    metrics["layer_shapes"] = {k: list(v) for k, v in layer_shapes(model, layers, crop).items()}
    metrics["untrained"] = {"seed": cfg.seed, "init": untrained.options["init"],
                            "average": summarize(control, notes, boxes, corr, layers)["average"]}
    evidence = {"layers": layers, "classes": per_class, "untrained": {"seed": cfg.seed, "classes": {
        name: {"paths": entry["paths"], "per_pair": entry["per_pair"]} for name, entry in control_classes.items()}}}
    seconds = time.perf_counter() - started
    log_summary(key, metrics, seconds)

    plots = stage.plot_dir(cfg, f"correspondence_{key}")
    paths = {"table1": plots / "table1.png", "fig8": plots / "fig8.png"}
    groups = {**{c: r["table"] for c, r in results.items()}, "average": metrics["average"]["table"]}
    save_figure(table_figure(groups, PAPER, {"layer5": f"layer 5 ({layers['layer5']})", "layer7": "layer 7 (relu7)"},
                             f"{key}: Table 1, Delta over {corr.draws} draws of {corr.images_per_draw} frontal "
                             "images per class (bars: ours, mean ± std)",
                             {c: f"{c} ({r['images']} images)" for c, r in results.items()}), paths["table1"])
    save_figure(examples_figure(*example_rows(notes, inputs, boxes, hparams["mean"], scale, crop, corr.fill),
                                f"{key}: Fig. 8, the occluded images (red: occluder)"), paths["fig8"])
    with Tracker(cfg, "correspondence", name=f"correspondence-{key}") as tracker:
        tracker.images({f"correspondence/{key}/{name}": path for name, path in paths.items()})
        tracker.table(f"correspondence/{key}/table1", TABLE_COLUMNS, table_rows(groups))
        tracker.summary({f"correspondence/{key}/seconds": seconds,
                         **{f"correspondence/{key}/average/{o}/{layer}": v["mean"]
                            for o, row in metrics["average"]["table"].items() for layer, v in row.items()}})
        stage.write_evidence(cfg, f"correspondence_{key}", evidence)
        stage.write_metrics(cfg, f"correspondence_{key}", metrics)


# --------------------------------------------------------------------------- images


def select_images(root: Path, corr, size: int, crop: int) -> list[Annotation]:
    """The frontal images with every part, of the chosen classes, annotated in input coordinates,
    ordered by class then path; a UserError naming the config key when the choice leaves none."""
    metadata = read_metadata(root / "metadata.jsonl")
    records = [r for r in metadata.values() if corr.split is None or r.get("split") == corr.split]
    if not records:
        splits = sorted({str(r.get("split")) for r in metadata.values()})
        raise UserError(f"correspondence.split: no image of {root / 'metadata.jsonl'} is in split {corr.split!r} "
                        f"(splits there: {', '.join(splits)})")
    parts = list(corr.parts)
    if corr.random and RANDOM in parts:
        raise UserError(f"correspondence.parts: {RANDOM!r} names the random row; rename that part")
    present = set().union(*((r.get("part_boxes") or {}) for r in records))
    for part in parts:
        if part not in present:
            raise UserError(f"correspondence.parts: no image has a {part!r} box in {root / 'metadata.jsonl'} "
                            f"(part boxes there: {', '.join(sorted(present)) or 'none'})")
    complete = [r for r in records if all(p in (r.get("part_boxes") or {}) for p in parts)]
    classes = set(corr.classes) if corr.classes is not None else {class_of(r) for r in complete}
    for name in classes - {class_of(r) for r in complete}:
        raise UserError(f"correspondence.classes: class {name!r} has no image with all of {parts}")
    chosen = [r for r in complete if class_of(r) in classes and frontal(r, corr.max_rotation)]
    if not chosen:
        raise UserError(f"correspondence.max_rotation: none of the {len(complete)} images with all of {parts} "
                        f"has |rotation| <= {corr.max_rotation} degrees (set correspondence.max_rotation=null to "
                        "keep images without a \"rotation\")")
    chosen.sort(key=lambda r: (class_of(r), r["path"]))
    notes = read_annotations(root, [r["path"] for r in chosen], size, crop, metadata=metadata)
    for note, record in zip(notes, chosen):
        note.class_name = class_of(record)
    return keep_usable(notes, parts, corr.images_per_draw, crop)


def class_of(record: dict) -> str:
    """The record's "class", or its folder's name when it has none."""
    return record.get("class") or Path(record["path"]).parent.name


def frontal(record: dict, max_rotation: float | None) -> bool:
    if max_rotation is None:
        return True
    rotation = record.get("rotation")
    return rotation is not None and abs(rotation) <= max_rotation


def keep_usable(notes: list[Annotation], parts: list[str], k: int, crop: int) -> list[Annotation]:
    """Drop images with a part outside the crop, then classes with fewer than k images (warnings)."""
    inside = [n for n in notes if all(_area(pixel_box(n.parts[p], crop, crop)) > 0 for p in parts)]
    if len(inside) < len(notes):
        stage.log.warning("%d of %d images left out: a part box lies outside the %d px centre crop",
                          len(notes) - len(inside), len(notes), crop)
    counts = {c: sum(n.class_name == c for n in inside) for c in {n.class_name for n in inside}}
    for name, count in sorted(counts.items()):
        if count < k:
            stage.log.warning("class %s left out: %d usable images, fewer than correspondence.images_per_draw=%d",
                              name, count, k)
    kept = [n for n in inside if counts[n.class_name] >= k]
    if not kept:
        raise UserError(f"correspondence.images_per_draw: no class has {k} usable frontal images with all of "
                        f"{parts} (per class: {counts or 'none'})")
    return kept


def _area(box) -> int:
    x0, y0, x1, y1 = box
    return max(x1 - x0, 0) * max(y1 - y0, 0)


def load_inputs(root: Path, notes: list[Annotation], mean: torch.Tensor, scale: float, crop: int) -> torch.Tensor:
    """The images as the network sees them: decoded as `prepare` does, mean-subtracted, centre-cropped."""
    images = []
    for note in notes:
        try:
            images.append(torch.tensor(load_rgb(root / note.path, mean.shape[-1])).permute(2, 0, 1))
        except BadImage as e:
            raise UserError(f"{root / note.path}: {e.reason}") from None
    return center_crop(normalize(torch.stack(images), mean, scale), crop)


def occluder_boxes(notes: list[Annotation], parts: list[str], random: bool, crop: int, seed: int) -> dict:
    """{occlusion: one pixel box per image}: each part's box, then (random) a seeded random box."""
    boxes = {p: [pixel_box(n.parts[p], crop, crop) for n in notes] for p in parts}
    if random:
        generator = torch.Generator().manual_seed(seed)
        boxes[RANDOM] = []
        for note in notes:
            whole = [pixel_box(n, 10**9, 10**9) for n in (note.parts[p] for p in parts)]  # unclipped sizes
            height = round(np.mean([b[3] - b[1] for b in whole]))
            width = round(np.mean([b[2] - b[0] for b in whole]))
            mask = torch.from_numpy(note.mask) if note.mask is not None else None
            boxes[RANDOM].append(random_box(note.box or [0, 0, crop, crop], min(height, crop), min(width, crop),
                                            crop, generator, mask))
    return boxes


def view_features(model, inputs: torch.Tensor, boxes: dict, fill: float, layers: dict, batch_size: int) -> dict:
    """{layer: (1 + occlusions, images, D)}: features of the images (index 0), then of each occlusion.

    An image and its occluded copies go through the network in one call (batches hold whole images'
    views), so a unit the occluder cannot reach gives e exactly 0: the batch size may change the last
    bits of a convolution's result.
    """
    views = torch.stack([inputs] + [occlude(inputs, b, fill) for b in boxes.values()], dim=1)  # (N, V, 3, S, S)
    per_image = views.shape[1]
    features = layer_features(model, views.flatten(0, 1), layers, per_image * max(1, batch_size // per_image))
    return {layer: x.view(len(inputs), per_image, -1).transpose(0, 1) for layer, x in features.items()}


def choose_layer5(model, setting: str, crop: int) -> str:
    """The layer-5 tensor: `setting`, or for "auto" the one of LAYER5_CHOICES whose map at this crop is nearest
    the paper's 6 x 6 pool5 (relu5 at 112 px, pool5 at 224 px)."""
    if setting != "auto":
        return setting
    return nearest_map(layer_shapes(model, {name: name for name in LAYER5_CHOICES}, crop))


def class_generator(seed: int, name: str) -> torch.Generator:
    """The draws of one class depend on the seed and its name only, not on which other classes run."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


# --------------------------------------------------------------------------- the measure


def measure(model, notes, inputs: torch.Tensor, boxes: dict, layers: dict, corr, seed: int, batch_size: int
            ) -> tuple[dict, dict]:
    """Each class's {"images", "table"} and its evidence (image paths, per draw and per pair), measured on `model`;
    the draws depend on the seed and the class only, so a second model gets the same draws."""
    features = view_features(model, inputs, boxes, corr.fill, layers, batch_size)
    results, evidence = {}, {}
    for name in sorted({n.class_name for n in notes}):
        members = torch.tensor([i for i, n in enumerate(notes) if n.class_name == name])
        draws = draw_subsets(len(members), corr.images_per_draw, corr.draws, class_generator(seed, name))
        rows, units = table(features, list(boxes), members, draws)
        results[name] = {"images": len(members), "table": rows}
        evidence[name] = {"paths": [notes[i].path for i in members.tolist()], **units}
    return results, evidence


def table(features: dict, occlusions: list[str], members: torch.Tensor, draws: torch.Tensor) -> tuple[dict, dict]:
    """One class (`members`: its image indices; `draws`: rows of indices into `members`).

    Returns {occlusion: {layer: Delta statistics over the draws, e's zero share and the share of coordinates
    changed in both images of a pair}}, and the class's evidence: each draw's Delta and each pair's, per
    occlusion and layer, for the paper's Delta and for "changed in both" (the draws and pairs are the same
    for every occlusion and layer).
    """
    subsets, (first, second) = members[draws], torch.triu_indices(len(members), len(members), offset=1)
    evidence = {"per_draw": {"images": draws, "delta": {}, "delta_changed_in_both": {}},
                "per_pair": {"images": torch.stack([first, second], dim=1), "delta": {}, "delta_changed_in_both": {}}}
    rows = {}
    for o, name in enumerate(occlusions):
        rows[name] = {}
        for unit in ("per_draw", "per_pair"):
            for measure in ("delta", "delta_changed_in_both"):
                evidence[unit][measure][name] = {}
        for layer, x in features.items():
            e = x[0] - x[o + 1]  # (images, D): original minus occluded
            strict, ignore_zeros = pairwise_sign_disagreement(e)
            both, both_share = pairwise_changed_in_both(e)
            per_draw = {"delta": subset_means(strict, subsets), "delta_changed_in_both": subset_means(both, subsets)}
            mean_both, std_both = mean_and_std(per_draw["delta_changed_in_both"])
            rows[name][layer] = {**draw_statistics(strict, ignore_zeros, subsets), "mean_changed_in_both": mean_both,
                                 "std_changed_in_both": std_both, "zero_share": zero_share(e[members]),
                                 "changed_in_both_share": mean_and_std(subset_means(both_share, subsets))[0]}
            for measure, pairwise in (("delta", strict), ("delta_changed_in_both", both)):
                evidence["per_draw"][measure][name][layer] = rounded(per_draw[measure])
                evidence["per_pair"][measure][name][layer] = rounded(pairwise[members[first], members[second]])
    return rows, evidence


def rounded(values: torch.Tensor) -> list:
    """Evidence values: 6 digits, NaN as None (JSON has no NaN)."""
    return [None if math.isnan(v) else round(v, 6) for v in values.tolist()]


def summarize(results: dict, notes, boxes: dict, corr, layers: dict) -> dict:
    """The metrics file: settings, per class and averaged tables, random minus the parts' mean."""
    classes = list(results)
    average = {o: {layer: {stat: float(np.mean([results[c]["table"][o][layer][stat] for c in classes]))
                           for stat in results[classes[0]]["table"][o][layer]}
                   for layer in layers}
               for o in boxes}
    for entry in results.values():
        entry["random_minus_parts"] = random_gap(entry["table"], list(corr.parts))
        entry["random_minus_parts_changed_in_both"] = random_gap(entry["table"], list(corr.parts), "mean_changed_in_both")
    sizes = {o: [float(np.mean([b[3] - b[1] for b in bs])), float(np.mean([b[2] - b[0] for b in bs]))]
             for o, bs in boxes.items()}
    return {
        "layers": layers, "layer5_setting": corr.layer5, "images": len(notes), "images_per_draw": corr.images_per_draw,
        "draws": corr.draws, "fill": corr.fill, "occluder_mean_hw": sizes, "classes": results,
        "average": {"classes": classes, "table": average, "random_minus_parts": random_gap(average, list(corr.parts)),
                    "random_minus_parts_changed_in_both": random_gap(average, list(corr.parts), "mean_changed_in_both")},
    }


def random_gap(rows: dict, parts: list[str], stat: str = "mean") -> dict | None:
    """Delta(random) minus the mean Delta of the parts (the row statistic `stat`), per layer (the paper: 0.035 at
    layer 5, 0.004 at 7); None without a random row."""
    if RANDOM not in rows:
        return None
    return {layer: rows[RANDOM][layer][stat] - float(np.mean([rows[p][layer][stat] for p in parts]))
            for layer in rows[RANDOM]}


def log_summary(key: str, metrics: dict, seconds: float) -> None:
    for o, row in metrics["average"]["table"].items():
        numbers = "  ".join(f"{layer} {s['mean']:.3f} +- {s['std']:.3f} (ignoring zeros {s['mean_ignore_zeros']:.3f}, "
                            f"changed in both {s['mean_changed_in_both']:.3f})" for layer, s in row.items())
        stage.log.info("%s %-10s %s", key, o, numbers)
    stage.log.info("%s: %d images in %d classes measured in %.1f s", key, metrics["images"], len(metrics["classes"]),
                   seconds)


# --------------------------------------------------------------------------- figures and table


TABLE_COLUMNS = ["group", "occluded", "layer", "delta_mean", "delta_std", "delta_ignore_zeros_mean",
                 "delta_ignore_zeros_std", "delta_changed_in_both_mean", "delta_changed_in_both_std",
                 "changed_in_both_share", "zero_share", "paper_mean", "paper_std"]


def table_rows(groups: dict) -> list[list]:
    rows = []
    for group, occlusions in groups.items():
        for o, layers in occlusions.items():
            for layer, s in layers.items():
                paper = PAPER.get(o, {}).get(layer, (None, None))
                rows.append([group, o, layer, s["mean"], s["std"], s["mean_ignore_zeros"], s["std_ignore_zeros"],
                             s["mean_changed_in_both"], s["std_changed_in_both"], s["changed_in_both_share"],
                             s["zero_share"], *paper])
    return rows


def example_rows(notes, inputs, boxes: dict, mean: torch.Tensor, scale: float, crop: int, fill: float):
    """Fig. 8 panels: the first EXAMPLES_PER_CLASS images of each class, original then each occlusion,
    shown as pixels (the input with the mean added back)."""
    picked, seen = [], {}
    for i, note in enumerate(notes):
        seen[note.class_name] = seen.get(note.class_name, 0) + 1
        if seen[note.class_name] <= EXAMPLES_PER_CLASS:
            picked.append(i)
    mean = center_crop(mean, crop)
    to_pixels = lambda x: (x / scale + mean).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    rows, row_boxes = [], []
    for i in picked:
        views = [inputs[i]] + [occlude(inputs[i:i + 1], [bs[i]], fill)[0] for bs in boxes.values()]
        rows.append([to_pixels(v) for v in views])
        row_boxes.append([None] + [bs[i] for bs in boxes.values()])
    names = [f"{notes[i].class_name}\n{Path(notes[i].path).stem}" for i in picked]
    return rows, row_boxes, ["original", *boxes], names


if __name__ == "__main__":
    stage.run("correspondence", main)
