"""The paper's claims, each judged from the stages' metrics (`metrics/<stage>.json`) by a stated rule.

Every function takes the parsed metrics files it needs (None when the stage did not run) and returns
`Verdict`s; the rules themselves live in `zfnet.report.rules`. Errors and accuracies in the metrics
are fractions; the paper's numbers (`zfnet.paper`) are percent.
"""

from __future__ import annotations

from zfnet import paper
from zfnet.report import (
    architecture_claims,
    correspondence_claims,
    decision,
    intervals,
    invariance_claims,
    occlusion_claims,
    rules,
    transfer_claims,
)
from zfnet.report.decision import Settings
from zfnet.report.rules import dig, number
from zfnet.report.spec import NOT_REPRODUCED, REPRODUCED, Verdict

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


def _correct(metrics: dict | None, path: str):
    """Per-image top-1 correctness saved beside a metrics file (its "evidence"), or None."""
    return dig(metrics, f"evidence.{path}", None)


def zf_beats_alexnet(zfnet: dict | None, alexnet: dict | None, val_images: int | None, *,
                     settings: Settings = Settings()) -> Verdict:
    """Table 2: ZF's 10-crop top-1 error below the AlexNet replication's, paired over the validation images
    where both train stages saved their per-image evidence (one run each: no seed variance in this interval)."""
    rows = paper.numbers("table2_imagenet")["rows"]
    return rules.error_change(
        "ZF has a lower top-1 error than the AlexNet replication", "zfnet vs alexnet",
        (rows["replication"]["val_top1"], rows["zf"]["val_top1"]), paper.numbers("table2_imagenet")["val_images"],
        (_percent(dig(alexnet, "val_top1_error_10crop", None)), _percent(dig(zfnet, "val_top1_error_10crop", None))),
        val_images, ran=zfnet is not None and alexnet is not None,
        correct=(_correct(alexnet, "top1_correct"), _correct(zfnet, "top1_correct")), settings=settings)


def _seeds_correct(evidence: dict | None, runs: list[str]) -> list | None:
    """The per-image correctness of `runs` (one run: its list; several: a list per run), None unless all have one."""
    found = [dig(evidence, f"runs.{run}.top1_correct", None) for run in runs]
    if not runs or any(f is None for f in found):
        return None
    return found[0] if len(found) == 1 else found


def _entry_correct(table2: dict | None, entry: str):
    """An entry of Table 2 image by image: a single net with all its seed replicates (`evidence.seeds`) where the
    ablations trained several, so that seed variance enters the interval; an ensemble as the one it is."""
    evidence = dig(table2, "evidence", None)
    members = dig(evidence, f"entries.{entry}.members", None)
    if isinstance(members, list) and len(members) == 1:
        seeds = dig(evidence, f"seeds.{members[0]}", None)
        if isinstance(seeds, list) and len(seeds) > 1:
            return _seeds_correct(evidence, seeds)
    return dig(evidence, f"entries.{entry}.top1_correct", None)


def ensembles(table2: dict | None, val_images: int | None, *, settings: Settings = Settings()) -> list[Verdict]:
    """Table 2: averaging five ZF nets beats one; adding the wider net (b) to them helps again. "One ZF net" is
    each of the 5 seeds alone where the table2 stage saved per-image evidence (its seed variance in the CI)."""
    printed, ran = paper.numbers("table2_imagenet"), table2 is not None
    pairs = [("an ensemble of 5 ZF nets has a lower error than one", "zf", "zf_x5"),
             ("adding the 512,1024,512 net to the 5 lowers the error again", "zf_x5", "zf_x5_and_big")]
    return [rules.error_change(
        claim, f"{a} vs {b}", (printed["rows"][a]["val_top1"], printed["rows"][b]["val_top1"]), printed["val_images"],
        (_percent(dig(table2, f"entries.{a}.val_top1_error", None)),
         _percent(dig(table2, f"entries.{b}.val_top1_error", None))),
        dig(table2, "images", None) or val_images, ran=ran,
        correct=(_entry_correct(table2, a), _entry_correct(table2, b)), settings=settings) for claim, a, b in pairs]


def _row_correct(table3: dict | None, run: str):
    """A Table 3 row image by image: its run, with its seed replicates (`evidence.seeds`) where there are several."""
    evidence = dig(table3, "evidence", None)
    seeds = dig(evidence, f"seeds.{run}", None)
    return _seeds_correct(evidence, seeds if isinstance(seeds, list) and seeds else [run])


def ablations(table3: dict | None, val_images: int | None, *, settings: Settings = Settings()) -> list[Verdict]:
    """Table 3: each row's change of val top-1 error from its base row, against the paper's change (ERROR_RULE):
    paired over the images where the runs saved per-image evidence (the base's seeds resampled), else unpaired."""
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
            val_images, ran=ran, correct=(_row_correct(table3, base), _row_correct(table3, run)), settings=settings))
    return verdicts


# ----------------------------------------------------------------------- Fig. 4: feature evolution

CONVERGENCE_RULE = architecture_claims.ORDER_RULE


def lower_layers_converge_first(evolution: dict | None, model: str, *, settings: Settings = Settings()) -> Verdict:
    """Fig. 4: the layers ordered by how late their weights settle (`architecture_claims.layer_order`)."""
    claim = "lower layers converge first, upper layers later"
    ratios = {}
    for layer in LAYERS:
        distances = dig(evolution, f"{layer}.distance_to_last", None)
        if not isinstance(distances, dict) or len(distances) < 3:
            continue
        values = [number(distances[k]) for k in sorted(distances)][:-1]  # the last snapshot is 0 by definition
        if any(v is None for v in values) or values[0] <= 0:
            return rules.unknown(claim, model, CONVERGENCE_RULE, evolution is not None, f"{layer} distances")
        ratios[layer] = [v / values[0] for v in values]
    if len(ratios) < 3:
        return rules.unknown(claim, model, CONVERGENCE_RULE, evolution is not None,
                             "3 or more snapshots of 3 or more layers")
    return architecture_claims.layer_order(claim, model, ratios, settings)


# ----------------------------------------------------------------------- Fig. 5: invariance


def invariance(metrics: dict | None, model: str, *, settings: Settings = Settings()) -> list[Verdict]:
    """The claims of Fig. 5, from the invariance stage's per-image evidence, each against the untrained net
    (the rules: `zfnet.report.invariance_claims`)."""
    return invariance_claims.verdicts(metrics, model, settings)


# ----------------------------------------------------------------------- Fig. 6: architecture selection


def architecture(metrics: dict | None, *, settings: Settings = Settings()) -> list[Verdict]:
    """Fig. 6, ZF against AlexNet: independent filter banks, judged from the stage's per-filter evidence
    (`metrics["evidence"]`), else from the counts and quartiles in its metrics (`zfnet.report.architecture_claims`)."""
    ar, ran = architecture_claims, metrics is not None
    zf, alex, units = (dig(metrics, key, None) for key in ("zfnet", "alexnet", "evidence"))
    pair, filters = "zfnet vs alexnet", settings.margin(*ar.FILTER_SHARE_MARGIN)

    def spreads(path: str) -> tuple:
        return dig(zf, path, None), dig(alex, path, None)

    verdicts = [
        ar.share_increase("AlexNet layer 1 has more dead filters than ZF layer 1", pair,
                          _dead(alex, dig(units, "alexnet", None)), _dead(zf, dig(units, "zfnet", None)), filters,
                          settings, "dead conv1 filters, AlexNet vs ZF", ran),
        ar.share_increase("ZF layer 1 has more mid-frequency filters than AlexNet layer 1", pair,
                          _mid(zf, units, "zfnet"), _mid(alex, units, "alexnet"), filters, settings,
                          "live conv1 filters with a mid centroid frequency, ZF vs AlexNet", ran),
        ar.median_decrease("ZF layer 1 has less power above its stride's Nyquist frequency (less aliasing)", pair,
                           dig(units, "zfnet.above_nyquist", None), dig(units, "alexnet.above_nyquist", None),
                           spreads("conv1_above_nyquist.spread"), settings.margin(*ar.NYQUIST_MARGIN), settings,
                           "share of power above Nyquist per live conv1 filter, median, ZF minus AlexNet", ran),
        ar.median_decrease("ZF layer-2 projections show less of the first layer's stride lattice (aliasing)", pair,
                           dig(units, "zfnet.lattice", None), dig(units, "alexnet.lattice", None),
                           spreads("conv2_lattice.projections"), settings.margin(*ar.LATTICE_MARGIN), settings,
                           "lattice share per conv2 projection, median, ZF minus AlexNet", ran),
    ]
    no_renorm = next((k for k in (metrics or {}) if k.endswith("_no_renorm_checkpoint")), None)
    claim, what = ("without RMS renormalization a few layer-1 filters dominate",
                   "share of the conv1 energy in the largest tenth of the filters, without minus with renormalization")
    if no_renorm is None:
        verdicts.append(rules.unknown(claim, "zfnet", ar.DOMINANCE_RULE, False,
                                      "a ZF trained without renormalization (README: Fig. 6(a))"))
    else:
        verdicts.append(ar.dominance_increase(claim, "zfnet", dig(units, f"{no_renorm}.rms", None),
                                              dig(units, "zfnet.rms", None), settings.margin(*ar.ENERGY_MARGIN),
                                              settings, what + " (per-filter RMS of the evidence)", ran))
    return verdicts


def _dead(model: dict | None, units: dict | None) -> tuple[float, float] | None:
    """(dead filters, filters) of a conv1 bank: from its per-filter evidence, else from its metrics."""
    dead = dig(units, "dead", None)
    if isinstance(dead, list):
        return float(sum(dead)), float(len(dead))
    count, total = number(dig(model, "conv1_dead.count", None)), number(dig(model, "conv1_filters", None))
    return None if count is None or total is None else (count, total)


def _mid(model: dict | None, units: dict | None, key: str) -> tuple[float, float] | None:
    """(live filters with a mid centroid frequency, live filters with a centroid): from the evidence's centroids and
    band edges, else from the metrics' share of the same filters (band_shares.mid of spread.n centroids)."""
    centroids, band = dig(units, f"{key}.centroid_frequency", None), dig(units, "mid_band", None)
    if isinstance(centroids, list) and isinstance(band, list):
        finite = [f for f in (number(c) for c in centroids) if f is not None]
        return float(sum(band[0] <= f < band[1] for f in finite)), float(len(finite))
    share = number(dig(model, "conv1_centroid_frequency.band_shares.mid", None))
    n = number(dig(model, "conv1_centroid_frequency.spread.n", None))
    if n is None:
        n = number(dig(model, "conv1_live_filters", None))
    if n == 0:
        return 0.0, 0.0
    return None if share is None or n is None else (float(round(share * n)), n)


SPREAD_RULE = architecture_claims.MEDIAN_RULE


# ----------------------------------------------------------------------- Fig. 7: occlusion

OCCLUSION_RULE = occlusion_claims.DROP_RULE


def occlusion(metrics: dict | None, model: str, *, settings: Settings = Settings()) -> list[Verdict]:
    """Fig. 7's two claims for one model (`zfnet.report.occlusion_claims`): the object/background drop in
    log-odds with a floor, and the strongest layer-5 map's drop where its projection is covered."""
    return occlusion_claims.occlusion_verdicts(metrics, model, settings)


# ----------------------------------------------------------------------- Table 1: correspondence

def correspondence(metrics: dict | None, model: str, *, settings: Settings = Settings()) -> list[Verdict]:
    """Table 1's two claims for one model (`zfnet.report.correspondence_claims`): the per-pair gap Delta(random) -
    mean Delta(parts), above zero at layer 5 and inside a margin at layer 7, with a jackknife over images."""
    return correspondence_claims.correspondence_verdicts(metrics, model, settings)


# ----------------------------------------------------------------------- Tables 4, 5, 7, Fig. 9: transfer


def pretrained_beats_scratch(metrics: dict | None, model: str, dataset: str, *, settings: Settings = Settings()) -> Verdict:
    """Tables 4, 5 (`zfnet.report.transfer_claims`): at the smallest size with both, pretrained minus scratch
    accuracy, paired by fold, judged by its CI."""
    return transfer_claims.pretrained_beats_scratch(metrics, model, dataset, settings)


def rises_with_depth(metrics: dict | None, model: str, dataset: str, *, settings: Settings = Settings()) -> list[Verdict]:
    """Table 7 (`zfnet.report.transfer_claims`): per classifier, the deepest layer's accuracy minus the
    shallowest's, paired by fold, judged by its CI."""
    return transfer_claims.rises_with_depth(metrics, model, dataset, settings)


def absolute(claim: str, subject: str, ours, printed: float, real_data: bool, ran: bool, tolerance: float = 3.0, *,
             images: int | None = None, paper_images: int | None = None, settings: Settings = Settings()) -> Verdict:
    """A number only the paper's data can reproduce: within `tolerance` points of the paper's. An error rate with
    the images behind ours and the paper's (`images`, `paper_images`) is judged by the CI of the difference
    (`_absolute_error`); other numbers by the point values."""
    if not real_data:
        return rules.not_at_this_scale(claim, subject, "the built-in data: its numbers are not comparable")
    if images and paper_images:
        return _absolute_error(claim, subject, ours, printed, ran, images, paper_images,
                               settings.margin("absolute_error_points", tolerance), settings)
    rule = f"reproduced when ours is within {tolerance:g} points of the paper's {printed:g}"
    value = _percent(ours)
    if value is None:
        return rules.unknown(claim, subject, rule, ran, "our number")
    return Verdict(claim, subject, REPRODUCED if abs(value - printed) <= tolerance else NOT_REPRODUCED, rule,
                   f"ours {value:.1f}, paper {printed:g}")


def _absolute_error(claim: str, subject: str, ours, printed: float, ran: bool, images: int, paper_images: int,
                    margin_points: float, settings: Settings) -> Verdict:
    """Our error rate (a fraction) against the paper's (percent): Newcombe's CI of ours minus the paper's (two
    independent samples of images), judged as a no-change claim with a margin of `margin_points`."""
    rule = ("our error rate minus the paper's, Newcombe's CI for two independent samples of images; " +
            decision.DECISION_RULE + "; the margin is report.margins.absolute_error_points")
    value = number(ours)
    if value is None or not 0 <= value <= 1:
        return rules.unknown(claim, subject, rule, ran, "our error rate")
    interval = intervals.newcombe_difference(printed / 100, paper_images, value, images, settings.level)
    found = decision.decide(interval, margin_points / 100, decision.NO_CHANGE)
    return rules.judged(claim, subject, found, f"ours {100 * value:.1f} on {images:,} images, paper {printed:g} on "
                        f"{paper_images:,}", rule=rule, digits=2, scale=100, unit=" pt")


def beats_prior_best(metrics: dict | None, model: str, real_data: bool, *, settings: Settings = Settings()) -> Verdict:
    """Fig. 9 (`zfnet.report.transfer_claims`): with 6 per class, above the best prior result that used 60."""
    return transfer_claims.beats_prior_best(metrics, model, real_data, settings)
