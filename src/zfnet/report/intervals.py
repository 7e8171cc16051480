"""Closed-form intervals: a proportion (Wilson), two independent proportions (Newcombe), the mean of few units
(Student's t). For aggregate numbers without per-unit evidence, and for units too few to bootstrap; the
resampling intervals and the paired tests are in `zfnet.report.stats`.
"""

from __future__ import annotations

import math
from typing import Sequence

from zfnet.report.stats import _NORMAL, Interval, _changes, _check_level, student_t_above

# ----------------------------------------------------------------------- two independent proportions


def wilson(proportion: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion observed on n independent units (Wilson 1927): the values p
    whose score test at `level` does not reject; stays inside [0, 1] and is sound at 0 and 1 successes."""
    _check_level(level)
    if not n > 0 or not 0 <= proportion <= 1:
        raise ValueError(f"a proportion in [0, 1] on n > 0 units is needed, got {proportion!r} on {n!r}")
    z = _NORMAL.inv_cdf(0.5 + level / 2)
    centre = (proportion + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(p_a: float, n_a: float, p_b: float, n_b: float, level: float = 0.95) -> Interval:
    """CI of p_b - p_a for two proportions on independent samples: Newcombe's (1998) hybrid score interval
    (his method 10), the two Wilson intervals combined. For two models scored on the same units it ignores the
    pairing: where their errors are positively correlated (models mostly miss the same images) it is wider than
    the paired interval, so conservative; it is what the aggregate rates alone allow."""
    low_a, high_a = wilson(p_a, n_a, level)
    low_b, high_b = wilson(p_b, n_b, level)
    difference = p_b - p_a
    low = difference - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = difference + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return Interval(difference, low, high, level, int(min(n_a, n_b)), "Newcombe hybrid score interval")


# ----------------------------------------------------------------------- few units: Student's t


def student_t_quantile(probability: float, df: float) -> float:
    """The t with P(T <= t) = `probability` for Student's t with `df` degrees of freedom (bisection on
    `student_t_above`, to 1e-12)."""
    if not 0 < probability < 1 or not df > 0:
        raise ValueError(f"a probability in (0, 1) and df > 0 are needed, got {probability!r} and {df!r}")
    low, high = -1.0, 1.0
    while student_t_above(low, df) < 1 - probability:
        low *= 2
    while student_t_above(high, df) > 1 - probability:
        high *= 2
    while high - low > 1e-12 * max(1.0, abs(high)):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_above(middle, df) > 1 - probability else (low, middle)
    return (low + high) / 2


def t_interval(values: Sequence, level: float = 0.95, *, method: str = "Student t interval") -> Interval:
    """Student's t CI of the mean of `values` (n >= 2): mean +- t(n - 1) * s / sqrt(n), s with ddof=1.

    Assumes independent values from a distribution close to normal. For few units (the 5 folds of a transfer
    table) it is what can be said: a bootstrap of 5 values has only 126 distinct resamples and too narrow
    percentiles. Every value equal gives the zero-width interval at that value.
    """
    _check_level(level)
    v = _changes(values, "two-sided")
    if v.size < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {v.size}")
    mean, half = float(v.mean()), student_t_quantile(0.5 + level / 2, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, level, int(v.size), f"{method}, {v.size - 1} degrees of freedom")
