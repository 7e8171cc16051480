"""Each claim of the paper judged from small hand-made metrics dicts (the shapes of metrics/<stage>.json)."""

import math

import pytest

from zfnet.report import claims
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, NOT_RUN, REPRODUCED

NAN = float("nan")

# printed in the paper (Fig. 3 / Sec. 4 / Table 3), not read from the code
PAPER_PARAMETERS = {"zfnet": 62_357_608, "alexnet": 60_965_224, "zfnet_big": 107_627_624}


def verdicts(items):
    return [v.verdict for v in items]


# ----------------------------------------------------------------------- Fig. 3: parameters


def test_models_at_the_paper_size_have_the_papers_parameter_counts():
    assert claims.paper_size_parameters() == PAPER_PARAMETERS


def test_parameter_counts():
    assert verdicts(claims.parameter_counts(dict(PAPER_PARAMETERS))) == [REPRODUCED] * 3
    wrong = claims.parameter_counts({**PAPER_PARAMETERS, "alexnet": 60_965_225})
    by_subject = {v.subject: v for v in wrong}
    assert by_subject["alexnet"].verdict == NOT_REPRODUCED and by_subject["alexnet"].evidence == "ours 60,965,225"
    assert by_subject["zfnet"].verdict == by_subject["zfnet_big"].verdict == REPRODUCED
    missing = {v.subject: v for v in claims.parameter_counts({"zfnet": 62_357_608})}
    assert missing["alexnet"].verdict == CANNOT_DECIDE


# ----------------------------------------------------------------------- Fig. 4: evolution
# tests/report/test_architecture_claims.py (the exact permutation test of 5 layers, through claims too)


# ----------------------------------------------------------------------- Fig. 5: invariance


# the rules, their power and the untrained control: tests/report/test_invariance_claims.py


# ----------------------------------------------------------------------- Fig. 6: architecture
# tests/report/test_architecture_claims.py (independent filter banks: power at 48 filters, nulls, through claims)


# ----------------------------------------------------------------------- Fig. 7: occlusion


def test_occlusion():
    # the rules in detail, with power and nulls at n = 250: tests/report/test_occlusion_claims.py
    old = {"p_true_drop": {"object": 0.02, "background": 0.0008, "images": 100},  # metrics without the evidence
           "layer5_map_drop": {"share_of_images_where_covering_drops_more": 0.7, "images_covered": 100}}
    drop, share = claims.occlusion(old, "zfnet")
    assert drop.verdict == CANNOT_DECIDE and "no per-image evidence" in drop.evidence   # twice background is no test
    assert share.verdict == REPRODUCED and "n = 100" in share.evidence
    assert verdicts(claims.occlusion(None, "zfnet")) == [NOT_RUN] * 2


# ----------------------------------------------------------------------- Table 1: correspondence
# tests/report/test_correspondence_claims.py (the per-pair rule, its fallback and missing numbers)


# ----------------------------------------------------------------------- Tables 2, 3: errors


def test_zf_beats_alexnet():
    # paper 40.5 -> 38.4 (a decrease); ours 3.8 -> 1.6 on 500 images without per-image evidence: Newcombe's
    # interval [-4.40, -0.16] points (test_rules.py works it out) excludes zero on the paper's side
    v = claims.zf_beats_alexnet({"val_top1_error_10crop": 0.016}, {"val_top1_error_10crop": 0.038}, 500)
    assert v.verdict == REPRODUCED and "ours 3.8 -> 1.6 (no per-image evidence)" in v.evidence, v
    assert claims.zf_beats_alexnet({"val_top1_error_10crop": 0.038}, {"val_top1_error_10crop": 0.016}, 500
                                   ).verdict == NOT_REPRODUCED
    assert claims.zf_beats_alexnet(None, {"val_top1_error_10crop": 0.038}, 500).verdict == NOT_RUN


def trained(wrong: int, images: int = 500, evidence: bool = True) -> dict:
    """A train stage's metrics, with the per-image evidence the report merges in: wrong on the first `wrong` images."""
    metrics = {"val_top1_error_10crop": wrong / images}
    if evidence:
        metrics["evidence"] = {"images": images, "top1_correct": correct_but(range(wrong), images)}
    return metrics


def correct_but(wrong, n=500) -> list[int]:
    return [0 if i in set(wrong) else 1 for i in range(n)]


def test_zf_beats_alexnet_pairs_the_images_of_the_train_stages_evidence():
    # 4.0% -> 3.0%, ZF missing only images AlexNet misses too: 5 discordant images, all one way. Unpaired the change
    # cannot be told from zero; paired it is -1 +- 0.87 points (SE sqrt(.01 * .99 / 500) = .445)
    assert claims.zf_beats_alexnet(trained(15, evidence=False), trained(20, evidence=False), 500).verdict == CANNOT_DECIDE
    paired = claims.zf_beats_alexnet(trained(15), trained(20), 500)
    assert paired.verdict == REPRODUCED and "McNemar p = 0.062: 5 images only the first model misses" in paired.evidence
    one_side = claims.zf_beats_alexnet(trained(15), trained(20, evidence=False), 500)   # evidence of one model only
    assert one_side.verdict == CANNOT_DECIDE and "no per-image evidence" in one_side.evidence


def test_ensembles():
    # paper 38.4 -> 36.7 and 36.7 -> 36.0: both beyond 1.96 SE (.60) of 50,000 images, decreases.
    # Without evidence, on 1000 images (the table's own count wins over val_images): .10 -> .05 is -5 points,
    # Newcombe about [-7.4, -2.6]: reproduced; .05 -> .05 is 0 +- 1.9: cannot decide (beyond the 1-point margin)
    table2 = {"images": 1000, "entries": {"zf": {"val_top1_error": 0.10}, "zf_x5": {"val_top1_error": 0.05},
                                          "zf_x5_and_big": {"val_top1_error": 0.05}}}
    five, six = claims.ensembles(table2, 10)
    assert five.verdict == REPRODUCED and "n = 1000" in five.evidence, five
    assert six.verdict == CANNOT_DECIDE
    assert claims.ensembles({"entries": table2["entries"]}, 10)[0].verdict == CANNOT_DECIDE  # n = 10: far too wide
    assert verdicts(claims.ensembles(None, 500)) == [NOT_RUN] * 2


def ensemble_table(seed_errors, ensemble_wrong, big_wrong, seeds=True):
    """table2.json with its evidence: 5 ZF runs wrong on their first k images, the ensembles on theirs."""
    runs = {f"zfnet_seed{i}" if i else "zfnet": k for i, k in enumerate(seed_errors)}
    members = list(runs)
    evidence = {"images": 500, "runs": {run: {"top1_correct": correct_but(range(k))} for run, k in runs.items()},
                "entries": {"zf": {"members": ["zfnet"], "top1_correct": correct_but(range(seed_errors[0]))},
                            "zf_x5": {"members": members, "top1_correct": correct_but(range(ensemble_wrong))},
                            "zf_x5_and_big": {"members": [*members, "zfnet_big"],
                                              "top1_correct": correct_but(range(big_wrong))}},
                "seeds": {"zfnet": members} if seeds else {}}
    return {"images": 500, "evidence": evidence,
            "entries": {"zf": {"val_top1_error": seed_errors[0] / 500}, "zf_x5": {"val_top1_error": ensemble_wrong / 500},
                        "zf_x5_and_big": {"val_top1_error": big_wrong / 500}}}


def test_ensembles_resample_the_seeds_of_one_zf_net():
    """One ZF net is each of the 5 seeds alone: 8% for seed 0, but 1 to 9% over the seeds. The ensemble's 4% is
    4 points below seed 0 (paired: reproduced), yet only 1.2 below the seeds' mean of 5.2%, with their spread."""
    table2 = ensemble_table([40, 5, 45, 10, 30], ensemble_wrong=20, big_wrong=20)
    alone = claims.ensembles(ensemble_table([40, 5, 45, 10, 30], 20, 20, seeds=False), 500)[0]
    assert alone.verdict == REPRODUCED and "paired percentile bootstrap" in alone.evidence, alone
    five, six = claims.ensembles(table2, 500)
    assert five.verdict == CANNOT_DECIDE, five
    assert "first over 5 seeds: 8.0, 1.0, 9.0, 2.0, 6.0" in five.evidence
    assert "percentile bootstrap of 5 and 1 seeds" in five.evidence
    # the two ensembles are one run each and agree on every image: the change is exactly 0, inside the margin
    assert six.verdict == NOT_REPRODUCED and "[+0.00 pt, +0.00 pt]" in six.evidence, six
    agreeing = claims.ensembles(ensemble_table([40, 40, 40, 40, 40], 20, 20), 500)[0]
    assert agreeing.verdict == REPRODUCED, agreeing       # seeds that agree: the paired verdict stands


def table3(values, not_run=(), evidence=None):
    result = {"not_run": list(not_run), "rows": {k: {"ours": {"val_top1": v}} for k, v in values.items()}}
    if evidence is not None:
        result["evidence"] = evidence
    return result


def test_ablations():
    from zfnet import paper

    rows = paper.numbers("table3_ablations")["rows"]
    compared = [k for k, row in rows.items() if row["base"] != k]
    assert len(compared) == 10
    assert verdicts(claims.ablations(None, 500)) == [NOT_RUN] * 10
    assert [v.subject for v in claims.ablations(None, 500)] == compared

    # every row as its base, image by image (the same 25 images wrong): the change is exactly 0. The paper's
    # direction rows are not reproduced (no change of note), its no-change rows (|change| <= 0.5) reproduced
    ours = {k: 5.0 for k in rows}
    same = {"runs": {k: {"top1_correct": correct_but(range(25))} for k in rows}, "seeds": {}}
    result = {v.subject: v for v in claims.ablations(table3(ours, evidence=same), 500)}
    assert len(result) == 10
    assert result["alexnet_no34"].verdict == NOT_REPRODUCED             # paper +4.9
    assert result["alexnet_no7"].verdict == REPRODUCED                  # paper -0.5: within its noise
    assert {k for k, v in result.items() if v.verdict == REPRODUCED} == {"alexnet_no7", "alexnet_fc8192",
                                                                        "zfnet_fc8192", "zfnet_big_fc8192"}
    assert result["alexnet_no34"].claim == "Replication of Krizhevsky, 1 convnet -> removed layers 3,4: val top-1 +4.9"
    # without the evidence 5.0 -> 5.0 is 0 +- 2.7 points (Newcombe): nothing can be decided
    assert set(verdicts(claims.ablations(table3(ours), 500))) == {CANNOT_DECIDE}

    # ours in percent already (table3.json): 5.0 -> 15.0 on 500 images, Newcombe about [+6.4, +13.6]
    up = {v.subject: v for v in claims.ablations(table3({**ours, "alexnet_no34": 15.0}), 500)}
    assert up["alexnet_no34"].verdict == REPRODUCED and "ours 5.0 -> 15.0" in up["alexnet_no34"].evidence

    one_missing = {k: v for k, v in ours.items() if k != "zfnet_fc2048"}
    result = {v.subject: v.verdict for v in claims.ablations(table3(one_missing, evidence=same), 500)}
    assert result["zfnet_fc2048"] == CANNOT_DECIDE and sum(v == CANNOT_DECIDE for v in result.values()) == 1

    # a base row the pipeline did not run (listed in not_run, no value): its rows were not run either
    without_zf = {k: v for k, v in ours.items() if k != "zfnet"}
    base_missing = {v.subject: v.verdict for v in claims.ablations(table3(without_zf, not_run=["zfnet"]), 500)}
    assert [k for k, v in base_missing.items() if v == NOT_RUN] == ["zfnet_fc2048", "zfnet_fc8192", "zfnet_big",
                                                                    "zfnet_big_fc8192"]


def test_ablations_resample_the_base_row_s_seeds():
    # ZF (1.6%, seed 0) and one more seed at 9%: the ZF rows are compared with both, the AlexNet rows are not
    runs = {"zfnet": correct_but(range(8)), "zfnet_seed1": correct_but(range(45)),
            "zfnet_fc2048": correct_but(range(10)), "alexnet": correct_but(range(19)), "alexnet_no7": correct_but(range(20))}
    evidence = {"runs": {k: {"top1_correct": v} for k, v in runs.items()},
                "seeds": {"zfnet": ["zfnet", "zfnet_seed1"], "zfnet_seed1": ["zfnet_seed1", "zfnet"]}}
    values = {"zfnet": 1.6, "zfnet_fc2048": 2.0, "alexnet": 3.8, "alexnet_no7": 4.0, "zfnet_big": 1.0}
    result = {v.subject: v for v in claims.ablations(table3(values, evidence=evidence), 500)}
    assert "first over 2 seeds: 1.6, 9.0" in result["zfnet_fc2048"].evidence, result["zfnet_fc2048"]
    assert "McNemar p = " in result["alexnet_no7"].evidence and "seeds" not in result["alexnet_no7"].evidence
    assert "no per-image evidence" in result["zfnet_big"].evidence     # a run that saved none: unpaired


# ----------------------------------------------------------------------- absolute numbers
# (the transfer claims, Tables 4-7 and Fig. 9: tests/report/test_transfer_claims.py)


def test_absolute():
    assert claims.absolute("c", "s", 0.40, 38.4, real_data=False, ran=True).verdict == NOT_RUN
    within = claims.absolute("c", "s", 0.40, 38.4, real_data=True, ran=True)     # |40 - 38.4| = 1.6 <= 3
    assert within.verdict == REPRODUCED and within.evidence == "ours 40.0, paper 38.4"
    assert claims.absolute("c", "s", 0.42, 38.4, real_data=True, ran=True).verdict == NOT_REPRODUCED   # 3.6 > 3
    assert claims.absolute("c", "s", 0.35, 38.4, real_data=True, ran=True).verdict == NOT_REPRODUCED   # 3.4 > 3
    assert claims.absolute("c", "s", 0.42, 38.4, real_data=True, ran=True, tolerance=4).verdict == REPRODUCED
    assert claims.absolute("c", "s", NAN, 38.4, real_data=True, ran=True).verdict == CANNOT_DECIDE
    assert claims.absolute("c", "s", None, 38.4, real_data=True, ran=False).verdict == NOT_RUN


def test_absolute_error_rate_is_judged_by_its_interval():
    """An error rate with the images behind both numbers: Newcombe's CI of ours minus the paper's, inside the
    3-point margin or not. Wilson bounds from scipy, combined by hand."""
    from scipy.stats import binomtest

    def newcombe(k_ours, n_ours, k_paper, n_paper):
        (lo, uo), (lp, up) = (binomtest(k, n).proportion_ci(method="wilson") for k, n in ((k_ours, n_ours), (k_paper, n_paper)))
        po, pp = k_ours / n_ours, k_paper / n_paper
        return po - pp - math.hypot(po - lo, up - pp), po - pp + math.hypot(uo - po, pp - lp)

    def judged(ours, images):
        return claims.absolute("c", "s", ours, 38.4, real_data=True, ran=True, images=images, paper_images=50_000)

    assert claims.absolute("c", "s", 0.40, 38.4, real_data=False, ran=True, images=500, paper_images=50_000
                           ).verdict == NOT_RUN
    near = judged(0.40, 50_000)             # +1.6, about +-0.6: inside +-3
    assert near.verdict == REPRODUCED and "ours 40.0 on 50,000 images, paper 38.4 on 50,000" in near.evidence, near
    low, high = newcombe(20_000, 50_000, 19_200, 50_000)
    assert f"[{100 * low:+.2f} pt, {100 * high:+.2f} pt]" in near.evidence
    assert judged(0.45, 50_000).verdict == NOT_REPRODUCED     # +6.6, wholly beyond 3
    low, high = newcombe(200, 500, 19_200, 50_000)            # the same +1.6 on 500 images: [-2.6, +6.0]
    few = judged(0.40, 500)
    assert few.verdict == CANNOT_DECIDE and f"[{100 * low:+.2f} pt, {100 * high:+.2f} pt]" in few.evidence, few
    assert judged(NAN, 500).verdict == CANNOT_DECIDE


@pytest.mark.parametrize("model", ["zfnet", "alexnet"])
def test_every_claim_without_metrics_is_not_run(model):
    everything = [claims.lower_layers_converge_first(None, model), *claims.invariance(None, model),
                  *claims.occlusion(None, model), *claims.correspondence(None, model),
                  claims.pretrained_beats_scratch(None, model, "caltech101"),
                  *claims.rises_with_depth(None, model, "caltech101"), claims.beats_prior_best(None, model, False)]
    assert set(verdicts(everything)) == {NOT_RUN}
