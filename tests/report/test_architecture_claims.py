"""Fig. 4 and Fig. 6 rules (zfnet.report.architecture_claims): the statistics against scipy or a hand computation,
and each rule's power at our n (48 conv1 filters per model at the default half width, 36 projected conv2 maps,
5 conv layers) on a real effect and a null.

Per-unit samples are built without randomness: the population's quantiles at (i + 1/2) / n, i.e. a sample whose
empirical distribution is the population's, so no seed can be picked to make a test pass."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from zfnet.report import architecture_claims as ar
from zfnet.report import claims
from zfnet.report.decision import Settings
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

FILTERS, PROJECTIONS = 48, 36          # metrics/architecture.json at the default width: conv1_filters, conv2_maps_projected
SETTINGS = Settings(resamples=4000)    # fewer resamples than the report's 10,000: the same verdicts, faster


def quantile_sample(centre: float, scale: float, n: int) -> np.ndarray:
    """n values of Normal(centre, scale) at the quantiles (i + 1/2) / n."""
    return centre + scale * scipy_stats.norm.ppf((np.arange(n) + 0.5) / n)


# ----------------------------------------------------------------------- statistics


@pytest.mark.parametrize("y", [(0.40, 0.50, 0.60, 0.75, 1.00), (0.67, 0.74, 0.76, 0.75, 0.73), (0.5, 0.4, 0.3, 0.2, 0.1),
                               (0.71, 0.75, 0.78, 0.77, 0.75), (0.3, 0.1, 0.2, 0.5, 0.4)])
def test_spearman_permutation_matches_scipys_exact_permutation_test(y):
    x = np.arange(5)
    order = ar.spearman_permutation(x, y)

    def rho(values):
        return scipy_stats.spearmanr(x, values).statistic

    assert order.rho == pytest.approx(rho(y))
    for alternative, p in (("greater", order.p_greater), ("less", order.p_less)):
        expected = scipy_stats.permutation_test((np.array(y),), rho, permutation_type="pairings",
                                                alternative=alternative).pvalue   # exact: 120 < its 9999 resamples
        assert p == pytest.approx(expected)
    assert order.orders == 120


def test_five_layers_reach_at_most_1_in_120_and_one_swap_is_already_5_in_120():
    # by hand: only the identity has rho = 1; rho = 0.9 (sum d^2 = 2) takes one adjacent swap, 4 of them
    perfect = ar.spearman_permutation(range(5), range(5))
    assert perfect.rho == 1 and perfect.p_greater == pytest.approx(1 / 120) and perfect.next_p == pytest.approx(5 / 120)
    swapped = ar.spearman_permutation(range(5), (0, 2, 1, 3, 4))
    assert swapped.rho == pytest.approx(0.9) and swapped.p_greater == pytest.approx(5 / 120)
    swaps = sum(1 for p in itertools.permutations(range(5)) if sum((i - v) ** 2 for i, v in enumerate(p)) == 2)
    assert swaps == 4
    tied = ar.spearman_permutation(range(5), (1, 1, 1, 1, 1))
    assert tied.rho == 0 and tied.p_greater == tied.p_less == 1


def test_median_difference_matches_scipys_bootstrap():
    first, second = quantile_sample(0.24, 0.09, FILTERS), quantile_sample(0.39, 0.12, FILTERS)
    ours = ar.median_difference(first, second, resamples=20_000, seed=0)
    theirs = scipy_stats.bootstrap((first, second), lambda a, b, axis: np.median(a, axis) - np.median(b, axis),
                                   paired=False, vectorized=True, n_resamples=20_000, method="percentile",
                                   random_state=np.random.default_rng(1)).confidence_interval
    assert ours.estimate == pytest.approx(np.median(first) - np.median(second))
    assert ours.n == FILTERS
    # two Monte Carlo estimates of the same quantiles: within a few hundredths of the spread of the units
    assert ours.low == pytest.approx(theirs.low, abs=0.01) and ours.high == pytest.approx(theirs.high, abs=0.01)


def test_the_bootstrap_resamples_each_sample_on_its_own():
    # all of first below all of second: every resampled difference of medians lies in [min(a) - max(b), max(a) - min(b)]
    first, second = np.linspace(0, 1, 10), np.linspace(5, 6, 30)
    interval = ar.median_difference(first, second, resamples=2000, seed=3)
    assert -6 <= interval.low <= interval.high <= -4
    with pytest.raises(ValueError):
        ar.median_difference([1.0], second, resamples=10, seed=0)
    with pytest.raises(ValueError):
        ar.median_difference([1.0, math.nan], second, resamples=10, seed=0)


def order_statistic_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The distribution-free CI of a median: the widest central pair of order statistics whose binomial coverage
    reaches `level` (scipy's binomial distribution)."""
    n, values = len(values), np.sort(values)
    for k in range(n // 2, -1, -1):        # ranks k+1 .. n-k (1-based) cover with 1 - 2 P(Bin(n, 1/2) <= k)
        if 1 - 2 * scipy_stats.binom.cdf(k, n, 0.5) >= level:
            return values[k], values[n - k - 1]
    raise AssertionError("no order statistics reach the level")


def spread_of(values: np.ndarray) -> dict:
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return {"n": len(values), "median": median, "q25": q25, "q75": q75}


@pytest.mark.parametrize("sizes", [(48, 48), (36, 36), (21, 60)])
def test_the_quartile_interval_holds_the_medians_exact_intervals(sizes):
    a, b = quantile_sample(0.0, 1.0, sizes[0]) ** 3, quantile_sample(1.0, 2.0, sizes[1])   # a skewed, b not
    interval = ar.quartile_interval(spread_of(a), spread_of(b), 0.95)
    (low_a, high_a), (low_b, high_b) = order_statistic_interval(a, 0.975), order_statistic_interval(b, 0.975)
    assert interval.low <= low_a - high_b and high_a - low_b <= interval.high
    assert interval.estimate == pytest.approx(np.median(a) - np.median(b))


def test_the_quartile_interval_covers_at_least_its_level():
    """Coverage of the true difference of medians over 400 pairs of skewed samples of 21 (the fewest allowed)."""
    rng = np.random.default_rng(0)
    true = 0.0 - np.log(2)                          # median of Exp(1) is ln 2; of Normal(0, 1) is 0
    covered = 0
    for _ in range(400):
        a, b = rng.normal(size=21), rng.exponential(size=21)
        interval = ar.quartile_interval(spread_of(a), spread_of(b), 0.95)
        covered += interval.low <= true <= interval.high
    assert covered / 400 >= 0.95


def test_the_quartile_interval_needs_enough_units():
    # 4 z^2 with z the normal point of 1 - 0.05 / 4: 4 * 2.2414^2 = 20.1 -> 21 units each
    assert math.ceil(4 * scipy_stats.norm.ppf(1 - 0.05 / 4) ** 2) == 21
    small = spread_of(quantile_sample(0, 1, 20))
    assert ar.quartile_interval(small, spread_of(quantile_sample(0, 1, 48)), 0.95) is None
    assert ar.quartile_interval(spread_of(quantile_sample(0, 1, 21)), spread_of(quantile_sample(0, 1, 48)), 0.95)
    assert ar.quartile_interval({"n": 48, "median": 0.1}, spread_of(quantile_sample(0, 1, 48)), 0.95) is None


def test_fewest_units_for_a_medians_interval():
    # [min, max] covers the median with 1 - 2 / 2^n: 0.9375 at n = 5, 0.96875 at n = 6; at 99%: 0.9922 at n = 8
    assert ar.fewest_units(0.95) == 6 and ar.fewest_units(0.99) == 8


def test_top_tenth_share_by_hand():
    assert ar.top_tenth_share(np.ones((1, 10)))[0] == pytest.approx(0.1)
    assert ar.top_tenth_share(np.array([[3.0] + [1.0] * 9]))[0] == pytest.approx(9 / 18)
    # 48 filters: the top ceil(4.8) = 5; five at RMS 2 among 43 at 1: 5 * 4 / (20 + 43) = 20 / 63
    assert ar.top_tenth_share(np.array([[2.0] * 5 + [1.0] * 43]))[0] == pytest.approx(20 / 63)


# ----------------------------------------------------------------------- Fig. 6: power at our n, and nulls


def share(higher, lower):
    return ar.share_increase("c", "s", higher, lower, 0.10, SETTINGS, "what", True)


def test_dead_filters_power_and_null_at_48_filters():
    # 6 of 48 AlexNet filters dead (12.5%) against none of ZF's: Newcombe's low end
    # 0.125 - sqrt((0.125 - 0.0586)^2 + 0.0741^2) = 0.0255 > 0 (Wilson ends from scipy below)
    low_a = scipy_stats.binomtest(6, 48).proportion_ci(0.95, "wilson").low
    high_z = scipy_stats.binomtest(0, 48).proportion_ci(0.95, "wilson").high
    assert 6 / 48 - math.hypot(6 / 48 - low_a, high_z) > 0
    found = share((6, 48), (0, 48))
    assert found.verdict == REPRODUCED, found
    assert "6 of 48 vs 0 of 48" in found.evidence and "n = 48" in found.evidence and "margin ±0.100" in found.evidence
    assert share((1, 48), (1, 48)).verdict == NOT_REPRODUCED          # CI inside the margin: no change of note
    assert share((0, 48), (6, 48)).verdict == NOT_REPRODUCED          # the other way
    assert share((3, 48), (1, 48)).verdict == CANNOT_DECIDE           # 2 filters: too few to tell


def test_mid_frequency_share_power_and_null():
    assert share((39, 48), (25, 48)).verdict == REPRODUCED           # our default run's counts
    assert share((30, 48), (30, 48)).verdict != REPRODUCED
    assert share((1, 1), (0, 1)).verdict == CANNOT_DECIDE            # one live filter each (an untrained bank)
    assert share((0, 0), (0, 48)).verdict == CANNOT_DECIDE           # no live filter at all


def median(ours, other, spreads=(None, None)):
    return ar.median_decrease("c", "s", ours, other, spreads, 0.05, SETTINGS, "what", True)


def test_above_nyquist_power_and_null_at_48_filters():
    zf, alexnet = quantile_sample(0.24, 0.09, FILTERS), quantile_sample(0.39, 0.12, FILTERS)   # our medians, IQRs
    found = median(zf, alexnet)
    assert found.verdict == REPRODUCED and "n = 48" in found.evidence and "CI [" in found.evidence, found
    assert median(alexnet, zf).verdict == NOT_REPRODUCED
    same = median(quantile_sample(0.3, 0.1, FILTERS), quantile_sample(0.3, 0.1, FILTERS))
    assert same.verdict != REPRODUCED
    assert median(zf[:5], alexnet).verdict == CANNOT_DECIDE and "at least 6" in median(zf[:5], alexnet).evidence


def test_lattice_power_and_null_at_36_projections():
    # a ZF median 0.01 below AlexNet's (the size of our run's difference, 0.029 vs 0.019, the other way round)
    lower, higher = quantile_sample(0.019, 0.007, PROJECTIONS), quantile_sample(0.029, 0.010, PROJECTIONS)
    lattice = ar.median_decrease("c", "s", lower, higher, (None, None), 0.005, SETTINGS, "what", True)
    assert lattice.verdict == REPRODUCED, lattice
    reversed_ = ar.median_decrease("c", "s", higher, lower, (None, None), 0.005, SETTINGS, "what", True)
    assert reversed_.verdict == NOT_REPRODUCED
    null = ar.median_decrease("c", "s", higher, higher, (None, None), 0.005, SETTINGS, "what", True)
    assert null.verdict != REPRODUCED


def test_without_evidence_the_quartiles_give_a_conservative_verdict():
    apart = ({"n": 48, "median": 0.24, "q25": 0.18, "q75": 0.30}, {"n": 48, "median": 0.39, "q25": 0.31, "q75": 0.49})
    found = median(None, None, apart)
    assert found.verdict == REPRODUCED and "quartiles" in found.evidence       # 0.30 - 0.31 < 0
    overlapping = ({"n": 48, "median": 0.24, "q25": 0.18, "q75": 0.35}, apart[1])
    assert median(None, None, overlapping).verdict == CANNOT_DECIDE          # 0.35 - 0.31 > 0: too wide
    few = ({"n": 9, "median": 0.24, "q25": 0.18, "q75": 0.30}, apart[1])
    assert median(None, None, few).verdict == CANNOT_DECIDE
    assert median(None, None, (None, None)).verdict == CANNOT_DECIDE
    assert ar.median_decrease("c", "s", None, None, (None, None), 0.05, SETTINGS, "w", False).verdict == NOT_RUN


def test_dominance_power_and_null():
    renormalized = quantile_sample(0.028, 0.008, FILTERS)                   # our ZF conv1 RMS spread
    dominated = np.concatenate([np.full(5, 0.15), quantile_sample(0.028, 0.008, 43)])   # 5 filters at 5x
    found = ar.dominance_increase("c", "s", dominated, renormalized, 0.05, SETTINGS, "what", True)
    assert found.verdict == REPRODUCED, found
    null = ar.dominance_increase("c", "s", renormalized, renormalized, 0.05, SETTINGS, "what", True)
    assert null.verdict != REPRODUCED


# ----------------------------------------------------------------------- Fig. 4: what 5 layers can decide


def ratios(settled_by_layer, snapshots=4):
    """Per layer, ratios at `snapshots` epochs falling linearly from 1 so that their mean is the given A."""
    out = {}
    for i, a in enumerate(settled_by_layer):
        # values 1, 1 - s, 1 - 2s, ... with mean 1 - s (snapshots - 1) / 2 = a
        step = 2 * (1 - a) / (snapshots - 1)
        out[f"conv{i + 1}"] = [1 - k * step for k in range(snapshots)]
    return out


def order(r):
    return ar.layer_order("c", "s", r, SETTINGS)


def test_the_perfect_order_is_reproduced_and_the_reversed_not():
    assert order(ratios([0.4, 0.5, 0.6, 0.75, 1.0])).verdict == REPRODUCED
    reversed_ = order(ratios([1.0, 0.75, 0.6, 0.5, 0.4]))
    assert reversed_.verdict == NOT_REPRODUCED and "upper layers settle first" in reversed_.evidence


def test_anything_short_of_the_perfect_order_cannot_be_decided_with_5_layers():
    one_swap = order(ratios([0.4, 0.6, 0.5, 0.75, 1.0]))                  # rho 0.9: p = 5/120 > 0.025
    assert one_swap.verdict == CANNOT_DECIDE and "no order short of the perfect one" in one_swap.evidence
    ours = order(ratios([0.67, 0.74, 0.76, 0.75, 0.73]))                  # our ZF run: rho 0.3
    assert ours.verdict == CANNOT_DECIDE and "rho = +0.30" in ours.evidence and "of 120 orders" in ours.evidence


def test_an_order_that_one_snapshot_makes_is_not_reproduced():
    # A in perfect order, but only because of snapshot 1; snapshot 2 orders the layers the other way
    snapshots = {f"conv{i + 1}": [1.0, 0.2 + 0.3 * i, 0.5 - 0.05 * i] for i in range(5)}
    settled = [np.mean(v) for v in snapshots.values()]
    assert list(np.argsort(settled)) == [0, 1, 2, 3, 4]
    found = order(snapshots)
    assert found.verdict == CANNOT_DECIDE, found


# ----------------------------------------------------------------------- through claims


def arch(dead, filters=FILTERS, centroid_mid=(39, 48), above=None, lattice=None, rms=None):
    k, n = centroid_mid
    return {"conv1_filters": filters, "conv1_live_filters": n, "conv1_dead": {"count": dead},
            "conv1_centroid_frequency": {"band_shares": {"mid": k / n if n else None}, "spread": {"n": n}},
            "conv1_above_nyquist": {"spread": above}, "conv2_lattice": {"projections": lattice}}


def test_claims_read_the_evidence_and_say_what_they_used():
    zf_above, alex_above = quantile_sample(0.24, 0.09, FILTERS), quantile_sample(0.39, 0.12, FILTERS)
    evidence = {"mid_band": [1 / 6, 1 / 3],
                "zfnet": {"dead": [0] * FILTERS, "centroid_frequency": [0.2] * 39 + [0.1] * 9,
                          "above_nyquist": list(zf_above), "lattice": list(quantile_sample(0.019, 0.007, PROJECTIONS)),
                          "rms": list(quantile_sample(0.028, 0.008, FILTERS))},
                "alexnet": {"dead": [1] * 6 + [0] * 42, "centroid_frequency": [0.2] * 25 + [0.1] * 17,
                            "above_nyquist": list(alex_above), "lattice": list(quantile_sample(0.029, 0.01, PROJECTIONS)),
                            "rms": list(quantile_sample(0.022, 0.006, FILTERS))}}
    metrics = {"zfnet": arch(0), "alexnet": arch(6, centroid_mid=(25, 42)), "evidence": evidence}
    result = claims.architecture(metrics, settings=SETTINGS)
    assert [v.verdict for v in result] == [REPRODUCED] * 4 + [NOT_RUN], result
    assert "6 of 48 vs 0 of 48" in result[0].evidence and "39 of 48 vs 25 of 42" in result[1].evidence
    assert all("margin" in v.evidence and "n = " in v.evidence for v in result[:4])
    no_evidence = claims.architecture({k: v for k, v in metrics.items() if k != "evidence"}, settings=SETTINGS)
    assert [v.verdict for v in no_evidence[:2]] == [REPRODUCED] * 2            # the counts are in the metrics too
    assert [v.verdict for v in no_evidence[2:4]] == [CANNOT_DECIDE] * 2        # no spreads in these metrics


def test_claims_on_untrained_banks_reproduce_nothing():
    # every filter at its init: the dead tests pass nearly all; one or two live filters by chance. (The lattice
    # share of projections is the same here: what untrained nets give there is the negative control's to show.)
    untrained = {"zfnet": arch(47, centroid_mid=(1, 1)), "alexnet": arch(46, centroid_mid=(0, 2)),
                 "evidence": {"mid_band": [1 / 6, 1 / 3],
                              "zfnet": {"dead": [1] * 47 + [0], "centroid_frequency": [0.25], "above_nyquist": [0.7],
                                        "lattice": list(quantile_sample(0.03, 0.01, 9)), "rms": [0.01] * 48},
                              "alexnet": {"dead": [1] * 46 + [0] * 2, "centroid_frequency": [0.4, 0.45],
                                          "above_nyquist": [0.93, 0.95], "lattice": list(quantile_sample(0.03, 0.01, 9)),
                                          "rms": [0.01] * 48}}}
    result = claims.architecture(untrained, settings=SETTINGS)
    assert REPRODUCED not in [v.verdict for v in result], result
    assert [v.verdict for v in result[1:3]] == [CANNOT_DECIDE] * 2      # 1 and 2 live filters: no interval


def test_the_no_renorm_claim_needs_its_checkpoint_and_its_filters():
    base = {"zfnet": arch(0), "alexnet": arch(6)}
    assert claims.architecture(base, settings=SETTINGS)[-1].verdict == NOT_RUN
    old = claims.architecture({**base, "zfnet_no_renorm_checkpoint": {"conv1_rms_max_over_median": 4.0}},
                              settings=SETTINGS)[-1]
    assert old.verdict == CANNOT_DECIDE and "per-filter RMS" in old.evidence
    evidence = {"zfnet": {"rms": list(quantile_sample(0.028, 0.008, FILTERS))},
                "zfnet_no_renorm_checkpoint": {"rms": [0.15] * 5 + list(quantile_sample(0.028, 0.008, 43))}}
    found = claims.architecture({**base, "zfnet_no_renorm_checkpoint": {}, "evidence": evidence}, settings=SETTINGS)
    assert found[-1].verdict == REPRODUCED
    assert [v.verdict for v in claims.architecture(None)] == [NOT_RUN] * 5


EPOCHS = ("epoch_001", "epoch_002", "epoch_004", "epoch_008", "epoch_012")


def evolution(distances):
    # keys inserted last-epoch first: the code must sort them
    return {layer: {"distance_to_last": dict(reversed(list(zip(EPOCHS, (*values, 0.0))))), "maps": [1, 2]}
            for layer, values in distances.items()}


# distances to the last snapshot; A = mean over the 4 before the last of distance / first distance:
#   conv1 .5 .2 .1 0 -> 0.40; conv2 2 1 .6 .4 -> 0.50; conv3 1 .6 .5 .3 -> 0.60; conv4 .4 .36 .24 .2 -> 0.75;
#   conv5 .3 .3 .3 .3 -> 1.00: perfect order with depth, in every snapshot
SETTLING = {"conv1": (0.5, 0.2, 0.1, 0.0), "conv2": (2.0, 1.0, 0.6, 0.4), "conv3": (1.0, 0.6, 0.5, 0.3),
            "conv4": (0.4, 0.36, 0.24, 0.2), "conv5": (0.3, 0.3, 0.3, 0.3)}


def test_lower_layers_converge_first_through_claims():
    found = claims.lower_layers_converge_first(evolution(SETTLING), "zfnet", settings=SETTINGS)
    assert found.verdict == REPRODUCED and found.subject == "zfnet", found
    assert found.evidence.startswith("A = conv1 0.40, conv2 0.50, conv3 0.60, conv4 0.75, conv5 1.00; rho = +1.00")
    reversed_ = dict(zip(claims.LAYERS, reversed(list(SETTLING.values()))))
    assert claims.lower_layers_converge_first(evolution(reversed_), "alexnet").verdict == NOT_REPRODUCED
    nan = evolution({**SETTLING, "conv3": (1.0, math.nan, 0.5, 0.3)})
    assert claims.lower_layers_converge_first(nan, "zfnet").verdict == CANNOT_DECIDE
    zero_first = evolution({**SETTLING, "conv2": (0.0, 0.0, 0.0, 0.0)})
    assert claims.lower_layers_converge_first(zero_first, "zfnet").verdict == CANNOT_DECIDE
    two_layers = evolution({k: SETTLING[k] for k in ("conv1", "conv2")})
    assert claims.lower_layers_converge_first(two_layers, "zfnet").verdict == CANNOT_DECIDE
    assert claims.lower_layers_converge_first(None, "zfnet").verdict == NOT_RUN
