"""Table 1's rules (`zfnet.report.correspondence_claims`): the per-pair gap, its jackknife over images, the margin,
the fallback from aggregates; worked by hand, with power at our n, and against the old max-std rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from zfnet.report import claims
from zfnet.report.correspondence_claims import class_pairs, jackknife_gap, leave_one_out_means, per_image_means
from zfnet.report.decision import Settings
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNTRAINED_TOO
from zfnet.report.stats import paired_bootstrap

ROWS = ("right_eye", "left_eye", "nose", "random")
OUR_IMAGES = (13, 15, 10)     # frontal faces per class of the default run (cat, dog, owl): 38 images


def pairs_of(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def metrics_of(classes: dict[str, tuple[int, dict]], table: dict | None = None) -> dict:
    """Metrics with evidence: classes = {name: (images, {layer: {row: per-pair Deltas in pairs_of order}})}."""
    evidence = {"layers": {"layer5": "relu5", "layer7": "relu7"}, "classes": {}}
    for name, (n, layers) in classes.items():
        delta = {row: {layer: [None if math.isnan(v) else float(v) for v in rows[row]] for layer, rows in layers.items()}
                 for row in ROWS}
        evidence["classes"][name] = {"paths": [f"{name}/{i}.png" for i in range(n)],
                                     "per_pair": {"images": pairs_of(n), "delta": delta}}
    return {"layers": evidence["layers"], "images": sum(n for n, _ in classes.values()), "evidence": evidence,
            "average": {"table": table or {}}}


def same_rows(parts: list[float], random: list[float]) -> dict:
    return {"right_eye": parts, "left_eye": parts, "nose": parts, "random": random}


def verdicts(found) -> list[str]:
    return [v.verdict for v in found]


# ----------------------------------------------------------------------- the jackknife, by hand


def test_leave_one_out_and_per_image_means_by_hand():
    pairs = np.array(pairs_of(3))                          # (0,1) (0,2) (1,2)
    mean, left_out = leave_one_out_means(pairs, 3, np.array([0.1, 0.2, 0.6]))
    assert mean == pytest.approx(0.3)
    np.testing.assert_allclose(left_out, [0.6, 0.2, 0.1])  # without image 0 only (1,2) is left, ...
    np.testing.assert_allclose(per_image_means(pairs, 3, np.array([0.1, 0.2, 0.6])), [0.15, 0.35, 0.4])
    mean, left_out = leave_one_out_means(pairs, 3, np.array([0.1, np.nan, 0.6]))   # a missing pair is left out
    assert mean == pytest.approx(0.35)
    np.testing.assert_allclose(left_out, [0.6, np.nan, 0.1])


def test_jackknife_of_additive_image_effects_is_twice_the_se_of_their_mean():
    """G(i, j) = x_i + x_j: the mean over pairs is 2 mean(x), its jackknife SE 2 s / sqrt(n) (s with ddof 1); the CI
    estimate +- t(n - 1) SE. A second class with a constant gap adds its mean and no variance: the average's SE halves."""
    x = np.array([0.0, 1.0, 2.0, 3.0])
    gap = np.array([x[i] + x[j] for i, j in pairs_of(4)])
    one = (np.array(pairs_of(4)), 4, gap, np.zeros(len(gap)))
    interval = jackknife_gap([one], 0.95)
    se = 2 * x.std(ddof=1) / math.sqrt(4)
    assert interval.estimate == pytest.approx(3.0) and interval.n == 4
    assert (interval.low, interval.high) == pytest.approx((3 - scipy_stats.t.ppf(0.975, 3) * se, 3 + scipy_stats.t.ppf(0.975, 3) * se))
    flat = (np.array(pairs_of(5)), 5, np.full(10, 1.0), np.zeros(10))
    both = jackknife_gap([one, flat], 0.9)
    half = scipy_stats.t.ppf(0.95, 4 + 5 - 2) * se / 2
    assert (both.estimate, both.low, both.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_two_images_leave_no_pair_out_so_no_interval():
    two = (np.array([(0, 1)]), 2, np.array([0.3]), np.array([0.1]))
    interval = jackknife_gap([two], 0.95)
    assert interval.estimate == pytest.approx(0.2) and math.isnan(interval.low)


# ----------------------------------------------------------------------- the verdicts


def test_a_clear_gap_at_layer_5_and_none_at_layer_7():
    """One class of 4 images. Layer 5: parts 0.1 on every pair, random 0.2 + image effects (gap x_i + x_j with x =
    0, .01, .02, .03: mean .03 + .1 = 0.13, SE 2 * .0129 / 2 = .0129, t(3) 3.182: CI [0.089, 0.171], above zero).
    Layer 7: parts 0.3, random 0.3 + (x_i + x_j) - .03: gap mean 0, the same SE: CI [-0.041, 0.041], inside the
    margin 0.25 * 0.3 = 0.075."""
    x = [0.0, 0.01, 0.02, 0.03]
    effects = [x[i] + x[j] for i, j in pairs_of(4)]
    layers = {"layer5": same_rows([0.1] * 6, [0.2 + e for e in effects]),
              "layer7": same_rows([0.3] * 6, [0.3 + e - 0.03 for e in effects])}
    five, seven = claims.correspondence(metrics_of({"faces": (4, layers)}), "zfnet")
    assert (five.verdict, seven.verdict) == (REPRODUCED, REPRODUCED)
    assert "at layer5 (relu5): parts 0.100, random 0.230 (+130% of the parts')" in five.evidence
    assert "95% CI [+0.089, +0.171]" in five.evidence and "margin ±0.025" in five.evidence and "n = 4" in five.evidence
    assert "95% CI [-0.041, +0.041]" in seven.evidence and "margin ±0.075" in seven.evidence
    # random below the parts at layer 5: excludes zero on the other side; a layer-7 gap wholly beyond the margin
    layers = {"layer5": same_rows([0.3] * 6, [0.2 + e for e in effects]),
              "layer7": same_rows([0.3] * 6, [0.5 + e for e in effects])}
    assert verdicts(claims.correspondence(metrics_of({"faces": (4, layers)}), "zfnet")) == [NOT_REPRODUCED] * 2


def test_the_margin_is_a_share_of_the_parts_delta_from_the_config():
    """Layer 7 gap 0.05 on parts 0.3 everywhere (no spread): inside 25% (0.075), beyond 10% (0.03)."""
    layers = {"layer5": same_rows([0.1] * 6, [0.1] * 6), "layer7": same_rows([0.3] * 6, [0.35] * 6)}
    found = metrics_of({"faces": (4, layers)})
    assert claims.correspondence(found, "z")[1].verdict == REPRODUCED
    narrow = Settings(margins=(("correspondence_delta", 0.1),))
    assert claims.correspondence(found, "z", settings=narrow)[1].verdict == NOT_REPRODUCED
    assert "margin 10% of the parts' Delta" in claims.correspondence(found, "z", settings=narrow)[1].evidence


def test_the_parts_are_whatever_rows_the_stage_measured():
    """correspondence.parts=[mouth]: one part row; parts 0.1, random 0.2 on every pair: gap 0.1, no spread."""
    found = metrics_of({"faces": (4, {"layer5": same_rows([0.1] * 6, [0.2] * 6), "layer7": same_rows([0.1] * 6, [0.1] * 6)})})
    delta = found["evidence"]["classes"]["faces"]["per_pair"]["delta"]
    found["evidence"]["classes"]["faces"]["per_pair"]["delta"] = {"mouth": delta["nose"], "random": delta["random"]}
    five = claims.correspondence(found, "zfnet")[0]
    assert five.verdict == REPRODUCED and "parts 0.100, random 0.200" in five.evidence


def test_the_changed_in_both_variant_is_shown_beside():
    layers = {"layer5": same_rows([0.1] * 6, [0.2] * 6), "layer7": same_rows([0.3] * 6, [0.3] * 6)}
    found = metrics_of({"faces": (4, layers)})
    both = found["evidence"]["classes"]["faces"]["per_pair"]
    both["delta_changed_in_both"] = {row: {layer: [0.5] * 6 for layer in ("layer5", "layer7")} for row in ROWS}
    both["delta_changed_in_both"]["random"]["layer5"] = [0.4] * 6
    five = claims.correspondence(found, "zfnet")[0]
    assert "counting only coordinates changed in both images: parts 0.500, gap -0.100, 95% CI [-0.100, -0.100]" in five.evidence


def test_a_claim_the_untrained_net_shows_too_is_not_counted():
    """The same clear layer-5 gap and layer-7 match on the trained net; the untrained control shows the layer-5 gap
    too (so it is "an untrained net does it too") but not the layer-7 match (so that verdict stands)."""
    x = [0.0, 0.01, 0.02, 0.03]
    effects = [x[i] + x[j] for i, j in pairs_of(4)]
    trained = {"layer5": same_rows([0.1] * 6, [0.2 + e for e in effects]), "layer7": same_rows([0.3] * 6, [0.3] * 6)}
    untrained = {"layer5": same_rows([0.1] * 6, [0.15 + e for e in effects]), "layer7": same_rows([0.3] * 6, [0.6] * 6)}
    found = metrics_of({"faces": (4, trained)})
    found["evidence"]["untrained"] = {"classes": metrics_of({"faces": (4, untrained)})["evidence"]["classes"]}
    five, seven = claims.correspondence(found, "zfnet")
    assert (five.verdict, seven.verdict) == (UNTRAINED_TOO, REPRODUCED)
    assert "untrained: Delta(random) - mean Delta(parts) at layer5" in five.evidence and "untrained" not in seven.evidence


# ----------------------------------------------------------------------- paired per pair, against the old rule


def test_a_gap_shared_by_every_pair_is_found_though_the_draws_spread_more():
    """4 images, draws of 3 (all four subsets). Parts vary from pair to pair, random = parts + 0.01 on every pair.
    The old rule (gap > the largest std over draws) misses it: the draws' parts Deltas are (.10 + .20 + .15) / 3 =
    .15, (.10 + .30 + .25) / 3 = .2167, (.20 + .30 + .05) / 3 = .1833, (.15 + .25 + .05) / 3 = .15, std (ddof 0)
    .0276 > .01. Paired per pair the gap is .01 exactly everywhere: every leave-one-out mean is .01, CI [.01, .01]."""
    parts = [0.10, 0.20, 0.30, 0.15, 0.25, 0.05]          # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    draws = [[0.15, 0.65 / 3, 0.55 / 3, 0.15]]
    std = float(np.std(draws))
    assert std == pytest.approx(0.0276, abs=1e-4) and 0.01 < std                  # the old rule: not reproduced
    table = {row: {"layer5": {"mean": 0.175 + (0.01 if row == "random" else 0), "std": std}} for row in ROWS}
    layers = {"layer5": same_rows(parts, [p + 0.01 for p in parts]), "layer7": same_rows(parts, parts)}
    five = claims.correspondence(metrics_of({"faces": (4, layers)}, table), "zfnet")[0]
    assert five.verdict == REPRODUCED and "95% CI [+0.010, +0.010]" in five.evidence


def test_a_gap_from_one_image_is_not_a_finding_though_it_beats_the_draws_std():
    """5 images, parts 0.1 everywhere, random 0.3 on the 4 pairs holding image 0 and 0.1 elsewhere. Over the 10
    draws of 3 images, the 6 holding image 0 have random (2 * .3 + .1) / 3 = .2333, the others .1: mean .18, gap
    .08 > std .1333 * sqrt(.6 * .4) = .0653: the old rule called it reproduced. Leaving image 0 out leaves no gap,
    leaving another out .1: jackknife values 0, .1, .1, .1, .1, mean .08, variance 4/5 * (.0064 + 4 * .0004) = .0064,
    SE .08; CI .08 +- 2.776 * .08 = [-.142, .302]: cannot decide (margin .025)."""
    random = [0.3 if 0 in pair else 0.1 for pair in pairs_of(5)]
    layers = {"layer5": same_rows([0.1] * 10, random), "layer7": same_rows([0.1] * 10, [0.1] * 10)}
    five = claims.correspondence(metrics_of({"faces": (5, layers)}), "zfnet")[0]
    t = scipy_stats.t.ppf(0.975, 4)
    assert five.verdict == CANNOT_DECIDE
    assert f"95% CI [{0.08 - t * 0.08:+.3f}, {0.08 + t * 0.08:+.3f}]" in five.evidence


# ----------------------------------------------------------------------- without the per-pair evidence


def aggregate_table(means5, stds5, means7=(0.3,) * 4, stds7=(0.01,) * 4) -> dict:
    return {row: {"layer5": {"mean": means5[i], "std": stds5[i]}, "layer7": {"mean": means7[i], "std": stds7[i]}}
            for i, row in enumerate(ROWS)}


def test_without_evidence_the_draws_spread_bounds_the_interval():
    """Layer 5: parts (.2 + .22 + .24) / 3 = .22, random .3: gap .08, bound .05 + (.01 + .02 + .03) / 3 = .07, CI
    .08 +- 1.96 * .07 = [-.057, .217], margin .055: cannot decide (the old rule: .08 > .05, reproduced). Layer 7:
    gap 0, bound .02, CI [-.039, .039] inside .075: reproduced."""
    table = aggregate_table((0.2, 0.22, 0.24, 0.3), (0.01, 0.02, 0.03, 0.05))
    five, seven = claims.correspondence({"images": 38, "layers": {"layer5": "pool5"}, "average": {"table": table}}, "zfnet")
    assert (five.verdict, seven.verdict) == (CANNOT_DECIDE, REPRODUCED)
    z = scipy_stats.norm.ppf(0.975)
    assert f"95% CI [{0.08 - z * 0.07:+.3f}, {0.08 + z * 0.07:+.3f}]" in five.evidence
    assert "no per-pair evidence" in five.evidence and "n = 38" in five.evidence
    big = aggregate_table((0.2, 0.22, 0.24, 0.5), (0.01, 0.02, 0.03, 0.05))      # gap .28 - .137 > 0
    assert claims.correspondence({"average": {"table": big}}, "zfnet")[0].verdict == REPRODUCED


def test_missing_numbers():
    nan_std = aggregate_table((0.2, 0.22, 0.24, 0.3), (0.01, math.nan, 0.03, 0.05))
    assert verdicts(claims.correspondence({"average": {"table": nan_std}}, "zfnet")) == [CANNOT_DECIDE, REPRODUCED]
    assert verdicts(claims.correspondence({"images": 3}, "zfnet")) == [CANNOT_DECIDE] * 2
    assert verdicts(claims.correspondence(None, "zfnet")) == [NOT_RUN] * 2


# ----------------------------------------------------------------------- power at our n


# Per-pair Deltas shaped like our default run's (zfnet, relu5 and relu7, measured on its evidence): a Delta per pair
# = the parts' level + image effects shared by every row (sd `shared`) + pair noise; the gap per pair has image
# effects of its own (sd `gap_image`) and pair noise (sd `gap_pair`).
LAYER5 = {"parts": 0.17, "shared": 0.015, "gap_image": 0.007, "gap_pair": 0.01}
LAYER7 = {"parts": 0.30, "shared": 0.035, "gap_image": 0.015, "gap_pair": 0.035}


def simulated_class(rng, n: int, shape: dict, gap: float) -> dict:
    pairs = pairs_of(n)
    shared, own = rng.normal(0, shape["shared"], n), rng.normal(0, shape["gap_image"], n)
    base = np.array([shape["parts"] + shared[i] + shared[j] for i, j in pairs]) + rng.normal(0, shape["gap_pair"], len(pairs))
    gaps = np.array([gap + own[i] + own[j] for i, j in pairs]) + rng.normal(0, shape["gap_pair"], len(pairs))
    return same_rows(list(base), list(base + gaps))


def simulated(seed: int, gap5: float, gap7: float) -> dict:
    rng = np.random.default_rng(seed)
    return metrics_of({f"c{k}": (n, {"layer5": simulated_class(rng, n, LAYER5, gap5),
                                     "layer7": simulated_class(rng, n, LAYER7, gap7)})
                       for k, n in enumerate(OUR_IMAGES)})


def test_power_at_our_n():
    """38 images in 3 classes. Layer 5: a gap of 10% of the parts' Delta is found in every one of 40 runs; none is
    called reproduced at most 4 times in 40 (the CI excludes zero above 2.5% of the time). Layer 7: no gap is
    reproduced every time; a gap of twice the margin (50% of the parts') never."""
    runs = 40
    real = [claims.correspondence(simulated(s, 0.1 * LAYER5["parts"], 0.0), "z") for s in range(runs)]
    null = [claims.correspondence(simulated(100 + s, 0.0, 0.5 * LAYER7["parts"]), "z") for s in range(runs)]
    assert all(five.verdict == REPRODUCED for five, _ in real)
    assert sum(five.verdict == REPRODUCED for five, _ in null) <= 4
    assert all(seven.verdict == REPRODUCED for _, seven in real)
    assert all(seven.verdict == NOT_REPRODUCED for _, seven in null)


def test_draws_are_not_independent_units():
    """Why the interval resamples images, not draws: with no gap in the population but real image effects, a paired
    bootstrap over 100 draws of 5 images (the draws reuse each class's 10-15 images) excludes zero in most runs,
    the jackknife over images in few (5% expected). Same simulated data for both, 30 runs."""
    draws_found = images_found = 0
    for seed in range(30):
        found = simulated(200 + seed, 0.0, 0.0)
        rng, per_draw = np.random.default_rng(seed), []
        for entry in found["evidence"]["classes"].values():
            n = len(entry["paths"])
            gap = np.zeros((n, n))
            rows = entry["per_pair"]["delta"]
            for (i, j), r, p in zip(pairs_of(n), rows["random"]["layer5"], rows["nose"]["layer5"]):
                gap[i, j] = gap[j, i] = r - p
            draws = [rng.choice(n, 5, replace=False) for _ in range(100)]
            per_draw.append([gap[np.ix_(d, d)].sum() / 20 for d in draws])
        interval = paired_bootstrap([np.zeros(100), np.mean(per_draw, axis=0)], resamples=2000, seed=0)
        draws_found += interval.low > 0 or interval.high < 0
        ours = jackknife_gap(class_pairs(found["evidence"]["classes"], "delta", "layer5"), 0.95)
        images_found += ours.low > 0 or ours.high < 0
    assert draws_found >= 15 and images_found <= 6
