"""The verdict rules on hand-computed numbers: SEs, thresholds and the missing-input cases."""

import math
import re

import numpy as np
import pytest
from scipy.stats import binomtest

from zfnet.report import rules
from zfnet.report.decision import DECREASE, INCREASE, NO_CHANGE, Settings
from zfnet.report.rules import MISSING, dig, number
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNTRAINED_TOO, Verdict

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------- dig, number


def test_dig_walks_dotted_paths_and_stops_at_missing_steps():
    tree = {"a": {"b": {"c": 3}, "n": None}, "x": [1, 2]}
    assert dig(tree, "a.b.c") == 3
    assert dig(tree, "a.b") == {"c": 3}
    assert dig(tree, "a.n") is None                       # present, None: the value, not the default
    assert dig(tree, "a.b.z") is MISSING
    assert dig(tree, "a.b.c.d", "none") == "none"          # a step into a number
    assert dig(tree, "x.0", 7) == 7                        # lists are not walked
    assert dig(None, "a", None) is None
    assert dig({}, "a") is MISSING


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (0, 0.0), (-2.5, -2.5), (0.0, 0.0),
    (None, None), (NAN, None), (INF, None), (-INF, None), (True, None), (False, None),
    (MISSING, None), ("1.5", None), ([1], None),
])
def test_number_is_a_finite_float_or_none(value, expected):
    result = number(value)
    assert result == expected and (result is None or type(result) is float)


# ----------------------------------------------------------------------- error_change
# Expected intervals: Wilson bounds from scipy.stats.binomtest, combined by Newcombe's (1998) formula by hand; McNemar's
# exact p from scipy.stats.binomtest; the paired normal approximation by hand (the bootstrap must land near it).

PAPER_DIRECTION = (40.5, 38.4)   # Table 2: AlexNet replication -> ZF, a direction claim (see below)
PAPER_NO_CHANGE = (40.5, 40.0)   # Table 3: removing layer 7, within the paper's own noise
PAPER_INCREASE = (40.5, 45.4)    # Table 3: removing layers 3, 4
IMAGES = 500                     # our validation images
FEW = Settings(resamples=2000)


def change(ours, images=IMAGES, paper=PAPER_DIRECTION, ran=True, correct=None, settings=FEW):
    return rules.error_change("claim", "subject", paper, 50_000, ours, images, ran=ran, correct=correct,
                              settings=settings)


def correct_but(wrong, n=IMAGES):
    """One run's per-image correctness (1 = right), wrong on the images `wrong`."""
    row = np.ones(n, dtype=int)
    row[list(wrong)] = 0
    return row.tolist()


def rate(wrong, n=IMAGES) -> float:
    return 100 * len(list(wrong)) / n


def newcombe_by_hand(k_a, k_b, n):
    """Newcombe's hybrid score CI of k_b/n - k_a/n from scipy's Wilson intervals (his method 10)."""
    (la, ua), (lb, ub) = (binomtest(k, n).proportion_ci(method="wilson") for k in (k_a, k_b))
    pa, pb = k_a / n, k_b / n
    return pb - pa - math.hypot(pb - lb, ua - pa), pb - pa + math.hypot(ub - pb, pa - la)


def bounds(verdict):
    """The CI's two ends in points, as the evidence prints them."""
    low, high = re.search(r"CI \[([-+0-9.]+) pt, ([-+0-9.]+) pt\]", verdict.evidence).groups()
    return float(low), float(high)


def test_error_change_standard_errors_by_hand():
    # paper: sqrt((.405 * .595 + .384 * .616) / 50000) = sqrt(.477519 / 50000) = .0030904 -> 0.309 points
    assert 100 * rules.standard_error(0.405, 0.384, 50_000) == pytest.approx(0.30904, abs=1e-4)
    # ours: sqrt((.038 * .962 + .016 * .984) / 500) = sqrt(.0523 / 500) = .010227 -> 1.023 points
    assert 100 * rules.standard_error(0.038, 0.016, 500) == pytest.approx(1.0227, abs=1e-4)


def test_the_paper_s_change_sets_the_expectation():
    # 1.96 SE at 50,000: -2.1 vs 1.96 * .309 = .606: a decrease; -0.5 vs 1.96 * .3101 = .608: no real change;
    # Table 2's (a) -> (a)+(b), -0.7 vs 1.96 * sqrt((.367 * .633 + .36 * .64) / 50000) = 1.96 * .3042 = .596: a decrease
    assert rules.paper_expectation(PAPER_DIRECTION, 50_000, 0.95)[0] == DECREASE
    assert rules.paper_expectation(PAPER_INCREASE, 50_000, 0.95)[0] == INCREASE
    expected, words = rules.paper_expectation(PAPER_NO_CHANGE, 50_000, 0.95)
    assert expected == NO_CHANGE and words == "no real change, within 1.96 SE = 0.61 at n = 50,000"
    assert rules.paper_expectation((36.7, 36.0), 50_000, 0.95)[0] == DECREASE
    assert rules.paper_expectation((36.7, 36.0), 5_000, 0.95)[0] == NO_CHANGE    # 10x fewer images: noise 1.88


def test_without_evidence_the_interval_is_newcombe_s_from_the_two_rates():
    # 3.8 -> 1.6 on 500 images: 19 and 8 errors
    low, high = newcombe_by_hand(19, 8, IMAGES)
    v = change((3.8, 1.6))
    assert v.verdict == REPRODUCED and high < 0, v
    assert bounds(v) == (round(100 * low, 2), round(100 * high, 2))
    assert "ours 3.8 -> 1.6 (no per-image evidence)" in v.evidence
    assert "unpaired: conservative when the errors are positively correlated" in v.evidence
    assert "margin ±1.00 pt, n = 500" in v.evidence and v.rule == rules.ERROR_RULE
    assert change((1.6, 3.8)).verdict == NOT_REPRODUCED        # the other side of zero
    # 3.8 -> 3.0: the CI includes zero and reaches beyond the margin
    assert change((3.8, 3.0)).verdict == CANNOT_DECIDE
    # the same change on 20,000 images: SE .18 points, -0.8 is beyond noise
    assert change((3.8, 3.0), images=20_000).verdict == REPRODUCED


def test_a_no_change_claim_with_a_wide_interval_cannot_be_decided():
    """The issue's example: zfnet_fc8192 1.6 -> 3.4 (the error doubles) was "reproduced" as no change."""
    paper = (38.4, 38.8)                                   # +0.4 within the paper's noise .60: no real change
    unpaired = change((1.6, 3.4), paper=paper)
    assert unpaired.verdict == CANNOT_DECIDE, unpaired     # Newcombe [-0.18, +3.93]: beyond the margin of 1
    # paired: the 8 images the first model misses, the second misses too, and 9 more: discordant 0 and 9
    paired = change((1.6, 3.4), paper=paper, correct=(correct_but(range(8)), correct_but(range(17))))
    assert paired.verdict == CANNOT_DECIDE, paired
    # by hand: mean change .018, SE sqrt(.018 * .982 / 500) = .00595 -> 1.8 +- 1.17 points: low end inside the margin
    low, high = bounds(paired)
    assert low == pytest.approx(1.8 - 1.17, abs=0.3) and high == pytest.approx(1.8 + 1.17, abs=0.3)
    # McNemar: 9 discordant images, all one way: exact p = 2 * 0.5^9
    assert f"McNemar p = {binomtest(0, 9).pvalue:.2g}" in paired.evidence


def test_a_no_change_claim_is_reproduced_only_inside_the_margin():
    # 2.0 -> 2.0 with one discordant image each way: the CI is within about +-0.4 points: inside +-1
    same = change((2.0, 2.0), paper=PAPER_NO_CHANGE, correct=(correct_but(range(10)), correct_but(range(1, 11))))
    assert same.verdict == REPRODUCED, same
    # 2.0 -> 8.0, the 10 shared: 30 discordant, +6 +- 2.1 points: wholly beyond the margin
    moved = change((2.0, 8.0), paper=PAPER_NO_CHANGE, correct=(correct_but(range(10)), correct_but(range(40))))
    assert moved.verdict == NOT_REPRODUCED and "wholly beyond the margin" in moved.evidence, moved
    # the margin comes from report.margins.error_points: without evidence 3.8 -> 4.0 is Newcombe [-2.29, +2.70]
    assert change((3.8, 4.0), paper=PAPER_NO_CHANGE).verdict == CANNOT_DECIDE
    wide = Settings(resamples=2000, margins=(("error_points", 3.0),))
    assert change((3.8, 4.0), paper=PAPER_NO_CHANGE, settings=wide).verdict == REPRODUCED


def test_power_at_our_n_a_real_paired_effect_is_detected():
    """2% -> 6% error on our 500 images, the second model also missing 5 of the first's 10: reproduced when the
    paper claims that increase, not reproduced when it claims the opposite."""
    base, changed = range(10), range(5, 35)
    correct = (correct_but(base), correct_but(changed))
    up = change((rate(base), rate(changed)), paper=PAPER_INCREASE, correct=correct)
    assert up.verdict == REPRODUCED, up
    # by hand: b = 5 only-first, c = 25 only-second; mean change .04, SE sqrt((30/500 - .04^2) / 500) = .01081
    low, high = bounds(up)
    assert low == pytest.approx(4 - 1.96 * 1.081, abs=0.3) and high == pytest.approx(4 + 1.96 * 1.081, abs=0.3)
    assert change((rate(base), rate(changed)), paper=PAPER_DIRECTION, correct=correct).verdict == NOT_REPRODUCED


def test_power_at_our_n_a_null_effect_is_not_reproduced():
    # 2% both, 5 shared errors, 5 discordant each way: the change is 0 +- 1.2 points
    correct = (correct_but(range(10)), correct_but(range(5, 15)))
    assert change((2.0, 2.0), paper=PAPER_INCREASE, correct=correct).verdict == CANNOT_DECIDE
    assert change((2.0, 2.0), paper=PAPER_DIRECTION, correct=correct).verdict == CANNOT_DECIDE
    assert change((2.0, 2.0), paper=PAPER_NO_CHANGE, correct=correct).verdict == CANNOT_DECIDE   # too wide to say


def test_the_pairing_narrows_the_interval():
    """6% -> 8%, the second model missing the first's 30 images and 10 more: paired, the change is 2 +- 1.2 points
    (10 discordant images); the unpaired interval from the rates alone includes zero."""
    correct = (correct_but(range(30)), correct_but(range(40)))
    assert change((6.0, 8.0), paper=PAPER_INCREASE).verdict == CANNOT_DECIDE
    assert change((6.0, 8.0), paper=PAPER_INCREASE, correct=correct).verdict == REPRODUCED


def seed_runs(errors_per_seed, n=IMAGES):
    return [correct_but(range(k), n) for k in errors_per_seed]


def test_seed_variance_widens_the_interval():
    """The base model trained with 5 seeds: its seeds' errors (1% to 11%) enter the interval. The same base run 5
    times (no seed variance) gives about the single-run interval.

    By hand: 6% -> 6% with no shared error: SE of the paired change sqrt(.12 / 500) = 1.55 points. The seeds' errors
    1, 2, 6, 10, 11% have a standard deviation of 4.05 points (ddof 0, as the bootstrap resamples them), their mean of
    5 resampled ones 4.05 / sqrt(5) = 1.81: together sqrt(1.55^2 + 1.81^2) = 2.38, 1.54 times as wide."""
    changed = correct_but(range(200, 230))                 # 6%, none of its errors shared with the base runs
    agreeing = change((6.0, 6.0), paper=PAPER_DIRECTION, correct=(seed_runs([30] * 5), changed))
    disagreeing = change((6.0, 6.0), paper=PAPER_DIRECTION, correct=(seed_runs([5, 10, 30, 50, 55]), changed))
    single = change((6.0, 6.0), paper=PAPER_DIRECTION, correct=(correct_but(range(30)), changed))
    width = {name: bounds(v)[1] - bounds(v)[0] for name, v in
             (("agreeing", agreeing), ("disagreeing", disagreeing), ("single", single))}
    assert width["agreeing"] == pytest.approx(width["single"], rel=0.15)
    assert width["disagreeing"] > 1.3 * width["agreeing"], width
    assert "first over 5 seeds: 1.0, 2.0, 6.0, 10.0, 11.0" in disagreeing.evidence
    assert "percentile bootstrap of 5 and 1 seeds" in disagreeing.evidence


def test_seed_variance_can_undo_a_single_seed_s_verdict():
    # seed 0 alone: 8% -> 4%, 20 discordant: -4 +- 1.7 points, reproduced; seeds at 8, 1, 9, 2 and 8% average 5.6%
    # and spread over 8 points: with them the change from 5.6 to 4 includes zero
    changed = correct_but(range(20))
    alone = change((8.0, 4.0), correct=(correct_but(range(40)), changed))
    assert alone.verdict == REPRODUCED, alone
    seeds = change((8.0, 4.0), correct=(seed_runs([40, 5, 45, 10, 40]), changed))
    assert seeds.verdict == CANNOT_DECIDE, seeds


@pytest.mark.parametrize("correct, why", [
    ((correct_but(range(19)), correct_but(range(8), n=400)), "covers 500 and 400 images"),
    ((correct_but(range(20)), correct_but(range(8))), "no run of the first model's evidence has its metrics' error"),
    ((correct_but(range(19)), [2] * IMAGES), "0/1 per image"),
    ((correct_but(range(19)), [[1, 0], [1]]), "lists of 0/1 of one length"),
])
def test_evidence_that_does_not_stand_behind_the_metrics_is_set_aside(correct, why):
    v = change((3.8, 1.6), correct=correct)
    assert "per-image evidence ignored" in v.evidence and why in v.evidence, v
    assert bounds(v) == bounds(change((3.8, 1.6)))           # the unpaired interval instead


@pytest.mark.parametrize("ours, images", [((None, 1.6), 500), ((3.8, NAN), 500), ((3.8, INF), 500),
                                          ((3.8, 1.6), None), ((3.8, 1.6), 0)])
def test_error_change_missing_input(ours, images):
    assert change(ours, images).verdict == CANNOT_DECIDE
    not_run = change(ours, images, ran=False)
    assert not_run.verdict == NOT_RUN and "did not run" in not_run.evidence


def test_error_change_zero_errors_on_both_sides_do_not_reproduce_a_direction():
    # Wilson for 0 of 500 reaches .76 points: Newcombe [-0.76, +0.76], inside the margin
    assert change((0.0, 0.0), paper=PAPER_INCREASE).verdict == NOT_REPRODUCED
    assert change((0.0, 0.0), paper=PAPER_NO_CHANGE).verdict == REPRODUCED
    perfect = (correct_but([]), correct_but([]))
    assert change((0.0, 0.0), paper=PAPER_INCREASE, correct=perfect).verdict == NOT_REPRODUCED
    assert change((0.0, 0.0), paper=PAPER_NO_CHANGE, correct=perfect).verdict == REPRODUCED


# ----------------------------------------------------------------------- share_above_half


def above_half(share, count, ran=True):
    return rules.share_above_half("claim", "subject", share, count, ran, "share")


def test_share_above_half_thresholds_by_hand():
    # n = 100: 0.5 + 2 sqrt(0.25 / 100) = 0.5 + 2 * 0.05 = 0.6
    assert above_half(0.61, 100).verdict == REPRODUCED
    assert above_half(0.59, 100).verdict == NOT_REPRODUCED
    # n = 400: 0.5 + 2 sqrt(0.25 / 400) = 0.5 + 2 * 0.025 = 0.55; 0.59 is now enough
    v = above_half(0.59, 400)
    assert v.verdict == REPRODUCED and v.evidence == "share: 0.590 of n = 400 (0.5 + 2 SE = 0.550)", v
    assert above_half(0.3, 400).verdict == NOT_REPRODUCED


@pytest.mark.parametrize("share, count, verdict", [
    # exactly 2 SE is "at least 2 SE": n = 100, 0.5 + 2 sqrt(0.25 / 100) = 0.6, while 0.6 - 0.5 = 0.0999...98 in floats
    (0.6, 100, REPRODUCED), (60 / 100, 100, REPRODUCED), (0.599999, 100, NOT_REPRODUCED), (0.59, 100, NOT_REPRODUCED),
    # n = 36: 0.5 + 2 sqrt(0.25 / 36) = 0.5 + 1/6 = 24/36; 23/36 is the next share below
    (24 / 36, 36, REPRODUCED), (23 / 36, 36, NOT_REPRODUCED),
])
def test_share_above_half_exact_ties(share, count, verdict):
    assert above_half(share, count).verdict == verdict


@pytest.mark.parametrize("share, count", [(None, 100), (NAN, 100), (0.7, None), (0.7, 0), (0.7, NAN), (True, 100)])
def test_share_above_half_missing(share, count):
    assert above_half(share, count).verdict == CANNOT_DECIDE
    assert above_half(share, count, ran=False).verdict == NOT_RUN


# ----------------------------------------------------------------------- shares_differ


def differ(higher, lower, count, ran=True):
    return rules.shares_differ("claim", "subject", higher, lower, count, ran, "shares")


def test_shares_differ_thresholds_by_hand():
    # .5 vs .3, n = 100: SE = sqrt((.5 * .5 + .3 * .7) / 100) = sqrt(.0046) = .0678, 2 SE = .136; .2 beyond
    v = differ(0.5, 0.3, 100)
    assert v.verdict == REPRODUCED and v.evidence == "shares: 0.500 vs 0.300 of n = 100 each (2 SE = 0.136)", v
    # .4 vs .3: SE = sqrt((.24 + .21) / 100) = .0671, 2 SE = .134; .1 within
    assert differ(0.4, 0.3, 100).verdict == NOT_REPRODUCED
    # .25 vs 0, n = 48: SE = sqrt(.25 * .75 / 48) = sqrt(.00390625) = .0625, 2 SE = .125; .25 beyond
    assert differ(0.25, 0.0, 48).verdict == REPRODUCED
    # the wrong way round is never reproduced
    assert differ(0.3, 0.5, 100).verdict == NOT_REPRODUCED


@pytest.mark.parametrize("higher, lower, count, verdict", [
    # 6/10 vs 2/10: SE = sqrt((.6 * .4 + .2 * .8) / 10) = sqrt(.04) = .2, 2 SE = .4 = the difference: at least 2 SE
    (6 / 10, 2 / 10, 10, REPRODUCED), (0.6, 0.2 + 1e-6, 10, NOT_REPRODUCED),
    # 14/20 vs 8/20: SE = sqrt((.7 * .3 + .4 * .6) / 20) = sqrt(.0225) = .15, 2 SE = .3 = the difference
    (14 / 20, 8 / 20, 20, REPRODUCED), (0.7 - 1e-6, 0.4, 20, NOT_REPRODUCED),
])
def test_shares_differ_exact_ties(higher, lower, count, verdict):
    assert differ(higher, lower, count).verdict == verdict


def test_shares_differ_equal_zero_is_not_reproduced():
    # 0 vs 0: SE = 0 and the difference is 0; "0 >= 0" must not count as a difference
    assert differ(0.0, 0.0, 48).verdict == NOT_REPRODUCED
    assert differ(0.5, 0.5, 48).verdict == NOT_REPRODUCED


@pytest.mark.parametrize("higher, lower, count", [(None, 0.1, 10), (0.5, NAN, 10), (0.5, 0.1, None), (0.5, 0.1, 0)])
def test_shares_differ_missing(higher, lower, count):
    assert differ(higher, lower, count).verdict == CANNOT_DECIDE
    assert differ(higher, lower, count, ran=False).verdict == NOT_RUN


# ----------------------------------------------------------------------- boolean, not_at_this_scale


def test_boolean():
    def judge(value, ran=True):
        return rules.boolean("claim", "subject", value, "the stage's rule", "its numbers", ran)

    yes, no = judge(True), judge(False)
    assert (yes.verdict, yes.rule, yes.evidence) == (REPRODUCED, "the stage's rule", "its numbers")
    assert no.verdict == NOT_REPRODUCED
    assert judge(None).verdict == CANNOT_DECIDE
    assert judge(None, ran=False).verdict == NOT_RUN
    assert judge(1).verdict == CANNOT_DECIDE      # a number is not the stage's score
    assert judge(NAN).verdict == CANNOT_DECIDE


def test_not_at_this_scale_and_verdict_validation():
    v = rules.not_at_this_scale("claim", "subject", "why")
    assert v.verdict == NOT_RUN and v.evidence == "why"
    with pytest.raises(ValueError):
        Verdict("claim", "subject", "maybe", "rule", "evidence")


def test_judged_shows_estimate_interval_margin_and_n():
    from zfnet.report.decision import INCREASE, decide
    from zfnet.report.stats import Interval

    decision = decide(Interval(0.02, 0.01, 0.03, 0.95, 250, "by hand"), 0.005, INCREASE)
    found = rules.judged("a claim", "zfnet", decision, "the drop", scale=100, unit=" pt", digits=1)
    assert found.verdict == REPRODUCED
    assert found.evidence == ("the drop: estimate +2.0 pt, 95% CI [+1.0 pt, +3.0 pt] (by hand), margin ±0.5 pt, "
                              "n = 250; the CI excludes zero on the paper's side")


@pytest.mark.parametrize("trained, untrained, expected", [
    (REPRODUCED, REPRODUCED, UNTRAINED_TOO),     # the negative control passes too: not a result of learning
    (REPRODUCED, NOT_REPRODUCED, REPRODUCED),
    (REPRODUCED, CANNOT_DECIDE, REPRODUCED),
    (NOT_REPRODUCED, REPRODUCED, NOT_REPRODUCED),
    (CANNOT_DECIDE, REPRODUCED, CANNOT_DECIDE),
])
def test_a_claim_the_untrained_net_also_reproduces_is_not_counted(trained, untrained, expected):
    def verdict(value, evidence):
        return Verdict("claim", "zfnet", value, "rule", evidence)

    found = rules.against_untrained(verdict(trained, "trained 0.9"), verdict(untrained, "untrained 0.8"))
    assert found.verdict == expected
    if expected == UNTRAINED_TOO:
        assert found.evidence == "trained 0.9; untrained: untrained 0.8"
    assert rules.against_untrained(verdict(trained, "x"), None).verdict == trained
