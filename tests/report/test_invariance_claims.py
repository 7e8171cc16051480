"""Fig. 5's rules on synthesized per-image evidence at our n (150 images, the default `invariance.images`).

Samples are deterministic: a mean plus a standard deviation times the normal quantiles (i + 1/2) / n, so a null
effect has a mean of exactly 0 (no lucky seed) and the expected CI is the normal one, mean +- 1.96 s / sqrt(n),
computed here with numpy and the standard library."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import pytest

from zfnet.report import claims
from zfnet.report.decision import Settings
from zfnet.report.invariance_claims import (
    CLAIM_I,
    CLAIM_II,
    CLAIM_III_GEOMETRY,
    CLAIM_III_NETWORK,
    group_difference,
    paired_change,
    verdicts,
)
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNTRAINED_TOO

N, SYMMETRIC = 150, 50            # images; of them, the first 50 of symmetric classes
SETTINGS = Settings(resamples=2000)
Z = 1.959963984540054             # the normal 97.5% quantile


def sample(mean: float, sd: float, n: int = N, reverse: bool = False) -> np.ndarray:
    z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    return mean + sd * (z[::-1] if reverse else z)


def net(layer_gap=-0.1, contrast=0.1, drop=0.0, kept=0.2, recovery=0.1) -> dict:
    """One net's per-image evidence with the given effects (each a mean over images): layer 7 minus layer 1
    (`layer_gap`, sd 0.3); p(true) under translation / scale minus rotated, asymmetric classes (`contrast`, sd 0.3);
    minus untransformed (`drop`, sd 0.05); rotated p(true), symmetric classes minus the others (`kept`); at minus
    between the symmetry angles, symmetric classes (`recovery`, sd 0.2)."""
    base = np.full(N, 0.8)
    moved = base + sample(drop, 0.05, reverse=True)
    rotated = moved.copy()
    rotated[SYMMETRIC:] = moved[SYMMETRIC:] - sample(contrast, 0.3, N - SYMMETRIC)
    rotated[:SYMMETRIC] = rotated[SYMMETRIC:].mean() + kept + sample(0.0, 0.1, SYMMETRIC)
    layer1 = sample(0.6, 0.1)
    at, between = np.full(N, 0.5), np.full(N, 0.5)
    at[:SYMMETRIC] = between[:SYMMETRIC] + sample(recovery, 0.2, SYMMETRIC)
    return {"base_p_true": base.tolist(),
            "small_change": {k: {"layer1": layer1.tolist(), "layer7": (layer1 + sample(layer_gap, 0.3, reverse=True)).tolist()}
                             for k in ("translation", "scale")},
            "p_true": {"translation": moved.tolist(), "scale": moved.tolist(), "rotated": rotated.tolist()},
            "symmetry": {"at": at.tolist(), "between": between.tolist()}}


def metrics(trained: dict, untrained: dict | None = None, symmetric: bool = True) -> dict:
    evidence = {**trained, "images": N, "symmetric": [int(i < SYMMETRIC) for i in range(N)] if symmetric else None}
    if untrained is not None:
        evidence["untrained"] = untrained
    return {"images": N, "rotation": {"symmetry": {} if symmetric else None}, "evidence": evidence}


def flat(**effects) -> dict:
    """A net with no effect at all: what an untrained net's near-uniform output gives."""
    return net(**{"layer_gap": 0.0, "contrast": 0.0, "kept": 0.0, "recovery": 0.0, **effects})


def by_claim(result) -> dict:
    return {v.claim: v for v in result}


# ----------------------------------------------------------------------- intervals


def test_paired_change_is_the_normal_interval_of_the_mean_change_at_our_n():
    before, change = sample(0.5, 0.1), sample(-0.1, 0.3, reverse=True)
    interval = paired_change(before, before + change, SETTINGS)
    half = Z * change.std(ddof=1) / math.sqrt(N)
    assert interval.estimate == pytest.approx(change.mean()) and interval.n == N
    assert interval.low == pytest.approx(change.mean() - half, abs=0.1 * half)
    assert interval.high == pytest.approx(change.mean() + half, abs=0.1 * half)


def test_paired_change_leaves_out_unknown_images_and_needs_two():
    before, after = np.array([0.1, np.nan, 0.3, 0.2]), np.array([0.2, 0.5, np.nan, 0.4])
    assert paired_change(before, after, SETTINGS).n == 2          # images 0 and 3
    assert math.isnan(paired_change(before[:3], after[:3], SETTINGS).low)
    assert math.isnan(paired_change(None, after, SETTINGS).low)


def test_group_difference_is_the_two_sample_interval():
    values = np.concatenate([sample(0.7, 0.2, SYMMETRIC), sample(0.4, 0.2, N - SYMMETRIC)])
    inside = np.arange(N) < SYMMETRIC
    interval = group_difference(values, inside, SETTINGS)
    a, b = values[inside], values[~inside]
    half = Z * math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)     # Welch's standard error
    assert interval.estimate == pytest.approx(0.3) and interval.n == N
    assert interval.low == pytest.approx(0.3 - half, abs=0.1 * half)
    assert interval.high == pytest.approx(0.3 + half, abs=0.1 * half)
    assert math.isnan(group_difference(values, np.arange(N) < 1, SETTINGS).low)   # one image in a group
    # two groups holding the same values: the groups are resampled independently, so the CI still has Welch's width
    same = np.concatenate([sample(0.5, 0.2, 75), sample(0.5, 0.2, 75)])
    interval = group_difference(same, np.arange(N) < 75, SETTINGS)
    half = Z * math.sqrt(2 * same[:75].var(ddof=1) / 75)
    assert interval.estimate == pytest.approx(0.0, abs=1e-12)
    assert interval.low == pytest.approx(-half, abs=0.1 * half) and interval.high == pytest.approx(half, abs=0.1 * half)


# ----------------------------------------------------------------------- power: real effects and nulls at our n


def test_real_effects_at_our_n_are_reproduced():
    result = by_claim(verdicts(metrics(net(), flat()), "zfnet", SETTINGS))
    assert [result[c].verdict for c in (CLAIM_I, CLAIM_II, CLAIM_III_NETWORK, CLAIM_III_GEOMETRY)] == [REPRODUCED] * 4


@pytest.mark.parametrize("claim, effect", [
    (CLAIM_I, {"layer_gap": 0.0}),
    (CLAIM_II, {"contrast": 0.0}),         # translation keeps p(true) no better than rotation: the point 2
    (CLAIM_III_NETWORK, {"kept": 0.0}),
    (CLAIM_III_GEOMETRY, {"recovery": 0.0}),
])
def test_a_null_effect_is_not_reproduced(claim, effect):
    verdict = by_claim(verdicts(metrics(net(**effect), flat()), "zfnet", SETTINGS))[claim]
    assert verdict.verdict in (NOT_REPRODUCED, CANNOT_DECIDE)


@pytest.mark.parametrize("claim, effect", [
    (CLAIM_I, {"layer_gap": +0.1}),        # layer 7 changes more
    (CLAIM_II, {"contrast": -0.1}),        # rotation keeps p(true) better
    (CLAIM_III_NETWORK, {"kept": -0.2}),
    (CLAIM_III_GEOMETRY, {"recovery": -0.1}),
])
def test_a_reversed_effect_is_not_reproduced(claim, effect):
    verdict = by_claim(verdicts(metrics(net(**effect), flat()), "zfnet", SETTINGS))[claim]
    assert verdict.verdict == NOT_REPRODUCED and "excludes zero on the other side" in verdict.evidence


def test_stays_high_needs_p_true_within_the_margin_of_the_untransformed_image():
    # a mean drop of 0.3 (the contrast with rotation still there): beyond the 0.1 margin
    dropped = by_claim(verdicts(metrics(net(drop=-0.3), flat()), "zfnet", SETTINGS))[CLAIM_II]
    assert dropped.verdict == NOT_REPRODUCED and "the CI lies wholly beyond the margin" in dropped.evidence
    # the margin comes from report.margins
    strict = Settings(resamples=2000, margins=(("invariance_p_true_drop", 0.01),))
    assert by_claim(verdicts(metrics(net(drop=-0.05), flat()), "zfnet", strict))[CLAIM_II].verdict == NOT_REPRODUCED
    assert by_claim(verdicts(metrics(net(drop=-0.05), flat()), "zfnet", SETTINGS))[CLAIM_II].verdict == REPRODUCED


# ----------------------------------------------------------------------- the negative control


def test_a_claim_the_untrained_net_shows_too_is_not_counted():
    result = by_claim(verdicts(metrics(net(), untrained=net()), "zfnet", SETTINGS))
    assert {c: v.verdict for c, v in result.items()} == {c: UNTRAINED_TOO for c in result}
    assert "; untrained: " in result[CLAIM_III_GEOMETRY].evidence


def test_only_the_claims_the_untrained_net_shows_are_not_counted():
    # the untrained net "recovers" at the symmetry angles (geometry) and nothing else
    result = by_claim(verdicts(metrics(net(), untrained=flat(recovery=0.1)), "zfnet", SETTINGS))
    assert result[CLAIM_III_GEOMETRY].verdict == UNTRAINED_TOO
    assert [result[c].verdict for c in (CLAIM_I, CLAIM_II, CLAIM_III_NETWORK)] == [REPRODUCED] * 3
    assert "untrained net (the negative control): not reproduced" in result[CLAIM_I].evidence


def test_a_flat_untrained_net_keeps_p_true_but_fails_the_contrast():
    """An output that ignores the image keeps p(true) where it was (ii)(b) but not above rotation (ii)(a)."""
    result = by_claim(verdicts(metrics(flat(), flat()), "zfnet", SETTINGS))
    ii = result[CLAIM_II]
    assert ii.verdict in (NOT_REPRODUCED, CANNOT_DECIDE)
    assert re.search(r"minus rotated, asymmetric classes: estimate [+-]0\.000", ii.evidence)
    assert re.search(r"p\(true\) translation minus untransformed: estimate [+-]0\.000.*the CI lies inside the margin",
                     ii.evidence)


def test_without_an_untrained_block_the_evidence_says_so():
    verdict = verdicts(metrics(net()), "zfnet", SETTINGS)[0]
    assert verdict.verdict == REPRODUCED and verdict.evidence.endswith("no untrained control in the evidence")


# ----------------------------------------------------------------------- evidence text and missing input


def test_each_comparison_shows_estimate_ci_margin_and_n():
    result = by_claim(verdicts(metrics(net(), flat()), "zfnet", SETTINGS))
    text = result[CLAIM_I].evidence
    assert text.startswith("translation, layer 7 minus layer 1: estimate -0.100, 95% CI [")
    assert text.count("margin ±0.050, n = 150") == 2    # translation and scale
    ii = result[CLAIM_II].evidence
    assert "asymmetric classes: estimate +0.100" in ii and "n = 100" in ii and "margin ±0.100, n = 150" in ii
    assert "symmetric classes minus the others: estimate +0.200" in result[CLAIM_III_NETWORK].evidence
    assert "n = 50" in result[CLAIM_III_GEOMETRY].evidence and result[CLAIM_III_GEOMETRY].claim.startswith("geometry")


def test_a_part_that_cannot_decide_makes_the_claim_cannot_decide():
    evidence = net()
    evidence["small_change"]["scale"] = None       # scale had no small steps
    assert verdicts(metrics(evidence, flat()), "zfnet", SETTINGS)[0].verdict == CANNOT_DECIDE


def test_missing_input():
    assert [v.verdict for v in verdicts(None, "zfnet")] == [NOT_RUN] * 4
    old = verdicts({"translation": {"output": {"mean_p_true": 0.87}}, "rotation": {"symmetry": {}}}, "zfnet")
    assert [v.verdict for v in old] == [CANNOT_DECIDE] * 4
    assert "no per-image evidence" in old[0].evidence and "mean p(true) 0.87" in old[0].evidence
    imagenet = verdicts({"rotation": {"symmetry": None}}, "zfnet")
    assert [v.verdict for v in imagenet] == [CANNOT_DECIDE, CANNOT_DECIDE, NOT_RUN, NOT_RUN]


def test_without_class_symmetries_ii_uses_every_image_and_iii_is_not_run():
    result = verdicts(metrics(net(), flat(), symmetric=False), "zfnet", SETTINGS)
    assert [v.verdict for v in result[2:]] == [NOT_RUN, NOT_RUN]
    assert "all images (the data names no symmetries)" in result[1].evidence and "n = 150" in result[1].evidence


def test_the_report_calls_these_rules_with_its_settings():
    strict = Settings(resamples=2000, margins=(("invariance_p_true_drop", 0.01),))
    assert claims.invariance(metrics(net(drop=-0.05), flat()), "zfnet", settings=strict)[1].verdict == NOT_REPRODUCED


def test_the_fig5_section_shows_the_untrained_rows_and_uses_the_configs_margins(tmp_path):
    from zfnet.report.sections import Results, build_sections

    inv = metrics(net(drop=-0.05), flat())
    inv["translation"] = {"small_change": {"layer1": 0.6, "layer7": 0.3}, "output": {"mean_p_true": 0.87}}
    inv["untrained"] = {"translation": {"small_change": {"layer1": 0.5, "layer7": 0.4}, "output": {"mean_p_true": 0.1}}}
    config = {"data": {"name": "synthetic"}, "visualize": {"models": ["zfnet"]},
              "report": {"statistics": {"resamples": 2000}, "margins": {"invariance_p_true_drop": 0.01}}}
    (fig5,) = [s for s in build_sections(Results(metrics={"invariance_zfnet": inv}, plots=tmp_path, config=config,
                                                   parameters={})) if s.id == "fig5"]
    rows = fig5.tables[0].rows
    assert ["zfnet", "translation", "0.60", "0.30", "0.87"] in rows
    assert ["zfnet untrained (control)", "translation", "0.50", "0.40", "0.10"] in rows
    assert fig5.verdicts[1].claim == CLAIM_II and fig5.verdicts[1].verdict == NOT_REPRODUCED   # margin 0.01, not 0.1
