"""The transfer protocol (paper Sec. 5.2) as functions of arrays: folds, linear classifiers, scores.

Caltech-101/256 (Tables 4, 5, 7; Fig. 9): in each fold, `n` training images per class drawn at
random and up to `test_per_class` of the remaining ones for testing (per dataset: 50 for Caltech-101,
the paper's; 25 for Caltech-256, Griffin et al.'s); the score is the mean per-class accuracy, reported
as mean +- std over the folds, the std with ddof=1 (the sample std: the paper's "+-" over 5 folds). Each
score keeps its per-fold values and each fold's per-class accuracies: the report's intervals resample
them. PASCAL VOC (Table 6): one average precision per class, VOC 2010+ definition, and their mean.

Choices the paper leaves open (ours):
- Folds are nested across sizes: fold f permutes each class once (seeded by seed, fold and class),
  takes the first n as training images and the next (up to) test_per_class as test images. A larger
  n keeps the smaller n's training images, so a Fig. 9 curve is one draw, not a new one per point.
- Classifiers see standardized features (mean and variance from the training images only), with
  L2 regularization strength 1/C: the objectives of scikit-learn's LogisticRegression (the "softmax")
  and LinearSVC (one-vs-rest, squared hinge), solved by `zfnet.transfer.linear` (solver "torch") or
  by scikit-learn itself (solver "sklearn", much slower here).
- PASCAL's softmax is trained on label distributions: an image with k positive classes counts once
  per class with weight 1/k (cross-entropy against the uniform distribution over its classes).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from zfnet.errors import UserError
from zfnet.transfer import linear

CLASSIFIERS = linear.KINDS  # "softmax", "svm"


class Fold(NamedTuple):
    train: np.ndarray  # indices into the dataset, class by class
    test: np.ndarray


def sample_fold(labels: np.ndarray, n_train: int, test_per_class: int, seed: int, fold: int) -> Fold:
    """Fold `fold` with `n_train` training images per class and up to `test_per_class` test images."""
    labels = np.asarray(labels)
    train, test = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) <= n_train:
            raise UserError(f"{n_train} training images per class leave no test image in class {label} "
                            f"({len(members)} images)")
        order = np.random.default_rng([seed, fold, int(label)]).permutation(members)
        train.append(order[:n_train])
        test.append(order[n_train:n_train + test_per_class])
    return Fold(np.concatenate(train), np.concatenate(test))


def largest_size(labels: np.ndarray) -> int:
    """The most training images per class that still leave one test image in every class."""
    counts = np.bincount(np.asarray(labels))
    return int(counts[counts > 0].min()) - 1


def class_accuracies(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per class present in `labels` (in increasing label order), the share of its images predicted right."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    return np.array([np.mean(predicted[labels == c] == c) for c in np.unique(labels)], dtype=np.float64)


def mean_class_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """The mean over the classes present in `labels` of the share of that class predicted right."""
    return float(np.mean(class_accuracies(predicted, labels)))


STD_DDOF = 1  # the spread over folds is the sample std (n - 1): what "+-" over the paper's 5 folds estimates


def mean_std(values) -> dict[str, float | None]:
    """{"mean", "std"} over folds; std is the sample std (ddof=1), None for a single fold (undefined)."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=STD_DDOF)) if len(values) > STD_DDOF else None
    return {"mean": float(values.mean()), "std": std}


def score(per_fold_classes: list[np.ndarray]) -> dict:
    """One table cell from each fold's per-class accuracies: {"mean", "std"} over the folds' mean per-class
    accuracies, with "folds" (those accuracies) and "per_class" (fold by fold) kept as evidence."""
    folds = [float(np.mean(classes)) for classes in per_fold_classes]
    return {**mean_std(folds), "folds": folds, "per_class": [[float(a) for a in c] for c in per_fold_classes]}


def make_classifier(kind: str, C: float = 1.0, max_iter: int = 10000):
    """scikit-learn's version of `kind`: standardize, then LogisticRegression or LinearSVC (solver=sklearn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if kind == "softmax":
        model = LogisticRegression(C=C, max_iter=max_iter)
    elif kind == "svm":
        model = LinearSVC(C=C, max_iter=max_iter, random_state=0)
    else:
        raise UserError(f"classifier {kind!r}: expected one of {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), model)


SOLVERS = ("torch", "sklearn")


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise UserError(f"transfer.solver: {solver!r}, expected one of {', '.join(SOLVERS)}")


def fit_predict(kind: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, C: float = 1.0,
                solver: str = "torch") -> np.ndarray:
    """Train `kind` on (train_x, train_y) and predict test_x's classes; solver "torch"
    (`zfnet.transfer.linear`, the default) or "sklearn" (the same objectives, slower)."""
    if solver == "torch":
        return linear.fit(kind, train_x, train_y, int(train_y.max()) + 1, C).predict(test_x)
    check_solver(solver)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    classifier = make_classifier(kind, C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # liblinear often stops at max_iter; see linear.py
        classifier.fit(train_x, train_y)
    return classifier.predict(test_x)


def fold_accuracy(features: np.ndarray, labels: np.ndarray, fold: Fold, kind: str = "softmax",
                  C: float = 1.0, solver: str = "torch") -> float:
    """Train `kind` on the fold's training images, return its mean per-class accuracy on the test images."""
    return float(np.mean(fold_class_accuracies(features, labels, fold, kind, C, solver)))


def fold_class_accuracies(features: np.ndarray, labels: np.ndarray, fold: Fold, kind: str = "softmax",
                          C: float = 1.0, solver: str = "torch") -> np.ndarray:
    """Train `kind` on the fold's training images; its accuracy on each class's test images (`class_accuracies`)."""
    predicted = fit_predict(kind, features[fold.train], labels[fold.train], features[fold.test], C, solver)
    return class_accuracies(predicted, labels[fold.test])


# ----------------------------------------------------------------------------- PASCAL VOC


def fit_label_softmax(features: np.ndarray, targets: np.ndarray, C: float = 1.0, solver: str = "torch"):
    """A softmax over the classes trained on (N, K) VOC targets (1 present, 0 difficult only, -1 absent).

    Each image counts once for each present class, with weight 1/(number of present classes); images
    with no present class are left out. Returns a function mapping features to (N, K) probabilities.
    """
    positives = targets == 1
    rows, classes = np.nonzero(positives)
    if len(rows) == 0:
        raise UserError("PASCAL: no training image has a labelled object")
    weights = 1.0 / positives.sum(axis=1)[rows]
    if solver == "torch":
        return linear.fit("softmax", features[rows], classes, targets.shape[1], C, sample_weight=weights).probabilities
    check_solver(solver)
    classifier = make_classifier("softmax", C).fit(features[rows], classes, logisticregression__sample_weight=weights)

    def probabilities(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), targets.shape[1]))
        out[:, classifier.classes_] = classifier.predict_proba(x)
        return out

    return probabilities


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """VOC 2010+ average precision: the area under the interpolated precision/recall curve.

    labels: 1 positive, -1 negative, 0 ignored ("difficult" only). Precision at recall r is
    interpolated as the best precision at any recall >= r (the VOC devkit's `VOCap`); unlike VOC 2007's
    11-point average, every recall step counts. NaN when there is no positive.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    keep = labels != 0
    scores, positive = scores[keep], labels[keep] > 0
    if not positive.any():
        return math.nan
    hits = positive[np.argsort(-scores, kind="stable")]
    true_pos = np.cumsum(hits)
    recall = np.concatenate([[0.0], true_pos / positive.sum(), [1.0]])
    precision = np.concatenate([[0.0], true_pos / np.arange(1, len(hits) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


# ----------------------------------------------------------------------------- tables


def check_sizes(key: str, sizes, labels: np.ndarray) -> None:
    """A UserError naming `key` when a size leaves some class without a test image."""
    largest = largest_size(labels)
    too_large = [n for n in sizes if n > largest]
    if too_large:
        raise UserError(f"{key}: {too_large} training images per class leave no test image in the smallest "
                        f"class ({largest + 1} images); the largest size that fits is {largest}")


def size_curve(features: np.ndarray, labels: np.ndarray, sizes, folds: int, test_per_class: int, seed: int,
               kind: str = "softmax", C: float = 1.0, solver: str = "torch") -> dict[str, dict]:
    """{str(n): `score`}: accuracy with n training images per class (Tables 4, 5; Fig. 9), one classifier
    per size and fold."""
    return {str(n): score([fold_class_accuracies(features, labels, sample_fold(labels, n, test_per_class, seed, f),
                                                 kind, C, solver) for f in range(folds)]) for n in sizes}


def layer_table(features: dict[int, np.ndarray], labels: np.ndarray, size: int, layers, classifiers,
                folds: int, test_per_class: int, seed: int, C: float = 1.0, solver: str = "torch") -> dict[str, dict]:
    """Table 7: {classifier: {str(layer): `score`}} with `size` training images per class; every layer and
    classifier sees the same folds (so their per-fold differences are paired)."""
    splits = [sample_fold(labels, size, test_per_class, seed, f) for f in range(folds)]
    table: dict[str, dict] = {}
    for kind in classifiers:
        for layer in layers:
            table.setdefault(kind, {})[str(layer)] = score(
                [fold_class_accuracies(features[layer], labels, split, kind, C, solver) for split in splits])
    return table


def held_out_counts(labels: np.ndarray, sizes, test_per_class: int) -> dict[str, int]:
    """{str(n): test images per fold}: up to test_per_class per class, fewer where a class runs short."""
    counts = np.bincount(np.asarray(labels))
    counts = counts[counts > 0]
    return {str(n): int(np.minimum(test_per_class, counts - n).sum()) for n in sizes}


def pascal_scores(train_x: np.ndarray, train_targets: np.ndarray, test_x: np.ndarray, test_targets: np.ndarray,
                  classes: list[str], C: float = 1.0, solver: str = "torch") -> dict:
    """Table 6: {"ap": {class: AP}, "map": mean AP} of a label softmax trained on train, scored on test.
    A class with no positive test image has AP None and is left out of the mean."""
    scores = fit_label_softmax(train_x, train_targets, C, solver)(test_x)
    ap = {name: average_precision(scores[:, k], test_targets[:, k]) for k, name in enumerate(classes)}
    present = [v for v in ap.values() if not math.isnan(v)]
    return {"ap": {name: None if math.isnan(v) else v for name, v in ap.items()},
            "map": float(np.mean(present)) if present else None}


# ----------------------------------------------------------------------------- the paper's claims


def rank_correlation(xs, ys) -> float:
    """Spearman's rank correlation (ties get their mean rank); NaN when either side is constant."""
    def ranks(values):
        values = np.asarray(values, dtype=np.float64)
        order = np.argsort(values, kind="stable")
        rank = np.empty(len(values))
        rank[order] = np.arange(len(values), dtype=np.float64)
        for value in np.unique(values):  # ties share their mean rank
            rank[values == value] = rank[values == value].mean()
        return rank

    rx, ry = ranks(xs), ranks(ys)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def claims(result: dict) -> dict:
    """What the paper's two transfer claims rest on, from one model's Caltech results (accuracies as fractions):
    descriptive numbers for the metrics and W&B, not verdicts (the report judges the claims with intervals
    from the per-fold evidence: `zfnet.report.transfer_claims`).

    pretrained_minus_scratch: {size: mean difference} at each size that has both.
    depth, per classifier: Spearman's rank correlation between layer number and mean accuracy, the deepest
    layer's mean minus the shallowest's, and the best layer.
    """
    shared = sorted(set(result["pretrained"]) & set(result["scratch"]), key=int)
    gaps = {n: result["pretrained"][n]["mean"] - result["scratch"][n]["mean"] for n in shared}
    depth = {}
    for kind, table in result["layers"].items():
        layers = sorted(table, key=int)
        means = [table[layer]["mean"] for layer in layers]
        correlation = rank_correlation([int(layer) for layer in layers], means)
        depth[kind] = {"spearman": None if math.isnan(correlation) else correlation,
                       "deepest_minus_shallowest": means[-1] - means[0],
                       "best_layer": int(layers[int(np.argmax(means))])}
    return {"pretrained_minus_scratch": gaps, "depth": depth}
