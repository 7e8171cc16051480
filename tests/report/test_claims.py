"""Each claim of the paper judged from small hand-made metrics dicts (the shapes of metrics/<stage>.json)."""

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

EPOCHS = ("epoch_001", "epoch_002", "epoch_004", "epoch_008", "epoch_012")

# distances to the last snapshot; A = mean over the 4 before the last of distance / first distance:
#   conv1 .5 .2 .1 0      -> (1 + .4 + .2 + 0) / 4   = 1.6 / 4 = 0.40
#   conv2 2 1 .6 .4       -> (1 + .5 + .3 + .2) / 4  = 2.0 / 4 = 0.50
#   conv3 1 .6 .5 .3      -> (1 + .6 + .5 + .3) / 4  = 2.4 / 4 = 0.60
#   conv4 .4 .36 .24 .2   -> (1 + .9 + .6 + .5) / 4  = 3.0 / 4 = 0.75
#   conv5 .3 .3 .3 .3     -> (1 + 1 + 1 + 1) / 4     = 4.0 / 4 = 1.00   (rank correlation with depth: 1)
SETTLING = {"conv1": (0.5, 0.2, 0.1, 0.0), "conv2": (2.0, 1.0, 0.6, 0.4), "conv3": (1.0, 0.6, 0.5, 0.3),
            "conv4": (0.4, 0.36, 0.24, 0.2), "conv5": (0.3, 0.3, 0.3, 0.3)}


def evolution(settling):
    # keys inserted last-epoch first: the code must sort them
    return {layer: {"distance_to_last": dict(reversed(list(zip(EPOCHS, (*values, 0.0))))), "maps": [1, 2]}
            for layer, values in settling.items()}


def test_lower_layers_converge_first():
    v = claims.lower_layers_converge_first(evolution(SETTLING), "zfnet")
    assert v.verdict == REPRODUCED, v
    assert v.evidence == "A = conv1 0.40, conv2 0.50, conv3 0.60, conv4 0.75, conv5 1.00; rho = 1.00"
    assert v.subject == "zfnet"


def test_upper_layers_first_is_not_reproduced():
    reversed_ = dict(zip(claims.LAYERS, reversed(list(SETTLING.values()))))
    v = claims.lower_layers_converge_first(evolution(reversed_), "alexnet")
    assert v.verdict == NOT_REPRODUCED and v.evidence.endswith("rho = -1.00"), v


def test_lower_layers_converge_first_missing():
    nan = evolution({**SETTLING, "conv3": (1.0, NAN, 0.5, 0.3)})
    assert claims.lower_layers_converge_first(nan, "zfnet").verdict == CANNOT_DECIDE
    none = evolution({**SETTLING, "conv2": (1.0, None, 0.5, 0.3)})
    assert claims.lower_layers_converge_first(none, "zfnet").verdict == CANNOT_DECIDE
    zero_first = evolution({**SETTLING, "conv2": (0.0, 0.0, 0.0, 0.0)})
    assert claims.lower_layers_converge_first(zero_first, "zfnet").verdict == CANNOT_DECIDE
    two_layers = evolution({k: SETTLING[k] for k in ("conv1", "conv2")})
    assert claims.lower_layers_converge_first(two_layers, "zfnet").verdict == CANNOT_DECIDE
    assert claims.lower_layers_converge_first(None, "zfnet").verdict == NOT_RUN


# ----------------------------------------------------------------------- Fig. 5: invariance


def test_invariance_uses_the_stages_claims():
    metrics = {"claims": {"i_translation": True, "i_scale": True, "ii_translation": True, "ii_scale": False,
                          "iii_rotation": False},   # iii_rotation_symmetric_kept missing
               "translation": {"small_change": {"layer1": 0.5, "layer7": 0.25}, "output": {"mean_p_true": 0.75}},
               "scale": {"small_change": {"layer1": 0.4, "layer7": 0.2}, "output": {"mean_p_true": 0.5}},
               "rotation": {"symmetry": {"rotated": {"symmetric_mean": 0.6, "other_mean": 0.3}, "difference": 0.125}}}
    small, p_true, symmetric, recovers = claims.invariance(metrics, "zfnet")
    assert small.verdict == REPRODUCED
    assert small.evidence == "translation: layer 1 0.50, layer 7 0.25; scale: layer 1 0.40, layer 7 0.20"
    assert p_true.verdict == NOT_REPRODUCED                  # translation held, scale did not: both needed
    assert symmetric.verdict == CANNOT_DECIDE
    assert recovers.verdict == NOT_REPRODUCED and recovers.evidence == "difference 0.125"
    assert verdicts(claims.invariance(None, "zfnet")) == [NOT_RUN] * 4
    assert verdicts(claims.invariance({"claims": {"i_translation": True}}, "zfnet")) == [CANNOT_DECIDE] * 4


def test_invariance_without_class_symmetries_says_iii_was_not_run():
    """The stage writes rotation.symmetry = null when the data names no class symmetries (ImageNet: no
    classes.json): (i) and (ii) are judged, the two (iii) claims are "not run", not "cannot decide"."""
    metrics = {"claims": {"i_translation": True, "i_scale": True, "ii_translation": True, "ii_scale": True,
                          "iii_rotation": None, "iii_rotation_symmetric_kept": None},
               "rotation": {"symmetry": None}}
    assert verdicts(claims.invariance(metrics, "zfnet")) == [REPRODUCED, REPRODUCED, NOT_RUN, NOT_RUN]


# ----------------------------------------------------------------------- Fig. 6: architecture


def arch_model(dead, mid, nyquist, lattice, rms=2.0, filters=48):
    return {"conv1_filters": filters, "conv1_dead": {"count": dead},
            "conv1_centroid_frequency": {"band_shares": {"mid": mid}},
            "conv1_above_nyquist": {"spread": nyquist}, "conv2_lattice": {"projections": lattice},
            "conv1_rms_max_over_median": rms}


def spread(median, q25):
    return {"median": median, "q25": q25, "n": 48}


def test_architecture_as_the_paper_saw_it():
    # dead: AlexNet 12 / 48 = .25 vs ZF 0: SE = sqrt(.25 * .75 / 48) = .0625, .25 >= 2 SE = .125
    # mid: ZF .75 vs AlexNet .25: SE = sqrt((.1875 + .1875) / 48) = .0884, .5 >= 2 SE = .177
    # spreads: ZF median below AlexNet's q25
    metrics = {"zfnet": arch_model(0, 0.75, spread(0.1, 0.05), spread(0.01, 0.005), rms=2.0),
               "alexnet": arch_model(12, 0.25, spread(0.4, 0.3), spread(0.03, 0.02), rms=1.5),
               "zfnet_no_renorm_checkpoint": {"conv1_rms_max_over_median": 4.5}}   # 4.5 >= 2 * 2.0
    result = claims.architecture(metrics)
    assert verdicts(result) == [REPRODUCED] * 5, result
    assert result[2].evidence == "ZF median 0.100; AlexNet median 0.400, q25 0.300"
    assert result[4].evidence == "max / median RMS 4.50 without, 2.00 with"


def test_architecture_not_reproduced_and_in_between():
    # dead 0 vs 0: no difference; mid .5 vs .45: SE = sqrt((.25 + .2475) / 48) = .102, .05 < .204
    # Nyquist: ZF median .35 >= AlexNet median .3 -> not reproduced; lattice: .025 between q25 .02 and median .03
    metrics = {"zfnet": arch_model(0, 0.5, spread(0.35, 0.2), spread(0.025, 0.01), rms=2.0),
               "alexnet": arch_model(0, 0.45, spread(0.3, 0.2), spread(0.03, 0.02)),
               "zfnet_no_renorm_checkpoint": {"conv1_rms_max_over_median": 3.0}}   # 3.0 < 2 * 2.0
    result = claims.architecture(metrics)
    assert verdicts(result) == [NOT_REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED, CANNOT_DECIDE, NOT_REPRODUCED]
    assert result[3].evidence.endswith("within AlexNet's spread")


def test_spread_below_three_outcomes_and_missing():
    def judge(median, ran=True):
        return claims._spread_below("c", "s", {"median": median}, {"median": 0.3, "q25": 0.2}, ran).verdict

    assert (judge(0.19), judge(0.2), judge(0.29), judge(0.3), judge(0.5)) == (
        REPRODUCED, CANNOT_DECIDE, CANNOT_DECIDE, NOT_REPRODUCED, NOT_REPRODUCED)
    assert judge(NAN) == CANNOT_DECIDE and judge(NAN, ran=False) == NOT_RUN
    assert claims._spread_below("c", "s", {"median": 0.1}, {"median": 0.3}, True).verdict == CANNOT_DECIDE


def test_architecture_missing():
    base = {"zfnet": arch_model(0, 0.75, spread(0.1, 0.05), spread(0.01, 0.005)),
            "alexnet": arch_model(12, 0.25, spread(0.4, 0.3), spread(0.03, 0.02))}
    assert verdicts(claims.architecture(base))[-1] == NOT_RUN        # no model trained without renormalization
    broken = claims.architecture({**base, "zfnet_no_renorm_checkpoint": {"conv1_rms_max_over_median": NAN}})
    assert broken[-1].verdict == CANNOT_DECIDE
    assert verdicts(claims.architecture(None)) == [NOT_RUN] * 5


# ----------------------------------------------------------------------- Fig. 7: occlusion


def occlusion(on, off, share=0.7, covered=100):
    return {"p_true_drop": {"object": on, "background": off, "images": covered},
            "layer5_map_drop": {"share_of_images_where_covering_drops_more": share, "images_covered": covered}}


def test_occlusion():
    drop, share = claims.occlusion(occlusion(0.02, 0.01), "zfnet")          # .02 >= 2 * .01
    assert drop.verdict == REPRODUCED and drop.evidence == "mean drop 0.0200 on the object, 0.0100 on background (100 images)"
    # n = 100: 0.5 + 2 sqrt(.25 / 100) = 0.6
    assert share.verdict == REPRODUCED and "0.600" in share.evidence
    assert verdicts(claims.occlusion(occlusion(0.02, 0.011, share=0.59), "zfnet")) == [NOT_REPRODUCED] * 2
    assert claims.occlusion(occlusion(0.01, -0.01), "zfnet")[0].verdict == REPRODUCED
    assert claims.occlusion(occlusion(0.0, 0.0), "zfnet")[0].verdict == NOT_REPRODUCED     # no drop at all
    assert claims.occlusion(occlusion(-0.02, -0.05), "zfnet")[0].verdict == NOT_REPRODUCED
    # n = 400: 0.5 + 2 sqrt(.25 / 400) = 0.55
    assert claims.occlusion(occlusion(0.02, 0.0, share=0.56, covered=400), "zfnet")[1].verdict == REPRODUCED
    assert verdicts(claims.occlusion(occlusion(NAN, 0.0, share=None), "zfnet")) == [CANNOT_DECIDE] * 2
    assert verdicts(claims.occlusion(None, "zfnet")) == [NOT_RUN] * 2


# ----------------------------------------------------------------------- Table 1: correspondence


def correspondence(layer5, layer7, std5=(0.01, 0.02, 0.03, 0.05), std7=(0.01, 0.01, 0.01, 0.05)):
    """(right_eye, left_eye, nose, random) means per layer."""
    rows = ("right_eye", "left_eye", "nose", "random")
    return {"average": {"table": {row: {"layer5": {"mean": layer5[i], "std": std5[i]},
                                        "layer7": {"mean": layer7[i], "std": std7[i]}} for i, row in enumerate(rows)}}}


def test_correspondence():
    # layer 5: parts (.20 + .22 + .24) / 3 = .22, random .30: gap .08 > noise (largest std) .05
    # layer 7: parts .30, random .31: |gap| .01 <= .05
    five, seven = claims.correspondence(correspondence((0.2, 0.22, 0.24, 0.3), (0.3, 0.3, 0.3, 0.31)), "zfnet")
    assert (five.verdict, seven.verdict) == (REPRODUCED, REPRODUCED)
    assert five.evidence == "random 0.300, parts 0.220, gap +0.080, noise 0.050"
    # layer 5: gap .03 <= .05; layer 7: gap .2 > .05
    assert verdicts(claims.correspondence(correspondence((0.2, 0.22, 0.24, 0.25), (0.3, 0.3, 0.3, 0.5)), "z")) == [
        NOT_REPRODUCED, NOT_REPRODUCED]
    # a gap the wrong way (random lower than the parts) is no evidence for layer 5; layer 7: |-.2| > .05
    assert verdicts(claims.correspondence(correspondence((0.2, 0.22, 0.24, 0.1), (0.3, 0.3, 0.3, 0.1)), "z")) == [
        NOT_REPRODUCED, NOT_REPRODUCED]


def test_correspondence_missing():
    nan_std = correspondence((0.2, 0.22, 0.24, 0.3), (0.3, 0.3, 0.3, 0.31), std5=(0.01, NAN, 0.03, 0.05))
    assert verdicts(claims.correspondence(nan_std, "zfnet")) == [CANNOT_DECIDE, REPRODUCED]
    assert verdicts(claims.correspondence({"images": 3}, "zfnet")) == [CANNOT_DECIDE] * 2
    assert verdicts(claims.correspondence(None, "zfnet")) == [NOT_RUN] * 2


# ----------------------------------------------------------------------- Tables 2, 3: errors


def test_zf_beats_alexnet():
    # paper 40.5 -> 38.4; ours 3.8 -> 1.6 on 500 images, 2 SE 2.05 (see test_rules)
    v = claims.zf_beats_alexnet({"val_top1_error_10crop": 0.016}, {"val_top1_error_10crop": 0.038}, 500)
    assert v.verdict == REPRODUCED and "ours 3.8 -> 1.6" in v.evidence, v
    assert claims.zf_beats_alexnet({"val_top1_error_10crop": 0.038}, {"val_top1_error_10crop": 0.016}, 500
                                   ).verdict == NOT_REPRODUCED
    assert claims.zf_beats_alexnet(None, {"val_top1_error_10crop": 0.038}, 500).verdict == NOT_RUN


def test_ensembles():
    # paper 38.4 -> 36.7 (2 SE .61) and 36.7 -> 36.0 (2 SE .61): both direction claims
    # ours .10 -> .05 on 1000 images: SE = sqrt((.09 + .0475) / 1000) = 1.17 points, -5 beyond 2.35;
    # then .05 -> .05: no change. The table's own image count (1000) wins over val_images (10).
    table2 = {"images": 1000, "entries": {"zf": {"val_top1_error": 0.10}, "zf_x5": {"val_top1_error": 0.05},
                                          "zf_x5_and_big": {"val_top1_error": 0.05}}}
    five, six = claims.ensembles(table2, 10)
    assert five.verdict == REPRODUCED and "n = 1000" in five.evidence, five
    assert six.verdict == NOT_REPRODUCED
    assert claims.ensembles({"entries": table2["entries"]}, 10)[0].verdict == NOT_REPRODUCED  # n = 10: 2 SE 23 points
    assert verdicts(claims.ensembles(None, 500)) == [NOT_RUN] * 2


def table3(values, not_run=()):
    return {"not_run": list(not_run), "rows": {k: {"ours": {"val_top1": v}} for k, v in values.items()}}


def test_ablations():
    from zfnet import paper

    rows = paper.numbers("table3_ablations")["rows"]
    compared = [k for k, row in rows.items() if row["base"] != k]
    assert len(compared) == 10
    assert verdicts(claims.ablations(None, 500)) == [NOT_RUN] * 10
    assert [v.subject for v in claims.ablations(None, 500)] == compared

    ours = {k: 5.0 for k in rows}          # every row as its base: each direction claim fails, no-change holds
    result = {v.subject: v for v in claims.ablations(table3(ours), 500)}
    assert len(result) == 10
    assert result["alexnet_no34"].verdict == NOT_REPRODUCED             # paper +4.9
    assert result["alexnet_no7"].verdict == REPRODUCED                  # paper -0.5: within its noise
    assert result["alexnet_no34"].claim == "Replication of Krizhevsky, 1 convnet -> removed layers 3,4: val top-1 +4.9"

    # ours in percent already (table3.json): 5.0 -> 15.0 on 500 images is far beyond noise
    up = {v.subject: v for v in claims.ablations(table3({**ours, "alexnet_no34": 15.0}), 500)}
    assert up["alexnet_no34"].verdict == REPRODUCED and "ours 5.0 -> 15.0" in up["alexnet_no34"].evidence

    one_missing = {k: v for k, v in ours.items() if k != "zfnet_fc2048"}
    result = {v.subject: v.verdict for v in claims.ablations(table3(one_missing), 500)}
    assert result["zfnet_fc2048"] == CANNOT_DECIDE and sum(v == CANNOT_DECIDE for v in result.values()) == 1

    # a base row the pipeline did not run (listed in not_run, no value): its rows were not run either
    without_zf = {k: v for k, v in ours.items() if k != "zfnet"}
    base_missing = {v.subject: v.verdict for v in claims.ablations(table3(without_zf, not_run=["zfnet"]), 500)}
    assert [k for k, v in base_missing.items() if v == NOT_RUN] == ["zfnet_fc2048", "zfnet_fc8192", "zfnet_big",
                                                                    "zfnet_big_fc8192"]


# ----------------------------------------------------------------------- Tables 4, 5, 7, Fig. 9: transfer


def transfer(pretrained, scratch, test_images):
    return {"zfnet": {"pretrained": {k: {"mean": v, "std": 0.01} for k, v in pretrained.items()},
                      "scratch": {k: {"mean": v, "std": 0.01} for k, v in scratch.items()}},
            "data": {"test_images": test_images}}


def test_pretrained_beats_scratch_at_the_smallest_shared_size():
    # the smallest size by number is 5, not "15" (the first string): .5 vs .45 on 100 images,
    # SE = sqrt((.25 + .2475) / 100) = .0705, .05 < 2 SE = .141 -> not reproduced; at 15 it would be
    metrics = transfer({"15": 0.6, "30": 0.7, "5": 0.5}, {"15": 0.2, "5": 0.45}, {"5": 100, "15": 100})
    v = claims.pretrained_beats_scratch(metrics, "zfnet", "caltech101")
    assert v.verdict == NOT_REPRODUCED and "accuracy at 5 per class" in v.evidence, v
    # .6 vs .2 at 15: SE = sqrt((.24 + .16) / 100) = .063, .4 beyond .126
    metrics = transfer({"15": 0.6, "30": 0.7}, {"15": 0.2}, {"15": 100})
    assert claims.pretrained_beats_scratch(metrics, "zfnet", "caltech101").verdict == REPRODUCED
    assert claims.pretrained_beats_scratch(transfer({"15": 0.6}, {}, {}), "zfnet", "x").verdict == CANNOT_DECIDE
    assert claims.pretrained_beats_scratch(None, "zfnet", "x").verdict == NOT_RUN


def test_rises_with_depth():
    metrics = {"zfnet": {"claims": {"depth": {
        "svm": {"rises_with_depth": True, "spearman": 0.8, "deepest_minus_shallowest": 0.25, "best_layer": 7},
        "softmax": {"rises_with_depth": False, "spearman": -0.6, "deepest_minus_shallowest": -0.05, "best_layer": 3}}}}}
    svm, softmax = claims.rises_with_depth(metrics, "zfnet", "caltech101")
    assert (svm.verdict, softmax.verdict) == (REPRODUCED, NOT_REPRODUCED)
    assert svm.evidence == "layer 7 minus layer 1: +25.0 points; Spearman 0.80; best layer 7"
    assert verdicts(claims.rises_with_depth({"zfnet": {}}, "zfnet", "x")) == [CANNOT_DECIDE] * 2
    assert verdicts(claims.rises_with_depth(None, "zfnet", "x")) == [NOT_RUN] * 2


def test_absolute():
    assert claims.absolute("c", "s", 0.40, 38.4, real_data=False, ran=True).verdict == NOT_RUN
    within = claims.absolute("c", "s", 0.40, 38.4, real_data=True, ran=True)     # |40 - 38.4| = 1.6 <= 3
    assert within.verdict == REPRODUCED and within.evidence == "ours 40.0, paper 38.4"
    assert claims.absolute("c", "s", 0.42, 38.4, real_data=True, ran=True).verdict == NOT_REPRODUCED   # 3.6 > 3
    assert claims.absolute("c", "s", 0.35, 38.4, real_data=True, ran=True).verdict == NOT_REPRODUCED   # 3.4 > 3
    assert claims.absolute("c", "s", 0.42, 38.4, real_data=True, ran=True, tolerance=4).verdict == REPRODUCED
    assert claims.absolute("c", "s", NAN, 38.4, real_data=True, ran=True).verdict == CANNOT_DECIDE
    assert claims.absolute("c", "s", None, 38.4, real_data=True, ran=False).verdict == NOT_RUN


def test_beats_prior_best():
    # the paper: 6 per class beat the prior best with 60 (55.2%)
    def metrics(mean):
        return {"zfnet": {"pretrained": {"6": {"mean": mean}}}}

    assert claims.beats_prior_best(metrics(0.6), "zfnet", real_data=False).verdict == NOT_RUN
    assert claims.beats_prior_best(metrics(0.6), "zfnet", real_data=True).verdict == REPRODUCED
    assert claims.beats_prior_best(metrics(0.5), "zfnet", real_data=True).verdict == NOT_REPRODUCED
    assert claims.beats_prior_best({"zfnet": {}}, "zfnet", real_data=True).verdict == CANNOT_DECIDE
    assert claims.beats_prior_best(None, "zfnet", real_data=True).verdict == NOT_RUN


@pytest.mark.parametrize("model", ["zfnet", "alexnet"])
def test_every_claim_without_metrics_is_not_run(model):
    everything = [claims.lower_layers_converge_first(None, model), *claims.invariance(None, model),
                  *claims.occlusion(None, model), *claims.correspondence(None, model),
                  claims.pretrained_beats_scratch(None, model, "caltech101"),
                  *claims.rises_with_depth(None, model, "caltech101"), claims.beats_prior_best(None, model, False)]
    assert set(verdicts(everything)) == {NOT_RUN}
