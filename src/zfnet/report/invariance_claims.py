"""Fig. 5's claims judged from the invariance stage's per-image evidence, with the untrained net as the control.

    verdicts(metrics["invariance_zfnet"], "zfnet", settings)   # 4 Verdicts; metrics[...]["evidence"] per image

The unit is an image: each image is measured under every step of every transform, by the trained net and by
the same architecture untrained (`untrained` in the evidence), so every comparison is paired per image and its
CI a paired bootstrap over images (`zfnet.report.stats.paired_bootstrap`), judged by `decide`. Images of one
class share it: the CIs are conditional on these classes.

* (i) small translations and zooms change layer 7 less than layer 1: per image, the mean relative change
  (distance / the untransformed vector's norm) over the small steps, layer 7 minus layer 1; a decrease, for
  translation and for scale.
* (ii) p(true) stays high under translation and scale. "High" means two things, both needed, for each of
  translation and scale (p(true) averaged per image over the paper's range of steps, the identity left out):
  (a) the paper's own contrast: above p(true) of the same image rotated farther than `symmetry_guard` from
  upright, for the images of classes without rotational symmetry (an increase; all images where the data
  names no symmetries); (b) no change of note from the untransformed image's p(true) (inside
  `invariance_p_true_drop`). (b) alone holds for any net whose output ignores the image (an untrained net's
  p(true) is flat near 1/classes); (a) is what such a net lacks.
* (iii), the network's part: asymmetric classes lose p(true) under rotation while translation and scale keep it
  ((ii)(a), the same comparison), and the rotationally symmetric classes keep it under rotation better than the
  others (mean rotated p(true), symmetric minus the others: an increase; a two-group CI, `group_difference`).
* (iii), geometry's part: p(true) recovers at the symmetry angles: per image of a symmetric class, p(true) at its
  symmetry angles minus halfway between them. A symmetric object turned by its symmetry angle is the same object,
  so any function of the image recovers there as far as it looks at the object: labelled as geometry.

A claim that consists of several comparisons is reproduced when each is (a test of the conjunction at the CIs'
level), not reproduced when any is not, and cannot decide otherwise. Each claim is then judged again on the
untrained net; one that it reproduces too is "an untrained net does it too" (`rules.against_untrained`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from zfnet.report import stats
from zfnet.report.decision import DECISION_RULE, DECREASE, INCREASE, NO_CHANGE, Decision, Settings, decide
from zfnet.report.rules import against_untrained, dig, not_at_this_scale, number, or_nan, unknown
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED, Verdict

# report.margins keys and their defaults (conf/report/default.yaml says why each size)
LAYER_MARGIN = ("invariance_layer_change", 0.05)   # relative change (distance / norm), layer 7 minus layer 1
P_TRUE_MARGIN = ("invariance_p_true", 0.05)         # p(true), a contrast between two conditions
DROP_MARGIN = ("invariance_p_true_drop", 0.10)      # p(true), transformed minus untransformed: "stays high"

CLAIM_I = "small translations and zooms change layer 7 less than layer 1"
CLAIM_II = "p(true class) stays high under translation and scale"
CLAIM_III_NETWORK = ("rotation breaks recognition of asymmetric objects, unlike translation and scale, "
                     "and less so for rotationally symmetric objects (the network's part)")
CLAIM_III_GEOMETRY = ("geometry: p(true) recovers at each symmetric class's symmetry angles "
                      "(holds for any function of the image)")

_CONJUNCTION = ("; reproduced when every comparison is, not reproduced when any is not, cannot decide otherwise; "
                "judged again on the same net untrained: reproduced there too is 'an untrained net does it too'")
RULE_I = ("per image, the mean relative change (distance / the untransformed vector's norm) over the small steps "
          "nearest the identity, layer 7 minus layer 1, for translation and for scale (a claimed decrease), by a "
          "paired bootstrap CI over images; " + DECISION_RULE + _CONJUNCTION)
RULE_II = ("per image, p(true) averaged over the paper's range of translations (zooms), the identity left out: (a) "
           "minus p(true) of the same image rotated beyond the guard angle, images of asymmetric classes (a claimed "
           "increase: the paper's contrast); (b) minus the untransformed image's p(true) (a claimed no change: "
           "'high' = within the margin of it); for translation and for scale, by paired bootstrap CIs over images; "
           + DECISION_RULE + _CONJUNCTION)
RULE_III_NETWORK = ("(a) as in (ii): asymmetric classes, p(true) under translation (zoom) minus rotated beyond the "
                    "guard angle, per image (a claimed increase); (b) mean rotated p(true), images of symmetric "
                    "classes minus the others (a claimed increase), by a bootstrap resampling images within each "
                    "group; " + DECISION_RULE + _CONJUNCTION)
RULE_III_GEOMETRY = ("per image of a rotationally symmetric class, mean p(true) at its symmetry angles minus halfway "
                     "between them (a claimed increase), by a paired bootstrap CI over images; " + DECISION_RULE
                     + _CONJUNCTION)
NO_SYMMETRIES = "needs each class's rotational symmetry (invariance.classes_file); this data names none"
KINDS = ("translation", "scale")


def verdicts(metrics: dict | None, model: str, settings: Settings = Settings()) -> list[Verdict]:
    """The four Fig. 5 claims for one model, from the stage's metrics and their per-image `evidence`."""
    claims = [(CLAIM_I, RULE_I), (CLAIM_II, RULE_II), (CLAIM_III_NETWORK, RULE_III_NETWORK),
              (CLAIM_III_GEOMETRY, RULE_III_GEOMETRY)]
    evidence = dig(metrics, "evidence", None)
    if metrics is None:
        return [unknown(claim, model, rule, False, "the invariance metrics") for claim, rule in claims]
    if isinstance(evidence, dict):
        symmetries = evidence.get("symmetric") is not None
        trained = _judged(evidence, evidence, settings, symmetries)
        control = evidence.get("untrained")
        untrained = _judged(control, evidence, settings, symmetries) if isinstance(control, dict) else None
        result = [_with_control(_all_of(claim, model, rule, trained[n]),
                                None if untrained is None else _all_of(claim, model, rule, untrained[n]))
                  for n, (claim, rule) in enumerate(claims)]
    else:
        # symmetry null: the data names no class symmetries (ImageNet); absent: an old or broken file
        symmetries = dig(metrics, "rotation.symmetry") is not None
        why = ("no per-image evidence (evidence/invariance_<model>.json; rerun the invariance stage): the means "
               f"alone give no interval ({_means(metrics)})")
        result = [Verdict(claim, model, CANNOT_DECIDE, rule, why) for claim, rule in claims]
    if not symmetries:     # (iii) needs to know which classes are symmetric
        result[2:] = [not_at_this_scale(v.claim, model, NO_SYMMETRIES) for v in result[2:]]
    return result


def _judged(net: dict, images: dict, settings: Settings, symmetries: bool) -> list[list[tuple[str, Decision]]]:
    """The comparisons behind each claim, for one net (`net`: the trained net's evidence, or its `untrained`)."""
    asymmetric = _mask(images, 0) if symmetries else None
    base = _array(dig(net, "base_p_true", None))
    rotated = _array(dig(net, "p_true.rotated", None))
    small, contrast, stays = [], [], []
    for kind in KINDS:
        one, seven = (_array(dig(net, f"small_change.{kind}.{layer}", None)) for layer in ("layer1", "layer7"))
        small.append((f"{kind}, layer 7 minus layer 1", decide(paired_change(one, seven, settings),
                                                                settings.margin(*LAYER_MARGIN), DECREASE)))
        moved = _array(dig(net, f"p_true.{kind}", None))
        who = "asymmetric classes" if symmetries else "all images (the data names no symmetries)"
        contrast.append((f"p(true) {kind} minus rotated, {who}",
                         decide(paired_change(_select(rotated, asymmetric), _select(moved, asymmetric), settings),
                                settings.margin(*P_TRUE_MARGIN), INCREASE)))
        stays.append((f"p(true) {kind} minus untransformed", decide(paired_change(base, moved, settings),
                                                                  settings.margin(*DROP_MARGIN), NO_CHANGE)))
    symmetric = _mask(images, 1) if symmetries else None
    kept = ("rotated p(true), symmetric classes minus the others",
            decide(group_difference(rotated, symmetric, settings), settings.margin(*P_TRUE_MARGIN), INCREASE))
    at, between = _array(dig(net, "symmetry.at", None)), _array(dig(net, "symmetry.between", None))
    recovers = ("p(true) at the symmetry angles minus halfway between, symmetric classes",
                decide(paired_change(_select(between, symmetric), _select(at, symmetric), settings),
                       settings.margin(*P_TRUE_MARGIN), INCREASE))
    return [small, contrast + stays, contrast + [kept], [recovers]]


# ----------------------------------------------------------------------- intervals


def paired_change(before: np.ndarray | None, after: np.ndarray | None, settings: Settings) -> stats.Interval:
    """The paired bootstrap CI of mean(after - before) over the images where both are known (NaN: unknown,
    e.g. no rotation beyond the guard); an interval of NaN (cannot decide) with fewer than 2 such images."""
    if before is None or after is None or before.shape != after.shape:
        return _no_interval(settings, 0, "the per-image values are missing")
    known = np.isfinite(before) & np.isfinite(after)
    if known.sum() < 2:
        return _no_interval(settings, int(known.sum()), "fewer than 2 images")
    return stats.paired_bootstrap([before[known], after[known]], resamples=settings.resamples, seed=settings.seed,
                                  level=settings.level)


def group_difference(values: np.ndarray | None, in_group: np.ndarray | None, settings: Settings) -> stats.Interval:
    """CI of mean(values in the group) - mean(values outside it): a percentile bootstrap that resamples the images
    of each group separately (its size kept), seeds `settings.seed` and `settings.seed + 1`. NaN values are left
    out; an interval of NaN (cannot decide) with fewer than 2 images in a group."""
    if values is None or in_group is None or values.shape != in_group.shape:
        return _no_interval(settings, 0, "the per-image values are missing")
    known = np.isfinite(values)
    inside, outside = values[known & in_group], values[known & ~in_group]
    if min(inside.size, outside.size) < 2:
        return _no_interval(settings, int(inside.size + outside.size), "fewer than 2 images in a group")
    draws = [stats.bootstrap_distribution([group], _mean_of_last_axis, resamples=settings.resamples, seed=seed)
             for group, seed in ((inside, settings.seed), (outside, settings.seed + 1))]
    method = (f"percentile bootstrap of images within each group ({inside.size} and {outside.size}), "
              f"{settings.resamples} resamples")
    return stats.interval_from_distribution(draws[0] - draws[1], float(inside.mean() - outside.mean()),
                                            settings.level, inside.size + outside.size, method)


def _mean_of_last_axis(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)


def _no_interval(settings: Settings, n: int, why: str) -> stats.Interval:
    return stats.Interval(math.nan, math.nan, math.nan, settings.level, n, why)


# ----------------------------------------------------------------------- verdicts


def _all_of(claim: str, subject: str, rule: str, parts: Sequence[tuple[str, Decision]]) -> Verdict:
    """One verdict from several comparisons: reproduced when each is, not reproduced when any is not."""
    found = [decision.verdict for _, decision in parts]
    if all(v == REPRODUCED for v in found):
        verdict = REPRODUCED
    elif NOT_REPRODUCED in found:
        verdict = NOT_REPRODUCED
    else:
        verdict = CANNOT_DECIDE
    evidence = "; ".join(f"{what}: {decision.evidence(3)}" for what, decision in parts)
    return Verdict(claim, subject, verdict, rule, evidence)


def _with_control(trained: Verdict, untrained: Verdict | None) -> Verdict:
    """The trained net's verdict against the untrained net's (`rules.against_untrained`); the control's verdict
    is named in the evidence either way."""
    judged = against_untrained(trained, untrained)
    if judged is not trained:
        return judged
    note = ("no untrained control in the evidence" if untrained is None
            else f"untrained net (the negative control): {untrained.verdict}")
    return Verdict(trained.claim, trained.subject, trained.verdict, trained.rule, f"{trained.evidence}; {note}")


def _means(metrics: dict | None) -> str:
    parts = [f"{kind}: layer 1 {or_nan(dig(metrics, f'{kind}.small_change.layer1', None)):.2f}, layer 7 "
             f"{or_nan(dig(metrics, f'{kind}.small_change.layer7', None)):.2f}, mean p(true) "
             f"{or_nan(dig(metrics, f'{kind}.output.mean_p_true', None)):.2f}" for kind in KINDS]
    return "; ".join(parts)


# ----------------------------------------------------------------------- reading the evidence


def _array(values) -> np.ndarray | None:
    """A list of numbers (null: unknown) as a float array with NaN for the unknown ones; None if not a list."""
    if not isinstance(values, list):
        return None
    return np.array([math.nan if number(v) is None else float(v) for v in values], dtype=float)


def _mask(images: dict, value: int) -> np.ndarray | None:
    """Per image: is its class rotationally symmetric (`value` 1) or not (0), from the evidence's `symmetric`."""
    symmetric = images.get("symmetric")
    return None if not isinstance(symmetric, list) else np.array([s == value for s in symmetric], dtype=bool)


def _select(values: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | None:
    if values is None or mask is None:
        return values
    return values[mask] if values.shape == mask.shape else None
