"""Stage `invariance@<model>`: translation, scale and rotation invariance (paper Fig. 5), over every class.

    python pipelines/invariance.py model=alexnet [invariance.images=null invariance.layer1=relu1]

Each measured validation image (a seeded subset of `invariance.images`) is transformed before the
centre crop (`zfnet.probes.invariance`: vertical translation over +-`translation.max` of the network
input's side, a zoom about the centre from 1 to `scale.max`, rotation by 0..350 degrees; the uncovered
part shows the mean image). Per image and step: the Euclidean distance of the layer-1 (`layer1`)
and layer-7 (relu7) vectors to the untransformed image's, raw and relative to the original's norm,
and p(true class).

The paper's claims, measured (definitions in `zfnet.probes.invariance`); the report judges them from the
per-image evidence (`zfnet.report.invariance_claims`), the metrics hold the means over images:
* (i) `small_change`: the relative change over the small steps (`small_steps` nearest the identity on
  each side), layer 1 against layer 7 (translation and scale);
* (ii) `output`: p(true) under translation and scale (rotation reported beside them);
* (iii) `symmetry`: per class, mean p(true) at its symmetry angles and halfway between them (classes
  without rotational symmetry at multiples of `control_angle`, as a control), and `rotated`: mean p(true)
  beyond `symmetry_guard` degrees from upright, the symmetric classes against the others. Families and
  symmetries come from `classes_file` (the built-in data's classes.json); without one, (iii) is null.

Negative control (`untrained`): the same architecture freshly initialized by its own `init` scheme from
`seed`, never trained (no checkpoint weights; the checkpoint's mean image and input scale), measured on
the same images and steps. A claim it also shows says nothing about learning.

Per-image evidence (evidence/invariance_<model>.json, floats to 6 decimals): each image's val index,
class, symmetry (`symmetric`, `symmetry_order`, the `period` it is scored at), and, for the trained net
and under `untrained` for the control, the curves per step (`curves.<transform>.{p_true, layer1, layer7}`,
the layer changes relative to the untransformed vector's norm) and the per-image measures the report
resamples (`zfnet.probes.invariance.per_image`).

Beyond the paper, on the built-in data (`rerender_images` > 0): a seeded subset of the measured images
is re-rendered by the generator with only the object moved (`zfnet.probes.invariance_scenes`), and the
same metrics are reported for it beside the image-space ones on the same images (`rerendered`).

Outputs: plots/invariance_<model>/fig5.png (the `examples` images), classes_<transform>.png (mean
+- std per class, one column per class family) and rerendered.png; metrics/invariance_<model>.json;
evidence/invariance_<model>.json; W&B: the figures, a per-class table and the summary.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from zfnet.data.annotations import read_metadata
from zfnet.data.images import subset
from zfnet.data.loading import center_crop, normalize
from zfnet.data.prepare import PreparedSplit
from zfnet.data.synthetic.catalogue import SyntheticSpec
from zfnet.errors import UserError
from zfnet.io import save_figure
from zfnet.nets.training import load_trained, untrained_like
from zfnet.pipeline import stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.probes import invariance as P
from zfnet.probes import invariance_scenes as S
from zfnet.viz.invariance import ClassCurve, Fig5Row, class_curves_figure, fig5_figure

IMAGES_PER_CALL = 16  # images per progress-bar step
SHOWN_STEPS = 5  # Fig. 5: the steps drawn as images, evenly over each range


def main(cfg) -> None:
    key, inv = cfg.model, cfg.invariance
    device = device_for(cfg.trainer.accelerator)
    model, hparams = load_trained(stage.checkpoint_path(cfg, key), device)
    split = PreparedSplit(Path(cfg.paths.prepared) / "val")
    indices = subset(len(split), inv.images, cfg.seed)
    labels = torch.as_tensor(split.labels[indices], dtype=torch.long)
    crop, side = hparams["crop"], split.size
    values = {kind: P.step_values(kind, inv[kind], crop) for kind in P.KINDS}
    thetas = {kind: P.affine_matrices(kind, values[kind], side) for kind in P.KINDS}
    info = class_info(cfg, split.classes)

    started = time.perf_counter()
    curves = measure_all(model, split, indices, labels, thetas, hparams, inv, device)
    seconds = time.perf_counter() - started
    views = len(indices) * sum(len(v) + 1 for v in values.values())
    stage.log.info("%s: %d images x %d views in %.1f s (%.0f views/s)", key, len(indices),
                   views // max(len(indices), 1), seconds, views / seconds)
    started = time.perf_counter()
    untrained = untrained_like(hparams, cfg.seed, device)
    control = measure_all(untrained, split, indices, labels, thetas, hparams, inv, device, "untrained ")
    stage.log.info("%s untrained (the negative control): the same views in %.1f s", key, time.perf_counter() - started)

    metrics = {"images": len(indices), "layer1": inv.layer1, "layer7": P.LAYER7,
               "steps": {kind: [round(float(v), 4) for v in values[kind]] for kind in P.KINDS},
               **summaries(curves, values, labels, split.classes, info, inv),
               "untrained": {"seed": cfg.seed, "init": untrained.options["init"],
                             **summaries(control, values, labels, split.classes, info, inv)}}
    evidence = {**image_evidence(split, indices, labels, values, info, inv),
                **net_evidence(curves, values, labels, info, split.classes, inv),
                "untrained": {"seed": cfg.seed, **net_evidence(control, values, labels, info, split.classes, inv)}}
    # deterministic values only in the metrics file: speed goes to the log and W&B

    plots = stage.plot_dir(cfg, f"invariance_{key}")
    figures = {}
    examples = example_indices(split, inv.examples)
    if examples:
        path = plots / "fig5.png"
        save_figure(fig5_figure(fig5_rows(model, split, examples, values, thetas, hparams, inv, device),
                                [f"{split.classes[split.labels[i]]} (val {i})" for i in examples],
                                f"{key}: invariance (Fig. 5), layer 1 = {inv.layer1}, layer 7 = relu7"), path)
        figures[f"invariance/{key}/fig5"] = path
    for kind in P.KINDS:
        path = plots / f"classes_{kind}.png"
        marks = symmetry_marks(split.classes, info, inv) if kind == "rotation" else None
        save_figure(class_curves_figure(class_curves(curves[kind], labels, split.classes, info), values[kind].numpy(),
                                        kind, f"{key}: {kind}, mean +- std over each class's images "
                                        f"({len(indices)} validation images measured)", marks), path)
        figures[f"invariance/{key}/classes_{kind}"] = path
    scenes = rerendered_scenes(cfg, model, split, indices, labels, curves, values, hparams, info, device)
    if scenes is not None:
        metrics["rerendered"], rows, names = scenes
        path = plots / "rerendered.png"
        save_figure(fig5_figure(rows, names, f"{key}: invariance, the scene re-rendered with only the object "
                                "moved (no distractors; beyond the paper)"), path)
        figures[f"invariance/{key}/rerendered"] = path
    with Tracker(cfg, "invariance", name=f"invariance-{key}") as tracker:
        tracker.images(figures)
        tracker.table(f"invariance/{key}/classes", TABLE_COLUMNS, table_rows(metrics, split.classes, info))
        speed = {"seconds": seconds, "views_per_s": views / seconds}
        tracker.summary({f"invariance/{key}/{name}": value for name, value in stage.flat_numbers({**metrics, **speed}).items()})
        stage.write_evidence(cfg, f"invariance_{key}", evidence)
        stage.write_metrics(cfg, f"invariance_{key}", metrics)


def measure_all(model, split, indices, labels, thetas, hparams, inv, device, what: str = "") -> dict[str, P.Curves]:
    """{transform: Curves} of `model` on the measured images."""
    return {kind: run_measure(model, split, indices, labels, thetas[kind], hparams, inv, device, what + kind)
            for kind in P.KINDS}


def run_measure(model, split, indices, labels, theta, hparams, inv, device, desc: str) -> P.Curves:
    parts = []
    for start in tqdm(range(0, len(indices), IMAGES_PER_CALL), desc=desc, unit="batch", disable=None):
        part = slice(start, start + IMAGES_PER_CALL)
        images = torch.stack([split[i][0] for i in indices[part]]).to(device)
        parts.append(P.measure(model, images, labels[part].to(device), hparams["mean"].to(device), theta,
                               hparams["crop"], float(hparams["input_scale"]), inv.layer1, inv.batch_size))
    return P.Curves(*(torch.cat(fields) for fields in zip(*parts)))


# --------------------------------------------------------------------------- classes and metrics


def class_info(cfg, classes: list[str]) -> dict[str, dict] | None:
    """{class: {family, rot_symmetric, symmetry_angle}} from `invariance.classes_file` (null: the built-in
    data's classes.json), or None (with a warning) when there is none."""
    path = cfg.invariance.classes_file
    if path is None and cfg.data.name == "synthetic":
        path = Path(cfg.paths.synthetic) / "classes.json"
    if path is None or not Path(path).is_file():
        stage.log.warning("no classes file (%s): no class families or symmetries, so claim (iii) is null", path)
        return None
    try:
        known = json.loads(Path(path).read_text())["classes"]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"invariance.classes_file: {path} is not a classes.json with a 'classes' mapping") from err
    return {name: known.get(name, {}) for name in classes}


def family(info, name: str) -> str:
    return (info or {}).get(name, {}).get("family") or "all classes"


def symmetric_classes(classes: list[str], info) -> list[str]:
    return [name for name in classes if (info or {}).get(name, {}).get("rot_symmetric")]


def period(name: str, info, inv) -> float:
    """The angle class `name` is scored at: its symmetry angle, or the control angle."""
    angle = (info or {}).get(name, {}).get("symmetry_angle")
    return float(angle) if (info or {}).get(name, {}).get("rot_symmetric") and angle else float(inv.control_angle)


def summaries(curves: dict[str, P.Curves], values, labels, classes, info, inv) -> dict:
    """The metrics of one network: the untransformed top-1 error and, per transform, the means over images."""
    result = {"base_top1_error": float((curves["rotation"].base_label != labels).double().mean()),
              **{kind: transform_metrics(kind, curves[kind], values[kind], labels, inv) for kind in P.KINDS}}
    result["rotation"]["symmetry"] = symmetry_metrics(curves["rotation"], values["rotation"], labels, classes, info, inv)
    return result


def transform_metrics(kind: str, curves: P.Curves, values, labels, inv) -> dict:
    relative1, relative7 = curves.relative("layer1"), curves.relative("layer7")
    result = {"output": P.output_stability(curves.p_true, curves.top_label, labels),
              "layer1_relative_mean": float(relative1.mean()), "layer7_relative_mean": float(relative7.mean())}
    if kind != "rotation":
        result["small_change"] = P.small_change(relative1, relative7, values, P.IDENTITY[kind], inv.small_steps)
    return result


def symmetry_metrics(curves: P.Curves, angles, labels, classes, info, inv) -> dict | None:
    if info is None:
        return None
    scores = {}
    for c, name in enumerate(classes):
        mine = labels == c
        scores[name] = {"symmetric": name in symmetric_classes(classes, info), "images": int(mine.sum()),
                        **P.recovery_score(curves.p_true[mine], angles, period(name, info, inv),
                                           inv.symmetry_tolerance),
                        "rotated": P.rotated_p_true(curves.p_true[mine], angles, inv.symmetry_guard)}
    symmetric = symmetric_classes(classes, info)
    return {"classes": scores, **P.rotation_claim(scores, symmetric),
            "rotated": P.rotation_claim(scores, symmetric, key="rotated"),
            "tolerance": inv.symmetry_tolerance, "guard": inv.symmetry_guard, "control_angle": inv.control_angle}


# --------------------------------------------------------------------------- per-image evidence


EVIDENCE_DIGITS = 6  # the evidence file's floats are rounded to this many decimals (compact; p(true) to 1e-6)


def image_evidence(split, indices, labels, values, info, inv) -> dict:
    """What each measured image is: its index in the val split, its class, and its class's rotational
    symmetry (`symmetric` 0/1, `symmetry_order`: 360 / its symmetry angle, 1 for the others; `period`: the
    angle (iii) scores it at; all null without a classes file); the steps and settings the measures used."""
    names = [split.classes[int(c)] for c in labels]
    known = info is not None
    return {"images": len(indices), "image_index": [int(i) for i in indices], "classes": list(split.classes),
            "label": [int(c) for c in labels],
            "symmetric": [int(name in symmetric_classes(split.classes, info)) for name in names] if known else None,
            "symmetry_order": [symmetry_order(name, info) for name in names] if known else None,
            "period": [period(name, info, inv) for name in names] if known else None,
            "steps": {kind: [round(float(v), 4) for v in values[kind]] for kind in P.KINDS},
            "settings": {"small_steps": inv.small_steps, "symmetry_tolerance": inv.symmetry_tolerance,
                         "symmetry_guard": inv.symmetry_guard, "control_angle": inv.control_angle}}


def symmetry_order(name: str, info) -> int:
    """How many rotations map the class's objects onto themselves (360 / symmetry angle); 1 for the others."""
    entry = (info or {}).get(name, {})
    angle = entry.get("symmetry_angle")
    return int(round(360.0 / float(angle))) if entry.get("rot_symmetric") and angle else 1


def net_evidence(curves: dict[str, P.Curves], values, labels, info, classes, inv) -> dict:
    """One network's per-image curves (p(true) and the layer-1 and layer-7 changes relative to the
    untransformed vector's norm, per step) and the per-image measures the report judges (`P.per_image`)."""
    periods = None if info is None else [period(classes[int(c)], info, inv) for c in labels]
    measures = P.per_image(curves, values, inv.small_steps, inv.symmetry_guard, inv.symmetry_tolerance, periods)
    return compact({"curves": {kind: {"p_true": curves[kind].p_true, "layer1": curves[kind].relative("layer1"),
                                      "layer7": curves[kind].relative("layer7")} for kind in P.KINDS},
                    **measures})


def compact(value):
    """Tensors as lists rounded to EVIDENCE_DIGITS decimals (NaN as null), recursively."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        rounded = value.double().round(decimals=EVIDENCE_DIGITS)
        if rounded.dim() > 1:
            return [compact(row) for row in rounded]
        return [None if math.isnan(v) else v for v in rounded.tolist()]
    return value


def class_curves(curves: P.Curves, labels, classes, info) -> list[ClassCurve]:
    result = []
    measures = {"layer1": curves.relative("layer1"), "layer7": curves.relative("layer7"), "p_true": curves.p_true}
    for c, name in enumerate(classes):
        mine = labels == c
        if mine.any():
            result.append(ClassCurve(name, family(info, name), int(mine.sum()),
                                     {k: v[mine].mean(0).numpy() for k, v in measures.items()},
                                     {k: v[mine].std(0, correction=0).numpy() for k, v in measures.items()}))
    return result


def symmetry_marks(classes, info, inv) -> dict[str, list[float]]:
    """The symmetry angles of the symmetric classes, drawn on the rotation figure."""
    return {name: [period(name, info, inv) * m for m in range(1, round(360 / period(name, info, inv)))]
            for name in symmetric_classes(classes, info)}


TABLE_COLUMNS = ["class", "family", "symmetric", "scored_at", "images", "p_true_at", "p_true_between", "score",
                 "p_true_rotated"]


def table_rows(metrics: dict, classes, info) -> list[list]:
    symmetry = metrics["rotation"]["symmetry"]
    if symmetry is None:
        return []
    return [[name, family(info, name), s["symmetric"], s["period"], s["images"], s["at"], s["between"], s["score"],
             s["rotated"]] for name, s in symmetry["classes"].items()]


# --------------------------------------------------------------------------- re-rendered scenes


def rerendered_scenes(cfg, model, split, indices, labels, curves, values, hparams, info, device):
    """The second measurement (`zfnet.probes.invariance_scenes`) on a seeded `rerender_images` of the
    measured images, beside the image-space one on the same images: (metrics, Fig. 5 rows of the
    first 5, their names), or None when off or the data is not the built-in set."""
    inv = cfg.invariance
    spec_file = Path(cfg.paths.synthetic) / "classes.json"
    if not inv.rerender_images or cfg.data.name != "synthetic" or not spec_file.is_file():
        return None
    spec = json.loads(spec_file.read_text())["spec"]
    spec = SyntheticSpec(**{**spec, "scale_range": tuple(spec["scale_range"])})
    records = read_metadata(Path(cfg.data.root) / "metadata.jsonl")
    chosen = subset(len(indices), inv.rerender_images, cfg.seed + 1)
    paths = [f"{cfg.data.val_dir}/{split.files[indices[n]]}" for n in chosen]
    mean, scale, crop = hparams["mean"].to(device), float(hparams["input_scale"]), hparams["crop"]
    started, measured, rows = time.perf_counter(), {}, []
    for kind in P.KINDS:
        scenes = torch.stack([torch.from_numpy(S.rerendered(spec, path, records[path], kind, values[kind], split.size))
                              .permute(0, 3, 1, 2) for path in paths]).to(device)  # (n, 1 + K, 3, S, S) uint8
        views = center_crop(normalize(scenes.flatten(0, 1), mean, scale), crop).unflatten(0, scenes.shape[:2])
        measured[kind] = P.measure_views(model, views, labels[chosen], inv.layer1)
        shown = torch.from_numpy(np.unique(np.linspace(1, len(values[kind]), SHOWN_STEPS).round().astype(np.int64)))
        first = measured[kind]
        rows.append(Fig5Row(kind, values[kind].numpy(), (center_crop(scenes[:5, shown], crop).float() / 255)
                            .permute(0, 1, 3, 4, 2).cpu().numpy(), values[kind][shown - 1].numpy(),
                            first.layer1[:5].numpy(), first.layer7[:5].numpy(), first.p_true[:5].numpy()))
    stage.log.info("re-rendered %d scenes x %d steps in %.1f s", len(paths), sum(len(v) + 1 for v in values.values()),
                   time.perf_counter() - started)
    same = {kind: P.Curves(*(field[chosen] for field in curves[kind])) for kind in P.KINDS}
    result = {"images": len(paths), "distractors": 0}
    for name, source in (("scenes", measured), ("image_space_same_images", same)):
        result[name] = {kind: transform_metrics(kind, source[kind], values[kind], labels[chosen], inv) for kind in P.KINDS}
        result[name]["rotation"]["symmetry"] = symmetry_metrics(source["rotation"], values["rotation"], labels[chosen],
                                                                split.classes, info, inv)
    names = [f"{split.classes[int(labels[n])]} (val {indices[n]})" for n in chosen[:5]]
    return result, rows, names


# --------------------------------------------------------------------------- Fig. 5


def example_indices(split: PreparedSplit, names) -> list[int]:
    """The first validation image of each class named in `invariance.examples` (absent names skipped)."""
    missing = [name for name in names if name not in split.classes]
    if missing:
        stage.log.warning("invariance.examples: %s not classes of this data; skipped", ", ".join(missing))
    return [int(np.flatnonzero(split.labels == split.classes.index(name))[0]) for name in names
            if name in split.classes and (split.labels == split.classes.index(name)).any()]


def fig5_rows(model, split, examples, values, thetas, hparams, inv, device) -> list[Fig5Row]:
    images = torch.stack([split[i][0] for i in examples]).to(device)
    labels = torch.as_tensor(split.labels[examples], dtype=torch.long).to(device)
    mean, scale, crop = hparams["mean"].to(device), float(hparams["input_scale"]), hparams["crop"]
    rows = []
    for kind in P.KINDS:
        curves = P.measure(model, images, labels, mean, thetas[kind], crop, scale, inv.layer1, inv.batch_size)
        shown = torch.from_numpy(np.unique(np.linspace(0, len(values[kind]) - 1, SHOWN_STEPS).round().astype(np.int64)))
        views = torch.stack([P.transformed_inputs(image, mean, thetas[kind][shown], crop, 1.0) + _cropped(mean, crop)
                             for image in images])  # back to pixels: the mean added again
        rows.append(Fig5Row(kind, values[kind].numpy(), (views / 255).clamp(0, 1).permute(0, 1, 3, 4, 2).cpu().numpy(),
                            values[kind][shown].numpy(), curves.layer1.numpy(), curves.layer7.numpy(),
                            curves.p_true.numpy()))
    return rows


def _cropped(mean, crop: int) -> torch.Tensor:
    return center_crop(mean.float(), crop)


if __name__ == "__main__":
    stage.run("invariance", main)
