"""Correspondence (paper Sec. 4.3, Table 1, Fig. 8): is an object part encoded the same way across images?

    notes, inputs = load_faces(root, cfg.correspondence, hparams)       # zfnet.experiments.correspondence_images
    result = run(model, notes, inputs, cfg.correspondence, seed=0, untrained=control, mean=hparams["mean"])
    result.metrics, result.evidence, result.groups, result.examples     # what the stage writes and draws

Images: `notes` (annotations in input coordinates, with `class_name` and part boxes) and `inputs` (N, 3, crop,
crop), as `correspondence_images.load_faces` chooses and loads them: frontal images with every part box, ordered
by class then path, each class at least `images_per_draw` images.

In each image each part of `settings.parts` is occluded in turn (its box rounded outward to pixels, filled with
`fill` in the input space: 0 = the per-pixel mean, grey). The "random" row (`random: true`) occludes one box per
image, at a seeded random position inside the object (`zfnet.probes.correspondence.random_box`), whose height and
width are the mean of that image's part-box heights and widths (rounded): one row, as in the paper's table, the
size of a typical part. For layer 5 (`layer5`: pool5, what fc6 reads; relu5, rectified conv5; auto, the default:
whichever of the two is nearest the paper's 6 x 6 pool5 map at this input size, relu5 at 112 px and pool5 at 224;
the metrics name it under "layers" and give its shape under "layer_shapes") and layer 7 (relu7: rectified fc7),
e_i = x_i - x~_i and Delta is the mean share of coordinates whose signs differ over the ordered pairs of
`images_per_draw` images, reported as mean +- std over `draws` seeded draws within one class (the paper's 5 dog
images); the draws are the same for every occlusion and layer of a class. "average" is the mean over the classes
of the class means and of the class stds. Zeros: see `zfnet.probes.correspondence` (the strict Delta, the
paper's; ignoring coordinates zero in both images; and "changed in both": only the coordinates nonzero in both
e_i and e_j, so a unit that fired in one image only does not count as a sign change).

Negative control (`untrained`): the same architecture freshly initialized by its own `init` scheme from `seed`,
never trained, measured on the same images, occluders and draws: its average table in the metrics, its per-pair
Deltas in the evidence. A claim it also shows says nothing about learning (a random box sits at a different place
in each image, a part at about the same place: geometry alone can separate them).

The metrics: the settings, per class and averaged tables, random minus the parts' mean, layer shapes, the
control's average. The evidence: per class the image paths; per draw its image indices and per pair of images the
two indices (into the paths), with the Delta of each row and layer, for the paper's Delta and for "changed in
both" (what the report's paired intervals use).
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from zfnet.data.annotations import Annotation
from zfnet.data.loading import center_crop
from zfnet.probes.correspondence import (
    Box,
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

log = logging.getLogger("zfnet")

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
TABLE_COLUMNS = ["group", "occluded", "layer", "delta_mean", "delta_std", "delta_ignore_zeros_mean",
                 "delta_ignore_zeros_std", "delta_changed_in_both_mean", "delta_changed_in_both_std",
                 "changed_in_both_share", "zero_share", "paper_mean", "paper_std"]


class Examples(NamedTuple):
    """Fig. 8's panels: per row (an image) its views as HWC uint8 pixels (original, then each occlusion), each
    view's occluder box (None for the original), the column names and the row names."""

    rows: list[list[np.ndarray]]
    boxes: list[list[Box | None]]
    columns: list[str]
    names: list[str]


@dataclass
class CorrespondenceResult:
    layers: dict[str, str]  # {"layer5": the layer-5 tensor's name, "layer7": "relu7"}
    boxes: dict[str, list[Box]]  # {occlusion: one pixel box per image}
    features: dict[str, torch.Tensor]  # {layer: (1 + occlusions, images, D)}: the trained model's, index 0 unoccluded
    metrics: dict  # the metrics file, exactly as the stage writes it
    evidence: dict  # per class, per draw and per pair (the control's under "untrained")
    examples: Examples  # Fig. 8

    @property
    def groups(self) -> dict:
        """{class or "average": {occlusion: {layer: statistics}}}: Table 1 per class and averaged."""
        return {**{c: r["table"] for c, r in self.metrics["classes"].items()},
                "average": self.metrics["average"]["table"]}

    def table_rows(self) -> list[list]:
        """Every number of `groups` beside the paper's, one row per group, occlusion and layer (TABLE_COLUMNS)."""
        return table_rows(self.groups)


def run(model, notes: list[Annotation], inputs: torch.Tensor, settings, *, seed: int,
        untrained: torch.nn.Module | None = None, batch_size: int = 64, mean: torch.Tensor | None = None,
        input_scale: float = 1.0) -> CorrespondenceResult:
    """Table 1 on `model` (and, given, on the `untrained` control) for `inputs` (N, 3, crop, crop) annotated by
    `notes`. `settings`: parts, random, layer5, fill, draws, images_per_draw (e.g. cfg.correspondence); `seed`
    draws the random boxes and the image subsets; `batch_size` images' views per forward call; `mean` (the
    uncropped per-pixel mean image; None: zero) and `input_scale` turn inputs back into Fig. 8's pixels."""
    crop = inputs.shape[-1]
    boxes = occluder_boxes(notes, list(settings.parts), settings.random, crop, seed)
    layers = {"layer5": choose_layer5(model, settings.layer5, crop), "layer7": "relu7"}
    features = view_features(model, inputs, boxes, settings.fill, layers, batch_size)
    results, per_class = measure(features, notes, boxes, settings, seed)
    metrics = summarize(results, notes, boxes, settings, layers)
    metrics["layer_shapes"] = {k: list(v) for k, v in layer_shapes(model, layers, crop).items()}
    evidence = {"layers": layers, "classes": per_class}
    if untrained is not None:
        control_features = view_features(untrained, inputs, boxes, settings.fill, layers, batch_size)
        control, control_classes = measure(control_features, notes, boxes, settings, seed)
        metrics["untrained"] = {"seed": seed, "init": untrained.options["init"],
                                "average": summarize(control, notes, boxes, settings, layers)["average"]}
        evidence["untrained"] = {"seed": seed, "classes": {
            name: {"paths": entry["paths"], "per_pair": entry["per_pair"]} for name, entry in control_classes.items()}}
    mean = torch.zeros(3, crop, crop) if mean is None else mean
    examples = example_rows(notes, inputs, boxes, mean, input_scale, crop, settings.fill)
    return CorrespondenceResult(layers, boxes, features, metrics, evidence, examples)


# --------------------------------------------------------------------------- occluders and features


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


def measure(features: dict, notes: list[Annotation], boxes: dict, settings, seed: int) -> tuple[dict, dict]:
    """Each class's {"images", "table"} and its evidence (image paths, per draw and per pair), from one model's
    `view_features`; the draws depend on the seed and the class only, so a second model gets the same draws."""
    results, evidence = {}, {}
    for name in sorted({n.class_name for n in notes}):
        members = torch.tensor([i for i, n in enumerate(notes) if n.class_name == name])
        draws = draw_subsets(len(members), settings.images_per_draw, settings.draws, class_generator(seed, name))
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


def summarize(results: dict, notes: list[Annotation], boxes: dict, settings, layers: dict) -> dict:
    """The metrics file: settings, per class and averaged tables, random minus the parts' mean (adds each class's
    random-minus-parts gaps to `results`)."""
    classes = list(results)
    average = {o: {layer: {stat: float(np.mean([results[c]["table"][o][layer][stat] for c in classes]))
                           for stat in results[classes[0]]["table"][o][layer]}
                   for layer in layers}
               for o in boxes}
    parts = list(settings.parts)
    for entry in results.values():
        entry["random_minus_parts"] = random_gap(entry["table"], parts)
        entry["random_minus_parts_changed_in_both"] = random_gap(entry["table"], parts, "mean_changed_in_both")
    sizes = {o: [float(np.mean([b[3] - b[1] for b in bs])), float(np.mean([b[2] - b[0] for b in bs]))]
             for o, bs in boxes.items()}
    return {
        "layers": layers, "layer5_setting": settings.layer5, "images": len(notes),
        "images_per_draw": settings.images_per_draw, "draws": settings.draws, "fill": settings.fill,
        "occluder_mean_hw": sizes, "classes": results,
        "average": {"classes": classes, "table": average, "random_minus_parts": random_gap(average, parts),
                    "random_minus_parts_changed_in_both": random_gap(average, parts, "mean_changed_in_both")},
    }


def random_gap(rows: dict, parts: list[str], stat: str = "mean") -> dict | None:
    """Delta(random) minus the mean Delta of the parts (the row statistic `stat`), per layer (the paper: 0.035 at
    layer 5, 0.004 at 7); None without a random row."""
    if RANDOM not in rows:
        return None
    return {layer: rows[RANDOM][layer][stat] - float(np.mean([rows[p][layer][stat] for p in parts]))
            for layer in rows[RANDOM]}


def log_summary(name: str, metrics: dict, seconds: float) -> None:
    """The averaged table and the run's size, one log line per occlusion."""
    for o, row in metrics["average"]["table"].items():
        numbers = "  ".join(f"{layer} {s['mean']:.3f} +- {s['std']:.3f} (ignoring zeros {s['mean_ignore_zeros']:.3f}, "
                            f"changed in both {s['mean_changed_in_both']:.3f})" for layer, s in row.items())
        log.info("%s %-10s %s", name, o, numbers)
    log.info("%s: %d images in %d classes measured in %.1f s", name, metrics["images"], len(metrics["classes"]),
             seconds)


# --------------------------------------------------------------------------- figure inputs and table


def table_rows(groups: dict) -> list[list]:
    """One row (TABLE_COLUMNS) per group, occlusion and layer, with the paper's mean and std (None where it has none)."""
    rows = []
    for group, occlusions in groups.items():
        for o, layers in occlusions.items():
            for layer, s in layers.items():
                paper = PAPER.get(o, {}).get(layer, (None, None))
                rows.append([group, o, layer, s["mean"], s["std"], s["mean_ignore_zeros"], s["std_ignore_zeros"],
                             s["mean_changed_in_both"], s["std_changed_in_both"], s["changed_in_both_share"],
                             s["zero_share"], *paper])
    return rows


def example_rows(notes: list[Annotation], inputs: torch.Tensor, boxes: dict, mean: torch.Tensor, scale: float,
                 crop: int, fill: float) -> Examples:
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
    return Examples(rows, row_boxes, ["original", *boxes], names)
