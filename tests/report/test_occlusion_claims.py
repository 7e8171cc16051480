"""Fig. 7's rules on synthetic per-image evidence at our n (250 images): power, nulls, the floor, fallbacks.

Expected intervals come from scipy (a t interval, scipy.stats.bootstrap, a Clopper-Pearson interval), never from
the code under test; the effects are built with exact means (a centred noise vector plus the mean) so that each
case sits where its name says whatever the noise.
"""

import re

import numpy as np
import pytest
from scipy import stats as sp

from zfnet.report import claims
from zfnet.report.decision import Settings
from zfnet.report.occlusion_claims import LAYER5_SHARE_MARGIN, LOG_ODDS_FLOOR, drop_verdict, layer5_verdict
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNTRAINED_TOO

N = 250  # the default pipeline's occlusion.images
FLOOR = 0.693  # conf/report/default.yaml report.margins.occlusion_log_odds: ln 2


def exact_mean(rng, mean: float, sd: float, n: int = N) -> np.ndarray:
    noise = rng.normal(0.0, sd, n)
    return noise - noise.mean() + mean


def evidence(object_drop, background_drop, base=None) -> dict:
    """The stage's per-image evidence for log-odds drops (unoccluded minus the mean with the occluder there)."""
    base = np.full(len(object_drop), 6.0) if base is None else base
    return {"log_odds": list(base), "object_log_odds": list(base - object_drop),
            "background_log_odds": list(base - background_drop)}


def metrics(object_drop, background_drop) -> dict:
    return {"p_true_drop": {"object": 0.02, "background": 0.001, "images": len(object_drop)},
            "evidence": evidence(np.asarray(object_drop), np.asarray(background_drop))}


def t_interval(values: np.ndarray) -> tuple[float, float]:
    return sp.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sp.sem(values))


def test_the_floor_in_code_is_the_configured_one():
    assert LOG_ODDS_FLOOR == FLOOR and LAYER5_SHARE_MARGIN == 0.05


# ----------------------------------------------------------------------- object against background


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_real_effect_at_our_n_is_detected(seed):
    rng = np.random.default_rng(seed)
    on_object, background = exact_mean(rng, 1.2, 1.5), exact_mean(rng, 0.0, 0.3)
    low, _ = t_interval(on_object - background)
    assert low > FLOOR  # by scipy: the difference lies above the floor ...
    assert max(np.abs(t_interval(background))) < FLOOR  # ... and background stays inside it
    assert drop_verdict(metrics(on_object, background), "zfnet").verdict == REPRODUCED


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_drops_are_not_reproduced(seed):
    rng = np.random.default_rng(seed)
    on_object, background = exact_mean(rng, 0.3, 0.8), exact_mean(rng, 0.3, 0.8)
    assert t_interval(on_object - background)[1] < FLOOR
    assert drop_verdict(metrics(on_object, background), "zfnet").verdict == NOT_REPRODUCED


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tiny_positive_effect_below_the_floor_is_not_reproduced(seed):
    rng = np.random.default_rng(seed)
    on_object, background = exact_mean(rng, 0.3, 1.0), exact_mean(rng, 0.0, 0.3)
    difference = on_object - background
    assert sp.wilcoxon(difference, alternative="greater").pvalue < 1e-3  # a real effect ...
    assert 0 < t_interval(difference)[0] and t_interval(difference)[1] < FLOOR  # ... but below the floor
    verdict = drop_verdict(metrics(on_object, background), "zfnet")
    assert verdict.verdict == NOT_REPRODUCED and "wholly below the floor 0.693" in verdict.evidence


def test_an_effect_at_the_floor_cannot_be_decided():
    rng = np.random.default_rng(3)
    on_object, background = exact_mean(rng, FLOOR, 1.0), exact_mean(rng, 0.0, 0.3)
    verdict = drop_verdict(metrics(on_object, background), "zfnet")
    assert verdict.verdict == CANNOT_DECIDE and "reaches across the floor" in verdict.evidence


def test_background_that_drops_too_is_not_reproduced():
    rng = np.random.default_rng(4)
    on_object, background = exact_mean(rng, 3.0, 1.0), exact_mean(rng, 1.5, 1.0)
    assert t_interval(on_object - background)[0] > FLOOR and t_interval(background)[0] > FLOOR
    verdict = drop_verdict(metrics(on_object, background), "zfnet")
    assert verdict.verdict == NOT_REPRODUCED and "the CI lies wholly beyond the margin" in verdict.evidence


def test_a_noisy_background_cannot_be_decided():
    rng = np.random.default_rng(5)
    on_object, background = exact_mean(rng, 3.0, 1.0), exact_mean(rng, 0.6, 1.5)   # its CI reaches past 0.693
    lo, hi = t_interval(background)
    assert lo < FLOOR < hi
    assert drop_verdict(metrics(on_object, background), "zfnet").verdict == CANNOT_DECIDE


def test_the_evidence_text_gives_estimate_ci_floor_n_and_the_wilcoxon_p():
    rng = np.random.default_rng(6)
    on_object, background = exact_mean(rng, 0.8, 1.0), exact_mean(rng, 0.05, 0.3)
    difference = on_object - background
    text = drop_verdict(metrics(on_object, background), "alexnet").evidence
    expected = sp.bootstrap((difference,), np.mean, n_resamples=10_000, method="percentile",
                            random_state=np.random.default_rng(0)).confidence_interval
    found = re.search(r"object - background: estimate ([-+.\d]+), 95% CI \[([-+.\d]+), ([-+.\d]+)\]", text)
    assert float(found.group(1)) == pytest.approx(0.75, abs=5e-4)
    assert float(found.group(2)) == pytest.approx(expected.low, abs=0.01)
    assert float(found.group(3)) == pytest.approx(expected.high, abs=0.01)
    assert "margin ±0.693, n = 250" in text
    p = sp.wilcoxon(difference - FLOOR, alternative="greater").pvalue
    assert f"Wilcoxon signed-rank p = {p:.2g} " in text
    assert "background drop alone: estimate +0.050" in text and "mean drops of p(true) 0.0200" in text


def test_images_without_a_mask_are_left_out():
    rng = np.random.default_rng(7)
    on_object, background = exact_mean(rng, 1.2, 1.0), exact_mean(rng, 0.0, 0.3)
    data = metrics(on_object, background)
    for n in range(10):
        data["evidence"]["object_log_odds"][n] = None
    assert "n = 240" in drop_verdict(data, "zfnet").evidence


def test_the_floor_is_read_from_the_settings():
    rng = np.random.default_rng(8)
    on_object, background = exact_mean(rng, 0.3, 1.0), exact_mean(rng, 0.0, 0.3)
    lower = Settings(margins=(("occlusion_log_odds", 0.1),))
    assert t_interval(on_object - background)[0] > 0.1
    assert drop_verdict(metrics(on_object, background), "zfnet", lower).verdict == REPRODUCED


def test_without_evidence_the_drop_claim_cannot_be_decided():
    old = {"p_true_drop": {"object": 0.0184, "background": 0.0008, "images": 250}}
    verdict = drop_verdict(old, "zfnet")
    assert verdict.verdict == CANNOT_DECIDE and "no per-image evidence" in verdict.evidence
    assert "0.0184 on the object" in verdict.evidence
    assert drop_verdict(None, "zfnet").verdict == NOT_RUN
    no_masks = {"evidence": {"log_odds": [1.0] * 5, "object_log_odds": [None] * 5, "background_log_odds": [None] * 5}}
    assert drop_verdict(no_masks, "zfnet").verdict == CANNOT_DECIDE


# ----------------------------------------------------------------------- the strongest layer-5 map


def layer5(more: int, n: int = N) -> dict:
    """Evidence where covering drops the map more in `more` of `n` images."""
    covering = [0.3] * more + [0.1] * (n - more)
    return {"evidence": {"layer5_covering_drop": covering, "layer5_elsewhere_drop": [0.2] * n}}


def test_a_real_layer5_preference_is_detected_with_the_binomial_interval():
    verdict = layer5_verdict(layer5(175), "zfnet")          # 0.7 of 250
    cp = sp.binomtest(175, N).proportion_ci(0.95)            # Clopper-Pearson, by scipy
    assert cp.low > 0.5 and verdict.verdict == REPRODUCED
    low, high = (float(v) for v in re.search(r"CI \[([-+.\d]+), ([-+.\d]+)\]", verdict.evidence).groups())
    assert low + 0.5 == pytest.approx(cp.low, abs=0.015) and high + 0.5 == pytest.approx(cp.high, abs=0.015)
    assert "n = 250" in verdict.evidence and "margin ±0.050" in verdict.evidence


def test_no_layer5_preference_is_not_reproduced():
    half = layer5_verdict(layer5(125), "zfnet")
    assert half.verdict == CANNOT_DECIDE                    # CI about +-0.062 reaches past the margin 0.05
    assert layer5_verdict(layer5(100), "zfnet").verdict == NOT_REPRODUCED   # 0.4: below one half
    assert layer5_verdict(layer5(1250, n=2500), "zfnet").verdict == NOT_REPRODUCED  # a tight CI inside the margin


def test_a_tie_is_not_a_larger_drop():
    covering = [0.3] * 125 + [0.2] * 125       # half drop more, half exactly as much as elsewhere
    tied = {"evidence": {"layer5_covering_drop": covering, "layer5_elsewhere_drop": [0.2] * N}}
    verdict = layer5_verdict(tied, "zfnet")
    assert "estimate +0.000" in verdict.evidence and verdict.verdict == CANNOT_DECIDE


def test_without_evidence_the_layer5_share_comes_from_the_metrics():
    old = {"layer5_map_drop": {"share_of_images_where_covering_drops_more": 0.7, "images_covered": 250}}
    verdict = layer5_verdict(old, "zfnet")
    assert verdict.verdict == REPRODUCED and "from the metrics' share and count" in verdict.evidence
    odd = {"layer5_map_drop": {"share_of_images_where_covering_drops_more": 0.7013, "images_covered": 250}}
    assert layer5_verdict(odd, "zfnet").verdict == CANNOT_DECIDE     # not a count of images
    assert layer5_verdict({}, "zfnet").verdict == CANNOT_DECIDE
    assert layer5_verdict(None, "zfnet").verdict == NOT_RUN


def test_claims_occlusion_gives_both_claims_with_the_settings():
    rng = np.random.default_rng(9)
    data = metrics(exact_mean(rng, 0.3, 1.0), exact_mean(rng, 0.0, 0.3))
    data["evidence"].update(layer5(175)["evidence"])
    drop, share = claims.occlusion(data, "zfnet")
    assert (drop.verdict, share.verdict) == (NOT_REPRODUCED, REPRODUCED)
    lower = Settings(margins=(("occlusion_log_odds", 0.1),))
    assert claims.occlusion(data, "zfnet", settings=lower)[0].verdict == REPRODUCED


# ----------------------------------------------------------------------- the negative control (an untrained net)


def with_untrained(trained: dict, untrained: dict) -> dict:
    """Metrics shaped as the report merges them: the stage's `untrained` block, its columns under evidence.untrained."""
    block = {key: value for key, value in untrained.items() if key != "evidence"}
    return {**trained, "untrained": block, "evidence": {**trained["evidence"], "untrained": untrained["evidence"]}}


def both_claims(object_drop, background_drop, more: int) -> dict:
    data = metrics(object_drop, background_drop)
    data["evidence"].update(layer5(more)["evidence"])
    return data


def test_a_claim_the_untrained_net_reproduces_too_is_not_counted():
    rng = np.random.default_rng(10)
    trained = both_claims(exact_mean(rng, 1.2, 1.5), exact_mean(rng, 0.0, 0.3), 175)
    untrained = both_claims(exact_mean(rng, 1.3, 1.5), exact_mean(rng, 0.0, 0.3), 180)
    alone = claims.occlusion(trained, "zfnet")
    assert [v.verdict for v in alone] == [REPRODUCED, REPRODUCED]
    assert all("no negative control" in v.evidence for v in alone)
    controlled = claims.occlusion(with_untrained(trained, untrained), "zfnet")
    assert [v.verdict for v in controlled] == [UNTRAINED_TOO, UNTRAINED_TOO]
    assert all("; untrained: " in v.evidence for v in controlled)


def test_a_claim_only_the_trained_net_reproduces_stands():
    """The untrained net as it is: p(true) near 1/classes, log-odds barely move, covering the projection no better
    than elsewhere (half the images)."""
    rng = np.random.default_rng(11)
    trained = both_claims(exact_mean(rng, 1.2, 1.5), exact_mean(rng, 0.0, 0.3), 175)
    untrained = both_claims(exact_mean(rng, 0.01, 0.02), exact_mean(rng, 0.0, 0.02), 100)
    drop, share = claims.occlusion(with_untrained(trained, untrained), "zfnet")
    assert (drop.verdict, share.verdict) == (REPRODUCED, REPRODUCED)
    assert "untrained (control): not reproduced" in drop.evidence
    assert "untrained (control): not reproduced" in share.evidence


def test_each_claim_meets_its_own_control():
    """The untrained net reproduces the layer-5 claim only: that one is not counted, the drop claim stands."""
    rng = np.random.default_rng(12)
    trained = both_claims(exact_mean(rng, 1.2, 1.5), exact_mean(rng, 0.0, 0.3), 175)
    untrained = both_claims(exact_mean(rng, 0.01, 0.02), exact_mean(rng, 0.0, 0.02), 190)
    drop, share = claims.occlusion(with_untrained(trained, untrained), "zfnet")
    assert (drop.verdict, share.verdict) == (REPRODUCED, UNTRAINED_TOO)


def test_without_per_image_evidence_the_control_judges_from_its_metrics_block():
    trained = {"layer5_map_drop": {"share_of_images_where_covering_drops_more": 0.7, "images_covered": 250},
               "untrained": {"layer5_map_drop": {"share_of_images_where_covering_drops_more": 0.72,
                                                 "images_covered": 250}}}
    assert claims.occlusion(trained, "zfnet")[1].verdict == UNTRAINED_TOO
