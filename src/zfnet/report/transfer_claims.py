"""Tables 4-7 and Fig. 9: the transfer claims, each judged by a confidence interval (`zfnet.report.decision`).

A Caltech cell (one model, one method or layer, one training size) is measured on `folds` random splits;
the transfer stage's evidence file keeps each fold's accuracy and each fold's per-class accuracies. Fold f
is the same split in every cell of a dataset (the scratch runs use the pretrained curve's first folds, every
Table 7 layer and classifier the same folds), so two cells pair up fold by fold. What an interval resamples:

- at least FOLDS_FOR_T shared folds: the per-fold paired differences, Student's t interval (n - 1 degrees of
  freedom). It assumes near-normal fold values; a bootstrap of 5 folds has 126 distinct resamples and too
  narrow percentiles, so it is not used. This is the paper's own unit: its "+-" is the std over 5 folds;
- fewer (the default run trains one from-scratch net per size): the classes, each class's accuracy averaged
  over the shared folds, a paired percentile bootstrap (`report.statistics`). It covers the test images and the
  classes drawn, not the spread between splits, and says so in the evidence;
- no evidence (metrics from before it existed): from the aggregates, unpaired, and said so: a t interval
  from the means and stds over folds when both cells have >= 2, else Newcombe's interval for two proportions
  on the test images of one split (ignores the spread between splits).

Absolute numbers (ours against the paper's printed accuracy or mAP) are judged only on the real datasets:
reproduced when the interval of ours minus the paper's lies inside +-`transfer_absolute_points`. PASCAL: the
paper's 79.0 mAP is on the VOC 2012 test set (labels not public); ours names the split it was scored on,
and a figure from any other split is "not comparable", never scored against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from zfnet import paper
from zfnet.report import rules
from zfnet.report.decision import INCREASE, NO_CHANGE, Settings, decide
from zfnet.report.intervals import newcombe_difference, student_t_quantile, t_interval, wilson
from zfnet.report.rules import dig, number
from zfnet.report.spec import NOT_RUN, Verdict
from zfnet.report.stats import Interval, paired_bootstrap

FOLDS_FOR_T = 3                                       # shared folds from which the t interval over folds is used
ACCURACY_MARGIN = ("transfer_accuracy_points", 2.0)   # report.margins key and default, in percentage points
ABSOLUTE_MARGIN = ("transfer_absolute_points", 3.0)

CHANGE_RULE = ("the CI of the difference of mean per-class accuracy (per-fold paired t interval from "
               f"{FOLDS_FOR_T} shared folds, else a paired bootstrap over classes, else from the aggregates, unpaired) "
               "against zero and the margin: reproduced when it excludes zero on the paper's side, not reproduced when it "
               "excludes zero on the other side or lies inside the margin, cannot decide otherwise")
ABSOLUTE_RULE = ("on the paper's data only: reproduced when the CI of ours minus the paper's number lies inside the "
                 "margin, not reproduced when it lies wholly beyond it, cannot decide otherwise (the paper's number "
                 "taken as exact)")


@dataclass(frozen=True)
class Cell:
    """One Caltech table cell: its aggregates from the metrics and, where the evidence has them, its folds."""

    mean: float | None
    std: float | None             # over `k` folds, with `ddof`
    ddof: int
    k: int | None                 # folds behind mean and std
    n_test: int | None            # test images of one fold
    folds: np.ndarray | None      # (k,) each fold's mean per-class accuracy
    per_class: np.ndarray | None  # (k, classes) each fold's per-class accuracies


def cell(metrics: dict | None, model: str, path: str, size: str, folds_key: str = "folds") -> Cell:
    """The cell at `path` ("pretrained.15", "layers.svm.7") of `model`; `size` is its training images per class
    (for the test-image count) and `folds_key` the data entry that counts its folds ("folds", "scratch_folds")."""
    aggregate, found = dig(metrics, f"{model}.{path}", {}) or {}, dig(metrics, f"evidence.{model}.{path}", {}) or {}
    k = number(dig(metrics, f"data.{folds_key}", None))
    n_test = number(dig(metrics, f"data.test_images.{size}", None))
    folds, per_class = _array(found.get("folds"), 1), _array(found.get("per_class"), 2)
    if per_class is not None and folds is not None and len(per_class) != len(folds):
        per_class = None
    return Cell(number(aggregate.get("mean")), number(aggregate.get("std")),
                int(number(dig(metrics, "data.std_ddof", None)) or 0),    # older metrics: the population std
                int(k) if k else None, int(n_test) if n_test else None, folds, per_class)


def _array(values, ndim: int) -> np.ndarray | None:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == ndim and array.size and np.isfinite(array).all() else None


def _sample_std(c: Cell) -> float | None:
    """The cell's std over folds with ddof=1 (older metrics hold the population std: rescaled)."""
    if c.std is None or not c.k or c.k < 2:
        return None
    return c.std * math.sqrt(c.k / (c.k - 1)) if c.ddof == 0 else c.std


# A percentile bootstrap over 3 classes has 10 distinct resamples and an interval far too narrow (the negative
# control caught it: untrained nets "reproduced" a depth trend at smoke scale); below this, Student's t.
CLASSES_FOR_BOOTSTRAP = 10


def difference(a: Cell, b: Cell, settings: Settings) -> Interval | None:
    """CI of b's accuracy minus a's, paired by fold where the evidence allows (see the module's docstring)."""
    if a.folds is not None and b.folds is not None and min(len(a.folds), len(b.folds)) >= FOLDS_FOR_T:
        k = min(len(a.folds), len(b.folds))
        return t_interval(b.folds[:k] - a.folds[:k], settings.level, method=f"Student t interval over {k} paired folds")
    if a.per_class is not None and b.per_class is not None and a.per_class.shape[1] == b.per_class.shape[1] >= 2:
        k = min(len(a.per_class), len(b.per_class))
        return _class_bootstrap(a.per_class[:k], b.per_class[:k], k, settings)
    return _aggregate_difference(a, b, settings)


def _class_bootstrap(a: np.ndarray, b: np.ndarray, k: int, settings: Settings) -> Interval:
    """Paired bootstrap over the classes of b - a, each class's accuracy averaged over its k (fold) rows; with
    fewer than CLASSES_FOR_BOOTSTRAP classes, Student's t over the classes' paired differences instead."""
    classes = a.shape[1]
    if classes < CLASSES_FOR_BOOTSTRAP:
        return t_interval(b.mean(axis=0) - a.mean(axis=0), settings.level,
                          method=f"Student t interval over {classes} classes' paired differences, each averaged over "
                                 f"{k} shared fold{'s' * (k > 1)} (too few classes to bootstrap)")
    interval = paired_bootstrap([a.mean(axis=0), b.mean(axis=0)], resamples=settings.resamples, seed=settings.seed,
                                level=settings.level)
    return replace(interval, method=f"paired percentile bootstrap over {a.shape[1]} classes ({settings.resamples} "
                                    f"resamples), each class's accuracy averaged over {k} shared fold{'s' * (k > 1)}: "
                                    "covers the test images and classes, not the spread between splits")


def _aggregate_difference(a: Cell, b: Cell, settings: Settings) -> Interval | None:
    if a.mean is None or b.mean is None:
        return None
    sa, sb = _sample_std(a), _sample_std(b)
    if sa is not None and sb is not None:
        half = student_t_quantile(0.5 + settings.level / 2, min(a.k, b.k) - 1) * math.sqrt(sa ** 2 / a.k + sb ** 2 / b.k)
        return Interval(b.mean - a.mean, b.mean - a.mean - half, b.mean - a.mean + half, settings.level, min(a.k, b.k),
                        f"t interval from the means and stds over {a.k} and {b.k} folds, unpaired "
                        f"({min(a.k, b.k) - 1} degrees of freedom; no per-fold evidence)")
    if a.n_test and b.n_test and 0 <= a.mean <= 1 and 0 <= b.mean <= 1:
        interval = newcombe_difference(a.mean, a.n_test, b.mean, b.n_test, settings.level)
        return replace(interval, method=f"{interval.method} on the {a.n_test} test images of one split, unpaired, from "
                                        "the aggregates (no per-fold evidence): ignores the spread between splits")
    return None


def single(c: Cell, settings: Settings) -> Interval | None:
    """CI of the cell's own accuracy: over its folds (t), else its classes (bootstrap), else from its aggregates."""
    if c.folds is not None and len(c.folds) >= FOLDS_FOR_T:
        return t_interval(c.folds, settings.level, method=f"Student t interval over {len(c.folds)} folds")
    if c.per_class is not None and c.per_class.shape[1] >= 2:
        k = len(c.per_class)
        return _class_bootstrap(np.zeros_like(c.per_class), c.per_class, k, settings)
    if c.mean is None:
        return None
    s = _sample_std(c)
    if s is not None:
        half = student_t_quantile(0.5 + settings.level / 2, c.k - 1) * s / math.sqrt(c.k)
        return Interval(c.mean, c.mean - half, c.mean + half, settings.level, c.k,
                        f"t interval from the mean and std over {c.k} folds (no per-fold evidence)")
    if c.n_test and 0 <= c.mean <= 1:
        low, high = wilson(c.mean, c.n_test, settings.level)
        return Interval(c.mean, low, high, settings.level, c.n_test, f"Wilson interval on the {c.n_test} test images of "
                        "one split, from the aggregates (no per-fold evidence): ignores the spread between splits")
    return None


def shifted(interval: Interval | None, by: float) -> Interval | None:
    """The interval of (value - by)."""
    if interval is None:
        return None
    return replace(interval, estimate=interval.estimate - by, low=interval.low - by, high=interval.high - by)


def _points(settings: Settings, margin: tuple[str, float]) -> float:
    return settings.margin(*margin) / 100     # the metrics hold fractions; the margins are in points


def _judge(claim: str, subject: str, interval: Interval | None, margin: float, expected: str, what: str, ran: bool,
           rule: str) -> Verdict:
    if interval is None:
        return rules.unknown(claim, subject, rule, ran, what)
    return rules.judged(claim, subject, decide(interval, margin, expected), what, rule=rule, digits=1, scale=100,
                        unit=" pt")


# ----------------------------------------------------------------------- Tables 4, 5: pretrained vs scratch


def shared_sizes(metrics: dict | None, model: str) -> list[str]:
    result = dig(metrics, model, None)
    return sorted(set(dig(result, "pretrained", {}) or {}) & set(dig(result, "scratch", {}) or {}), key=int)


def pretrained_beats_scratch(metrics: dict | None, model: str, dataset: str, settings: Settings = Settings()) -> Verdict:
    """At the smallest training size that has both ("few examples"): pretrained minus scratch accuracy, paired by fold."""
    claim, subject = "pretrained features beat training from scratch with few examples", f"{model}, {dataset}"
    sizes = shared_sizes(metrics, model)
    if not sizes:
        return rules.unknown(claim, subject, CHANGE_RULE, metrics is not None, "a size with both")
    size = sizes[0]
    interval = difference(cell(metrics, model, f"scratch.{size}", size, "scratch_folds"),
                          cell(metrics, model, f"pretrained.{size}", size), settings)
    return _judge(claim, subject, interval, _points(settings, ACCURACY_MARGIN), INCREASE,
                  f"pretrained minus scratch accuracy at {size} per class", True, CHANGE_RULE)


# ----------------------------------------------------------------------- Table 7: accuracy against depth


def rises_with_depth(metrics: dict | None, model: str, dataset: str, settings: Settings = Settings()) -> list[Verdict]:
    """Per classifier: the deepest layer's accuracy minus the shallowest's, paired by fold (every layer sees the same
    folds); Spearman's rank correlation of layer and mean accuracy and the best layer go along, descriptive."""
    from zfnet.transfer.protocol import rank_correlation

    verdicts = []
    for kind in ("svm", "softmax"):
        claim, subject = f"transfer accuracy rises with the layer's depth ({kind})", f"{model}, {dataset}"
        table = dig(metrics, f"{model}.layers.{kind}", {}) or {}
        layers = sorted((layer for layer in table if number(dig(table, f"{layer}.mean", None)) is not None), key=int)
        if len(layers) < 2:
            verdicts.append(rules.unknown(claim, subject, CHANGE_RULE, metrics is not None, "two layers' accuracies"))
            continue
        size = str(dig(metrics, "data.layers_size", "") or "")
        shallow, deep = (cell(metrics, model, f"layers.{kind}.{layer}", size) for layer in (layers[0], layers[-1]))
        means = [table[layer]["mean"] for layer in layers]
        rho = rank_correlation([int(layer) for layer in layers], means)
        what = (f"layer {layers[-1]} minus layer {layers[0]} (Spearman of layer and mean accuracy {rho:+.2f}, "
                f"best layer {layers[int(np.argmax(means))]})")
        verdicts.append(_judge(claim, subject, difference(shallow, deep, settings), _points(settings, ACCURACY_MARGIN),
                               INCREASE, what, True, CHANGE_RULE))
    return verdicts


# ----------------------------------------------------------------------- absolute numbers (the paper's data only)


def absolute(claim: str, subject: str, ours: Interval | None, printed: float, real_data: bool, ran: bool,
             settings: Settings = Settings()) -> Verdict:
    """A number only the paper's data can reproduce: the CI of ours minus the paper's `printed` (percent) inside the margin."""
    if not real_data:
        return rules.not_at_this_scale(claim, subject, "the built-in data: its numbers are not comparable")
    return _judge(claim, subject, shifted(ours, printed / 100), _points(settings, ABSOLUTE_MARGIN), NO_CHANGE,
                  f"ours minus the paper's {printed:g}", ran, ABSOLUTE_RULE)


def caltech_absolute(metrics: dict | None, model: str, dataset: str, size: str, printed: float, real_data: bool,
                     settings: Settings = Settings()) -> Verdict:
    """Table 4/5's pretrained accuracy at `size` per class against the paper's."""
    return absolute(f"pretrained accuracy with {size} per class ({printed}%)", f"{model}, {dataset}",
                    single(cell(metrics, model, f"pretrained.{size}", size), settings), printed, real_data,
                    metrics is not None, settings)


def beats_prior_best(metrics: dict | None, model: str, real_data: bool, settings: Settings = Settings()) -> Verdict:
    """Fig. 9: with 6 images per class the pretrained features beat the best prior result that used 60."""
    printed = paper.numbers("fig9_caltech256")
    size, prior = str(printed["beats_prior_best_from"]), printed["prior_best_at_60"]
    claim = f"with {size} per class, pretrained features beat the best prior Caltech-256 result with 60 ({prior}%)"
    if not real_data:
        return rules.not_at_this_scale(claim, model, "the prior result was measured on the real Caltech-256")
    rule = f"reproduced when the CI of our pretrained accuracy at {size} per class minus {prior}% excludes zero above it"
    ours = shifted(single(cell(metrics, model, f"pretrained.{size}", size), settings), prior / 100)
    return _judge(claim, model, ours, _points(settings, ACCURACY_MARGIN), INCREASE,
                  f"our accuracy at {size} per class minus {prior}", metrics is not None, rule)


# ----------------------------------------------------------------------- Table 6: PASCAL VOC 2012

PAPER_SPLIT = "test"   # the paper's Table 6: trained on VOC 2012 train+val, scored on its test set


def pascal_split(metrics: dict | None) -> dict:
    """{"train", "test"}: the VOC 2012 image sets our Table 6 was trained and scored on ({} when the metrics predate it)."""
    return dig(metrics, "data.split", None) or dig(metrics, "evidence.split", None) or {}


def pascal_map(metrics: dict | None, model: str, real_data: bool, settings: Settings = Settings()) -> Verdict:
    """The paper's mAP on the VOC 2012 test set. Ours is scored on `transfer.pascal.test_set` (train, val or trainval:
    the test set's labels are not public), so it is "not comparable", never scored against the paper's. Metrics that
    do name the test set still get no verdict: an interval on mAP needs per-image scores (its classes are fixed, not
    sampled, so resampling the 20 APs is the wrong unit), and the stage saves only per-class APs."""
    printed = paper.numbers("table6_pascal")["map"]
    claim = f"mAP {printed}% on the VOC 2012 {PAPER_SPLIT} set"
    split = pascal_split(metrics).get("test")
    if metrics is not None and not real_data:
        return rules.not_at_this_scale(claim, model, f"the built-in data, scored on its {split or '(unnamed)'} split: its "
                                       "numbers are not comparable")
    if metrics is None:
        return absolute(claim, model, None, printed, real_data, False, settings)
    ours = number(dig(metrics, f"{model}.map", None))
    ours_text = "?" if ours is None else f"{100 * ours:.1f}"
    if split != PAPER_SPLIT:
        return Verdict(claim, model, NOT_RUN, "comparable only on the paper's split (VOC 2012 test, labels not public)",
                       f"not comparable: ours ({ours_text}) is measured on {split or 'a split the metrics do not name'}; "
                       f"the paper's {printed} is on the test set")
    return rules.unknown(claim, model, ABSOLUTE_RULE, True, f"ours ({ours_text}) on the test set has no interval: no "
                         "per-image scores in the evidence")
