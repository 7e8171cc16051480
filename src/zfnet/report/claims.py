"""The paper's claims, each judged from the stages' metrics (`metrics/<stage>.json`) by a stated rule.

Every function takes the parsed metrics files it needs (None when the stage did not run) and returns
`Verdict`s; the rules themselves live in `zfnet.report.rules`. Errors and accuracies in the metrics
are fractions; the paper's numbers (`zfnet.paper`) are percent.
"""

from __future__ import annotations

import math

from zfnet import paper
from zfnet.report import rules
from zfnet.report.rules import dig, number, or_nan
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED, Verdict

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _percent(value) -> float | None:
    value = number(value)
    return None if value is None else 100 * value


# ----------------------------------------------------------------------- Fig. 3, Table 2: the models


def paper_size_parameters() -> dict[str, int]:
    """Our models built at the paper's size (224 px, 1000 classes, full width) on the meta device: no memory."""
    import torch

    from zfnet.nets.models import build_model

    printed = paper.numbers("fig3_architecture")
    variants = {"zfnet": ("zfnet", {}), "alexnet": ("alexnet", {}), "zfnet_big": ("zfnet", {"conv_maps": (512, 1024, 512)})}
    counts = {}
    with torch.device("meta"):
        for key, (name, options) in variants.items():
            model = build_model(name, printed["classes"], input_size=printed["input_size"], **options)
            counts[key] = sum(p.numel() for p in model.parameters())
    return counts


def parameter_counts(counts: dict[str, int]) -> list[Verdict]:
    """Our models built at the paper's size (224 px, C = 1000) against the paper's parameter counts."""
    printed = paper.numbers("fig3_architecture")["parameters"]
    verdicts = []
    for name, expected in printed.items():
        claim, rule, ours = f"{name} has {expected:,} parameters at 224 px and 1000 classes", "reproduced when the counts are equal", counts.get(name)
        if ours is None:
            verdicts.append(rules.unknown(claim, name, rule, True, "our count"))
            continue
        verdicts.append(Verdict(claim, name, REPRODUCED if ours == expected else NOT_REPRODUCED, rule, f"ours {ours:,}"))
    return verdicts


def zf_beats_alexnet(zfnet: dict | None, alexnet: dict | None, val_images: int | None) -> Verdict:
    rows = paper.numbers("table2_imagenet")["rows"]
    return rules.error_change(
        "ZF has a lower top-1 error than the AlexNet replication", "zfnet vs alexnet",
        (rows["replication"]["val_top1"], rows["zf"]["val_top1"]), paper.numbers("table2_imagenet")["val_images"],
        (_percent(dig(alexnet, "val_top1_error_10crop", None)), _percent(dig(zfnet, "val_top1_error_10crop", None))),
        val_images, ran=zfnet is not None and alexnet is not None)


def ensembles(table2: dict | None, val_images: int | None) -> list[Verdict]:
    """Table 2: averaging five ZF nets beats one; adding the wider net (b) to them helps again."""
    printed, ran = paper.numbers("table2_imagenet"), table2 is not None
    pairs = [("an ensemble of 5 ZF nets has a lower error than one", "zf", "zf_x5"),
             ("adding the 512,1024,512 net to the 5 lowers the error again", "zf_x5", "zf_x5_and_big")]
    return [rules.error_change(
        claim, f"{a} vs {b}", (printed["rows"][a]["val_top1"], printed["rows"][b]["val_top1"]), printed["val_images"],
        (_percent(dig(table2, f"entries.{a}.val_top1_error", None)),
         _percent(dig(table2, f"entries.{b}.val_top1_error", None))),
        dig(table2, "images", None) or val_images, ran=ran) for claim, a, b in pairs]


def ablations(table3: dict | None, val_images: int | None) -> list[Verdict]:
    """Table 3: each row's change of val top-1 error from its base row, in the paper's direction."""
    printed = paper.numbers("table3_ablations")
    verdicts = []
    for run, row in printed["rows"].items():
        base = row["base"]
        if base == run:
            continue
        skipped = dig(table3, "not_run", None) or []
        ran = table3 is not None and run not in skipped and base not in skipped
        verdicts.append(rules.error_change(
            f"{printed['rows'][base]['label']} -> {row['label']}: val top-1 {row['val_top1'] - printed['rows'][base]['val_top1']:+.1f}",
            run, (printed["rows"][base]["val_top1"], row["val_top1"]), printed["val_images"],
            (number(dig(table3, f"rows.{base}.ours.val_top1", None)), number(dig(table3, f"rows.{run}.ours.val_top1", None))),
            val_images, ran=ran))
    return verdicts


# ----------------------------------------------------------------------- Fig. 4: feature evolution

CONVERGENCE_RULE = ("per layer, the distance of each snapshot's weights to the last snapshot's, divided by that of "
                    "the first snapshot, averaged over the snapshots before the last (A: 0 = settled at once, 1 = "
                    "settled only at the end); reproduced when Spearman's rank correlation of depth and A is >= 0.7")


def lower_layers_converge_first(evolution: dict | None, model: str) -> Verdict:
    from zfnet.transfer.protocol import rank_correlation

    claim = "lower layers converge first, upper layers later"
    settled = {}
    for layer in LAYERS:
        distances = dig(evolution, f"{layer}.distance_to_last", None)
        if not isinstance(distances, dict) or len(distances) < 3:
            continue
        values = [number(distances[k]) for k in sorted(distances)][:-1]  # the last snapshot is 0 by definition
        if any(v is None for v in values) or values[0] <= 0:
            return rules.unknown(claim, model, CONVERGENCE_RULE, evolution is not None, f"{layer} distances")
        settled[layer] = sum(v / values[0] for v in values) / len(values)
    if len(settled) < 3:
        return rules.unknown(claim, model, CONVERGENCE_RULE, evolution is not None,
                             "3 or more snapshots of 3 or more layers")
    rho = rank_correlation(range(len(settled)), list(settled.values()))
    evidence = "A = " + ", ".join(f"{layer} {a:.2f}" for layer, a in settled.items()) + f"; rho = {rho:.2f}"
    if math.isnan(rho):  # every layer settled alike: no order to judge
        return Verdict(claim, model, CANNOT_DECIDE, CONVERGENCE_RULE, evidence)
    return Verdict(claim, model, REPRODUCED if rho >= 0.7 else NOT_REPRODUCED, CONVERGENCE_RULE, evidence)


# ----------------------------------------------------------------------- Fig. 5: invariance


def invariance(metrics: dict | None, model: str) -> list[Verdict]:
    """The three claims of Fig. 5, as the invariance stage scored them (`claims` in its metrics)."""
    ran = metrics is not None

    def both(kind: str) -> bool | None:
        values = [dig(metrics, f"claims.{kind}_{t}", None) for t in ("translation", "scale")]
        return all(values) if all(isinstance(v, bool) for v in values) else None

    def small(t: str) -> str:
        return (f"{t}: layer 1 {or_nan(dig(metrics, f'{t}.small_change.layer1', None)):.2f}, "
                f"layer 7 {or_nan(dig(metrics, f'{t}.small_change.layer7', None)):.2f}")

    def p_true(t: str) -> str:
        return f"{t} {or_nan(dig(metrics, f'{t}.output.mean_p_true', None)):.2f}"

    rotated = dig(metrics, "rotation.symmetry.rotated", {}) or {}
    # symmetry null: the data names no class symmetries (no classes.json: ImageNet), so (iii) has no input
    no_symmetries = dig(metrics, "rotation.symmetry") is None  # (absent: MISSING, so "cannot decide" below)
    verdicts = [
        rules.boolean("small translations and zooms change layer 7 less than layer 1", model, both("i"),
                      "mean relative change (distance / norm) over the 2 smallest steps on each side of the identity: "
                      "layer 7 below layer 1, for translation and for scale",
                      f"{small('translation')}; {small('scale')}", ran),
        rules.boolean("p(true class) stays high under translation and scale", model, both("ii"),
                      "mean p(true) over images and steps >= 0.5, for translation and for scale",
                      f"mean p(true): {p_true('translation')}, {p_true('scale')}", ran),
        rules.boolean("rotation breaks recognition except for rotationally symmetric objects", model,
                      dig(metrics, "claims.iii_rotation_symmetric_kept", None),
                      "mean p(true) rotated beyond 20 deg: symmetric classes minus the others > 0.1",
                      f"symmetric {or_nan(rotated.get('symmetric_mean')):.2f}, "
                      f"others {or_nan(rotated.get('other_mean')):.2f}", ran),
        rules.boolean("p(true) recovers at each symmetric class's symmetry angles", model,
                      dig(metrics, "claims.iii_rotation", None),
                      "p(true) at the symmetry angles minus halfway between: symmetric classes minus the others "
                      "(at 90 deg) > 0.1",
                      f"difference {or_nan(dig(metrics, 'rotation.symmetry.difference', None)):.3f}", ran),
    ]
    if no_symmetries:
        why = "needs each class's rotational symmetry (invariance.classes_file); this data names none"
        verdicts[2:] = [rules.not_at_this_scale(v.claim, model, why) for v in verdicts[2:]]
    return verdicts


# ----------------------------------------------------------------------- Fig. 6: architecture selection


def architecture(metrics: dict | None) -> list[Verdict]:
    ran = metrics is not None
    zf, alex = dig(metrics, "zfnet", None), dig(metrics, "alexnet", None)
    pair = "zfnet vs alexnet"
    verdicts = [
        rules.shares_differ("AlexNet layer 1 has more dead filters than ZF layer 1", pair,
                            _share(alex, "conv1_dead.count"), _share(zf, "conv1_dead.count"),
                            dig(zf, "conv1_filters", None), ran, "dead share, AlexNet vs ZF"),
        rules.shares_differ("ZF layer 1 has more mid-frequency filters than AlexNet layer 1", pair,
                            dig(zf, "conv1_centroid_frequency.band_shares.mid", None),
                            dig(alex, "conv1_centroid_frequency.band_shares.mid", None),
                            dig(zf, "conv1_filters", None), ran, "share of live filters with a mid centroid frequency, ZF vs AlexNet"),
        _spread_below("ZF layer 1 has less power above its stride's Nyquist frequency (less aliasing)", pair,
                      dig(zf, "conv1_above_nyquist.spread", None), dig(alex, "conv1_above_nyquist.spread", None), ran),
        _spread_below("ZF layer-2 projections show less of the first layer's stride lattice (aliasing)", pair,
                      dig(zf, "conv2_lattice.projections", None), dig(alex, "conv2_lattice.projections", None), ran),
    ]
    no_renorm = next((v for k, v in (metrics or {}).items() if k.endswith("_no_renorm_checkpoint")), None)
    rule = "reproduced when the largest layer-1 filter RMS over the median is at least twice that with renormalization"
    claim = "without RMS renormalization a few layer-1 filters dominate"
    ratio, ref = number(dig(no_renorm, "conv1_rms_max_over_median", None)), number(dig(zf, "conv1_rms_max_over_median", None))
    if ratio is None or ref is None:
        verdicts.append(rules.unknown(claim, "zfnet", rule, ran and no_renorm is not None,
                                      "a ZF trained without renormalization (README: Fig. 6(a))"))
    else:
        verdicts.append(Verdict(claim, "zfnet", REPRODUCED if ratio >= 2 * ref else NOT_REPRODUCED, rule,
                                f"max / median RMS {ratio:.2f} without, {ref:.2f} with"))
    return verdicts


def _share(model: dict | None, path: str) -> float | None:
    count, total = number(dig(model, path, None)), number(dig(model, "conv1_filters", None))
    return None if count is None or not total else count / total


SPREAD_RULE = ("per-filter (or per-projection) values: reproduced when ZF's median is below AlexNet's first "
               "quartile; not reproduced when it is at or above AlexNet's median; cannot decide in between")


def _spread_below(claim: str, subject: str, ours: dict | None, other: dict | None, ran: bool) -> Verdict:
    median, q25, other_median = (number(dig(d, k, None)) for d, k in ((ours, "median"), (other, "q25"), (other, "median")))
    if median is None or q25 is None or other_median is None:
        return rules.unknown(claim, subject, SPREAD_RULE, ran, "the medians")
    evidence = f"ZF median {median:.3f}; AlexNet median {other_median:.3f}, q25 {q25:.3f}"
    if median < q25:
        return Verdict(claim, subject, REPRODUCED, SPREAD_RULE, evidence)
    if median >= other_median:
        return Verdict(claim, subject, NOT_REPRODUCED, SPREAD_RULE, evidence)
    return Verdict(claim, subject, CANNOT_DECIDE, SPREAD_RULE, evidence + "; within AlexNet's spread")


# ----------------------------------------------------------------------- Fig. 7: occlusion

OCCLUSION_RULE = "reproduced when the mean drop of p(true) with the occluder on the object is at least twice that with it on background only, and positive"


def occlusion(metrics: dict | None, model: str) -> list[Verdict]:
    ran = metrics is not None
    claim = "occluding the object drops p(true class); occluding background does not"
    on, off = number(dig(metrics, "p_true_drop.object", None)), number(dig(metrics, "p_true_drop.background", None))
    if on is None or off is None:
        drop = rules.unknown(claim, model, OCCLUSION_RULE, ran, "p(true) drops")
    else:
        drop = Verdict(claim, model, REPRODUCED if on > 0 and on >= 2 * off else NOT_REPRODUCED, OCCLUSION_RULE,
                       f"mean drop {on:.4f} on the object, {off:.4f} on background "
                       f"({dig(metrics, 'p_true_drop.images', '?')} images)")
    return [drop, rules.share_above_half(
        "the strongest layer-5 map drops most when the occluder covers the part its projection shows", model,
        dig(metrics, "layer5_map_drop.share_of_images_where_covering_drops_more", None),
        dig(metrics, "layer5_map_drop.images_covered", None), ran,
        "share of images where covering the projection drops the map more than elsewhere")]


# ----------------------------------------------------------------------- Table 1: correspondence

PARTS = ("right_eye", "left_eye", "nose")


def correspondence(metrics: dict | None, model: str) -> list[Verdict]:
    ran, table = metrics is not None, dig(metrics, "average.table", None)
    verdicts = []
    for layer, claim, expect_gap in (
            ("layer5", "at layer 5 the parts are encoded more consistently than random regions (lower Delta)", True),
            ("layer7", "at layer 7 the parts and random regions are alike", False)):
        rule = ("gap = Delta(random) - mean Delta(parts); noise = the largest std over draws among the 4 rows; " +
                ("reproduced when gap > noise" if expect_gap else "reproduced when |gap| <= noise"))
        means = [number(dig(table, f"{row}.{layer}.mean", None)) for row in (*PARTS, "random")]
        stds = [number(dig(table, f"{row}.{layer}.std", None)) for row in (*PARTS, "random")]
        if any(v is None for v in means + stds):
            verdicts.append(rules.unknown(claim, model, rule, ran, f"Delta at {layer}"))
            continue
        gap, noise = means[-1] - sum(means[:3]) / 3, max(stds)
        held = gap > noise if expect_gap else abs(gap) <= noise
        verdicts.append(Verdict(claim, model, REPRODUCED if held else NOT_REPRODUCED, rule,
                                f"random {means[-1]:.3f}, parts {sum(means[:3]) / 3:.3f}, gap {gap:+.3f}, noise {noise:.3f}"))
    return verdicts


# ----------------------------------------------------------------------- Tables 4, 5, 7, Fig. 9: transfer


def pretrained_beats_scratch(metrics: dict | None, model: str, dataset: str) -> Verdict:
    """At the smallest training size that has both, pretrained accuracy above from-scratch by 2 SE."""
    claim = "pretrained features beat training from scratch with few examples"
    result = dig(metrics, model, None)
    sizes = sorted(set(dig(result, "pretrained", {}) or {}) & set(dig(result, "scratch", {}) or {}), key=int)
    if not sizes:
        return rules.unknown(claim, f"{model}, {dataset}", "", metrics is not None, "a size with both")
    size = sizes[0]
    return rules.shares_differ(claim, f"{model}, {dataset}", dig(result, f"pretrained.{size}.mean", None),
                               dig(result, f"scratch.{size}.mean", None), dig(metrics, f"data.test_images.{size}", None),
                               metrics is not None, f"accuracy at {size} per class, pretrained vs scratch")


def rises_with_depth(metrics: dict | None, model: str, dataset: str) -> list[Verdict]:
    verdicts = []
    for kind in ("svm", "softmax"):
        depth = dig(metrics, f"{model}.claims.depth.{kind}", None)
        evidence = (f"layer 7 minus layer 1: {100 * or_nan(dig(depth, 'deepest_minus_shallowest', None)):+.1f} "
                    f"points; Spearman {or_nan(dig(depth, 'spearman', None)):.2f}; "
                    f"best layer {dig(depth, 'best_layer', '?')}")
        verdicts.append(rules.boolean(
            f"transfer accuracy rises with the layer's depth ({kind})", f"{model}, {dataset}",
            dig(depth, "rises_with_depth", None),
            "the deepest layer beats the shallowest and Spearman's rank correlation of layer and accuracy is > 0",
            evidence, metrics is not None))
    return verdicts


def absolute(claim: str, subject: str, ours, printed: float, real_data: bool, ran: bool, tolerance: float = 3.0) -> Verdict:
    """A number only the paper's data can reproduce: within `tolerance` points of the paper's."""
    if not real_data:
        return rules.not_at_this_scale(claim, subject, "the built-in data: its numbers are not comparable")
    rule = f"reproduced when ours is within {tolerance:g} points of the paper's {printed:g}"
    value = _percent(ours)
    if value is None:
        return rules.unknown(claim, subject, rule, ran, "our number")
    return Verdict(claim, subject, REPRODUCED if abs(value - printed) <= tolerance else NOT_REPRODUCED, rule,
                   f"ours {value:.1f}, paper {printed:g}")


def beats_prior_best(metrics: dict | None, model: str, real_data: bool) -> Verdict:
    """Fig. 9: with 6 images per class the pretrained features beat the best prior result that used 60."""
    printed = paper.numbers("fig9_caltech256")
    size, prior = str(printed["beats_prior_best_from"]), printed["prior_best_at_60"]
    claim = f"with {size} per class, pretrained features beat the best prior Caltech-256 result with 60 ({prior}%)"
    if not real_data:
        return rules.not_at_this_scale(claim, model, "the prior result was measured on the real Caltech-256")
    rule = f"reproduced when our pretrained accuracy at {size} per class is above {prior}%"
    value = _percent(dig(metrics, f"{model}.pretrained.{size}.mean", None))
    if value is None:
        return rules.unknown(claim, model, rule, metrics is not None, f"accuracy at {size} per class")
    return Verdict(claim, model, REPRODUCED if value > prior else NOT_REPRODUCED, rule, f"ours {value:.1f}")
