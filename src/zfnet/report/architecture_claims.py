"""Rules of Fig. 6 (architecture selection) and Fig. 4 (feature evolution): independent units and few layers.

Fig. 6 compares two networks' layer-1 filter banks and layer-2 projections. The filters of ZF and of AlexNet are
different units, not pairs, so every interval here is for two independent samples:

* a share of filters (dead; live with a mid centroid frequency): Newcombe's hybrid score interval of the
  difference of two proportions (`intervals.newcombe_difference`), exact in the counts the metrics hold;
* a per-filter or per-projection value (power above Nyquist, lattice share): the difference of the two medians,
  by a percentile bootstrap that resamples each sample's own units (`median_difference`); where the per-unit
  evidence is absent, a conservative interval from the metrics' quartiles (`quartile_interval`);
* "a few filters dominate" (no renormalization): the share of the bank's energy (squared RMS) held by its
  largest tenth of filters (`top_tenth_share`), its difference by the same independent bootstrap.

Each is judged by `decision.decide` against the margin its `report.margins` key names. Fig. 4 orders the 5 conv
layers by how late they settle: a rank correlation of 5 points, tested exactly (`spearman_permutation`) and
checked for stability over the training snapshots (`snapshot_bootstrap`); `layer_order` says what it can decide.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

from zfnet.report import intervals, stats
from zfnet.report.decision import DECISION_RULE, Settings, decide
from zfnet.report.rules import judged, number, unknown
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED, Verdict
from zfnet.report.stats import Interval

TOP_TENTH = 0.1       # "a few filters": the largest tenth of a bank (at least one filter)
EXACT_UP_TO = 9       # layers whose orders `spearman_permutation` enumerates (9! = 362,880)

# report.margins keys and their defaults (conf/report/default.yaml says why each size)
FILTER_SHARE_MARGIN = ("architecture_filter_share", 0.10)   # a share of a conv1 bank
NYQUIST_MARGIN = ("architecture_above_nyquist", 0.05)        # a filter's share of power above Nyquist
LATTICE_MARGIN = ("architecture_lattice_share", 0.005)       # a projection's share of energy on the lattice
ENERGY_MARGIN = ("architecture_energy_share", 0.05)          # the top tenth's share of a bank's energy

SHARE_RULE = ("two shares of filters, each of its own bank (independent units): Newcombe's hybrid score CI of their "
              "difference; " + DECISION_RULE)
MEDIAN_RULE = ("per-filter (per-projection) values of two networks (independent units): the CI of the difference of "
               "their medians, by a percentile bootstrap resampling each network's units (without per-unit evidence: "
               "a conservative interval from the quartiles, n >= 21 each at 95%); at least 6 units each (at 95%) for a "
               "median's CI, else cannot decide; " + DECISION_RULE)
DOMINANCE_RULE = ("per filter, its RMS: the share of the bank's energy (squared RMS) in its largest tenth of filters, "
                  "without minus with renormalization, by a percentile bootstrap resampling each bank's filters; "
                  + DECISION_RULE)


# ----------------------------------------------------------------------- two independent samples


def fewest_units(level: float) -> int:
    """The smallest sample whose median has a distribution-free CI at `level`: the order statistics' interval
    [min, max] covers the median with probability 1 - 2 / 2^n, so n with 2^(1 - n) <= 1 - level (6 at 95%).
    Fewer units give a bootstrap of a median too few distinct values to mean anything."""
    return max(2, math.ceil(1 - math.log2(1 - level)))


def independent_bootstrap(first: Sequence[float], second: Sequence[float],
                          statistic: Callable[[np.ndarray], np.ndarray], *, resamples: int, seed: int,
                          level: float = 0.95, method: str = "") -> Interval:
    """Percentile bootstrap CI of statistic(first) - statistic(second) for two independent samples.

    What is resampled: each sample's own units, len(first) from first and len(second) from second, uniformly with
    replacement, independently (numpy's default Generator seeded with `seed`; first's draws, then second's).
    `statistic` reduces the last axis of a (k, n) array to k values. Assumes each sample's units are independent
    draws from its population and a statistic smooth enough for the bootstrap (a median: yes for n >= a few).
    """
    a, b = (np.asarray(s, dtype=float) for s in (first, second))
    if a.ndim != 1 or b.ndim != 1 or min(a.size, b.size) < 2:
        raise ValueError(f"two 1-D samples of at least 2 units are needed, got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("the samples hold NaN or infinite values")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    rng = np.random.default_rng(seed)
    values = []
    batch = max(1, 2_000_000 // max(a.size, b.size))
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        picked_a = a[rng.integers(0, a.size, size=(rows, a.size))]
        picked_b = b[rng.integers(0, b.size, size=(rows, b.size))]
        values.append(np.asarray(statistic(picked_a), dtype=float) - np.asarray(statistic(picked_b), dtype=float))
    estimate = float(statistic(a[None, :])[0] - statistic(b[None, :])[0])
    return stats.interval_from_distribution(
        np.concatenate(values), estimate, level, int(min(a.size, b.size)),
        method or f"percentile bootstrap of {a.size} and {b.size} independent units, {resamples} resamples")


def _median(values: np.ndarray) -> np.ndarray:
    return np.median(values, axis=-1)


def median_difference(first: Sequence[float], second: Sequence[float], *, resamples: int, seed: int,
                      level: float = 0.95) -> Interval:
    """CI of median(first) - median(second), two independent samples (`independent_bootstrap`)."""
    return independent_bootstrap(first, second, _median, resamples=resamples, seed=seed, level=level,
                                 method=f"difference of medians, percentile bootstrap of {len(first)} and "
                                        f"{len(second)} independent units, {resamples} resamples")


def quartile_interval(first: dict, second: dict, level: float = 0.95) -> Interval | None:
    """A conservative CI of median(first) - median(second) from two spreads ({"n", "median", "q25", "q75"}):
    [q25 of first - q75 of second, q75 of first - q25 of second].

    Why it covers: the distribution-free CI of a median at level 1 - alpha/2 runs between the order statistics
    of ranks n/2 -+ z sqrt(n)/2 (z the normal point of 1 - alpha/4; the normal approximation of the binomial
    ranks), i.e. between the quantiles 0.5 -+ z / (2 sqrt(n)), which lie inside the quartiles once n >= 4 z^2
    (21 units at 95%). Two such intervals, each missing with probability alpha/2, give the difference's
    interval at >= 1 - alpha. None when either sample is smaller than that or a value is missing.
    """
    z = NormalDist().inv_cdf(1 - (1 - level) / 4)
    needed = math.ceil(4 * z * z)
    values = [number(s.get(k)) if isinstance(s, dict) else None for s in (first, second) for k in ("n", "median", "q25", "q75")]
    if any(v is None for v in values):
        return None
    n_a, median_a, q25_a, q75_a, n_b, median_b, q25_b, q75_b = values
    if min(n_a, n_b) < needed:
        return None
    return Interval(median_a - median_b, q25_a - q75_b, q75_a - q25_b, level, int(min(n_a, n_b)),
                    f"from the metrics' quartiles (per-unit evidence absent): conservative, n >= {needed} each")


def top_tenth_share(rms: np.ndarray) -> np.ndarray:
    """(k,) the share of each bank's energy (sum of squared filter RMS) in its largest tenth of filters (at least
    one): the tenth of the filters for a bank of equal norms, near 1 when a few filters dominate. `rms` (k, n)."""
    energy = np.sort(np.asarray(rms, dtype=float) ** 2, axis=-1)
    top = max(1, math.ceil(TOP_TENTH * energy.shape[-1]))
    total = energy.sum(axis=-1)
    return np.where(total > 0, energy[..., -top:].sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)


# ----------------------------------------------------------------------- few ordered layers


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side has no order (all tied)."""
    rx, ry = (stats.average_ranks(np.asarray(v, dtype=float)) for v in (x, y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry)) / scale if scale > 0 else 0.0


@dataclass(frozen=True)
class Ordering:
    """Spearman's rho of n points with its exact permutation p-values (every one of the n! orders of y)."""

    rho: float
    p_greater: float     # share of orders with rho at least this (the paper's side: positive)
    p_less: float        # share of orders with rho at most this
    n: int
    orders: int          # n!
    next_p: float        # p_greater of the second-highest rho any order can reach: where "not perfect" starts

    @property
    def smallest_p(self) -> float:
        return 1 / self.orders


def spearman_permutation(x: Sequence[float], y: Sequence[float]) -> Ordering:
    """Spearman's rho of x and y and its exact one-sided p-values under "y is in random order against x": every
    permutation of y, each as likely (ties keep their average ranks). Exact, for at most EXACT_UP_TO points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    if x.shape != y.shape or x.ndim != 1 or not 3 <= n <= EXACT_UP_TO:
        raise ValueError(f"x and y must be 1-D of one length between 3 and {EXACT_UP_TO}, got {x.shape}, {y.shape}")
    rx, ry = stats.average_ranks(x), stats.average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    if scale == 0:
        return Ordering(0.0, 1.0, 1.0, n, math.factorial(n), 1.0)
    orders = np.array(list(itertools.permutations(range(n))))
    rhos = (ry[orders] @ rx) / scale
    rho = float(ry @ rx) / scale
    tolerance = 1e-9
    reached = np.unique(np.round(rhos, 9))
    runner_up = reached[-2] if reached.size > 1 else reached[-1]
    return Ordering(rho, float(np.mean(rhos >= rho - tolerance)), float(np.mean(rhos <= rho + tolerance)), n,
                    len(orders), float(np.mean(rhos >= runner_up - tolerance)))


def snapshot_bootstrap(ratios: np.ndarray, *, resamples: int, seed: int, level: float = 0.95) -> Interval:
    """CI of Spearman's rho of depth and A over resampled training snapshots.

    `ratios` (layers, snapshots): per layer in depth order, each snapshot's distance to the last snapshot's weights
    relative to the first snapshot's. A = the mean over snapshots. Each resample draws as many snapshots as there
    are, with replacement, the same for every layer (a layer's ratios stay paired with the others' at one epoch),
    and recomputes rho. Snapshots of one run are a time series, not independent draws: the interval says how
    much the order depends on which epochs were kept, not what another run would give.
    """
    ratios = np.asarray(ratios, dtype=float)
    layers, snapshots = ratios.shape
    depth = np.arange(layers)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, snapshots, size=(resamples, snapshots))
    settled = ratios[:, picks].mean(axis=-1).T          # (resamples, layers)
    values = np.array([spearman_rho(depth, row) for row in settled])
    return stats.interval_from_distribution(values, spearman_rho(depth, ratios.mean(axis=1)), level, snapshots,
                                            f"percentile bootstrap of {snapshots} snapshots, {resamples} resamples")


# ----------------------------------------------------------------------- verdicts


def share_increase(claim: str, subject: str, higher: tuple[float, float] | None, lower: tuple[float, float] | None,
                   margin: float, settings: Settings, what: str, ran: bool) -> Verdict:
    """A claimed increase of a share of filters from `lower` to `higher`, each (count, filters) of its own bank:
    Newcombe's interval of the difference (higher minus lower), judged by `decide`."""
    if higher is None or lower is None:
        return unknown(claim, subject, SHARE_RULE, ran, what)
    (k_high, n_high), (k_low, n_low) = higher, lower
    if not n_high or not n_low:
        return Verdict(claim, subject, CANNOT_DECIDE, SHARE_RULE, f"{what}: no filters to count in one bank "
                       f"({k_high:.0f} of {n_high:.0f} vs {k_low:.0f} of {n_low:.0f})")
    interval = intervals.newcombe_difference(k_low / n_low, n_low, k_high / n_high, n_high, settings.level)
    decision = decide(interval, margin, "increase")
    return judged(claim, subject, decision, f"{what}: {k_high:.0f} of {n_high:.0f} vs {k_low:.0f} of {n_low:.0f}",
                  rule=SHARE_RULE)


def median_decrease(claim: str, subject: str, ours: Sequence[float] | None, other: Sequence[float] | None,
                    spreads: tuple[dict | None, dict | None], margin: float, settings: Settings, what: str,
                    ran: bool) -> Verdict:
    """A claimed decrease of a per-unit value from `other` to `ours` (our median minus theirs): the independent
    bootstrap of the per-unit evidence, or the conservative interval of the metrics' quartiles (`spreads`, ours
    and theirs) where it is absent; judged by `decide`."""
    if ours is not None and other is not None:
        ours, other = _finite(ours), _finite(other)
        fewest = fewest_units(settings.level)
        if min(ours.size, other.size) < fewest:
            return Verdict(claim, subject, CANNOT_DECIDE, MEDIAN_RULE,
                           f"{what}: {ours.size} and {other.size} units; a median's CI needs at least {fewest} each")
        interval = median_difference(ours, other, resamples=settings.resamples, seed=settings.seed,
                                     level=settings.level)
    else:
        interval = quartile_interval(*spreads, settings.level) if all(isinstance(s, dict) for s in spreads) else None
        if interval is None:
            if not all(isinstance(s, dict) for s in spreads):
                return unknown(claim, subject, MEDIAN_RULE, ran, what)
            return Verdict(claim, subject, CANNOT_DECIDE, MEDIAN_RULE,
                           f"{what}: no per-unit evidence, and too few units (or values missing) for an interval "
                           "from the quartiles")
    return judged(claim, subject, decide(interval, margin, "decrease"), what, rule=MEDIAN_RULE)


def dominance_increase(claim: str, subject: str, without: Sequence[float] | None, with_renorm: Sequence[float] | None,
                       margin: float, settings: Settings, what: str, ran: bool) -> Verdict:
    """A claimed increase of `top_tenth_share` of the filter RMS from the renormalized bank to the one trained
    without renormalization (independent bootstrap of the filters); cannot decide without per-filter RMS."""
    if without is None or with_renorm is None:
        return unknown(claim, subject, DOMINANCE_RULE, ran, what)
    without, with_renorm = _finite(without), _finite(with_renorm)
    if min(without.size, with_renorm.size) < fewest_units(settings.level):
        return Verdict(claim, subject, CANNOT_DECIDE, DOMINANCE_RULE, f"{what}: too few filters")
    interval = independent_bootstrap(without, with_renorm, top_tenth_share, resamples=settings.resamples,
                                     seed=settings.seed, level=settings.level,
                                     method=f"percentile bootstrap of {without.size} and {with_renorm.size} "
                                            f"independent filters, {settings.resamples} resamples")
    return judged(claim, subject, decide(interval, margin, "increase"), what, rule=DOMINANCE_RULE)


ORDER_RULE = ("per layer, A = the distance of each snapshot's weights to the last snapshot's, divided by that of the "
              "first snapshot, averaged over the snapshots before the last (0 = settled at once, 1 = settled only at "
              "the end); Spearman's rho of depth and A with its exact permutation p-value (all n! orders of the "
              "layers equally likely), one-sided at alpha = (1 - level) / 2, and a bootstrap CI of rho over the "
              "snapshots: reproduced when p(rho at least this) <= alpha and the CI lies above 0; not reproduced when "
              "p(rho at most this) <= alpha and the CI lies below 0; cannot decide otherwise. With 5 layers the "
              "smallest p is 1/120 = 0.0083 and the next 5/120 = 0.042: at the 95% level only the perfect order "
              "(rho = 1) can be reproduced and only the reversed order (rho = -1) not reproduced")


def layer_order(claim: str, subject: str, ratios: dict[str, Sequence[float]], settings: Settings) -> Verdict:
    """Fig. 4: do lower layers settle first? `ratios` = {layer in depth order: its relative distances to the last
    snapshot, one per snapshot before the last, divided by the first snapshot's} (ORDER_RULE)."""
    matrix = np.array([list(v) for v in ratios.values()], dtype=float)
    settled = matrix.mean(axis=1)
    order = spearman_permutation(np.arange(len(settled)), settled)
    alpha = (1 - settings.level) / 2
    interval = snapshot_bootstrap(matrix, resamples=settings.resamples, seed=settings.seed, level=settings.level)
    evidence = ("A = " + ", ".join(f"{layer} {a:.2f}" for layer, a in zip(ratios, settled)) +
                f"; rho = {order.rho:+.2f} over {order.n} layers, exact p(rho at least this) = {order.p_greater:.3f}, "
                f"p(at most) = {order.p_less:.3f} of {order.orders} orders (smallest possible {order.smallest_p:.4f}; "
                f"alpha {alpha:.3f}); {interval.level:.0%} CI of rho [{interval.low:+.2f}, {interval.high:+.2f}] "
                f"({interval.method})")
    if order.p_greater <= alpha and interval.low > 0:
        return Verdict(claim, subject, REPRODUCED, ORDER_RULE, evidence)
    if order.p_less <= alpha and interval.high < 0:
        return Verdict(claim, subject, NOT_REPRODUCED, ORDER_RULE, evidence + "; upper layers settle first")
    reach = (f"; with {order.n} layers no order short of the perfect one can be told from chance (the next best "
             f"has p = {order.next_p:.3f})" if order.next_p > alpha else "")
    return Verdict(claim, subject, CANNOT_DECIDE, ORDER_RULE, evidence + reach)


def _finite(values: Sequence) -> np.ndarray:
    """The finite numbers of a per-unit list (null, NaN left out: a filter with no power off DC has no frequency)."""
    return np.array([v for v in values if number(v) is not None], dtype=float)

