"""The rules that turn numbers into verdicts, each stated in words beside the code that applies it.

Every rule is a pure function of numbers. Missing input gives "not run at this scale" when the stage
behind it did not run, and "cannot decide" when it ran but the number is absent or NaN.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from zfnet.report.decision import DECISION_RULE, DECREASE, INCREASE, NO_CHANGE, Decision, Settings, decide
from zfnet.report.error_rates import change_interval
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNTRAINED_TOO, Verdict
from zfnet.report.stats import ROUNDING, at_least

_NORMAL = NormalDist()

MISSING = object()


def dig(tree: dict | None, path: str, default: Any = MISSING) -> Any:
    """tree["a"]["b"]["c"] for path "a.b.c"; `default` (MISSING unless given) where a step is absent."""
    node: Any = tree
    for step in path.split("."):
        if not isinstance(node, dict) or step not in node:
            return default
        node = node[step]
    return node


def or_nan(value: Any) -> float:
    """`number(value)`, with NaN for None: for evidence text, where 0.0 must still print as 0.0."""
    value = number(value)
    return math.nan if value is None else value


def number(value: Any) -> float | None:
    """A finite float, or None (missing, NaN, infinite, not a number)."""
    if value is MISSING or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def unknown(claim: str, subject: str, rule: str, ran: bool, what: str) -> Verdict:
    """The verdict when an input is absent: the stage did not run, or its number is missing or NaN."""
    if not ran:
        return Verdict(claim, subject, NOT_RUN, rule, f"{what}: the stage did not run")
    return Verdict(claim, subject, CANNOT_DECIDE, rule, f"{what}: missing or NaN in the metrics")


def standard_error(error_a: float, error_b: float, images: int) -> float:
    """Standard error of the difference of two error rates, each measured on `images` independent images."""
    return math.sqrt((error_a * (1 - error_a) + error_b * (1 - error_b)) / images)


ERROR_MARGIN_POINTS = 1.0   # report.margins.error_points (conf/report/default.yaml says why this size)
ERROR_RULE = ("errors in % on the validation images. The paper's change sets the expectation: a direction where it is "
              "beyond z SE of its 50,000 images (z for the CI level, SE unpaired: its per-image data are not "
              "published), no real change otherwise. Ours: the CI of our change of error, paired over the images "
              "where the stages saved per-image evidence (seeds resampled too where a model has several), else "
              "Newcombe's unpaired interval from the two rates. Then " + DECISION_RULE +
              "; the margin is report.margins.error_points")


def paper_expectation(paper: tuple[float, float], paper_images: int, level: float) -> tuple[str, str]:
    """What the paper's change of error (percent) claims, INCREASE / DECREASE beyond z SE of its images (z for
    `level`) or NO_CHANGE within them, and the same in words."""
    delta, z = paper[1] - paper[0], _NORMAL.inv_cdf(0.5 + level / 2)
    noise = f"{z:.2f} SE = {z * 100 * standard_error(paper[0] / 100, paper[1] / 100, paper_images):.2f} at n = {paper_images:,}"
    if abs(delta) > z * 100 * standard_error(paper[0] / 100, paper[1] / 100, paper_images):
        expected = INCREASE if delta > 0 else DECREASE
        return expected, f"{'an' if expected == INCREASE else 'a'} {expected}, beyond {noise}"
    return NO_CHANGE, f"no real change, within {noise}"


def error_change(claim: str, subject: str, paper: tuple[float, float], paper_images: int,
                 ours: tuple[float | None, float | None], images: int | None, ran: bool = True, *,
                 correct: tuple[Any, Any] | None = None, settings: Settings = Settings()) -> Verdict:
    """Judge a change of error (`b - a`, percent) against the paper's (ERROR_RULE).

    `ours`: our two errors in percent, as the metrics hold them; `images`: the images behind them. `correct`: the
    per-image correctness (1 = right) behind them, (a, b), each one run's list or a list of several seeds' lists
    over the same images (`zfnet.report.error_rates`); None where no stage saved it.
    """
    base, changed = (number(v) for v in ours)
    if base is None or changed is None or not images:
        return unknown(claim, subject, ERROR_RULE, ran, "one of the two errors")
    expected, expectation = paper_expectation(paper, paper_images, settings.level)
    interval, note = change_interval((base / 100, changed / 100), int(images), correct, settings)
    decision = decide(interval, settings.margin("error_points", ERROR_MARGIN_POINTS) / 100, expected)
    what = (f"paper {paper[0]:.1f} -> {paper[1]:.1f} ({paper[1] - paper[0]:+.1f}: {expectation}); "
            f"ours {base:.1f} -> {changed:.1f} ({note})")
    return judged(claim, subject, decision, what, rule=ERROR_RULE, digits=2, scale=100, unit=" pt")


def share_above_half(claim: str, subject: str, share: Any, count: Any, ran: bool, what: str) -> Verdict:
    """Reproduced when a share of `count` cases exceeds one half by at least 2 binomial standard errors."""
    rule = "reproduced when the share exceeds 0.5 by at least 2 SE, SE = sqrt(0.25 / n)"
    share, count = number(share), number(count)
    if share is None or not count:
        return unknown(claim, subject, rule, ran, what)
    margin = 2 * math.sqrt(0.25 / count)
    evidence = f"{what}: {share:.3f} of n = {count:.0f} (0.5 + 2 SE = {0.5 + margin:.3f})"
    return Verdict(claim, subject, REPRODUCED if at_least(share - 0.5, margin) else NOT_REPRODUCED, rule, evidence)


def shares_differ(claim: str, subject: str, higher: Any, lower: Any, count: Any, ran: bool, what: str) -> Verdict:
    """Reproduced when share `higher` exceeds share `lower` (each of `count` items) by at least 2 SE."""
    rule = "reproduced when the first share exceeds the second by at least 2 SE, SE = sqrt(p1(1-p1)/n + p2(1-p2)/n)"
    higher, lower, count = number(higher), number(lower), number(count)
    if higher is None or lower is None or not count:
        return unknown(claim, subject, rule, ran, what)
    se = math.sqrt((higher * (1 - higher) + lower * (1 - lower)) / count)
    evidence = f"{what}: {higher:.3f} vs {lower:.3f} of n = {count:.0f} each (2 SE = {2 * se:.3f})"
    held = higher - lower > ROUNDING and at_least(higher - lower, 2 * se)   # 0 vs 0 (SE 0) is no difference
    return Verdict(claim, subject, REPRODUCED if held else NOT_REPRODUCED, rule, evidence)


def boolean(claim: str, subject: str, value: Any, rule: str, evidence: str, ran: bool) -> Verdict:
    """A claim a stage already scored (True / False in its metrics) under the rule it documents."""
    if not isinstance(value, bool):
        return unknown(claim, subject, rule, ran, "the stage's score")
    return Verdict(claim, subject, REPRODUCED if value else NOT_REPRODUCED, rule, evidence)


def not_at_this_scale(claim: str, subject: str, why: str) -> Verdict:
    return Verdict(claim, subject, NOT_RUN, "needs the paper's data", why)


def judged(claim: str, subject: str, decision: Decision, what: str, *, rule: str = DECISION_RULE, digits: int = 3,
           scale: float = 1.0, unit: str = "") -> Verdict:
    """The verdict of a `decide` on a claimed change; the evidence names `what` was measured, then the estimate,
    its CI, the margin and n (`Decision.evidence`)."""
    return Verdict(claim, subject, decision.verdict, rule, f"{what}: {decision.evidence(digits, scale, unit)}")


def against_untrained(trained: Verdict, untrained: Verdict | None) -> Verdict:
    """A trained net's verdict beside the negative control's (the same claim judged on the same network untrained):
    a claim the untrained net also reproduces says nothing about learning, and is reported as UNTRAINED_TOO."""
    if untrained is None or trained.verdict != REPRODUCED or untrained.verdict != REPRODUCED:
        return trained
    return Verdict(trained.claim, trained.subject, UNTRAINED_TOO, trained.rule,
                   f"{trained.evidence}; untrained: {untrained.evidence}")
