"""Translation, scale and rotation invariance (paper Fig. 5), over every class.

    result = run(model, split, indices, hparams, cfg.invariance, untrained=control, seed=0, class_info=classes)
    result.metrics, result.evidence        # what the stage `invariance@<model>` writes
    result.fig5, result.class_curves       # what `zfnet.viz.invariance` draws

Each measured validation image (`indices` of the prepared `split`) is transformed before the centre crop
(`zfnet.probes.invariance`: vertical translation over +-`translation.max` of the network input's side, a zoom
about the centre from 1 to `scale.max`, rotation by 0..350 degrees; the uncovered part shows the mean image).
Per image and step: the Euclidean distance of the layer-1 (`layer1`) and layer-7 (relu7) vectors to the
untransformed image's, raw and relative to the original's norm, and p(true class).

The paper's claims, measured (definitions in `zfnet.probes.invariance`); the report judges them from the
per-image evidence (`zfnet.report.invariance_claims`), the metrics hold the means over images:
* (i) `small_change`: the relative change over the small steps (`small_steps` nearest the identity on
  each side), layer 1 against layer 7 (translation and scale);
* (ii) `output`: p(true) under translation and scale (rotation reported beside them);
* (iii) `symmetry`: per class, mean p(true) at its symmetry angles and halfway between them (classes
  without rotational symmetry at multiples of `control_angle`, as a control), and `rotated`: mean p(true)
  beyond `symmetry_guard` degrees from upright, the symmetric classes against the others. Families and
  symmetries come from `class_info` ({class: {family, rot_symmetric, symmetry_angle}}, the built-in data's
  classes.json); without it, (iii) is null.

Negative control (`untrained`): the same architecture freshly initialized by its own `init` scheme from
`seed`, never trained (the checkpoint's mean image and input scale), measured on the same images and steps.
A claim it also shows says nothing about learning.

Per-image evidence (floats to 6 decimals): each image's val index, class, symmetry (`symmetric`,
`symmetry_order`, the `period` it is scored at), and, for the trained net and under `untrained` for the
control, the curves per step (`curves.<transform>.{p_true, layer1, layer7}`, the layer changes relative to
the untransformed vector's norm) and the per-image measures the report resamples
(`zfnet.probes.invariance.per_image`).

Beyond the paper, on the built-in data (`scenes` given and `rerender_images` > 0): a seeded subset of the
measured images is re-rendered by the generator with only the object moved (`zfnet.probes.invariance_scenes`),
and the same metrics are reported for it beside the image-space ones on the same images (`rerendered`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from zfnet.data.images import subset
from zfnet.data.loading import center_crop, normalize
from zfnet.data.prepare import PreparedSplit
from zfnet.data.synthetic.catalogue import SyntheticSpec
from zfnet.probes import invariance as P
from zfnet.probes import invariance_scenes as S

log = logging.getLogger("zfnet")

IMAGES_PER_CALL = 16  # images per progress-bar step
SHOWN_STEPS = 5  # Fig. 5: the steps drawn as images, evenly over each range
SHOWN_IMAGES = 5  # the re-rendered scenes drawn
EVIDENCE_DIGITS = 6  # the evidence file's floats are rounded to this many decimals (compact; p(true) to 1e-6)
TABLE_COLUMNS = ["class", "family", "symmetric", "scored_at", "images", "p_true_at", "p_true_between", "score",
                 "p_true_rotated"]



@dataclass
class Fig5Row:
    """One transform in Fig. 5 (numpy arrays)."""

    kind: str
    values: np.ndarray  # (K,) steps
    views: np.ndarray  # (images, shown, H, W, 3) in [0, 1]
    shown: np.ndarray  # (shown,) the steps of the views
    layer1: np.ndarray  # (images, K) raw distances
    layer7: np.ndarray  # (images, K)
    p_true: np.ndarray  # (images, K)


@dataclass
class ClassCurve:
    """One class's curves under one transform: mean and std over its images, per measure (K,)."""

    name: str
    family: str
    images: int
    mean: dict[str, np.ndarray]  # {"layer1", "layer7", "p_true"}
    std: dict[str, np.ndarray]


@dataclass(frozen=True)
class Scenes:
    """What re-rendering a built-in validation image needs: the generator's spec, the dataset's metadata
    records by path (`metadata.jsonl`), and the validation folder's name under the dataset root."""

    spec: SyntheticSpec
    records: Mapping[str, dict]
    val_dir: str

    @classmethod
    def from_json(cls, spec: Mapping, records: Mapping[str, dict], val_dir: str) -> Scenes:
        """From classes.json's `spec` entry (lists where the spec holds tuples)."""
        return cls(SyntheticSpec(**{**spec, "scale_range": tuple(spec["scale_range"])}), records, val_dir)


@dataclass
class InvarianceResult:
    """What `run` measured: the curves, the metrics and evidence (as the stage writes them), the figures' inputs."""

    classes: list[str]
    info: dict[str, dict] | None  # {class: {family, rot_symmetric, symmetry_angle}} or None
    indices: list[int]  # the measured images' positions in the split
    labels: Tensor  # (n,) long
    values: dict[str, Tensor]  # {transform: (K,) float64 steps}
    curves: dict[str, P.Curves]  # the trained net's, (n, K) per field
    control: dict[str, P.Curves] | None  # the untrained net's, or None without one
    metrics: dict
    evidence: dict
    class_curves: dict[str, list[ClassCurve]]  # {transform: one per class with images}
    marks: dict[str, list[float]]  # {symmetric class: its symmetry angles}, drawn on the rotation figure
    fig5: list[Fig5Row] = field(default_factory=list)  # one per transform; empty without examples
    fig5_names: list[str] = field(default_factory=list)
    rerendered: list[Fig5Row] = field(default_factory=list)  # the re-rendered scenes' Fig. 5 rows, or empty
    rerendered_names: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the trained net's measurement (not in the metrics: it is not deterministic)
    views: int = 0  # the views it measured

    @property
    def speed(self) -> dict[str, float]:
        return {"seconds": self.seconds, "views_per_s": self.views / self.seconds if self.seconds else 0.0}


def run(model: nn.Module, split: PreparedSplit, indices: Sequence[int], hparams: Mapping, settings, *,
        seed: int, untrained: nn.Module | None = None, class_info: Mapping[str, dict] | None = None,
        scenes: Scenes | None = None, device: torch.device | str = "cpu") -> InvarianceResult:
    """Fig. 5 on `model` (and the control `untrained`, when given) over the images `indices` of `split` (the
    prepared uint8 images, before the crop). `hparams`: the checkpoint's `mean`, `crop`, `input_scale`.
    `settings`: the `invariance` config section (translation, scale, rotation, layer1, batch_size, examples,
    small_steps, symmetry_tolerance, symmetry_guard, control_angle, rerender_images). `seed`: the control's
    (reported) and the re-rendered subset's (seed + 1). `class_info`: {class: {family, rot_symmetric,
    symmetry_angle}} or None. `scenes`: what re-rendering needs (built-in data only), or None."""
    indices = list(indices)
    labels = torch.as_tensor(split.labels[indices], dtype=torch.long)
    classes, side = list(split.classes), split.size
    values = {kind: P.step_values(kind, getattr(settings, kind), hparams["crop"]) for kind in P.KINDS}
    thetas = {kind: P.affine_matrices(kind, values[kind], side) for kind in P.KINDS}
    info = None if class_info is None else {name: class_info.get(name, {}) for name in classes}
    measure = Measure(split, hparams, settings, device)

    started = time.perf_counter()
    curves = measure.all(model, indices, labels, thetas)
    seconds = time.perf_counter() - started
    views = len(indices) * sum(len(v) + 1 for v in values.values())
    log.info("%d images x %d views in %.1f s (%.0f views/s)", len(indices), views // max(len(indices), 1), seconds,
             views / seconds)
    control = None
    if untrained is not None:
        started = time.perf_counter()
        control = measure.all(untrained, indices, labels, thetas, "untrained ")
        log.info("untrained (the negative control): the same views in %.1f s", time.perf_counter() - started)

    metrics = {"images": len(indices), "layer1": settings.layer1, "layer7": P.LAYER7, "steps": rounded_steps(values),
               **summaries(curves, values, labels, classes, info, settings)}
    evidence = {**image_evidence(classes, indices, labels, values, info, settings),
                **net_evidence(curves, values, labels, info, classes, settings)}
    if untrained is not None:
        metrics["untrained"] = {"seed": seed, "init": untrained.options["init"],
                                **summaries(control, values, labels, classes, info, settings)}
        evidence["untrained"] = {"seed": seed, **net_evidence(control, values, labels, info, classes, settings)}
    result = InvarianceResult(classes, info, indices, labels, values, curves, control, metrics, evidence,
                              {kind: class_curves(curves[kind], labels, classes, info) for kind in P.KINDS},
                              symmetry_marks(classes, info, settings), seconds=seconds, views=views)

    examples = example_indices(split, settings.examples)
    if examples:
        result.fig5 = measure.fig5_rows(model, examples, values, thetas)
        result.fig5_names = [f"{classes[split.labels[i]]} (val {i})" for i in examples]
    if scenes is not None and settings.rerender_images:
        chosen = subset(len(indices), settings.rerender_images, seed + 1)
        paths = [f"{scenes.val_dir}/{split.files[indices[n]]}" for n in chosen]
        measured, result.rerendered = measure.rerendered(model, scenes, paths, labels[chosen], values)
        same = {kind: P.Curves(*(part[chosen] for part in curves[kind])) for kind in P.KINDS}
        metrics["rerendered"] = {"images": len(paths), "distractors": 0}
        for name, source in (("scenes", measured), ("image_space_same_images", same)):
            metrics["rerendered"][name] = transforms_metrics(source, values, labels[chosen], classes, info, settings)
        result.rerendered_names = [f"{classes[int(labels[n])]} (val {indices[n]})" for n in chosen[:SHOWN_IMAGES]]
    return result


# --------------------------------------------------------------------------- measuring


class Measure:
    """The measurement of one split's images with one checkpoint's mean image, crop and input scale."""

    def __init__(self, split: PreparedSplit, hparams: Mapping, settings, device):
        self.split, self.settings, self.device = split, settings, device
        self.mean, self.crop = hparams["mean"].to(device), hparams["crop"]
        self.scale = float(hparams["input_scale"])

    def all(self, model, indices, labels, thetas, what: str = "") -> dict[str, P.Curves]:
        """{transform: Curves} of `model` on the images `indices`."""
        return {kind: self.one(model, indices, labels, thetas[kind], what + kind) for kind in P.KINDS}

    def one(self, model, indices, labels, theta, desc: str) -> P.Curves:
        parts = []
        for start in tqdm(range(0, len(indices), IMAGES_PER_CALL), desc=desc, unit="batch", disable=None):
            part = slice(start, start + IMAGES_PER_CALL)
            images = torch.stack([self.split[i][0] for i in indices[part]]).to(self.device)
            parts.append(self._measure(model, images, labels[part].to(self.device), theta))
        return P.Curves(*(torch.cat(fields) for fields in zip(*parts)))

    def _measure(self, model, images, labels, theta) -> P.Curves:
        return P.measure(model, images, labels, self.mean, theta, self.crop, self.scale, self.settings.layer1,
                         self.settings.batch_size)

    def fig5_rows(self, model, examples: list[int], values, thetas) -> list[Fig5Row]:
        """Fig. 5's rows: the example images' curves and their views at a few steps, as the network sees them."""
        images = torch.stack([self.split[i][0] for i in examples]).to(self.device)
        labels = torch.as_tensor(self.split.labels[examples], dtype=torch.long).to(self.device)
        mean_pixels = center_crop(self.mean.float(), self.crop)
        rows = []
        for kind in P.KINDS:
            curves = self._measure(model, images, labels, thetas[kind])
            shown = shown_steps(0, len(values[kind]) - 1)
            views = torch.stack([P.transformed_inputs(image, self.mean, thetas[kind][shown], self.crop, 1.0)
                                 + mean_pixels for image in images])  # back to pixels: the mean added again
            rows.append(Fig5Row(kind, values[kind].numpy(), (views / 255).clamp(0, 1).permute(0, 1, 3, 4, 2).cpu()
                                .numpy(), values[kind][shown].numpy(), curves.layer1.numpy(), curves.layer7.numpy(),
                                curves.p_true.numpy()))
        return rows

    def rerendered(self, model, scenes: Scenes, paths: list[str], labels, values) -> tuple[dict, list[Fig5Row]]:
        """({transform: Curves}, Fig. 5 rows of the first SHOWN_IMAGES) of the scenes `paths` re-rendered with
        only the object moved by each step (`zfnet.probes.invariance_scenes`)."""
        started, measured, rows = time.perf_counter(), {}, []
        for kind in P.KINDS:
            rendered = torch.stack([torch.from_numpy(S.rerendered(scenes.spec, path, scenes.records[path], kind,
                                                                  values[kind], self.split.size)).permute(0, 3, 1, 2)
                                    for path in paths]).to(self.device)  # (n, 1 + K, 3, S, S) uint8
            views = center_crop(normalize(rendered.flatten(0, 1), self.mean, self.scale), self.crop)
            measured[kind] = first = P.measure_views(model, views.unflatten(0, rendered.shape[:2]), labels,
                                                     self.settings.layer1)
            shown, top = shown_steps(1, len(values[kind])), SHOWN_IMAGES
            rows.append(Fig5Row(kind, values[kind].numpy(), (center_crop(rendered[:top, shown], self.crop).float() / 255)
                                .permute(0, 1, 3, 4, 2).cpu().numpy(), values[kind][shown - 1].numpy(),
                                first.layer1[:top].numpy(), first.layer7[:top].numpy(), first.p_true[:top].numpy()))
        log.info("re-rendered %d scenes x %d steps in %.1f s", len(paths), sum(len(v) + 1 for v in values.values()),
                 time.perf_counter() - started)
        return measured, rows


def shown_steps(start: int, stop: int) -> Tensor:
    """The SHOWN_STEPS step positions evenly over [start, stop] (rounded; repeats dropped)."""
    return torch.from_numpy(np.unique(np.linspace(start, stop, SHOWN_STEPS).round().astype(np.int64)))


def example_indices(split: PreparedSplit, names: Sequence[str]) -> list[int]:
    """The first validation image of each class named in `names` (absent names skipped, with a warning)."""
    missing = [name for name in names if name not in split.classes]
    if missing:
        log.warning("invariance.examples: %s not classes of this data; skipped", ", ".join(missing))
    return [int(np.flatnonzero(split.labels == split.classes.index(name))[0]) for name in names
            if name in split.classes and (split.labels == split.classes.index(name)).any()]


# --------------------------------------------------------------------------- classes and metrics


def rounded_steps(values: dict[str, Tensor]) -> dict[str, list[float]]:
    return {kind: [round(float(v), 4) for v in values[kind]] for kind in P.KINDS}


def family(info, name: str) -> str:
    return (info or {}).get(name, {}).get("family") or "all classes"


def symmetric_classes(classes: Sequence[str], info) -> list[str]:
    return [name for name in classes if (info or {}).get(name, {}).get("rot_symmetric")]


def period(name: str, info, settings) -> float:
    """The angle class `name` is scored at: its symmetry angle, or the control angle."""
    angle = (info or {}).get(name, {}).get("symmetry_angle")
    return float(angle) if (info or {}).get(name, {}).get("rot_symmetric") and angle else float(settings.control_angle)


def symmetry_order(name: str, info) -> int:
    """How many rotations map the class's objects onto themselves (360 / symmetry angle); 1 for the others."""
    entry = (info or {}).get(name, {})
    angle = entry.get("symmetry_angle")
    return int(round(360.0 / float(angle))) if entry.get("rot_symmetric") and angle else 1


def summaries(curves: dict[str, P.Curves], values, labels, classes, info, settings) -> dict:
    """The metrics of one network: the untransformed top-1 error and, per transform, the means over images."""
    return {"base_top1_error": float((curves["rotation"].base_label != labels).double().mean()),
            **transforms_metrics(curves, values, labels, classes, info, settings)}


def transforms_metrics(curves: dict[str, P.Curves], values, labels, classes, info, settings) -> dict:
    result = {kind: transform_metrics(kind, curves[kind], values[kind], labels, settings) for kind in P.KINDS}
    result["rotation"]["symmetry"] = symmetry_metrics(curves["rotation"], values["rotation"], labels, classes, info,
                                                      settings)
    return result


def transform_metrics(kind: str, curves: P.Curves, values, labels, settings) -> dict:
    relative1, relative7 = curves.relative("layer1"), curves.relative("layer7")
    result = {"output": P.output_stability(curves.p_true, curves.top_label, labels),
              "layer1_relative_mean": float(relative1.mean()), "layer7_relative_mean": float(relative7.mean())}
    if kind != "rotation":
        result["small_change"] = P.small_change(relative1, relative7, values, P.IDENTITY[kind], settings.small_steps)
    return result


def symmetry_metrics(curves: P.Curves, angles, labels, classes, info, settings) -> dict | None:
    if info is None:
        return None
    scores = {}
    for c, name in enumerate(classes):
        mine = labels == c
        scores[name] = {"symmetric": name in symmetric_classes(classes, info), "images": int(mine.sum()),
                        **P.recovery_score(curves.p_true[mine], angles, period(name, info, settings),
                                           settings.symmetry_tolerance),
                        "rotated": P.rotated_p_true(curves.p_true[mine], angles, settings.symmetry_guard)}
    symmetric = symmetric_classes(classes, info)
    return {"classes": scores, **P.rotation_claim(scores, symmetric),
            "rotated": P.rotation_claim(scores, symmetric, key="rotated"), "tolerance": settings.symmetry_tolerance,
            "guard": settings.symmetry_guard, "control_angle": settings.control_angle}


# --------------------------------------------------------------------------- per-image evidence


def image_evidence(classes, indices, labels, values, info, settings) -> dict:
    """What each measured image is: its index in the val split, its class, and its class's rotational
    symmetry (`symmetric` 0/1, `symmetry_order`: 360 / its symmetry angle, 1 for the others; `period`: the
    angle (iii) scores it at; all null without class info); the steps and settings the measures used."""
    names = [classes[int(c)] for c in labels]
    known = info is not None
    return {"images": len(indices), "image_index": [int(i) for i in indices], "classes": list(classes),
            "label": [int(c) for c in labels],
            "symmetric": [int(name in symmetric_classes(classes, info)) for name in names] if known else None,
            "symmetry_order": [symmetry_order(name, info) for name in names] if known else None,
            "period": [period(name, info, settings) for name in names] if known else None,
            "steps": rounded_steps(values),
            "settings": {"small_steps": settings.small_steps, "symmetry_tolerance": settings.symmetry_tolerance,
                         "symmetry_guard": settings.symmetry_guard, "control_angle": settings.control_angle}}


def net_evidence(curves: dict[str, P.Curves], values, labels, info, classes, settings) -> dict:
    """One network's per-image curves (p(true) and the layer-1 and layer-7 changes relative to the
    untransformed vector's norm, per step) and the per-image measures the report judges (`P.per_image`)."""
    periods = None if info is None else [period(classes[int(c)], info, settings) for c in labels]
    measures = P.per_image(curves, values, settings.small_steps, settings.symmetry_guard,
                           settings.symmetry_tolerance, periods)
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


# --------------------------------------------------------------------------- the figures' and the table's inputs


def class_curves(curves: P.Curves, labels, classes, info) -> list[ClassCurve]:
    """Per class with images: the mean and (population) std over its images of each measure, per step."""
    result = []
    measures = {"layer1": curves.relative("layer1"), "layer7": curves.relative("layer7"), "p_true": curves.p_true}
    for c, name in enumerate(classes):
        mine = labels == c
        if mine.any():
            result.append(ClassCurve(name, family(info, name), int(mine.sum()),
                                     {k: v[mine].mean(0).numpy() for k, v in measures.items()},
                                     {k: v[mine].std(0, correction=0).numpy() for k, v in measures.items()}))
    return result


def symmetry_marks(classes, info, settings) -> dict[str, list[float]]:
    """The symmetry angles of the symmetric classes, drawn on the rotation figure."""
    return {name: [period(name, info, settings) * m for m in range(1, round(360 / period(name, info, settings)))]
            for name in symmetric_classes(classes, info)}


def table_rows(result: InvarianceResult) -> list[list]:
    """The per-class table (`TABLE_COLUMNS`) of the trained net's rotation scores; empty without class info."""
    symmetry = result.metrics["rotation"]["symmetry"]
    if symmetry is None:
        return []
    return [[name, family(result.info, name), s["symmetric"], s["period"], s["images"], s["at"], s["between"],
             s["score"], s["rotated"]] for name, s in symmetry["classes"].items()]
