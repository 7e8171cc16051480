"""The verdict rule at its boundaries: each clause, which side of each bound, rounding, bad input."""

import pytest

from zfnet.report.decision import DECREASE, INCREASE, NO_CHANGE, decide
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED
from zfnet.report.stats import Interval


def ci(low, high, estimate=None):
    return Interval((low + high) / 2 if estimate is None else estimate, low, high, 0.95, 500, "by hand")


@pytest.mark.parametrize("low, high, expected, verdict", [
    # a claimed increase, margin 0.01
    (0.001, 0.03, INCREASE, REPRODUCED),          # excludes zero on the paper's side
    (0.001, 0.005, INCREASE, REPRODUCED),         # ... also inside the margin: the first clause wins (see decide)
    (0.0, 0.03, INCREASE, CANNOT_DECIDE),         # a bound at zero does not exclude it, on either side
    (-0.03, 0.0, INCREASE, CANNOT_DECIDE),
    (-0.03, -0.001, INCREASE, NOT_REPRODUCED),    # excludes zero on the other side
    (-0.01, 0.01, INCREASE, NOT_REPRODUCED),      # inside the margin, ends included
    (-0.0101, 0.01, INCREASE, CANNOT_DECIDE),     # reaches past the margin and includes zero
    (-0.005, 0.02, INCREASE, CANNOT_DECIDE),
    # a claimed decrease mirrors it
    (-0.03, -0.001, DECREASE, REPRODUCED),
    (-0.03, 0.0, DECREASE, CANNOT_DECIDE),
    (0.0, 0.03, DECREASE, CANNOT_DECIDE),
    (0.001, 0.03, DECREASE, NOT_REPRODUCED),
    (-0.01, 0.01, DECREASE, NOT_REPRODUCED),
    (-0.02, 0.005, DECREASE, CANNOT_DECIDE),
    # a claimed no-change: only inside the margin is reproduced; a wide CI never is
    (-0.01, 0.01, NO_CHANGE, REPRODUCED),
    (0.002, 0.009, NO_CHANGE, REPRODUCED),        # excludes zero but inside the margin: a change too small to matter
    (-0.01, 0.0101, NO_CHANGE, CANNOT_DECIDE),
    (-0.05, 0.05, NO_CHANGE, CANNOT_DECIDE),
    (0.005, 0.03, NO_CHANGE, CANNOT_DECIDE),      # moved, but maybe not beyond the margin
    (0.0101, 0.03, NO_CHANGE, NOT_REPRODUCED),    # wholly beyond the margin
    (-0.03, -0.0101, NO_CHANGE, NOT_REPRODUCED),
    (0.01, 0.03, NO_CHANGE, CANNOT_DECIDE),       # touching the margin is not beyond it
])
def test_decide_at_its_boundaries(low, high, expected, verdict):
    decision = decide(ci(low, high), 0.01, expected)
    assert decision.verdict == verdict, decision.reason


def test_decide_forgives_rounding_only():
    # 0.1 + 0.2 - 0.3 = 5.6e-17 > 0 in floating point: rounding, not evidence of an increase
    assert decide(ci(0.1 + 0.2 - 0.3, 0.05), 0.01, INCREASE).verdict == CANNOT_DECIDE
    # a CI ending at 0.1 + 0.2 = 0.30000000000000004 lies inside a margin of 0.3
    assert decide(ci(-0.3, 0.1 + 0.2), 0.3, NO_CHANGE).verdict == REPRODUCED
    assert decide(ci(-0.3, 0.3 + 1e-6), 0.3, NO_CHANGE).verdict == CANNOT_DECIDE


def test_decide_without_an_interval_and_bad_input():
    for expected in (INCREASE, NO_CHANGE):
        missing = decide(ci(float("nan"), float("nan"), 0.0), 0.01, expected)
        assert (missing.verdict, missing.reason) == (CANNOT_DECIDE, "no interval")
    with pytest.raises(ValueError, match="expected"):
        decide(ci(0.0, 0.1), 0.01, "up")
    with pytest.raises(ValueError, match="margin"):
        decide(ci(0.0, 0.1), float("nan"), INCREASE)
    with pytest.raises(ValueError, match="low end"):
        decide(Interval(0.0, 0.1, -0.1, 0.95, 10, "by hand"), 0.01, INCREASE)


def test_decision_evidence_shows_estimate_ci_margin_and_n():
    decision = decide(Interval(-0.022, -0.0384, -0.0056, 0.95, 500, "Agresti-Min"), 0.01, DECREASE)
    assert decision.evidence(digits=1, scale=100, unit=" pt") == (
        "estimate -2.2 pt, 95% CI [-3.8 pt, -0.6 pt] (Agresti-Min), margin ±1.0 pt, n = 500; "
        "the CI excludes zero on the paper's side")


def test_settings_come_from_the_report_config_and_margins_fall_back_to_the_claims_default():
    from zfnet.report.decision import Settings

    settings = Settings.from_config({"report": {"statistics": {"resamples": 500, "seed": 3},
                                                "margins": {"error_points": 0.5}}})
    assert (settings.resamples, settings.level, settings.seed) == (500, 0.95, 3)
    assert settings.margin("error_points", 1.0) == 0.5
    assert settings.margin("not_configured", 0.25) == 0.25
    assert Settings.from_config(None) == Settings()
