"""Closed-form intervals against scipy and published examples: Wilson, Newcombe, Student's t."""

import numpy as np
import pytest
import scipy.stats as ss

from zfnet.report import intervals

# ----------------------------------------------------------------------- two independent proportions


@pytest.mark.parametrize("k, n", [(0, 500), (8, 500), (19, 500), (500, 500), (3, 10), (19_200, 50_000)])
def test_wilson_is_scipy_s_score_interval(k, n):
    low, high = intervals.wilson(k / n, n)
    expected = ss.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == (pytest.approx(expected.low, abs=1e-12), pytest.approx(expected.high, abs=1e-12))
    assert intervals.wilson(k / n, n, 0.9) == pytest.approx(tuple(ss.binomtest(k, n).proportion_ci(0.9, method="wilson")))


@pytest.mark.parametrize("first, second, low, high", [
    ((56, 70), (48, 80), 0.0524, 0.3339),     # Newcombe (1998), Table II, examples (a), (b), (d), (e): method 10
    ((9, 10), (3, 10), 0.1705, 0.8090),
    ((5, 56), (0, 29), -0.0381, 0.1926),
    ((0, 10), (0, 20), -0.1611, 0.2775),
])
def test_newcombe_difference_matches_newcombe_s_published_examples(first, second, low, high):
    interval = intervals.newcombe_difference(second[0] / second[1], second[1], first[0] / first[1], first[1])
    assert interval.estimate == pytest.approx(first[0] / first[1] - second[0] / second[1])
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)
    assert interval.n == min(first[1], second[1]) and interval.level == 0.95


def test_wilson_refuses_what_is_not_a_proportion():
    for proportion, n in ((1.2, 10), (-0.1, 10), (0.5, 0)):
        with pytest.raises(ValueError):
            intervals.wilson(proportion, n)


# ----------------------------------------------------------------------- Student's t for few units (transfer folds)


@pytest.mark.parametrize("probability, df", [(0.975, 4), (0.975, 1), (0.95, 2), (0.025, 10), (0.995, 30)])
def test_student_t_quantile_matches_scipy(probability, df):
    assert intervals.student_t_quantile(probability, df) == pytest.approx(ss.t.ppf(probability, df), abs=1e-8)


def test_t_interval_matches_scipy_and_refuses_one_value():
    values = [0.1, 0.3, 0.2, 0.5, 0.4]
    interval = intervals.t_interval(values, 0.9)
    low, high = ss.t.interval(0.9, 4, loc=np.mean(values), scale=ss.sem(values))    # sem: ddof=1
    assert (interval.estimate, interval.low, interval.high, interval.n) == pytest.approx((0.3, low, high, 5), abs=1e-9)
    same = intervals.t_interval([0.25, 0.25, 0.25])       # no spread: the zero-width interval at the value
    assert (same.low, same.high, same.method) == (0.25, 0.25, "Student t interval, 2 degrees of freedom")
    with pytest.raises(ValueError):
        intervals.t_interval([0.2])
