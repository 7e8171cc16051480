"""The verdict rule on a claimed change: its confidence interval against zero and an equivalence margin.

A directional claim is reproduced when its CI excludes zero on the paper's side, not reproduced when it
excludes zero on the other side or lies inside the margin, and cannot decide otherwise. A no-change claim is
reproduced only when its CI lies inside the margin; a wide CI is cannot decide, never reproduced. The
intervals come from `zfnet.report.stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED
from zfnet.report.stats import ROUNDING, Interval, check_margin, inside

INCREASE, DECREASE, NO_CHANGE = "increase", "decrease", "no change"    # what the paper claims about the change
EXPECTATIONS = (INCREASE, DECREASE, NO_CHANGE)

DECISION_RULE = ("the change's CI against zero and an equivalence margin: a claimed increase (decrease) is reproduced "
                 "when the CI excludes zero on the paper's side, not reproduced when it excludes zero on the other side "
                 "or lies inside the margin, and cannot decide otherwise; a claimed no-change is reproduced only when "
                 "the CI lies inside the margin, not reproduced when it lies wholly beyond it, and cannot decide otherwise")


@dataclass(frozen=True)
class Decision:
    """A verdict from an interval (DECISION_RULE), with what it rests on."""

    verdict: str          # REPRODUCED, NOT_REPRODUCED or CANNOT_DECIDE (spec.py)
    interval: Interval
    margin: float
    expected: str         # one of EXPECTATIONS
    reason: str           # which clause of the rule applied

    def evidence(self, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
        """Estimate, CI, margin and n in words; `scale` and `unit` to show fractions as points ("100", " pt")."""
        i = self.interval

        def show(value: float) -> str:
            return f"{value * scale:+.{digits}f}{unit}"

        return (f"estimate {show(i.estimate)}, {i.level:.0%} CI [{show(i.low)}, {show(i.high)}] ({i.method}), "
                f"margin ±{self.margin * scale:.{digits}f}{unit}, n = {i.n}; {self.reason}")


def decide(interval: Interval, margin: float, expected: str) -> Decision:
    """Judge a claimed change by its CI (DECISION_RULE).

    "Excludes zero" is strict (a bound at zero does not); "inside the margin" is closed ([-margin, +margin]).
    A directional CI that excludes zero on the paper's side is reproduced even when it also lies inside the
    margin: the issue's rule lists that clause first, so the margin only settles CIs that include zero.
    NaN bounds give cannot decide. Comparisons forgive ROUNDING.
    """
    margin = check_margin(margin)
    if expected not in EXPECTATIONS:
        raise ValueError(f"expected must be one of {EXPECTATIONS}, got {expected!r}")
    low, high = interval.low, interval.high
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return Decision(CANNOT_DECIDE, interval, margin, expected, "no interval")
    if low > high + ROUNDING:
        raise ValueError(f"an interval's low end {low!r} lies above its high end {high!r}")
    within = inside(interval, margin)
    if expected == NO_CHANGE:
        if within:
            return Decision(REPRODUCED, interval, margin, expected, "the CI lies inside the margin")
        if low > margin + ROUNDING or high < -margin - ROUNDING:
            return Decision(NOT_REPRODUCED, interval, margin, expected, "the CI lies wholly beyond the margin")
        return Decision(CANNOT_DECIDE, interval, margin, expected, "the CI reaches beyond the margin")
    near, far = (low, high) if expected == INCREASE else (-high, -low)     # oriented: the paper's side is positive
    if near > ROUNDING:
        return Decision(REPRODUCED, interval, margin, expected, "the CI excludes zero on the paper's side")
    if far < -ROUNDING:
        return Decision(NOT_REPRODUCED, interval, margin, expected, "the CI excludes zero on the other side")
    if within:
        return Decision(NOT_REPRODUCED, interval, margin, expected, "the CI lies inside the margin: no change of note")
    return Decision(CANNOT_DECIDE, interval, margin, expected, "the CI includes zero and reaches beyond the margin")


@dataclass(frozen=True)
class Settings:
    """How the report's rules compute their intervals (`report.statistics`) and the margin each claim states
    (`report.margins`: name -> margin, in the units of the claim's estimate)."""

    resamples: int = 10_000     # bootstrap resamples per interval
    level: float = 0.95         # the intervals' confidence level
    seed: int = 0               # the bootstrap's seed: the same metrics give the same verdicts
    margins: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_config(cls, config: dict | None) -> "Settings":
        """From the resolved pipeline config (its `report.statistics` and `report.margins`); defaults where absent."""
        report = (config or {}).get("report") or {}
        statistics = report.get("statistics") or {}
        known = {k: statistics[k] for k in ("resamples", "level", "seed") if k in statistics}
        return cls(**known, margins=tuple(sorted((report.get("margins") or {}).items())))

    def margin(self, name: str, default: float) -> float:
        """The margin `name` from the config, else `default` (the value the claim's code states)."""
        return float(dict(self.margins).get(name, default))
