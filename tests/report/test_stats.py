"""The statistics behind the verdicts, against scipy, hand-worked examples and simulations of our n.

(The verdict rule itself is tested at its boundaries in test_decision.py; the power tests here run it on
simulated data.) Expected values come from scipy.stats (binomtest, wilcoxon, bootstrap, ttest_1samp, t, chi2), from
Agresti's published R code for the paired-proportions interval (transcribed below), or from hand
computations worked out in the comments. Simulations are seeded, sized to our data (500 validation
images) and compared with the power that theory (computed here with scipy) gives for the same design.
"""

import math

import numpy as np
import pytest
import scipy.stats as ss

from zfnet.report import stats
from zfnet.report.decision import DECREASE, NO_CHANGE, decide
from zfnet.report.spec import NOT_REPRODUCED, REPRODUCED
from zfnet.report.stats import Interval


def scipy_interval(samples, distribution, method, level=0.95):
    """scipy's paired bootstrap interval computed from *our* resampled values (n_resamples=0 reuses them)."""
    class Previous:
        bootstrap_distribution = distribution

    result = ss.bootstrap(samples, lambda a, b, axis=-1: np.mean(b - a, axis=axis), paired=True, n_resamples=0,
                          bootstrap_result=Previous(), method=method, confidence_level=level)
    return result.confidence_interval.low, result.confidence_interval.high


# ----------------------------------------------------------------------- paired bootstrap


@pytest.fixture(scope="module")
def skewed_pairs():
    rng = np.random.default_rng(3)
    a = rng.normal(0.0, 1.0, 60)
    return a, a + rng.gamma(2.0, 0.5, 60) - 0.8      # a skewed change, so BCa differs from percentile


@pytest.fixture(scope="module")
def error_pairs():
    rng = np.random.default_rng(12)    # per-image 0/1 errors: many resampled means equal the estimate exactly
    wrong_a = rng.random(80) < 0.2
    return wrong_a.astype(float), (wrong_a & (rng.random(80) < 0.6)).astype(float)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("data", ["skewed_pairs", "error_pairs"])
def test_interval_arithmetic_matches_scipy_on_the_same_resamples(request, data, method):
    samples = request.getfixturevalue(data)
    mine = stats.paired_bootstrap(samples, resamples=2000, seed=7, method=method, level=0.9)
    distribution = stats.bootstrap_distribution(samples, resamples=2000, seed=7)
    low, high = scipy_interval(samples, distribution, method, level=0.9)
    assert (mine.low, mine.high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)
    assert mine.estimate == pytest.approx(np.mean(samples[1] - samples[0]))
    assert (mine.n, mine.level) == (len(samples[0]), 0.9) and method in mine.method


def test_bca_and_percentile_differ_on_skewed_data(skewed_pairs):
    # (guards against "bca" silently falling back to percentile)
    percentile = stats.paired_bootstrap(skewed_pairs, resamples=2000, seed=7)
    bca = stats.paired_bootstrap(skewed_pairs, resamples=2000, seed=7, method="bca")
    assert (bca.low, bca.high) != pytest.approx((percentile.low, percentile.high), abs=1e-6)


def test_resampling_agrees_loosely_with_scipys_own(skewed_pairs):
    mine = stats.paired_bootstrap(skewed_pairs, resamples=4000, seed=1)
    theirs = ss.bootstrap(skewed_pairs, lambda a, b, axis=-1: np.mean(b - a, axis=axis), paired=True,
                          n_resamples=4000, method="percentile", rng=np.random.default_rng(2)).confidence_interval
    width = theirs.high - theirs.low       # two independent runs of 4000 resamples: bounds agree to a few %
    assert abs(mine.low - theirs.low) < 0.1 * width and abs(mine.high - theirs.high) < 0.1 * width


def test_two_units_by_hand():
    # changes 0 and 1: a resample is {0,0}, {0,1}, {1,0} or {1,1}, so its mean is 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4; the 2.5% and 97.5% quantiles are 0 and 1
    values = stats.bootstrap_distribution(([0.0, 0.0], [0.0, 1.0]), resamples=4000, seed=0)
    assert set(np.unique(values)) == {0.0, 0.5, 1.0}
    assert np.mean(values == 0.5) == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 4000))
    assert np.mean(values == 0.0) == pytest.approx(0.25, abs=4 * math.sqrt(0.1875 / 4000))
    ci = stats.paired_bootstrap(([0.0, 0.0], [0.0, 1.0]), resamples=4000, seed=0)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)


def test_the_spread_is_the_standard_error_of_a_mean_change():
    rng = np.random.default_rng(5)
    a = rng.normal(size=300)
    b = a + rng.normal(0.2, 0.5, size=300)
    values = stats.bootstrap_distribution((a, b), resamples=4000, seed=11)
    # bootstrap SE of a mean = population sd / sqrt(n); 4000 resamples estimate it to about 1 / sqrt(8000) = 1.1%
    assert values.std() == pytest.approx(np.std(b - a) / math.sqrt(300), rel=0.05)
    assert values.mean() == pytest.approx(np.mean(b - a), abs=0.1 * np.std(b - a) / math.sqrt(300))


def test_pairs_stay_paired():
    # b = a + 0.1 on every unit: resampling the same units from both leaves the change exactly 0.1;
    # resampling each sample on its own would spread it by the spread of a
    a = np.random.default_rng(0).normal(size=100)
    ci = stats.paired_bootstrap((a, a + 0.1), resamples=500, seed=0)
    assert ci.low == pytest.approx(0.1) and ci.high == pytest.approx(0.1)


def test_seeded_and_reproducible(skewed_pairs):
    first = stats.bootstrap_distribution(skewed_pairs, resamples=300, seed=4)
    assert np.array_equal(first, stats.bootstrap_distribution(skewed_pairs, resamples=300, seed=4))
    assert not np.array_equal(first, stats.bootstrap_distribution(skewed_pairs, resamples=300, seed=5))
    assert first.shape == (300,)


def test_a_statistic_of_shared_draws():
    # Table 1's shape: per draw, a random-region Delta and the three parts' Deltas; the gap is the mean over
    # draws of random minus the parts' mean. Units are draws; the statistic sees (resamples, draws) arrays.
    parts, random = np.array([0.30, 0.32, 0.29, 0.35, 0.31]), np.array([0.40, 0.41, 0.37, 0.45, 0.42])
    ci = stats.paired_bootstrap((parts, random), lambda p, r: np.mean(r - p, axis=-1), resamples=500, seed=0)
    assert ci.estimate == pytest.approx(0.096)       # (.10 + .09 + .08 + .10 + .11) / 5
    assert 0.08 <= ci.low <= ci.estimate <= ci.high <= 0.11    # the per-draw gaps lie in [.08, .11]


@pytest.mark.parametrize("samples, kwargs, message", [
    (([1.0, 2.0], [1.0]), {}, "one length"),
    (([1.0, float("nan")], [1.0, 2.0]), {}, "NaN"),
    (([1.0], [2.0]), {}, "at least 2"),
    (([1.0, 2.0], [1.0, 3.0]), {"resamples": 0}, "resamples"),
    (([1.0, 2.0], [1.0, 3.0]), {"level": 1.0}, "level"),
    (([1.0, 2.0], [1.0, 3.0]), {"method": "basic"}, "method"),
    (([1.0, 2.0], [1.0, 3.0]), {"statistic": lambda a, b: np.mean(b - a)}, "reduce the last axis"),
])
def test_bootstrap_bad_input(samples, kwargs, message):
    with pytest.raises(ValueError, match=message):
        stats.paired_bootstrap(samples, **{"resamples": 10, "seed": 0, **kwargs})


# ----------------------------------------------------------------------- seeds and units


def test_seed_variance_enters_the_interval():
    # every unit of seed s scores c_s: no unit-to-unit spread at all, only seed-to-seed spread.
    # The seed mean of 5 seeds drawn with replacement has sd = sqrt(population variance of c / 5):
    # c = .01 .02 .03 .04 .05, variance .0002, sd sqrt(.00004) = .006325
    c = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    b, a = np.repeat(c[:, None], 200, axis=1), np.zeros((1, 200))
    values = stats.seeds_and_units_distribution(a, b, resamples=4000, seed=0)
    assert values.std() == pytest.approx(math.sqrt(0.0002 / 5), rel=0.05)
    ci = stats.seeds_and_units_bootstrap(a, b, resamples=4000, seed=0)
    assert ci.estimate == pytest.approx(0.03) and ci.high - ci.low > 0.015 and ci.n == 200
    # averaging the seeds first and bootstrapping units only hides that spread entirely
    units_only = stats.paired_bootstrap((a[0], b.mean(axis=0)), resamples=500, seed=0)
    assert units_only.high - units_only.low == pytest.approx(0.0)


def test_one_seed_each_is_the_paired_bootstrap_of_units():
    rng = np.random.default_rng(2)
    a, b = rng.random(400) < 0.04, rng.random(400) < 0.016
    values = stats.seeds_and_units_distribution(a[None].astype(float), b[None].astype(float), resamples=4000, seed=1)
    change = b.astype(float) - a
    assert values.std() == pytest.approx(np.std(change) / math.sqrt(400), rel=0.05)
    assert values.mean() == pytest.approx(change.mean(), abs=0.1 * np.std(change) / math.sqrt(400))


def test_units_are_shared_between_models_and_seeds():
    # b's runs are a's runs plus 0.05 everywhere (same units): the change is 0.05 in every resample,
    # whatever units and seeds are drawn, as long as both models are read on the same units
    a = np.random.default_rng(4).normal(size=(3, 50))
    values = stats.seeds_and_units_distribution(a[:1], a[:1] + 0.05, resamples=300, seed=0)
    assert np.allclose(values, 0.05)


@pytest.mark.parametrize("a, b", [(np.zeros((2, 5)), np.zeros((2, 6))), (np.zeros(5), np.zeros((2, 5))),
                                  (np.zeros((0, 5)), np.zeros((2, 5))), (np.full((1, 5), np.nan), np.zeros((1, 5)))])
def test_seeds_and_units_bad_input(a, b):
    with pytest.raises(ValueError):
        stats.seeds_and_units_bootstrap(a, b, resamples=10, seed=0)


# ----------------------------------------------------------------------- sign test, Wilcoxon


def test_sign_test_by_hand():
    # +, +, +, 0, 0, -: zeros dropped, 3 of 4 positive; two-sided p = 2 P(X <= 1), X ~ Bin(4, 1/2) = 2 * 5/16
    result = stats.sign_test([0.2, 0.1, 0.3, 0.0, 0.0, -0.5])
    assert (result.statistic, result.n, result.p_value) == (3.0, 4, 0.625)
    assert "2 zero changes dropped" in result.method
    assert stats.sign_test([0.0, 0.0]).p_value == 1.0


@pytest.mark.parametrize("positive, n", [(0, 1), (3, 10), (5, 10), (9, 20), (40, 61), (270, 500), (230, 500)])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_test_matches_binomtest(positive, n, alternative):
    changes = [1.0] * positive + [-1.0] * (n - positive) + [0.0] * 3
    expected = ss.binomtest(positive, n, 0.5, alternative=alternative).pvalue
    assert stats.sign_test(changes, alternative).p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_wilcoxon_exact_by_hand():
    # changes 1, -2, 3, 4, 5: ranks 1..5, R+ = 1 + 3 + 4 + 5 = 13, R- = 2. Of the 32 sign patterns, 3 give
    # R- <= 2 ({}, {1}, {2}), so the two-sided exact p = 2 * 3/32 = 0.1875
    result = stats.wilcoxon([1.0, -2.0, 3.0, 4.0, 5.0])
    assert (result.statistic, result.p_value, result.n) == (13.0, 0.1875, 5) and "exact" in result.method
    assert stats.wilcoxon([1.0, -2.0, 3.0, 4.0, 5.0], alternative="greater").p_value == 3 / 32


def wilcoxon_cases():
    rng = np.random.default_rng(8)
    yield "exact", rng.normal(0.3, 1.0, 20)                    # no ties, no zeros, n <= 50
    yield "exact", rng.normal(0.3, 1.0, 50)
    yield "normal", rng.normal(0.2, 1.0, 51)                   # past 50
    yield "normal", np.round(rng.normal(0.3, 1.0, 40), 1)      # ties (and some zeros)
    yield "normal", np.round(rng.normal(0.05, 0.1, 500), 2)    # per-image drops at our n: ties and zeros
    yield "zeros", np.concatenate([rng.normal(0.3, 1.0, 30), np.zeros(6)])    # exact once "wilcox" drops them


@pytest.mark.parametrize("kind, changes", list(wilcoxon_cases()))
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
@pytest.mark.parametrize("correction", [False, True])
def test_wilcoxon_matches_scipy(kind, changes, zero_method, alternative, correction):
    result = stats.wilcoxon(changes, zero_method, alternative, correction=correction)
    method = "exact" if "exact" in result.method else "asymptotic"
    exact = kind == "exact" or (kind == "zeros" and zero_method == "wilcox")
    assert method == ("exact" if exact else "asymptotic"), result.method
    expected = ss.wilcoxon(changes, zero_method=zero_method, alternative=alternative, correction=correction,
                           method=method)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
    if alternative == "greater":                                 # scipy's statistic is R+ there
        assert result.statistic == pytest.approx(expected.statistic)
    assert zero_method in result.method


def test_wilcoxon_zero_methods_differ_where_zeros_exist():
    changes = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, -1.5, 2.5, 0.5, 4.0, 3.5])
    p = {method: stats.wilcoxon(changes, method).p_value for method in stats.ZERO_METHODS}
    assert len(set(p.values())) == 3, p
    assert stats.wilcoxon(changes, "wilcox").n == 8 and stats.wilcoxon(changes, "pratt").n == 12


@pytest.mark.parametrize("call", [lambda: stats.wilcoxon([1.0, 2.0], "drop"), lambda: stats.wilcoxon([1.0], alternative="up"),
                                  lambda: stats.sign_test([[1.0]]), lambda: stats.sign_test([np.nan, 1.0])])
def test_rank_tests_bad_input(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------- McNemar


def errors(both, only_a, only_b, neither):
    """Per-unit errors of models a and b with the given cell counts."""
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return np.array(a, dtype=bool), np.array(b, dtype=bool)


def agresti_min(b, c, n, conflev):
    """Agresti's R function `diffpropci` (Agresti & Min 2005, 'Wald+2'), transcribed line by line."""
    z = ss.norm.ppf(1 - (1 - conflev) / 2)
    diff = (c - b) / (n + 2)
    sd = math.sqrt((b + c + 1) - (c - b) ** 2 / (n + 2)) / (n + 2)
    return max(diff - z * sd, -1), min(diff + z * sd, 1)


def test_mcnemar_exact_by_hand():
    # 500 images: a wrong on 20 (6 shared with b), b wrong on 9; discordant 14 (only a) + 3 (only b) = 17 < 25:
    # exact, p = 2 P(X <= 3), X ~ Bin(17, 1/2) = 2 (1 + 17 + 136 + 680) / 2^17 = 0.0127258...
    result = stats.mcnemar(*errors(6, 14, 3, 477))
    assert (result.only_a_wrong, result.only_b_wrong, result.statistic) == (14, 3, 3.0)
    assert result.p_value == pytest.approx(2 * 834 / 2 ** 17, rel=1e-12) and "exact" in result.method
    assert result.p_value == pytest.approx(ss.binomtest(14, 17).pvalue, rel=1e-12)
    # the difference of error rates, b's minus a's: (3 - 14) / 500 = -0.022; Agresti-Min CI by hand:
    # centre -11/502 = -0.0219124, sd sqrt(18 - 121/502) / 502 = 0.0083947, +-1.96 sd -> [-0.0383657, -0.0054590]
    ci = result.difference
    assert ci.estimate == pytest.approx(-0.022) and ci.n == 500
    assert (ci.low, ci.high) == pytest.approx((-0.0383657, -0.0054590), abs=1e-7)
    assert (ci.low, ci.high) == pytest.approx(agresti_min(14, 3, 500, 0.95), rel=1e-12)


def test_mcnemar_chi_square_by_hand():
    # discordant 30 + 12 = 42 >= 25: chi-square = (|30 - 12| - 1)^2 / 42 = 289 / 42 = 6.881, p = P(chi2_1 > 6.881)
    result = stats.mcnemar(*errors(10, 30, 12, 448))
    assert result.statistic == pytest.approx(289 / 42) and "chi-square" in result.method
    assert result.p_value == pytest.approx(ss.chi2.sf(289 / 42, 1), rel=1e-10)
    assert (result.difference.low, result.difference.high) == pytest.approx(agresti_min(30, 12, 500, 0.95), rel=1e-12)


def test_mcnemar_switches_method_at_exact_below():
    exact = stats.mcnemar(*errors(0, 16, 8, 476))           # 24 discordant
    chi = stats.mcnemar(*errors(0, 17, 8, 475))             # 25
    assert "exact" in exact.method and "chi-square" in chi.method
    assert exact.p_value == pytest.approx(ss.binomtest(16, 24).pvalue, rel=1e-12)
    assert chi.p_value == pytest.approx(ss.chi2.sf(8 ** 2 / 25, 1), rel=1e-10)


def test_mcnemar_equal_discordant_counts_and_none():
    assert stats.mcnemar(*errors(3, 20, 20, 457)).p_value == 1.0          # (|0| - 1) is clipped at 0
    none = stats.mcnemar(*errors(5, 0, 0, 495))
    assert none.p_value == 1.0 and none.difference.estimate == 0.0
    assert none.difference.low < 0 < none.difference.high                  # n = 500 does not pin it to 0


@pytest.mark.parametrize("a, b", [([1, 0], [1]), ([1, 2], [0, 1]), ([], []), ([[1]], [[0]])])
def test_mcnemar_bad_input(a, b):
    with pytest.raises(ValueError):
        stats.mcnemar(a, b)


# ----------------------------------------------------------------------- equivalence (TOST)


@pytest.mark.parametrize("df", [1, 4, 30, 499])
@pytest.mark.parametrize("t", [-6.0, -1.3, 0.0, 0.4, 2.1, 9.0])
def test_student_t_tail_matches_scipy(df, t):
    assert stats.student_t_above(t, df) == pytest.approx(ss.t.sf(t, df), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("shift, margin", [(0.0, 0.3), (0.2, 0.3), (-0.25, 0.3), (0.5, 0.3), (0.0, 0.05)])
def test_tost_paired_matches_two_scipy_t_tests(shift, margin):
    changes = np.random.default_rng(6).normal(shift, 1.0, 120)
    result = stats.tost_paired(changes, margin)
    lower = ss.ttest_1samp(changes, -margin, alternative="greater").pvalue
    upper = ss.ttest_1samp(changes, margin, alternative="less").pvalue
    assert (result.p_lower, result.p_upper) == pytest.approx((lower, upper), rel=1e-9, abs=1e-300)
    assert result.p_value == max(result.p_lower, result.p_upper)
    assert result.equivalent == (max(lower, upper) < 0.05) and result.n == 120


def test_tost_paired_constant_changes():
    # every change equal: no spread, so the mean alone decides (powers of 2: no rounding in the mean)
    assert stats.tost_paired([0.125] * 8, 0.25).equivalent
    assert not stats.tost_paired([0.375] * 8, 0.25).equivalent
    assert not stats.tost_paired([0.25] * 8, 0.25).equivalent           # at the margin is not inside the open band


def test_tost_from_an_interval():
    ci90 = Interval(0.004, -0.006, 0.014, 0.90, 500, "by hand")
    assert stats.tost_from_interval(ci90, 0.015)
    assert stats.tost_from_interval(ci90, 0.014)                          # the margin's ends belong to it
    assert not stats.tost_from_interval(ci90, 0.0139)
    with pytest.raises(ValueError, match="90%"):
        stats.tost_from_interval(Interval(0.004, -0.006, 0.014, 0.95, 500, "by hand"), 0.015)
    with pytest.raises(ValueError, match="margin"):
        stats.tost_from_interval(ci90, -0.01)


# ----------------------------------------------------------------------- power at our n (500 paired images)

IMAGES, DATASETS, ALPHA = 500, 300, 0.05


def mcnemar_power(only_a, only_b, n=IMAGES, exact_below=25, alpha=ALPHA):
    """Probability that McNemar's test rejects, from the cell probabilities, summed exactly with scipy."""
    discordant, power = only_a + only_b, 0.0
    for d in range(1, n + 1):
        weight = ss.binom.pmf(d, n, discordant)
        if weight < 1e-14:
            continue
        k = np.arange(d + 1)
        if d < exact_below:
            reject = np.array([ss.binomtest(int(i), d).pvalue < alpha for i in k])
        else:
            reject = ss.chi2.sf(np.maximum(np.abs(2 * k - d) - 1, 0) ** 2 / d, 1) < alpha
        power += weight * ss.binom.pmf(k, d, only_a / discordant)[reject].sum()
    return power


def simulate(cells, datasets, seed):
    """Per-image errors of a and b for `datasets` sets of IMAGES images; cells = P(both, only a, only b)."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=(datasets, IMAGES), p=[*cells, 1 - sum(cells)])
    return (kinds == 0) | (kinds == 1), (kinds == 0) | (kinds == 2)


# Table 2's pair at our scale: AlexNet 4.0% vs ZF 1.6% error. Two nets share their hard images, so most of
# ZF's errors are also AlexNet's: both wrong 1.2%, only AlexNet 2.8%, only ZF 0.4%. The null pair errs 2.8%
# each: both 1.2%, only one of them 1.6% each.
REAL, NULL = (0.012, 0.028, 0.004), (0.012, 0.016, 0.016)


def test_mcnemar_detects_a_real_effect_as_often_as_theory_says():
    wrong_a, wrong_b = simulate(REAL, DATASETS, seed=0)
    results = [stats.mcnemar(a, b) for a, b in zip(wrong_a, wrong_b)]
    power = mcnemar_power(REAL[1], REAL[2])                            # 0.85
    rate = np.mean([r.p_value < ALPHA for r in results])
    assert abs(rate - power) < 4 * math.sqrt(power * (1 - power) / DATASETS), (rate, power)
    # the rule on the Agresti-Min CI (a Wald-type interval, no less powerful than the exact test here)
    decided = [decide(r.difference, 0.01, DECREASE).verdict for r in results]
    assert np.mean([v == REPRODUCED for v in decided]) > power - 4 * math.sqrt(power * (1 - power) / DATASETS)
    assert NOT_REPRODUCED not in decided


def test_mcnemar_and_the_rule_do_not_call_a_null_effect_different():
    wrong_a, wrong_b = simulate(NULL, DATASETS, seed=1)
    results = [stats.mcnemar(a, b) for a, b in zip(wrong_a, wrong_b)]
    size = mcnemar_power(NULL[1], NULL[2])                             # 0.028: the exact test is conservative
    rate = np.mean([r.p_value < ALPHA for r in results])
    assert size <= ALPHA and rate <= size + 4 * math.sqrt(size * (1 - size) / DATASETS), (rate, size)
    reproduced = np.mean([decide(r.difference, 0.01, DECREASE).verdict == REPRODUCED for r in results])
    assert reproduced <= 0.025 + 4 * math.sqrt(0.025 * 0.975 / DATASETS)   # one tail of a 95% CI


def test_bootstrap_rule_on_per_image_errors():
    # the same decisions from a paired bootstrap of the per-image errors (30 datasets, 1000 resamples each)
    real_a, real_b = simulate(REAL, 30, seed=2)
    null_a, null_b = simulate(NULL, 30, seed=3)

    def verdicts(wrong_a, wrong_b):
        return [decide(stats.paired_bootstrap((a, b), resamples=1000, seed=i), 0.01, DECREASE).verdict
                for i, (a, b) in enumerate(zip(wrong_a, wrong_b))]

    real, null = verdicts(real_a, real_b), verdicts(null_a, null_b)
    power = mcnemar_power(REAL[1], REAL[2])
    assert real.count(REPRODUCED) / 30 > power - 4 * math.sqrt(power * (1 - power) / 30), real
    assert null.count(REPRODUCED) <= ss.binom.ppf(0.99, 30, 0.025), null     # one tail of a 95% CI


def test_a_doubled_error_is_never_no_change():
    # issue 22, item 1: zfnet_fc8192 went 1.6 -> 3.4 and was called "no real change". Simulated at n = 500
    # (only the narrower model wrong 2.6%, only the wider 0.8%, both 0.8%), a 1-point margin never reproduces it.
    wrong_a, wrong_b = simulate((0.008, 0.008, 0.026), 100, seed=4)
    verdicts = {decide(stats.mcnemar(a, b).difference, 0.01, NO_CHANGE).verdict for a, b in zip(wrong_a, wrong_b)}
    assert REPRODUCED not in verdicts


def test_rank_tests_detect_a_shift_and_not_a_null():
    # per-image changes (say p(true) drops) ~ Normal(shift, 1) at n = 500: a shift of 0.25 sd gives
    # z = 0.25 sqrt(500 * 0.955) = 5.5 for Wilcoxon and 0.25 sqrt(500 * 2 / pi) = 4.5 for the sign test
    # (asymptotic relative efficiencies 3/pi and 2/pi): both miss with probability < 1e-4 per dataset
    rng = np.random.default_rng(9)
    shifted, null = rng.normal(0.25, 1.0, (50, IMAGES)), rng.normal(0.0, 1.0, (100, IMAGES))
    for test in (stats.wilcoxon, stats.sign_test):
        assert all(test(d).p_value < ALPHA for d in shifted), test
        false_alarms = np.mean([test(d).p_value < ALPHA for d in null])
        assert false_alarms <= ALPHA + 4 * math.sqrt(ALPHA * (1 - ALPHA) / 100), (test, false_alarms)


def test_tost_power_and_size():
    # per-image error changes of a null pair (NULL cells): the sd of a change is sqrt(.032) = .179, its mean's
    # SE .179 / sqrt(500) = .0080. With a 2-point margin TOST accepts with probability about
    # 2 Phi(.02 / .0080 - 1.645) - 1 = 0.61; a true change of exactly the margin is accepted at most 5% of the time.
    wrong_a, wrong_b = simulate(NULL, 200, seed=5)
    changes = wrong_b.astype(float) - wrong_a
    se = math.sqrt(2 * NULL[1] / IMAGES)
    power = 2 * ss.norm.cdf(0.02 / se - ss.norm.ppf(0.95)) - 1
    rate = np.mean([stats.tost_paired(c, 0.02).equivalent for c in changes])
    assert abs(rate - power) < 4 * math.sqrt(power * (1 - power) / 200), (rate, power)
    at_margin = simulate((0.0, 0.01, 0.03), 200, seed=6)              # b's error 2 points above a's
    accepted = np.mean([stats.tost_paired(b.astype(float) - a, 0.02).equivalent for a, b in zip(*at_margin)])
    assert accepted <= ALPHA + 4 * math.sqrt(ALPHA * (1 - ALPHA) / 200), accepted
