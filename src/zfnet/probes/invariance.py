"""Invariance to translation, scale and rotation (paper Fig. 5). Pure tensor functions; the experiment
`zfnet.experiments.invariance.run` puts them together, the stage `invariance@<model>` reads and writes.

    values = step_values("rotation", config)                              # (K,) degrees 0, 10, ..., 350
    theta = affine_matrices("rotation", values, size=128)                 # (K, 2, 3) for affine_grid
    inputs = transformed_inputs(uint8_image, mean, theta, crop=112, scale=0.02)   # (K, 3, 112, 112)
    curves = measure(model, uint8_images, labels, mean, theta, crop=112, scale=0.02, layer1="pool1")
    small_change(curves.relative("layer1"), curves.relative("layer7"), values, identity=0.0, k=2)

Conventions (ours where the paper is silent):

* Where: the transform acts on the whole prepared image (`prepare.size` pixels square, uint8 as float),
  before the centre crop, so the network sees the same window as in validation and content from
  outside the crop can move in. Where the transformed image uncovers pixels that were outside the
  image, the per-pixel mean image shows through; so after mean subtraction they are 0. Bilinear
  sampling (`grid_sample`, align_corners=False): the network input is
  (warp(image) - coverage * mean) * scale, coverage being the warp of an all-ones image (the bilinear
  weight that fell inside the image), so a border pixel blends the image with the mean smoothly.
* Coordinates: pixel centres, the image centre at (S/2, S/2) in pixel-edge units; rows grow downwards.
  - translation t (pixels of the prepared image): the content moves down by t (t < 0: up);
    translation by a whole number of pixels is an exact shift.
  - scale s: a zoom by s about the centre (s > 1 enlarges; content beyond the border is cut off).
  - rotation a (degrees): counter-clockwise as the image is displayed (rows down), about the centre;
    90 degrees equals torch.rot90(image, 1, dims=(-2, -1)).
* Features: layer 1 is `layer1` (pool1: what conv2 reads, or relu1: rectified conv1), layer 7 is
  relu7 (rectified fc7), both flattened; the distance is Euclidean between the transformed image's
  vector and the untransformed image's (the step-0 reference, computed from the image as validation
  sees it), raw as the paper plots it and divided by the reference vector's norm (`relative`).
  p(true) is the softmax probability of the true class on the single centre view.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zfnet.data.loading import center_crop, normalize
from zfnet.errors import UserError
from zfnet.probes.correspondence import layer_features

KINDS = ("translation", "scale", "rotation")
IDENTITY = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}
IDENTITY_EPS = 1e-6  # steps within this of the identity are the identity (linspace rounding)
LAYER1 = ("pool1", "relu1")
LAYER7 = "relu7"
LOGITS = "fc8"


# --------------------------------------------------------------------------- the transforms


def step_values(kind: str, settings: dict, side: int) -> Tensor:
    """(K,) float64 steps of one transform from its config entry (`invariance.<kind>`); identity included.

    translation: `steps` values evenly over [-max, +max] x `side` pixels (max a fraction of the
    network input's side `side`); scale: `steps` values evenly over [1, max]; rotation: 0, step, ...
    below 360 degrees.
    """
    if kind == "translation":
        reach = settings["max"] * side
        return torch.linspace(-reach, reach, settings["steps"], dtype=torch.float64)
    if kind == "scale":
        return torch.linspace(1.0, settings["max"], settings["steps"], dtype=torch.float64)
    if kind == "rotation":
        return torch.arange(0.0, 360.0 - 1e-9, settings["step"], dtype=torch.float64)
    raise UserError(f"invariance: unknown transform {kind!r}; expected one of {', '.join(KINDS)}")


def affine_matrices(kind: str, values: Tensor, size: int) -> Tensor:
    """(K, 2, 3) float32 `theta` for `F.affine_grid`: each maps an output position to the input position
    it samples, in normalized coordinates (x right, y down, [-1, 1] across the image). See the module
    docstring for the direction of each transform."""
    values = torch.as_tensor(values, dtype=torch.float64)
    theta = torch.zeros(len(values), 2, 3, dtype=torch.float64)
    if kind == "translation":
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 1, 2] = -2.0 * values / size  # output row y samples input row y - t
    elif kind == "scale":
        if (values <= 0).any():
            raise UserError("invariance.scale: scales must be positive")
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / values
    elif kind == "rotation":
        radians = torch.deg2rad(values)
        cos, sin = torch.cos(radians), torch.sin(radians)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    else:
        raise UserError(f"invariance: unknown transform {kind!r}; expected one of {', '.join(KINDS)}")
    return theta.float()


def warp(image: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """`image` (C, S, S) float under each of the K transforms: (K, C, S, S) and the coverage (K, 1, S, S),
    the bilinear weight that fell inside the image (1 inside, 0 where only outside was sampled)."""
    size = image.shape[-2:]
    grid = F.affine_grid(theta.to(image.device), [len(theta), 1, *size], align_corners=False)
    ones = torch.ones(1, 1, *size, dtype=image.dtype, device=image.device)
    both = torch.cat([image, ones[0]]).unsqueeze(0).expand(len(theta), -1, -1, -1)
    out = F.grid_sample(both, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, :-1], out[:, -1:]


def transformed_inputs(image: Tensor, mean: Tensor, theta: Tensor, crop: int, scale: float = 1.0) -> Tensor:
    """(K, 3, crop, crop) network inputs: the uint8 prepared image (3, S, S) transformed, the uncovered
    part filled with the mean image, minus the mean, times `scale`, centre-cropped."""
    warped, coverage = warp(image.float(), theta)
    return center_crop((warped - coverage * mean.float()) * scale, crop)


# --------------------------------------------------------------------------- measuring


class Curves(NamedTuple):
    """Per image (N) and step (K): distances to the untransformed image's features, p(true), top label."""

    layer1: Tensor  # (N, K) Euclidean distance at layer 1
    layer7: Tensor  # (N, K) at layer 7
    layer1_norm: Tensor  # (N,) norm of the untransformed image's layer-1 vector
    layer7_norm: Tensor  # (N,)
    p_true: Tensor  # (N, K)
    top_label: Tensor  # (N, K)
    base_p_true: Tensor  # (N,) untransformed
    base_label: Tensor  # (N,)

    def relative(self, layer: str) -> Tensor:
        """(N, K) the distance divided by the untransformed vector's norm (a zero norm counts as 1e-12)."""
        norm = getattr(self, f"{layer}_norm")[:, None]
        return getattr(self, layer) / norm.clamp(min=1e-12)


@torch.no_grad()
def measure(model: nn.Module, images: Tensor, labels: Tensor, mean: Tensor, theta: Tensor, crop: int,
            scale: float = 1.0, layer1: str = "pool1", batch_size: int = 256) -> Curves:
    """Curves for `images` (N, 3, S, S) uint8 under the K transforms `theta`: each image's untransformed
    view and its K transformed views run as one batch (several images per batch while they fit
    `batch_size` views)."""
    per_call = max(1, batch_size // (len(theta) + 1))
    parts = []
    for start in range(0, len(images), per_call):
        chunk = images[start:start + per_call]
        views = torch.stack([torch.cat([center_crop(normalize(image[None], mean, scale), crop),
                                        transformed_inputs(image, mean, theta, crop, scale)]) for image in chunk])
        parts.append(measure_views(model, views, labels[start:start + per_call], layer1))
    return Curves(*(torch.cat(fields) for fields in zip(*parts)))


@torch.no_grad()
def measure_views(model: nn.Module, views: Tensor, labels: Tensor, layer1: str = "pool1") -> Curves:
    """Curves from network inputs `views` (n, 1 + K, 3, c, c), each image's untransformed view first,
    all run as one batch."""
    if layer1 not in LAYER1:
        raise UserError(f"invariance.layer1: got {layer1!r}, expected one of {', '.join(LAYER1)}")
    n, steps = views.shape[:2]
    features = layer_features(model, views.flatten(0, 1), {"layer1": layer1, "layer7": LAYER7, "logits": LOGITS},
                              batch_size=n * steps)
    return _curves({k: v.view(n, steps, -1) for k, v in features.items()}, labels.cpu())


def _curves(features: dict[str, Tensor], labels: Tensor) -> Curves:
    """Curves from (n, 1 + K, D) features whose first view is the untransformed image."""
    distances = {key: (features[key][:, 1:] - features[key][:, :1]).norm(dim=2) for key in ("layer1", "layer7")}
    norms = {key: features[key][:, 0].norm(dim=1) for key in ("layer1", "layer7")}
    probabilities = features["logits"].double().softmax(dim=2)
    p_true = probabilities.gather(2, labels.view(-1, 1, 1).expand(-1, probabilities.shape[1], 1))[..., 0]
    top = probabilities.argmax(dim=2)
    return Curves(distances["layer1"].double(), distances["layer7"].double(), norms["layer1"].double(),
                  norms["layer7"].double(), p_true[:, 1:], top[:, 1:], p_true[:, 0], top[:, 0])


# --------------------------------------------------------------------------- the paper's claims, measured
#
# Per-image measures (what the report's intervals resample: `zfnet.report.invariance_claims`) and their
# summaries over images (the stage's metrics).


def small_steps(values: Tensor, identity: float, k: int) -> Tensor:
    """Indices of the "small" steps: on each side of the identity, the k steps nearest to it (the
    identity itself left out)."""
    values = torch.as_tensor(values, dtype=torch.float64)
    chosen = []
    for side in (values < identity - IDENTITY_EPS, values > identity + IDENTITY_EPS):
        candidates = side.nonzero().flatten()
        order = (values[candidates] - identity).abs().argsort()
        chosen.append(candidates[order[:k]])
    return torch.cat(chosen).sort().values


def transformed_steps(values: Tensor, identity: float) -> Tensor:
    """(K,) bool: the steps that transform the image (all but the identity)."""
    return (torch.as_tensor(values, dtype=torch.float64) - identity).abs() > IDENTITY_EPS


def per_image_small_change(relative1: Tensor, relative7: Tensor, values: Tensor, identity: float,
                           k: int) -> tuple[Tensor, Tensor] | None:
    """Claim (i) per image: (N,) each image's mean relative change over the small steps (`small_steps`)
    at layer 1 and at layer 7; None when there are no small steps."""
    index = small_steps(values, identity, k)
    if len(index) == 0:
        return None
    return relative1[:, index].mean(dim=1), relative7[:, index].mean(dim=1)


def small_change(relative1: Tensor, relative7: Tensor, values: Tensor, identity: float, k: int) -> dict:
    """Claim (i), summarized: over the small steps, the relative change at layer 1 and at layer 7.

    Means over images and small steps; `share_of_images`: the images whose own mean is smaller at
    layer 7. The report judges the claim from the per-image means (`per_image_small_change`)."""
    index = small_steps(values, identity, k)
    per_image = per_image_small_change(relative1, relative7, values, identity, k)
    if per_image is None:
        return {"steps": [], "layer1": None, "layer7": None, "ratio": None, "share_of_images": None}
    one, seven = per_image
    mean1, mean7 = float(one.mean()), float(seven.mean())
    return {"steps": [round(float(v), 4) for v in values[index]], "layer1": mean1, "layer7": mean7,
            "ratio": mean7 / mean1 if mean1 > 0 else None,
            "share_of_images": float((seven < one).double().mean())}


def output_stability(p_true: Tensor, top_label: Tensor, labels: Tensor) -> dict:
    """Claim (ii), summarized: `mean_p_true` over images and steps; `worst_step_p_true`: the lowest of the
    per-step means; `top_label_true`: the share of (image, step) whose top label is the true class."""
    return {"mean_p_true": float(p_true.mean()), "worst_step_p_true": float(p_true.mean(dim=0).min()),
            "top_label_true": float((top_label == labels.view(-1, 1)).double().mean())}


def mean_over_steps(p_true: Tensor, steps: Tensor) -> Tensor:
    """(N,) each image's mean of `p_true` (N, K) over the steps in the bool mask `steps` (K,); NaN where
    the mask is empty."""
    if not bool(steps.any()):
        return torch.full((len(p_true),), math.nan, dtype=torch.float64)
    return p_true[:, steps].double().mean(dim=1)


def angular_distance(angles: Tensor, to: float) -> Tensor:
    """|angle - to| on the circle, in [0, 180] degrees."""
    return ((torch.as_tensor(angles, dtype=torch.float64) - to + 180.0) % 360.0 - 180.0).abs()


def symmetry_masks(angles: Tensor, period: float, tolerance: float) -> tuple[Tensor, Tensor]:
    """(at, between) bool masks over `angles` (degrees): `at` the angles within `tolerance` of a nonzero
    multiple of `period` below 360; `between` those within `tolerance` of a midpoint between two
    nonzero multiples ((m + 1/2) period, m = 1 .. n - 2). The midpoints next to 0 are left out, so both
    sets lie as far from the upright view on average (p(true) falls off near 0 for every class)."""
    count = math.ceil(360.0 / period - 1e-9)  # multiples below 360, 0 included
    at = _near(angles, [period * m for m in range(1, count)], tolerance)
    between = _near(angles, [period * (m + 0.5) for m in range(1, count - 1)], tolerance)
    return at, between


def _near(angles: Tensor, targets: Sequence[float], tolerance: float) -> Tensor:
    if not targets:
        return torch.zeros(len(angles), dtype=torch.bool)
    return torch.stack([angular_distance(angles, t) <= tolerance for t in targets]).any(dim=0)


def recovery_score(p_true: Tensor, angles: Tensor, period: float, tolerance: float) -> dict:
    """Claim (iii) for one class: mean p(true) (over its images) at the multiples of `period` against
    the mean halfway between them (`symmetry_masks`); `score` = at - between (None where a set is empty)."""
    at, other = symmetry_masks(angles, period, tolerance)
    if not at.any() or not other.any() or len(p_true) == 0:
        return {"period": period, "at": None, "between": None, "score": None}
    mean_at, mean_between = float(p_true[:, at].mean()), float(p_true[:, other].mean())
    return {"period": period, "at": mean_at, "between": mean_between, "score": mean_at - mean_between}


def rotated_steps(angles: Tensor, guard: float) -> Tensor:
    """(K,) bool: the rotations farther than `guard` degrees from upright (out of the range the training
    data rotates objects by)."""
    return angular_distance(angles, 0.0) > guard


def rotated_p_true(p_true: Tensor, angles: Tensor, guard: float) -> float | None:
    """Mean p(true) over the rotations farther than `guard` degrees from 0 (`rotated_steps`): how well a
    class is recognized when turned."""
    away = rotated_steps(angles, guard)
    return float(p_true[:, away].mean()) if away.any() and len(p_true) else None


def per_image_recovery(p_true: Tensor, angles: Tensor, periods: Sequence[float],
                       tolerance: float) -> tuple[Tensor, Tensor]:
    """Claim (iii) per image: (N,) mean p(true) at the multiples of the image's own period (`periods`,
    one per image: its class's symmetry angle, or the control angle) and (N,) the mean halfway between
    them (`symmetry_masks`); NaN where a set of angles is empty."""
    if len(periods) != len(p_true):
        raise ValueError(f"per_image_recovery: {len(periods)} periods for {len(p_true)} images")
    at, between = [], []
    for row, period in zip(p_true, periods):
        on, off = symmetry_masks(angles, float(period), tolerance)
        at.append(mean_over_steps(row[None], on)[0])
        between.append(mean_over_steps(row[None], off)[0])
    empty = torch.zeros(0, dtype=torch.float64)
    return (torch.stack(at) if at else empty), (torch.stack(between) if between else empty)


def rotation_claim(scores: dict[str, dict], symmetric: Sequence[str], key: str = "score") -> dict:
    """Claim (iii) over classes, summarized: `scores` {class: {key: value}} (e.g. recovery_score(...), each
    symmetric class at its own symmetry angle, the others at the control angle). `difference`: mean value
    of the symmetric classes minus that of the others (None without both kinds of class); `separated`:
    every symmetric class is above every other class. The report judges the claim per image."""
    sym = [s[key] for name, s in scores.items() if name in symmetric and s[key] is not None]
    rest = [s[key] for name, s in scores.items() if name not in symmetric and s[key] is not None]
    if not sym or not rest:
        return {"symmetric_mean": _mean(sym), "other_mean": _mean(rest), "difference": None, "separated": None}
    return {"symmetric_mean": _mean(sym), "other_mean": _mean(rest), "difference": _mean(sym) - _mean(rest),
            "separated": min(sym) > max(rest)}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def per_image(curves: dict[str, Curves], values: dict[str, Tensor], k: int, guard: float, tolerance: float,
              periods: Sequence[float] | None) -> dict:
    """The per-image measures the report judges the claims on (one value per image, in `curves`' order):

    * `base_p_true`: p(true) of the untransformed image;
    * `small_change`: {translation, scale} -> {layer1, layer7}: the mean relative change over the small
      steps (`per_image_small_change`; None without small steps), claim (i);
    * `p_true`: mean p(true) over the transformed steps of `translation` and of `scale` (the identity left
      out), and over the rotations farther than `guard` degrees from upright (`rotated`), claims (ii), (iii);
    * `symmetry`: {at, between}: p(true) at the multiples of each image's period and halfway between them
      (`per_image_recovery`), claim (iii); None without `periods`.
    """
    small = {}
    for kind in ("translation", "scale"):
        pair = per_image_small_change(curves[kind].relative("layer1"), curves[kind].relative("layer7"), values[kind],
                                      IDENTITY[kind], k)
        small[kind] = None if pair is None else {"layer1": pair[0], "layer7": pair[1]}
    p_true = {kind: mean_over_steps(curves[kind].p_true, transformed_steps(values[kind], IDENTITY[kind]))
              for kind in ("translation", "scale")}
    p_true["rotated"] = mean_over_steps(curves["rotation"].p_true, rotated_steps(values["rotation"], guard))
    symmetry = None
    if periods is not None:
        at, between = per_image_recovery(curves["rotation"].p_true, values["rotation"], periods, tolerance)
        symmetry = {"at": at, "between": between}
    return {"base_p_true": curves["rotation"].base_p_true.double(), "small_change": small, "p_true": p_true,
            "symmetry": symmetry}
