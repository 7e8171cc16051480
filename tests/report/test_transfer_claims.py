"""The transfer claims (Tables 4-7, Fig. 9) judged by intervals from the transfer stage's per-fold evidence.

Expected intervals come from scipy (t intervals, bootstrap) or a hand computation in the comments, never
from the code under test. The power tests simulate the default run's n: 10 classes of 45 test images, 3
pretrained folds and 1 from-scratch fold (Caltech-101 at 15 per class), and 3 folds for Table 7.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats as scipy_stats

from zfnet.report import claims, transfer_claims
from zfnet.report.decision import Settings
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

FAST = Settings(resamples=2000)


def aggregate(per_class: np.ndarray) -> dict:
    folds = per_class.mean(axis=1)
    return {"mean": float(folds.mean()), "std": statistics.stdev(folds) if len(folds) > 1 else None}


def found(per_class: np.ndarray) -> dict:
    return {"folds": per_class.mean(axis=1).tolist(), "per_class": per_class.tolist()}


def metrics(pretrained: dict, scratch: dict, layers: dict | None = None, *, evidence: bool = True,
            test_images: dict | None = None, model: str = "zfnet") -> dict:
    """Caltech metrics from {size: (folds, classes) per-class accuracies} (and {kind: {layer: ...}} for Table 7)."""
    layers = layers or {}
    first = next(iter([*pretrained.values(), *scratch.values(), *(t for k in layers.values() for t in k.values())]))
    scratch_folds = len(next(iter(scratch.values()))) if scratch else 0
    result = {"pretrained": {n: aggregate(a) for n, a in pretrained.items()},
              "scratch": {n: aggregate(a) for n, a in scratch.items()},
              "layers": {k: {layer: aggregate(a) for layer, a in t.items()} for k, t in layers.items()}}
    data = {"folds": len(first), "scratch_folds": scratch_folds, "std_ddof": 1,
            "test_images": test_images or {}, "layers_size": 30}
    out = {model: result, "data": data}
    if evidence:
        out["evidence"] = {model: {"pretrained": {n: found(a) for n, a in pretrained.items()},
                                   "scratch": {n: found(a) for n, a in scratch.items()},
                                   "layers": {k: {layer: found(a) for layer, a in t.items()} for k, t in layers.items()}}}
    return out


def folds_of(values) -> np.ndarray:
    """(folds, 1): fold values as one-class rows (the t path reads only the folds' means)."""
    return np.asarray(values, dtype=float)[:, None]


def bounds(evidence: str) -> tuple[float, float]:
    """The CI's ends, in points, from a verdict's evidence text."""
    inside = evidence.split("CI [")[1].split("]")[0]
    low, high = (float(part.strip().removesuffix(" pt")) for part in inside.split(","))
    return low, high


# ----------------------------------------------------------------------- pretrained vs scratch


def test_paired_t_interval_over_folds_matches_scipy():
    pretrained = [0.80, 0.84, 0.79, 0.83, 0.81]
    scratch = [0.20, 0.26, 0.21, 0.24, 0.22]
    m = metrics({"15": folds_of(pretrained)}, {"15": folds_of(scratch)})
    interval = transfer_claims.difference(transfer_claims.cell(m, "zfnet", "scratch.15", "15", "scratch_folds"),
                                          transfer_claims.cell(m, "zfnet", "pretrained.15", "15"), Settings())
    d = np.subtract(pretrained, scratch)
    low, high = scipy_stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=scipy_stats.sem(d))
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((d.mean(), low, high), abs=1e-9)
    assert interval.n == 5 and "5 paired folds" in interval.method
    v = claims.pretrained_beats_scratch(m, "zfnet", "caltech101")
    assert v.verdict == REPRODUCED and "pretrained minus scratch accuracy at 15 per class" in v.evidence, v


def test_the_folds_are_paired_not_pooled():
    # the folds differ a lot (0.5 .. 0.9), the gap barely: 0.03 +- 0.002. Paired: d = .03, .032, .028, .031, .029,
    # mean .03, sd .00158, t interval [.028, .032] -> reproduced. Unpaired (the aggregates only): the stds are
    # about .158 each, so the CI spans about +-.2 -> cannot decide
    scratch = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    pretrained = scratch + [0.03, 0.032, 0.028, 0.031, 0.029]
    paired = metrics({"15": folds_of(pretrained)}, {"15": folds_of(scratch)})
    assert claims.pretrained_beats_scratch(paired, "zfnet", "caltech101").verdict == REPRODUCED
    pooled = metrics({"15": folds_of(pretrained)}, {"15": folds_of(scratch)}, evidence=False)
    v = claims.pretrained_beats_scratch(pooled, "zfnet", "caltech101")
    assert v.verdict == CANNOT_DECIDE and "no per-fold evidence" in v.evidence, v


def test_the_smallest_shared_size_is_judged():
    # sizes sort by number: 5 < 15 (as strings "15" < "5"); at 5 there is no gap
    rng = np.random.default_rng(0)
    same = rng.uniform(0.3, 0.7, size=(3, 10))
    m = metrics({"5": same, "15": same + 0.3, "30": same + 0.3}, {"5": same[:1], "15": same[:1]})
    v = claims.pretrained_beats_scratch(m, "zfnet", "caltech101", settings=FAST)
    assert "at 5 per class" in v.evidence and v.verdict == NOT_REPRODUCED, v    # estimate 0: inside the margin
    assert claims.pretrained_beats_scratch(metrics({"15": same}, {}), "zfnet", "x").verdict == CANNOT_DECIDE
    assert claims.pretrained_beats_scratch(None, "zfnet", "x").verdict == NOT_RUN


def test_one_scratch_fold_resamples_the_classes():
    # 1 shared fold: each class's accuracy, pretrained minus scratch, in fold 0 (the pretrained folds 1, 2 have no
    # partner); a percentile bootstrap of their mean, against scipy's own on the same 10 differences
    rng = np.random.default_rng(1)
    scratch = rng.uniform(0.1, 0.4, size=(1, 10))
    pretrained = np.vstack([scratch + rng.uniform(0.0, 0.3, size=(1, 10)), rng.uniform(0, 1, size=(2, 10))])
    m = metrics({"15": pretrained}, {"15": scratch})
    v = claims.pretrained_beats_scratch(m, "zfnet", "caltech101")
    d = pretrained[0] - scratch[0]
    theirs = scipy_stats.bootstrap((d,), np.mean, n_resamples=10_000, method="percentile", random_state=0)
    low, high = bounds(v.evidence)
    assert "bootstrap over 10 classes" in v.evidence and "1 shared fold" in v.evidence, v
    assert low == pytest.approx(100 * theirs.confidence_interval.low, abs=0.6)
    assert high == pytest.approx(100 * theirs.confidence_interval.high, abs=0.6)
    assert f"estimate {100 * d.mean():+.1f} pt" in v.evidence


def test_too_few_classes_to_bootstrap_give_students_t_over_the_classes():
    # 3 classes, 2 shared folds (the smoke scale): a percentile bootstrap of 3 values has 10 distinct resamples and
    # called untrained nets' depth trend "reproduced"; Student's t over the 3 class differences cannot decide it
    scratch = np.array([[0.2, 0.3, 0.25], [0.2, 0.3, 0.25]])
    gain = np.array([0.125, 0.25, 0.125])
    pretrained = scratch + gain
    v = claims.pretrained_beats_scratch(metrics({"15": pretrained}, {"15": scratch}), "zfnet", "caltech101")
    theirs = scipy_stats.t.interval(0.95, 2, loc=gain.mean(), scale=scipy_stats.sem(gain))
    low, high = bounds(v.evidence)
    assert "Student t interval over 3 classes" in v.evidence, v
    assert (low, high) == (pytest.approx(100 * theirs[0], abs=0.06), pytest.approx(100 * theirs[1], abs=0.06))
    assert v.verdict == CANNOT_DECIDE


def test_without_evidence_the_aggregates_give_an_unpaired_interval():
    # old metrics: population std (ddof 0) over 3 folds, rescaled by sqrt(3/2) to the sample std:
    # s = .01 * 1.2247 = .012247 and .02 * 1.2247 = .024495; SE = sqrt(s1^2/3 + s2^2/3) = .015811;
    # t(.975, 2 df) = 4.3027 -> half width .068030 around .1
    old = {"zfnet": {"pretrained": {"15": {"mean": 0.6, "std": 0.01}}, "scratch": {"15": {"mean": 0.5, "std": 0.02}}},
           "data": {"folds": 3, "scratch_folds": 3}}
    v = claims.pretrained_beats_scratch(old, "zfnet", "caltech101")
    half = scipy_stats.t.ppf(0.975, 2) * math.sqrt((0.01 ** 2 + 0.02 ** 2) * 1.5 / 3)
    assert bounds(v.evidence) == pytest.approx((round(100 * (0.1 - half), 1), round(100 * (0.1 + half), 1)))
    assert v.verdict == REPRODUCED and "no per-fold evidence" in v.evidence
    # the same with std_ddof 1: no rescaling
    v = claims.pretrained_beats_scratch({**old, "data": {**old["data"], "std_ddof": 1}}, "zfnet", "caltech101")
    half = scipy_stats.t.ppf(0.975, 2) * math.sqrt((0.01 ** 2 + 0.02 ** 2) / 3)
    assert bounds(v.evidence) == pytest.approx((round(100 * (0.1 - half), 1), round(100 * (0.1 + half), 1)))
    # one from-scratch fold and no evidence: Newcombe's interval on the test images of that split
    one = {"zfnet": {"pretrained": {"15": {"mean": 0.6, "std": 0.01}}, "scratch": {"15": {"mean": 0.2, "std": None}}},
           "data": {"folds": 3, "scratch_folds": 1, "test_images": {"15": 100}}}
    v = claims.pretrained_beats_scratch(one, "zfnet", "caltech101")
    assert v.verdict == REPRODUCED and "Newcombe" in v.evidence and "ignores the spread between splits" in v.evidence


def simulated_images(rng, effect: float, classes: int = 10, per_class: int = 45, folds: int = 3) -> tuple:
    """Per-class accuracies of 0/1 per-image outcomes: class difficulty shared by both arms (the pairing), the
    effect varying by class (sd .05), pretrained on `folds` folds and scratch on the first."""
    base = rng.uniform(0.25, 0.55, size=classes)
    lift = np.clip(base + effect + rng.normal(0, 0.05, size=classes), 0, 1)
    pretrained = rng.binomial(per_class, lift, size=(folds, classes)) / per_class
    scratch = rng.binomial(per_class, base, size=(1, classes)) / per_class
    return pretrained, scratch


@pytest.mark.parametrize("effect, least, most", [(0.15, 18, 20), (0.0, 0, 2)])
def test_power_at_our_n_pretrained_vs_scratch(effect, least, most):
    """A real 15-point gain (under half the smallest we measure, 24 points; the paper's is 61) is found in at least
    18 of 20 simulated runs; no gain is called reproduced in at most 2 of 20."""
    rng = np.random.default_rng(2024)
    found_it = 0
    for _ in range(20):
        pretrained, scratch = simulated_images(rng, effect)
        verdict = claims.pretrained_beats_scratch(metrics({"15": pretrained}, {"15": scratch}), "zfnet", "caltech101",
                                                  settings=FAST).verdict
        found_it += verdict == REPRODUCED
    assert least <= found_it <= most


# ----------------------------------------------------------------------- Table 7: accuracy against depth


def layer_folds(rng, by_layer: dict[str, float], folds: int = 3, fold_sd: float = 0.03, noise: float = 0.015):
    """{layer: (folds, 1)}: a fold effect shared by every layer (they use the same folds) plus per-cell noise."""
    shared = rng.normal(0, fold_sd, size=folds)
    return {layer: folds_of(mean + shared + rng.normal(0, noise, size=folds)) for layer, mean in by_layer.items()}


def test_rises_with_depth_is_the_deepest_minus_the_shallowest_paired_by_fold():
    svm = {"7": folds_of([0.70, 0.75, 0.72]), "1": folds_of([0.40, 0.46, 0.41]), "3": folds_of([0.5, 0.5, 0.5])}
    softmax = {"1": folds_of([0.70, 0.75, 0.72]), "7": folds_of([0.60, 0.66, 0.61])}
    m = metrics({"30": folds_of([0.7, 0.75, 0.72])}, {}, {"svm": svm, "softmax": softmax})
    up, down = claims.rises_with_depth(m, "zfnet", "caltech101")
    d = np.subtract([0.70, 0.75, 0.72], [0.40, 0.46, 0.41])       # layer 7 minus layer 1 (not the first listed)
    low, high = scipy_stats.t.interval(0.95, 2, loc=d.mean(), scale=scipy_stats.sem(d))
    assert up.verdict == REPRODUCED and bounds(up.evidence) == pytest.approx((round(100 * low, 1), round(100 * high, 1)))
    rho = scipy_stats.spearmanr([1, 3, 7], [np.mean([0.40, 0.46, 0.41]), 0.5, np.mean([0.70, 0.75, 0.72])]).statistic
    assert f"layer 7 minus layer 1 (Spearman of layer and mean accuracy {rho:+.2f}, best layer 7)" in up.evidence
    assert down.verdict == NOT_REPRODUCED and "other side" in down.evidence
    assert [v.verdict for v in claims.rises_with_depth({"zfnet": {}}, "zfnet", "x")] == [CANNOT_DECIDE] * 2
    assert [v.verdict for v in claims.rises_with_depth(None, "zfnet", "x")] == [NOT_RUN] * 2


@pytest.mark.parametrize("effect, least, most", [(0.10, 18, 20), (0.0, 0, 2)])
def test_power_at_our_n_rises_with_depth(effect, least, most):
    """3 folds (the default run's), fold spread 3 points shared by the layers, 1.5 points of noise per cell: a 10-point
    rise from layer 1 to 7 is found in at least 18 of 20 runs; none is called reproduced in at most 2 of 20."""
    rng = np.random.default_rng(7)
    found_it = 0
    for _ in range(20):
        layers = layer_folds(rng, {"1": 0.6, "4": 0.6 + effect / 2, "7": 0.6 + effect})
        m = metrics({"30": layers["7"]}, {}, {"svm": layers, "softmax": layers})
        found_it += claims.rises_with_depth(m, "zfnet", "caltech101")[0].verdict == REPRODUCED
    assert least <= found_it <= most


def test_the_margin_comes_from_the_settings():
    m = metrics({"15": folds_of([0.5, 0.51, 0.52])}, {"15": folds_of([0.5, 0.5, 0.53])})
    wide = Settings(margins=(("transfer_accuracy_points", 5.0),))
    assert "margin ±2.0 pt" in claims.pretrained_beats_scratch(m, "zfnet", "x").evidence
    assert "margin ±5.0 pt" in claims.pretrained_beats_scratch(m, "zfnet", "x", settings=wide).evidence


# ----------------------------------------------------------------------- absolute numbers, Fig. 9


def test_caltech_absolute_numbers_only_on_the_real_data_with_their_interval():
    near = metrics({"30": folds_of([0.858, 0.862, 0.86, 0.857, 0.863])}, {})        # 86.0 +- 0.3 vs the paper's 86.5
    v = transfer_claims.caltech_absolute(near, "zfnet", "caltech101", "30", 86.5, real_data=True)
    d = np.array([0.858, 0.862, 0.86, 0.857, 0.863]) - 0.865
    low, high = scipy_stats.t.interval(0.95, 4, loc=d.mean(), scale=scipy_stats.sem(d))
    assert v.verdict == REPRODUCED and bounds(v.evidence) == pytest.approx((round(100 * low, 1), round(100 * high, 1)))
    assert "margin ±3.0 pt" in v.evidence and "ours minus the paper's 86.5" in v.evidence
    far = metrics({"30": folds_of([0.80, 0.81, 0.79, 0.80, 0.80])}, {})
    assert transfer_claims.caltech_absolute(far, "zfnet", "caltech101", "30", 86.5, True).verdict == NOT_REPRODUCED
    wide = metrics({"30": folds_of([0.75, 0.95])}, {})                               # 2 folds, 10 classes none
    assert transfer_claims.caltech_absolute(wide, "zfnet", "caltech101", "30", 86.5, True).verdict == CANNOT_DECIDE
    assert transfer_claims.caltech_absolute(near, "zfnet", "caltech101", "30", 86.5, False).verdict == NOT_RUN
    assert transfer_claims.caltech_absolute(None, "zfnet", "caltech101", "30", 86.5, True).verdict == NOT_RUN


def test_beats_prior_best():
    # the paper: 6 per class beat the prior best with 60 (55.2%)
    def at_six(values):
        return metrics({"6": folds_of(values)}, {})

    assert claims.beats_prior_best(at_six([0.6, 0.61, 0.59]), "zfnet", real_data=False).verdict == NOT_RUN
    assert claims.beats_prior_best(at_six([0.6, 0.61, 0.59]), "zfnet", real_data=True).verdict == REPRODUCED
    assert claims.beats_prior_best(at_six([0.5, 0.51, 0.49]), "zfnet", real_data=True).verdict == NOT_REPRODUCED
    assert claims.beats_prior_best(at_six([0.45, 0.65, 0.55]), "zfnet", real_data=True).verdict == CANNOT_DECIDE
    assert claims.beats_prior_best({"zfnet": {}}, "zfnet", real_data=True).verdict == CANNOT_DECIDE
    assert claims.beats_prior_best(None, "zfnet", real_data=True).verdict == NOT_RUN


# ----------------------------------------------------------------------- Table 6: PASCAL


def pascal(split: dict | None, ap: float = 0.79, model: str = "zfnet") -> dict:
    classes = {f"class{k}": ap + (k - 9.5) / 100 for k in range(20)}      # mean `ap`, spread +-9.5 points
    data = {"test": {"classes": 20}, **({"split": split} if split else {})}
    return {model: {"ap": classes, "map": ap}, "data": data}


def test_pascal_val_is_never_scored_against_the_papers_test_set():
    v = transfer_claims.pascal_map(pascal({"train": "train", "test": "val"}), "zfnet", real_data=True)
    assert v.verdict == NOT_RUN and v.claim == "mAP 79.0% on the VOC 2012 test set"
    assert v.evidence == "not comparable: ours (79.0) is measured on val; the paper's 79.0 is on the test set"
    unnamed = transfer_claims.pascal_map(pascal(None), "zfnet", real_data=True)       # metrics from before the split
    assert unnamed.verdict == NOT_RUN and "a split the metrics do not name" in unnamed.evidence
    assert transfer_claims.pascal_map(pascal({"test": "val"}), "zfnet", real_data=False).verdict == NOT_RUN
    assert transfer_claims.pascal_map(None, "zfnet", real_data=True).verdict == NOT_RUN


def test_pascal_on_the_test_set_still_has_no_interval():
    # the classes are fixed, so their 20 APs are not a sample to resample; per-image scores are not saved
    on_test = transfer_claims.pascal_map(pascal({"train": "trainval", "test": "test"}), "zfnet", True)
    assert on_test.verdict == CANNOT_DECIDE and "no per-image scores" in on_test.evidence, on_test
