"""The rules that turn numbers into verdicts, each stated in words beside the code that applies it.

Every rule is a pure function of numbers. Missing input gives "not run at this scale" when the stage
behind it did not run, and "cannot decide" when it ran but the number is absent or NaN.
"""

from __future__ import annotations

import math
from typing import Any

from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, Verdict
from zfnet.report.stats import ROUNDING, at_least

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
    """Standard error of the difference of two error rates, each measured on `images` images."""
    return math.sqrt((error_a * (1 - error_a) + error_b * (1 - error_b)) / images)


ERROR_RULE = ("errors in % on n validation images; SE = sqrt(p1(1-p1)/n + p2(1-p2)/n). Where the paper's change is "
              "beyond 2 SE of its 50,000 images it claims a direction: reproduced when ours has the same sign and "
              "is beyond 2 SE of ours. Where the paper's change is within 2 SE it claims no real change: reproduced "
              "when ours is within 2 SE too")


def error_change(claim: str, subject: str, paper: tuple[float, float], paper_images: int,
                 ours: tuple[float | None, float | None], images: int | None, ran: bool = True) -> Verdict:
    """Compare a change of error (`b - a`, percent) between two models, the paper's and ours (ERROR_RULE)."""
    base, changed = (number(v) for v in ours)
    if base is None or changed is None or not images:
        return unknown(claim, subject, ERROR_RULE, ran, "one of the two errors")
    paper_delta = paper[1] - paper[0]
    paper_se = 100 * standard_error(paper[0] / 100, paper[1] / 100, paper_images)
    delta, se = changed - base, 100 * standard_error(base / 100, changed / 100, images)
    evidence = (f"paper {paper[0]:.1f} -> {paper[1]:.1f} ({paper_delta:+.1f}, 2 SE {2 * paper_se:.1f}); "
                f"ours {base:.1f} -> {changed:.1f} ({delta:+.1f}, 2 SE {2 * se:.1f}, n = {images})")
    if abs(paper_delta) >= 2 * paper_se:
        held = delta * paper_delta > 0 and abs(delta) >= 2 * se
        if not held:
            evidence += "; within noise" if abs(delta) < 2 * se or delta == 0 else "; opposite sign"
    else:
        held = abs(delta) < 2 * se or delta == 0
        if not held:
            evidence += "; the paper saw no real change, ours moved beyond noise"
    return Verdict(claim, subject, REPRODUCED if held else NOT_REPRODUCED, ERROR_RULE, evidence)


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
