"""Statistics for the report's verdicts: confidence intervals and tests on paired per-unit data.

Pure functions of numbers (arrays in; floats and small records out): no I/O, no config, numpy and the
standard library only. A *unit* is what was measured under both conditions: an image scored by two models,
a draw of regions scored for the parts and for random rows. Paired samples are 1-D arrays of one length with
unit i at index i in each. Each function says what it assumes and, where it resamples, exactly what.

The verdict rule that reads these intervals is `zfnet.report.decision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

ROUNDING = 1e-9      # a shortfall this small is floating-point rounding, not evidence (our quantities are >= 1e-4)
_NORMAL = NormalDist()
_BATCH_VALUES = 2_000_000  # resampled values held in memory at once


def at_least(value: float, threshold: float) -> bool:
    """value >= threshold, where a value short by rounding (ROUNDING) counts: an exact tie holds."""
    return value >= threshold - ROUNDING


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval [low, high] at `level` (0.95 for 95%)."""

    estimate: float
    low: float
    high: float
    level: float
    n: int          # units behind it (images, draws, ...)
    method: str     # how it was computed, in words, for the evidence text


# ----------------------------------------------------------------------- paired bootstrap

Statistic = Callable[..., np.ndarray]


def mean_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The mean of b - a over the last axis: the change from condition a to condition b, per row."""
    return np.mean(np.asarray(b, dtype=float) - np.asarray(a, dtype=float), axis=-1)


def _paired(samples: Sequence) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if not arrays or any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1:
        raise ValueError("paired samples must be 1-D arrays of one length (unit i at index i in each)")
    if arrays[0].size < 2:
        raise ValueError(f"paired samples need at least 2 units, got {arrays[0].size}")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("paired samples hold NaN or infinite values")
    return arrays


def _check_resamples(resamples: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")


def _evaluate(statistic: Statistic, arrays: Sequence[np.ndarray], rows: int) -> np.ndarray:
    values = np.asarray(statistic(*arrays), dtype=float).reshape(-1)
    if values.size != rows:
        raise ValueError(f"the statistic returned {values.size} values for {rows} resamples: it must reduce the "
                         "last axis (units) and keep the first (resamples)")
    return values


def bootstrap_distribution(samples: Sequence, statistic: Statistic = mean_change, *, resamples: int,
                           seed: int) -> np.ndarray:
    """`statistic` on `resamples` paired resamples of the units, in the order drawn.

    What is resampled: the units, nothing else. Each resample draws n unit indices uniformly with replacement
    (numpy's default Generator seeded with `seed`) and takes the same indices from every sample, so each unit
    keeps its pairing. `statistic(*arrays)` gets each sample as an array of shape (k, n), k resamples of the n
    units, and returns k values (see `mean_change`). Assumes the units are independent draws from what the
    claim is about; units that share a cause (the runs of one seed) need `seeds_and_units_bootstrap`.
    """
    arrays = _paired(samples)
    _check_resamples(resamples)
    n, rng = arrays[0].size, np.random.default_rng(seed)
    batch, values = max(1, _BATCH_VALUES // n), []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        picks = rng.integers(0, n, size=(rows, n))
        values.append(_evaluate(statistic, [a[picks] for a in arrays], rows))
    return np.concatenate(values)


def _jackknife(arrays: list[np.ndarray], statistic: Statistic) -> np.ndarray:
    """The statistic with each unit left out in turn (n values)."""
    n = arrays[0].size
    keep, values = np.arange(n - 1), []
    for start in range(0, n, max(1, _BATCH_VALUES // n)):
        left_out = np.arange(start, min(n, start + max(1, _BATCH_VALUES // n)))
        picks = keep[None, :] + (keep[None, :] >= left_out[:, None])   # every index but the left-out one
        values.append(_evaluate(statistic, [a[picks] for a in arrays], left_out.size))
    return np.concatenate(values)


def _bca_levels(arrays: list[np.ndarray], statistic: Statistic, distribution: np.ndarray, estimate: float,
                level: float) -> tuple[float, float]:
    """The quantile levels of the BCa interval (Efron & Tibshirani 1993, sec. 14.3): bias z0 from the share of
    resampled values below the estimate (ties count half), acceleration from the leave-one-unit-out jackknife.
    NaN where the share is 0 or 1 (the estimate lies outside the bootstrap distribution)."""
    below = (np.count_nonzero(distribution < estimate) + np.count_nonzero(distribution <= estimate)) / (2 * distribution.size)
    if not 0 < below < 1:
        return math.nan, math.nan
    z0 = _NORMAL.inv_cdf(below)
    spread = _jackknife(arrays, statistic)
    u = spread.mean() - spread
    squares = float(np.sum(u ** 2))
    acceleration = float(np.sum(u ** 3)) / (6 * squares ** 1.5) if squares > 0 else 0.0
    tail = (1 - level) / 2
    levels = []
    for z in (_NORMAL.inv_cdf(tail), _NORMAL.inv_cdf(1 - tail)):
        shifted = z0 + z
        levels.append(_NORMAL.cdf(z0 + shifted / (1 - acceleration * shifted)))
    return levels[0], levels[1]


def interval_from_distribution(distribution: np.ndarray, estimate: float, level: float, n: int, method: str,
                               levels: tuple[float, float] | None = None) -> Interval:
    """The interval between two quantiles (linear interpolation) of a bootstrap distribution: the central
    `level` (percentile method) unless `levels` (BCa) are given. A distribution of one value gives that value."""
    tail = (1 - level) / 2
    low_level, high_level = levels or (tail, 1 - tail)
    if math.isnan(low_level) or math.isnan(high_level):
        return Interval(estimate, math.nan, math.nan, level, n, method + " (undefined: the estimate lies outside "
                                                                         "the bootstrap distribution)")
    low, high = np.quantile(distribution, [low_level, high_level])
    return Interval(estimate, float(low), float(high), level, n, method)


def paired_bootstrap(samples: Sequence, statistic: Statistic = mean_change, *, resamples: int, seed: int,
                     level: float = 0.95, method: str = "percentile") -> Interval:
    """Bootstrap CI of `statistic` of paired samples (default: the mean change from samples[0] to samples[1]).

    Resamples units as `bootstrap_distribution` says. method "percentile": the central `level` of the
    resampled values; "bca": bias-corrected and accelerated (costs n more evaluations of the statistic, a
    jackknife). Both assume the bootstrap distribution mimics the estimate's sampling distribution, which
    needs a statistic that is smooth in the data (means, differences of means: yes; a maximum: no).
    """
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    _check_resamples(resamples)
    _check_level(level)
    arrays = _paired(samples)
    estimate = float(_evaluate(statistic, [a[None, :] for a in arrays], 1)[0])
    distribution = bootstrap_distribution(arrays, statistic, resamples=resamples, seed=seed)
    levels = _bca_levels(arrays, statistic, distribution, estimate, level) if method == "bca" else None
    return interval_from_distribution(distribution, estimate, level, arrays[0].size,
                                      f"paired {method} bootstrap of units, {resamples} resamples", levels)


def seeds_and_units_distribution(a: np.ndarray, b: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Resampled values of mean(b) - mean(a) where each model has runs of several seeds, all scored on the same units.

    `a` has shape (seeds of a, n), `b` (seeds of b, n): row s holds the per-unit values (1.0 = wrong, say) of
    seed s's run, column i is unit i for every run of both models. What each resample draws, independently:
    n units with replacement, the same units for every run of both models (the pairing holds), and, for each
    model separately, as many seeds as it has, with replacement from its own runs. Its value is the mean over
    the drawn seeds and units of b minus the same for a. Resampling both crossed factors (Owen 2007's
    "pigeonhole" bootstrap) is slightly conservative; with 5 seeds the seed part is rough, and a model with
    one run adds no seed variance (none can be estimated from one run).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or 0 in a.shape + b.shape:
        raise ValueError(f"runs must be (seeds, units) arrays over the same units, got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("runs hold NaN or infinite values")
    _check_resamples(resamples)
    n, rng = a.shape[1], np.random.default_rng(seed)
    batch, values = max(1, _BATCH_VALUES // n), []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        units = rng.multinomial(n, np.full(n, 1 / n), size=rows)     # how often each unit was drawn
        means = []
        for runs in (a, b):
            seeds = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), size=rows)
            means.append(np.sum((seeds @ runs) * units, axis=1) / (len(runs) * n))
        values.append(means[1] - means[0])
    return np.concatenate(values)


def seeds_and_units_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int, seed: int,
                              level: float = 0.95) -> Interval:
    """Percentile CI of mean(b) - mean(a) over seeds and units; what is resampled: `seeds_and_units_distribution`."""
    _check_resamples(resamples)
    _check_level(level)
    distribution = seeds_and_units_distribution(a, b, resamples=resamples, seed=seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return interval_from_distribution(
        distribution, float(b.mean() - a.mean()), level, a.shape[1],
        f"percentile bootstrap of {len(a)} and {len(b)} seeds and {a.shape[1]} shared units, {resamples} resamples")


# ----------------------------------------------------------------------- tests on paired data


@dataclass(frozen=True)
class Significance:
    """A test's statistic, its p-value, the units it used and how it was computed."""

    statistic: float
    p_value: float
    n: int
    method: str


ALTERNATIVES = ("two-sided", "greater", "less")


def _binomial_half_at_most(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed exactly in log space."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    j = np.arange(1, k + 1)
    log_pmf = np.concatenate([[0.0], np.cumsum(np.log((n - j + 1) / j))]) - n * math.log(2)
    top = log_pmf.max()
    return min(1.0, math.exp(top + math.log(np.exp(log_pmf - top).sum())))


def _binomial_half_p(k: int, n: int, alternative: str) -> float:
    """Exact p-value of k successes in n trials against p = 1/2 (two-sided: twice the smaller tail, at most 1)."""
    if alternative == "greater":
        return _binomial_half_at_most(n - k, n)        # P(X >= k) = P(X <= n - k) by symmetry
    if alternative == "less":
        return _binomial_half_at_most(k, n)
    return min(1.0, 2 * _binomial_half_at_most(min(k, n - k), n))


def _normal_p(z: float, alternative: str) -> float:
    if alternative == "greater":
        return _NORMAL.cdf(-z)
    if alternative == "less":
        return _NORMAL.cdf(z)
    return min(1.0, 2 * _NORMAL.cdf(-abs(z)))


def _changes(changes: Sequence, alternative: str) -> np.ndarray:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    d = np.asarray(changes, dtype=float)
    if d.ndim != 1 or not np.isfinite(d).all():
        raise ValueError("paired changes must be a 1-D array of finite numbers")
    return d


def sign_test(changes: Sequence, alternative: str = "two-sided") -> Significance:
    """Sign test of per-unit changes (b - a): are positive and negative changes equally likely?

    Zeros are dropped (the classic convention); the statistic is the number of positive changes among the
    n non-zero ones, and its p-value is exact (Binomial(n, 1/2)) at any n. Assumes independent units and
    nothing about the changes' distribution. alternative "greater": more positive changes than negative.
    """
    d = _changes(changes, alternative)
    positive, n = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d))
    return Significance(float(positive), _binomial_half_p(positive, n, alternative) if n else 1.0, n,
                        f"sign test, exact binomial, {d.size - n} zero changes dropped")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2)[inverse]


def _signed_rank_counts(n: int) -> np.ndarray:
    """counts[s] = how many of the 2^n sign patterns of ranks 1..n give a positive-rank sum of s."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.int64)
    counts[0] = 1
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank]
    return counts


ZERO_METHODS = ("wilcox", "pratt", "zsplit")


def wilcoxon(changes: Sequence, zero_method: str = "wilcox", alternative: str = "two-sided", *,
             correction: bool = False, exact_up_to: int = 50) -> Significance:
    """Wilcoxon signed-rank test of per-unit changes (b - a): are they symmetric about zero?

    The statistic is R+, the sum of the ranks of |change| over the positive changes (tied |change|s share
    their mean rank; ties are exact float equality). Zero changes, by `zero_method` (scipy's names):
    "wilcox" drops them before ranking; "pratt" ranks them with the rest, then leaves their ranks out of
    R+ (Cureton's normal approximation); "zsplit" ranks them and adds half their ranks to R+.
    Exact null distribution when at most `exact_up_to` changes are ranked and there are no ties and no zeros
    left in the ranking; otherwise the normal approximation with the tie correction (and, if `correction`,
    a continuity correction of 1/2), as scipy.stats.wilcoxon computes it. Assumes independent units whose
    changes have a distribution symmetric about its centre under the null.
    """
    if zero_method not in ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {ZERO_METHODS}, got {zero_method!r}")
    d = _changes(changes, alternative)
    zeros = d == 0
    if zero_method == "wilcox":
        d, zeros = d[~zeros], zeros[~zeros]
    n, n_zero = d.size, int(zeros.sum())
    if n == 0 or n == n_zero:
        return Significance(0.0, 1.0, n, "Wilcoxon signed-rank: no non-zero change")
    ranks = average_ranks(np.abs(d))
    r_plus = float(ranks[d > 0].sum()) + (float(ranks[zeros].sum()) / 2 if zero_method == "zsplit" else 0.0)
    _, tie_sizes = np.unique(np.abs(d[~zeros]) if zero_method == "pratt" else np.abs(d), return_counts=True)
    ties = bool((tie_sizes > 1).any())
    if n <= exact_up_to and not ties and n_zero == 0:
        counts = _signed_rank_counts(n)
        k = int(round(r_plus))
        at_most, at_least_k = counts[:k + 1].sum() / 2 ** n, counts[k:].sum() / 2 ** n
        p = {"less": at_most, "greater": at_least_k, "two-sided": min(1.0, 2 * min(at_most, at_least_k))}[alternative]
        return Significance(r_plus, float(p), n, f"Wilcoxon signed-rank, exact, zeros: {zero_method}")
    mean = (n * (n + 1) - (n_zero * (n_zero + 1) if zero_method == "pratt" else 0)) / 4
    variance = n * (n + 1) * (2 * n + 1) - (n_zero * (n_zero + 1) * (2 * n_zero + 1) if zero_method == "pratt" else 0)
    sd = math.sqrt((variance - float(np.sum(tie_sizes.astype(float) ** 3 - tie_sizes)) / 2) / 24)
    z = (r_plus - mean) / sd
    if correction:
        z -= {"greater": 1, "less": -1}.get(alternative, np.sign(z)) * 0.5 / sd
    return Significance(r_plus, _normal_p(z, alternative), n,
                        f"Wilcoxon signed-rank, normal approximation with tie correction"
                        f"{', continuity-corrected' if correction else ''}, zeros: {zero_method}")


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two models' errors on the same units, and the paired difference of their error rates."""

    statistic: float      # chi-square (continuity-corrected), or for the exact test the smaller discordant count
    p_value: float        # two-sided
    method: str
    only_a_wrong: int     # units a gets wrong and b right
    only_b_wrong: int     # units b gets wrong and a right
    difference: Interval  # error rate of b minus that of a


def mcnemar(wrong_a: Sequence, wrong_b: Sequence, *, exact_below: int = 25, level: float = 0.95) -> McNemar:
    """McNemar's test: do models a and b err equally often on the same units?

    Only the discordant units count. Below `exact_below` of them, the exact binomial test (the count of
    "only a wrong" against Binomial(discordant, 1/2), two-sided); from there on, chi-square with 1 degree of
    freedom and the continuity correction, (max(|b - c| - 1, 0))^2 / (b + c). The difference of error rates
    (b's minus a's) is (only_b_wrong - only_a_wrong) / n; its CI is Agresti & Min's (2005) Wald interval with
    1/2 added to each of the four cells (n + 2 units), which keeps its coverage near `level` for small counts.
    Assumes independent units; each input holds one truth value per unit (True or 1 = wrong).
    """
    a, b = (np.asarray(w) for w in (wrong_a, wrong_b))
    if a.ndim != 1 or a.shape != b.shape or a.size == 0 or not all(np.isin(w, (0, 1)).all() for w in (a, b)):
        raise ValueError("McNemar needs two 1-D arrays of one length holding per-unit errors (True/False or 1/0)")
    _check_level(level)
    a, b = a.astype(bool), b.astype(bool)
    n, only_a, only_b = a.size, int(np.count_nonzero(a & ~b)), int(np.count_nonzero(b & ~a))
    discordant = only_a + only_b
    if discordant < exact_below:
        statistic, p = float(min(only_a, only_b)), (_binomial_half_p(only_a, discordant, "two-sided") if discordant else 1.0)
        method = f"McNemar, exact binomial ({discordant} discordant units < {exact_below})"
    else:
        statistic = max(abs(only_a - only_b) - 1, 0) ** 2 / discordant
        p = math.erfc(math.sqrt(statistic / 2))         # chi-square, 1 degree of freedom, upper tail
        method = f"McNemar, chi-square with continuity correction ({discordant} discordant units)"
    shifted_a, shifted_b, units = (only_a + 0.5) / (n + 2), (only_b + 0.5) / (n + 2), n + 2
    centre = shifted_b - shifted_a
    half = _NORMAL.inv_cdf(0.5 + level / 2) * math.sqrt(max(shifted_a + shifted_b - centre ** 2, 0.0) / units)
    difference = Interval((only_b - only_a) / n, max(-1.0, centre - half), min(1.0, centre + half), level, n,
                          "Agresti-Min interval for paired proportions")
    return McNemar(statistic, p, method, only_a, only_b, difference)


# ----------------------------------------------------------------------- equivalence (two one-sided tests)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by its continued fraction (modified Lentz), on the side where it converges fast."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _regularized_beta(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(10_000):
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + term / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            return front * (f - 1.0)
    raise ArithmeticError(f"the incomplete beta I_{x}({a}, {b}) did not converge")


def student_t_above(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _regularized_beta(df / (df + t * t), df / 2, 0.5)
    return tail if t >= 0 else 1.0 - tail


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests: is the mean change inside (-margin, +margin)?"""

    estimate: float
    p_lower: float      # against "the mean change is at most -margin"
    p_upper: float      # against "the mean change is at least +margin"
    p_value: float      # the larger of the two
    margin: float
    n: int
    equivalent: bool    # both rejected at alpha
    method: str


def check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"the margin must be a finite number >= 0, got {margin!r}")
    return float(margin)


def tost_paired(changes: Sequence, margin: float, *, alpha: float = 0.05) -> Equivalence:
    """TOST on per-unit changes (b - a): two one-sided t-tests of the mean change against -margin and +margin.

    Equivalent when both reject at `alpha`, which is the same as the (1 - 2 alpha) t interval lying inside
    the margin. Assumes independent units and a mean change close to normal (many units, or changes that are
    themselves near normal); where that is doubtful, use `tost_from_interval` on a bootstrap interval.
    """
    margin = check_margin(margin)
    d = _changes(changes, "two-sided")
    if d.size < 2:
        raise ValueError(f"TOST needs at least 2 units, got {d.size}")
    mean, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size), d.size - 1
    if se == 0:     # every change equal: no sampling spread, the mean is where it is
        p_lower, p_upper = float(not mean > -margin), float(not mean < margin)
    else:
        p_lower, p_upper = student_t_above((mean + margin) / se, df), student_t_above((margin - mean) / se, df)
    p = max(p_lower, p_upper)
    return Equivalence(mean, p_lower, p_upper, p, margin, d.size, p < alpha,
                       f"two one-sided t-tests, margin {margin:g}, {df} degrees of freedom")


def tost_from_interval(interval: Interval, margin: float, *, alpha: float = 0.05) -> bool:
    """TOST from an interval: equivalent at `alpha` when a (1 - 2 alpha) CI lies inside [-margin, +margin].

    The interval's level must be 1 - 2 alpha (0.90 for alpha 0.05): a 95% CI inside the margin is a stricter
    test (alpha 0.025), a narrower one would be laxer, so the pairing is checked, not assumed.
    """
    margin = check_margin(margin)
    if not math.isclose(interval.level, 1 - 2 * alpha, abs_tol=1e-9):
        raise ValueError(f"TOST at alpha {alpha:g} needs a {1 - 2 * alpha:.0%} interval, got a {interval.level:.1%} one")
    return inside(interval, margin)


def inside(interval: Interval, margin: float) -> bool:
    """The interval lies within [-margin, +margin] (ends included, ROUNDING forgiven)."""
    return at_least(interval.low, -margin) and at_least(margin, interval.high)
