"""The confidence interval of a change of error rate between two models scored on the same validation images.

Three cases, best first (`change_interval`):
- per-image evidence of one run each: a paired bootstrap of the images (`stats.paired_bootstrap`), with McNemar's
  test of the discordant images beside it;
- per-image evidence with several runs (seeds) of a model: the images and each model's seeds resampled
  (`stats.seeds_and_units_bootstrap`), so that seed variance widens the interval;
- only the two aggregate error rates: Newcombe's interval for independent samples (`intervals.newcombe_difference`),
  conservative when the models' errors are positively correlated (it cannot use the pairing).

Pure functions of numbers; errors are fractions here (1 = wrong), per-image evidence holds correctness (1 = right)
as the stages write it (`top1_correct`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zfnet.report.decision import Settings
from zfnet.report.intervals import newcombe_difference
from zfnet.report.stats import Interval, mcnemar, paired_bootstrap, seeds_and_units_bootstrap

RATE_TOLERANCE = 1e-4   # evidence whose error rate differs from the metrics' by more (as fractions) is not theirs:
#                         table3.json rounds percents to 2 decimals (5e-5), and one image in 10,000 is 1e-4
UNPAIRED = "unpaired: conservative when the errors are positively correlated"


def wrong_runs(correct: Any) -> np.ndarray:
    """Per-image errors (1.0 = wrong) as a (runs, images) array, from per-image correctness (1 = right): one run's
    list, or a list of runs' lists (seeds) over the same images. ValueError when it is not that."""
    try:
        values = np.asarray(correct, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("per-image correctness must be lists of 0/1 of one length") from None
    values = values[None, :] if values.ndim == 1 else values
    if values.ndim != 2 or 0 in values.shape or not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"per-image correctness must be 0/1 per image (one run or runs x images), got shape "
                         f"{values.shape}")
    return 1.0 - values


def evidence_problem(base: np.ndarray, changed: np.ndarray, rates: tuple[float, float]) -> str | None:
    """Why the per-image errors cannot stand behind the metrics' two error rates (fractions), or None: other image
    counts, or no run whose error rate is the metrics' (stale evidence from another run)."""
    if base.shape[1] != changed.shape[1]:
        return f"the two models' evidence covers {base.shape[1]} and {changed.shape[1]} images"
    for runs, rate, side in ((base, rates[0], "first"), (changed, rates[1], "second")):
        if not np.any(np.abs(runs.mean(axis=1) - rate) <= RATE_TOLERANCE):
            return (f"no run of the {side} model's evidence has its metrics' error {100 * rate:.2f}% "
                    f"(evidence: {', '.join(f'{100 * r:.2f}' for r in runs.mean(axis=1))}%)")
    return None


def paired_interval(base: np.ndarray, changed: np.ndarray, settings: Settings) -> tuple[Interval, str]:
    """The change changed - base of per-image errors ((runs, images) arrays), and a note for the evidence text:
    one run each: paired bootstrap and McNemar; several runs on a side: seeds and images resampled."""
    if len(base) == 1 and len(changed) == 1:
        interval = paired_bootstrap([base[0], changed[0]], resamples=settings.resamples, seed=settings.seed,
                                    level=settings.level)
        test = mcnemar(base[0], changed[0])
        return interval, (f"McNemar p = {test.p_value:.2g}: {test.only_a_wrong} images only the first model misses, "
                          f"{test.only_b_wrong} only the second")
    interval = seeds_and_units_bootstrap(base, changed, resamples=settings.resamples, seed=settings.seed,
                                         level=settings.level)
    notes = [f"{side} over {len(runs)} seeds: " + ", ".join(f"{100 * r:.1f}" for r in runs.mean(axis=1))
             for side, runs in (("first", base), ("second", changed)) if len(runs) > 1]
    p_values = [mcnemar(a, b).p_value for a in base for b in changed]
    notes.append(f"McNemar p {min(p_values):.2g} to {max(p_values):.2g} over the {len(p_values)} pairs of runs")
    return interval, "; ".join(notes)


def unpaired_interval(rates: tuple[float, float], images: int, settings: Settings) -> Interval:
    """The change of two aggregate error rates (fractions) on `images` images each, without the pairing."""
    interval = newcombe_difference(rates[0], images, rates[1], images, settings.level)
    return Interval(interval.estimate, interval.low, interval.high, interval.level, images,
                    f"{interval.method} on the two error rates, {UNPAIRED}")


def change_interval(rates: tuple[float, float], images: int, correct: tuple[Any, Any] | None,
                    settings: Settings) -> tuple[Interval, str]:
    """The CI of the change of error rate rates[1] - rates[0] (fractions) and a note for the evidence text: from the
    per-image correctness `correct` (base, changed) where both are given and stand behind the rates, else unpaired
    from the rates (the note says why)."""
    if correct is None or correct[0] is None or correct[1] is None:
        return unpaired_interval(rates, images, settings), "no per-image evidence"
    try:
        base, changed = wrong_runs(correct[0]), wrong_runs(correct[1])
    except ValueError as err:
        return unpaired_interval(rates, images, settings), f"per-image evidence ignored: {err}"
    problem = evidence_problem(base, changed, rates)
    if problem is not None:
        return unpaired_interval(rates, images, settings), f"per-image evidence ignored: {problem}"
    return paired_interval(base, changed, settings)
