"""Fig. 7's claims judged from the occlusion stage's per-image evidence (`evidence/occlusion_<model>.json`).

    verdicts = occlusion_verdicts(metrics, "zfnet", settings)   # metrics["evidence"]: the per-image lists

* "Occluding the object drops p(true class); occluding background does not." Per image, the drop in the
  true class's log-odds (log p - log(1 - p): unlike p it does not saturate near 1) averaged over the occluder
  positions on the object, and over those on background only (`zfnet.probes.occlusion_measures`). Two parts,
  both needed: the object drop exceeds the background drop by at least a floor (the paired per-image
  difference's CI lies wholly above the floor: `above_floor`), and the background drop is no change (its CI
  lies inside +-floor: `decide`, NO_CHANGE). The floor is `report.margins.occlusion_log_odds`.
* "The strongest layer-5 map drops when the occluder covers the part its projection shows." Per image: does
  covering the projection's centre drop the map more than the other positions do? The share of such images
  minus one half, judged by `decide` (INCREASE) with the margin `report.margins.occlusion_layer5_share`.

The negative control: the stage sweeps the same architecture untrained (random init from the seed) over the same
images with the same occluder grid (`untrained` in the metrics and in the evidence), and both claims are judged
again on it. A claim the untrained net reproduces too says nothing about learning and is reported as "an untrained
net does it too" (`rules.against_untrained`), not counted. Why it is needed: covering the spot that drives a layer-5
map lowers that map whatever the weights, so the layer-5 claim can hold by the architecture alone.

Intervals are paired bootstraps over images (`zfnet.report.stats`, `Settings`). Without the evidence file (old
metrics): the object/background claim cannot be decided (the metrics hold only mean drops in p, no spread and
no log-odds); the layer-5 share's interval is the same from the metrics' share and count, since the per-image
outcomes are 0/1 and their bootstrap depends on nothing else.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from zfnet.report import rules
from zfnet.report.decision import INCREASE, NO_CHANGE, Decision, Settings, decide
from zfnet.report.rules import dig, number, or_nan
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED, UNTRAINED_TOO, Verdict
from zfnet.report.stats import Interval, mean_change, paired_bootstrap, wilcoxon

# the floor: a change in the true class's log-odds below ln 2 (its odds changed by less than a factor of 2)
# is no effect of note (ours; the paper gives no number for Fig. 7)
LOG_ODDS_FLOOR = 0.693
# the layer-5 share: 0.45 .. 0.55 of the images is no preference of note (ours)
LAYER5_SHARE_MARGIN = 0.05

DROP_CLAIM = "occluding the object drops p(true class); occluding background does not"
LAYER5_CLAIM = "the strongest layer-5 map drops most when the occluder covers the part its projection shows"
CONTROL = ("; judged again on the same net untrained (the stage's negative control, the same images and occluders): "
           "reproduced there too is 'an untrained net does it too', not counted")
DROP_RULE = ("per image, the drop of the true class's log-odds averaged over occluder positions on the object and "
             "over those on background only; reproduced when the paired bootstrap CI of the mean (object drop - "
             "background drop) lies wholly above the floor (report.margins.occlusion_log_odds) and the CI of the "
             "mean background drop lies inside +-floor; not reproduced when the first CI lies wholly below the floor "
             "or the second wholly beyond +-floor; cannot decide otherwise, or without the per-image evidence" + CONTROL)
LAYER5_RULE = ("per image, whether covering the projection's centre drops the map more (relative drop) than the other "
               "positions do; the share of such images minus 0.5 judged by its paired bootstrap CI: " + "reproduced "
               "when the CI excludes zero above, not reproduced when it excludes zero below or lies inside the margin "
               "(report.margins.occlusion_layer5_share), cannot decide otherwise" + CONTROL)


def occlusion_verdicts(metrics: dict | None, model: str, settings: Settings = Settings()) -> list[Verdict]:
    """The two Fig. 7 claims for one model, from its occlusion metrics (None: the stage did not run), each beside
    the same claim judged on the untrained net (`with_control`)."""
    control = untrained_metrics(metrics)
    return [with_control(judge(metrics, model, settings),
                         None if control is None else judge(control, f"{model} untrained", settings), metrics)
            for judge in (drop_verdict, layer5_verdict)]


def untrained_metrics(metrics: dict | None) -> dict | None:
    """The negative control's metrics block with its per-image evidence under "evidence" (the shape the claims
    read), or None when the stage measured no control (old metrics)."""
    block, columns = dig(metrics, "untrained", None), dig(metrics, "evidence.untrained", None)
    if not isinstance(block, dict) and not isinstance(columns, dict):
        return None
    return {**(block if isinstance(block, dict) else {}), "evidence": columns if isinstance(columns, dict) else None}


def with_control(trained: Verdict, untrained: Verdict | None, metrics: dict | None) -> Verdict:
    """`rules.against_untrained`, and the control's verdict named in the evidence when it did not take over."""
    verdict = rules.against_untrained(trained, untrained)
    if verdict.verdict == UNTRAINED_TOO or metrics is None:
        return verdict
    said = ("no negative control in the metrics (rerun the occlusion stage)" if untrained is None else
            f"the same net untrained (control): {untrained.verdict}")
    return replace(verdict, evidence=f"{verdict.evidence}; {said}")


# ----------------------------------------------------------------------- p(true) drops, object against background


def log_odds_drops(evidence: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per image, the drop of the true class's log-odds with the occluder on the object and on background only
    (unoccluded minus mean occluded), over the images that have both; None when the evidence lacks them."""
    columns = [dig(evidence, name, None) for name in ("log_odds", "object_log_odds", "background_log_odds")]
    if any(not isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
        return None
    base, on_object, background = (np.array([or_nan(v) for v in c], dtype=float) for c in columns)
    kept = np.isfinite(base) & np.isfinite(on_object) & np.isfinite(background)
    return base[kept] - on_object[kept], base[kept] - background[kept]


def above_floor(interval: Interval, floor: float) -> Decision:
    """A claimed increase of at least `floor`: `decide` on the interval shifted down by the floor, so reproduced
    when the CI lies wholly above the floor, not reproduced when wholly below it, cannot decide when it reaches
    across. The decision keeps the unshifted interval and states the floor as its margin."""
    shifted = Interval(interval.estimate - floor, interval.low - floor, interval.high - floor, interval.level,
                       interval.n, interval.method)
    verdict = decide(shifted, 0.0, INCREASE).verdict
    if math.isnan(interval.low) or math.isnan(interval.high):
        reason = "no interval"
    else:
        reason = {REPRODUCED: f"the CI lies wholly above the floor {floor:g}",
                  NOT_REPRODUCED: f"the CI lies wholly below the floor {floor:g}",
                  CANNOT_DECIDE: f"the CI reaches across the floor {floor:g}"}[verdict]
    return Decision(verdict, interval, floor, INCREASE, reason)


def both(first: str, second: str) -> str:
    """The verdict of a claim with two parts that must both hold."""
    if first == REPRODUCED and second == REPRODUCED:
        return REPRODUCED
    if NOT_REPRODUCED in (first, second):
        return NOT_REPRODUCED
    return CANNOT_DECIDE


def drop_verdict(metrics: dict | None, model: str, settings: Settings = Settings()) -> Verdict:
    """Occluding the object drops p(true) by at least the floor more than occluding background, which does not
    (DROP_RULE)."""
    if metrics is None:
        return rules.unknown(DROP_CLAIM, model, DROP_RULE, False, "p(true) drops")
    floor = settings.margin("occlusion_log_odds", LOG_ODDS_FLOOR)
    drops = log_odds_drops(metrics.get("evidence"))
    if drops is None:
        return Verdict(DROP_CLAIM, model, CANNOT_DECIDE, DROP_RULE,
                       f"no per-image evidence (evidence/occlusion_{model}.json): the metrics hold only {p_drops(metrics)}, "
                       "from which no interval in log-odds follows")
    on_object, background = drops
    if len(on_object) < 2:
        return Verdict(DROP_CLAIM, model, CANNOT_DECIDE, DROP_RULE,
                       f"{len(on_object)} images with positions both on the object and on background only: too few")
    common = {"resamples": settings.resamples, "seed": settings.seed, "level": settings.level}
    difference = above_floor(paired_bootstrap([background, on_object], **common), floor)
    unchanged = decide(paired_bootstrap([np.zeros_like(background), background], **common), floor, NO_CHANGE)
    test = wilcoxon(on_object - background - floor, alternative="greater")
    return Verdict(DROP_CLAIM, model, both(difference.verdict, unchanged.verdict), DROP_RULE,
                   f"log-odds drop, object - background: {difference.evidence()}; Wilcoxon signed-rank p = "
                   f"{test.p_value:.2g} that it exceeds the floor; background drop alone: {unchanged.evidence()}; "
                   f"{p_drops(metrics)}")


def p_drops(metrics: dict) -> str:
    """The metrics' mean drops of p(true) itself, for the evidence text."""
    on, off = (or_nan(dig(metrics, f"p_true_drop.{k}", None)) for k in ("object", "background"))
    return f"mean drops of p(true) {on:.4f} on the object, {off:.4f} on background"


# ----------------------------------------------------------------------- the strongest layer-5 map


def covering_drops_more(metrics: dict) -> tuple[np.ndarray, str] | None:
    """Per image 1.0 where covering the projection drops the layer-5 map more than elsewhere, else 0.0, and where
    that came from: the evidence, or (without it) the metrics' share and count; None when neither has it."""
    columns = [dig(metrics, f"evidence.layer5_{k}_drop", None) for k in ("covering", "elsewhere")]
    if all(isinstance(c, list) for c in columns) and len(columns[0]) == len(columns[1]):
        covering, elsewhere = (np.array([or_nan(v) for v in c], dtype=float) for c in columns)
        kept = np.isfinite(covering) & np.isfinite(elsewhere)
        return (covering[kept] > elsewhere[kept]).astype(float), "per image"
    share = number(dig(metrics, "layer5_map_drop.share_of_images_where_covering_drops_more", None))
    count = number(dig(metrics, "layer5_map_drop.images_covered", None))
    if share is None or count is None or count < 1 or count != int(count):
        return None
    hits = share * count
    if abs(hits - round(hits)) > 1e-6 * count:
        return None
    hits, count = int(round(hits)), int(count)
    return np.array([1.0] * hits + [0.0] * (count - hits)), (
        "no per-image evidence: from the metrics' share and count (0/1 outcomes: the same interval in law)")


def layer5_verdict(metrics: dict | None, model: str, settings: Settings = Settings()) -> Verdict:
    """The share of images where covering the projection drops the map more, against one half (LAYER5_RULE)."""
    what = "share of images where covering the projection drops the map more than elsewhere, minus 0.5"
    outcomes = None if metrics is None else covering_drops_more(metrics)
    if outcomes is None or len(outcomes[0]) < 2:
        return rules.unknown(LAYER5_CLAIM, model, LAYER5_RULE, metrics is not None, what)
    more, source = outcomes
    interval = paired_bootstrap([np.full_like(more, 0.5), more], mean_change, resamples=settings.resamples,
                                seed=settings.seed, level=settings.level)
    decision = decide(interval, settings.margin("occlusion_layer5_share", LAYER5_SHARE_MARGIN), INCREASE)
    return rules.judged(LAYER5_CLAIM, model, decision, f"{what} ({source})", rule=LAYER5_RULE)
