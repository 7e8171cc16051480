"""The verdict rules on hand-computed numbers: SEs, thresholds and the missing-input cases."""

import pytest

from zfnet.report import rules
from zfnet.report.rules import MISSING, dig, number
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, Verdict

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

PAPER_DIRECTION = (40.5, 38.4)   # Table 2: AlexNet replication -> ZF, a direction claim (see below)
PAPER_NO_CHANGE = (40.5, 40.0)   # Table 3: removing layer 7, within the paper's own noise


def change(ours, images=500, paper=PAPER_DIRECTION, ran=True):
    return rules.error_change("claim", "subject", paper, 50_000, ours, images, ran=ran)


def test_error_change_standard_errors_by_hand():
    # paper: sqrt((.405 * .595 + .384 * .616) / 50000) = sqrt(.477519 / 50000) = .0030904 -> 0.309 points
    assert 100 * rules.standard_error(0.405, 0.384, 50_000) == pytest.approx(0.30904, abs=1e-4)
    # ours: sqrt((.038 * .962 + .016 * .984) / 500) = sqrt(.0523 / 500) = .010227 -> 1.023 points
    assert 100 * rules.standard_error(0.038, 0.016, 500) == pytest.approx(1.0227, abs=1e-4)


def test_error_change_same_direction_beyond_noise_is_reproduced():
    # paper -2.1 vs 2 SE 0.62: a direction claim; ours -2.2 vs 2 SE 2.05 (1.023 above, by hand): beyond noise
    v = change((3.8, 1.6))
    assert isinstance(v, Verdict) and v.verdict == REPRODUCED, v
    assert v.evidence == "paper 40.5 -> 38.4 (-2.1, 2 SE 0.6); ours 3.8 -> 1.6 (-2.2, 2 SE 2.0, n = 500)"
    assert v.rule == rules.ERROR_RULE


def test_error_change_opposite_sign_beyond_noise_is_not_reproduced():
    v = change((1.6, 3.8))     # +2.2, same 2 SE 2.05
    assert v.verdict == NOT_REPRODUCED and v.evidence.endswith("; opposite sign"), v


def test_error_change_same_sign_within_noise_is_not_reproduced():
    # 3.8 -> 3.0: SE = sqrt((.038 * .962 + .03 * .97) / 500) = sqrt(.065656 / 500) = 1.146 points; |-0.8| < 2.29
    v = change((3.8, 3.0))
    assert v.verdict == NOT_REPRODUCED and v.evidence.endswith("; within noise"), v
    # the same change measured on 20,000 images: SE = 0.181 points, -0.8 beyond 0.362
    assert change((3.8, 3.0), images=20_000).verdict == REPRODUCED


def test_error_change_opposite_sign_within_noise_is_not_reproduced():
    # +0.8 within 2 SE 2.29 (the wording, "opposite sign" or "within noise", is not pinned here)
    assert change((3.0, 3.8)).verdict == NOT_REPRODUCED


def test_error_change_no_change_claim():
    # paper 40.5 -> 40.0: SE = sqrt((.405 * .595 + .4 * .6) / 50000) = sqrt(.480975 / 50000) = 0.310 points;
    # |-0.5| < 0.62, so the paper claims no real change
    within = change((3.8, 3.0), paper=PAPER_NO_CHANGE)          # |-0.8| < 2.29: within noise
    assert within.verdict == REPRODUCED, within
    assert within.evidence.startswith("paper 40.5 -> 40.0 (-0.5, 2 SE 0.6)")
    moved = change((3.8, 1.6), paper=PAPER_NO_CHANGE)           # |-2.2| > 2.05
    assert moved.verdict == NOT_REPRODUCED and moved.evidence.endswith("ours moved beyond noise"), moved
    up = change((1.6, 3.8), paper=PAPER_NO_CHANGE)              # either direction counts as moving
    assert up.verdict == NOT_REPRODUCED


@pytest.mark.parametrize("ours, images", [((None, 1.6), 500), ((3.8, NAN), 500), ((3.8, INF), 500),
                                          ((3.8, 1.6), None), ((3.8, 1.6), 0)])
def test_error_change_missing_input(ours, images):
    assert change(ours, images).verdict == CANNOT_DECIDE
    not_run = change(ours, images, ran=False)
    assert not_run.verdict == NOT_RUN and "did not run" in not_run.evidence


def test_error_change_zero_errors_on_both_sides_do_not_reproduce_a_direction():
    assert change((0.0, 0.0), paper=(40.5, 45.4)).verdict == NOT_REPRODUCED
    assert change((0.0, 0.0), paper=PAPER_NO_CHANGE).verdict == REPRODUCED


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
