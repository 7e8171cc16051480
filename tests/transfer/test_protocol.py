"""The transfer protocol: folds, per-class accuracy, VOC average precision, the label softmax, tables, claims.

Expected values come from hand computations (worked out in the comments), scikit-learn or scipy,
never from the code under test.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score, recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from zfnet.errors import UserError
from zfnet.transfer import protocol

SIZES = {0: 10, 1: 7, 2: 5}  # unequal classes, shuffled so that a class's indices are not contiguous
LABELS = np.random.default_rng(0).permutation(np.repeat(list(SIZES), list(SIZES.values())))


# ----------------------------------------------------------------------------- folds


@pytest.mark.parametrize("n", [1, 4])
def test_fold_has_n_train_and_up_to_test_per_class_disjoint_test_images(n):
    fold = protocol.sample_fold(LABELS, n, test_per_class=3, seed=0, fold=0)
    assert not set(fold.train) & set(fold.test)
    assert len(set(fold.train)) == len(fold.train) and len(set(fold.test)) == len(fold.test)
    for label, size in SIZES.items():
        assert (LABELS[fold.train] == label).sum() == n
        assert (LABELS[fold.test] == label).sum() == min(3, size - n)  # n=4: 3, 3, 1


def test_fold_is_a_function_of_seed_and_fold_and_nested_across_sizes():
    def train(n, seed, fold):
        return protocol.sample_fold(LABELS, n, 3, seed, fold).train

    np.testing.assert_array_equal(train(2, 0, 0), train(2, 0, 0))
    assert set(train(2, 0, 0)) != set(train(2, 1, 0))
    assert set(train(2, 0, 0)) != set(train(2, 0, 1))
    for seed, fold in [(0, 0), (1, 0), (0, 1)]:
        assert set(train(2, seed, fold)) < set(train(4, seed, fold))


def test_size_that_leaves_a_class_without_test_images_is_refused():
    protocol.sample_fold(LABELS, 4, 3, 0, 0)  # class 2 (5 images) keeps one test image
    with pytest.raises(UserError, match="class 2 .5 images"):
        protocol.sample_fold(LABELS, 5, 3, 0, 0)
    assert protocol.largest_size(LABELS) == 4
    protocol.check_sizes("transfer.caltech101.sizes", [1, 4], LABELS)
    with pytest.raises(UserError, match=r"transfer\.caltech101\.sizes: \[5, 9\].*largest size that fits is 4"):
        protocol.check_sizes("transfer.caltech101.sizes", [1, 5, 9], LABELS)


def test_held_out_counts_by_hand():
    # up to 4 test images from classes of 10, 7, 5: n=1 -> 4 + 4 + 4; n=4 -> 4 + 3 + 1
    assert protocol.held_out_counts(LABELS, [1, 4], 4) == {"1": 12, "4": 8}
    assert protocol.held_out_counts(LABELS, [4], 4)["4"] == len(protocol.sample_fold(LABELS, 4, 4, 0, 0).test)


# ----------------------------------------------------------------------------- accuracy


def test_mean_class_accuracy_averages_over_classes_not_images():
    # class 0: 2 of 3 right, class 1: 1 of 1 -> (2/3 + 1) / 2 = 5/6, where plain accuracy is 3/4
    assert protocol.mean_class_accuracy(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])) == pytest.approx(5 / 6)


def test_mean_std_is_the_sample_spread_over_folds():
    # ddof=1: sqrt(((0.5 - 0.6)^2 + (0.7 - 0.6)^2) / 1) = 0.1414 (the population std would be 0.1)
    assert protocol.mean_std([0.5, 0.7]) == pytest.approx({"mean": 0.6, "std": math.sqrt(0.02)})
    folds = [0.838, 0.843, 0.831, 0.84, 0.835]
    assert protocol.mean_std(folds)["std"] == pytest.approx(statistics.stdev(folds))   # the standard library's
    assert protocol.mean_std([0.3]) == {"mean": 0.3, "std": None}   # one fold: undefined, not 0


def test_score_keeps_each_fold_and_its_classes():
    # fold 1: classes .5 and 1 -> .75; fold 2: .25 and .75 -> .5; mean .625, std sqrt(2 * .125^2) = .1768
    cell = protocol.score([np.array([0.5, 1.0]), np.array([0.25, 0.75])])
    assert cell == {"mean": pytest.approx(0.625), "std": pytest.approx(math.sqrt(2 * 0.125 ** 2)),
                    "folds": [0.75, 0.5], "per_class": [[0.5, 1.0], [0.25, 0.75]]}
    # classes in label order: class 0 has 1 of 2 right, class 2 has 2 of 2, class 1 none of 1
    np.testing.assert_allclose(protocol.class_accuracies([0, 1, 2, 2, 0], [0, 0, 2, 2, 1]), [0.5, 0.0, 1.0])


# ----------------------------------------------------------------------------- average precision

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
HITS = np.array([1, -1, -1, 1, 1])


def test_average_precision_is_the_interpolated_area():
    # Hits at ranks 1, 4, 5: precision 1, 2/4, 3/5 at recall 1/3, 2/3, 1. Interpolated (best at this
    # recall or beyond): 1, 0.6, 0.6 -> AP = (1 + 0.6 + 0.6) / 3 = 11/15.
    ap = protocol.average_precision(SCORES, HITS)
    assert ap == pytest.approx(11 / 15)
    # Not scikit-learn's uninterpolated (1 + 0.5 + 0.6) / 3 = 0.7, not VOC 2007's 11-point (4 * 1 + 7 * 0.6) / 11
    assert average_precision_score(HITS == 1, SCORES) == pytest.approx(0.7)
    assert ap != pytest.approx(0.7) and ap != pytest.approx(8.2 / 11)


def test_average_precision_ignores_difficult_images():
    top = np.r_[1.0, SCORES]
    assert protocol.average_precision(top, np.r_[0, HITS]) == pytest.approx(11 / 15)
    # the same image as a negative: precision 1/2, 2/5, 3/6 -> interpolated 0.5 throughout
    assert protocol.average_precision(top, np.r_[-1, HITS]) == pytest.approx(0.5)


def test_average_precision_edge_cases():
    # unsorted scores: 0.9(+), 0.5(-), 0.2(-), 0.1(+) -> precision 1, 2/4 -> (1 + 0.5) / 2
    assert protocol.average_precision([0.1, 0.9, 0.5, 0.2], [1, 1, -1, -1]) == pytest.approx(0.75)
    assert math.isnan(protocol.average_precision([0.3, 0.2, 0.1], [-1, 0, -1]))
    assert protocol.average_precision([0.9, 0.8, 0.1, 0.2], [1, 1, -1, -1]) == 1.0


def test_average_precision_breaks_ties_in_input_order():
    # the devkit's stable sort: tied images keep their order. [+, -, +, -]: 1, 2/3 -> (1 + 2/3) / 2 = 5/6
    assert protocol.average_precision([0.9, 0.5, 0.5, 0.1], [1, -1, 1, -1]) == pytest.approx(5 / 6)
    assert protocol.average_precision([0.9, 0.5, 0.5, 0.1], [1, 1, -1, -1]) == 1.0


# ----------------------------------------------------------------------------- PASCAL


def voc(seed: int, spread: float):
    """30 images of 3 classes; images 0-5 also show the next class, 6-7 hold a difficult-only object of
    another class, 8-9 show no class at all (with outlying features, which would bend the fit if used)."""
    rng = np.random.default_rng(seed)
    primary = np.arange(30) % 3
    targets = -np.ones((30, 3), dtype=int)
    targets[np.arange(30), primary] = 1
    targets[np.arange(6), (primary[:6] + 1) % 3] = 1
    targets[[6, 7], (primary[[6, 7]] + 2) % 3] = 0
    targets[[8, 9]] = [[-1, -1, -1], [0, -1, -1]]
    centers = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]) * spread
    features = np.where(targets[:, :, None] == 1, centers, 0).sum(1) + rng.normal(size=(30, 4))
    features[[8, 9]] = 40.0
    return features, targets


def test_label_softmax_counts_each_present_class_with_weight_one_over_k():
    x, targets = voc(0, 1.5)
    rows, classes, weights = [], [], []
    for i, t in enumerate(targets):  # by hand: each present class once, weight 1 / (number present)
        present = [k for k in range(3) if t[k] == 1]  # none for images 8, 9: left out
        rows += [i] * len(present)
        classes += present
        weights += [1 / len(present)] * len(present) if present else []
    oracle = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, tol=1e-10, max_iter=100000))
    oracle.fit(x[rows], classes, logisticregression__sample_weight=weights)
    test_x, _ = voc(1, 1.5)
    for solver, atol in (("torch", 1e-4), ("sklearn", 1e-3)):  # the pipeline's sklearn keeps its default tol
        probabilities = protocol.fit_label_softmax(x, targets, C=0.5, solver=solver)(test_x)
        np.testing.assert_allclose(probabilities, oracle.predict_proba(test_x), atol=atol)
    with pytest.raises(UserError, match="transfer.solver"):
        protocol.fit_label_softmax(x, targets, solver="liblinear")


def test_pascal_scores_leave_out_a_class_without_positive_test_images():
    train_x, train_targets = voc(0, 10.0)
    test_x, test_targets = (v[10:] for v in voc(1, 10.0))  # one class per image
    test_targets[:, 2] = np.where(test_targets[:, 2] == 1, 0, test_targets[:, 2])  # class c: difficult at most
    result = protocol.pascal_scores(train_x, train_targets, test_x, test_targets, ["a", "b", "c"])
    assert result["ap"]["c"] is None
    assert result["ap"]["a"] == pytest.approx(1.0) and result["ap"]["b"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- claims


def test_rank_correlation_matches_spearman_with_ties():
    xs, ys = [1, 2, 3, 4, 5, 6, 7], [0.3, 0.1, 0.3, 0.5, 0.5, 0.5, 0.2]
    assert protocol.rank_correlation(xs, ys) == pytest.approx(spearmanr(xs, ys).statistic)
    assert protocol.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(protocol.rank_correlation([1, 2, 3], [0.5, 0.5, 0.5]))


def result(pretrained, scratch, layers):
    """A Caltech result from {size: mean} and {layer: mean} (keys in the order given)."""
    def table(means):
        return {str(k): {"mean": v, "std": 0.0} for k, v in means.items()}

    return {"pretrained": table(pretrained), "scratch": table(scratch), "layers": {"softmax": table(layers)}}


RISING = {7: 0.8, 1: 0.4, 2: 0.5, 3: 0.55, 4: 0.6, 5: 0.85, 6: 0.82}  # layer 7 first: sort by number


def test_claims_gives_the_gaps_at_every_shared_size():
    gaps = protocol.claims(result({15: 0.8, 30: 0.85, 60: 0.1}, {15: 0.3, 30: 0.4}, RISING))
    assert gaps["pretrained_minus_scratch"] == pytest.approx({"15": 0.5, "30": 0.45})   # 60 has no scratch run
    assert "pretrained_beats_scratch" not in gaps   # a verdict needs an interval: the report's (transfer_claims)
    assert protocol.claims(result({15: 0.8}, {30: 0.4}, RISING))["pretrained_minus_scratch"] == {}


def test_claims_describes_accuracy_against_depth():
    depth = protocol.claims(result({15: 0.8}, {15: 0.3}, RISING))["depth"]["softmax"]
    assert depth["best_layer"] == 5 and depth["deepest_minus_shallowest"] == pytest.approx(0.4)
    assert depth["spearman"] == pytest.approx(spearmanr(range(1, 8), [RISING[k] for k in range(1, 8)]).statistic)
    assert set(depth) == {"best_layer", "deepest_minus_shallowest", "spearman"}
    # layer 7 below layer 1, though the correlation stays positive: ranks 1..5, 0 -> rho = 1 - 6*30/210 > 0
    dips = {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8, 5: 0.9, 7: 0.45}
    described = protocol.claims(result({15: 0.8}, {15: 0.3}, dips))["depth"]["softmax"]
    assert described["deepest_minus_shallowest"] == pytest.approx(-0.05)
    assert described["spearman"] == pytest.approx(spearmanr(list(dips), list(dips.values())).statistic)


# ----------------------------------------------------------------------------- tables


def caltech(classes: int, per_class: int, dim: int, separation: float, seed: int = 0):
    """Unit noise, plus `separation` on feature k for class k (dim = classes: no pure-noise feature, which
    standardization would blow up to the signal's scale with one or two training images per class)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    features = rng.normal(size=(len(labels), dim))
    features[np.arange(len(labels)), labels] += separation
    return features, labels


@pytest.mark.parametrize("kind", ["softmax", "svm"])
def test_size_curve_scores_the_named_classifier_on_each_fold(kind):
    x, y = caltech(3, 20, 3, 1.5)  # overlapping: the two kinds and the folds score differently
    oracle = {"softmax": LogisticRegression(C=0.5, tol=1e-10, max_iter=100000),
              "svm": LinearSVC(C=0.5, intercept_scaling=1000, tol=1e-12, max_iter=1000000, dual=False)}[kind]
    expected = {}
    for n in (2, 5):
        folds = [protocol.sample_fold(y, n, 10, seed=0, fold=f) for f in range(3)]
        predictions = [make_pipeline(StandardScaler(), oracle).fit(x[f.train], y[f.train]).predict(x[f.test])
                       for f in folds]
        scores = [balanced_accuracy_score(y[f.test], p) for f, p in zip(folds, predictions)]  # mean per-class recall
        recalls = [recall_score(y[f.test], p, average=None) for f, p in zip(folds, predictions)]
        expected[str(n)] = {"mean": np.mean(scores), "std": np.std(scores, ddof=1), "folds": scores,
                            "per_class": [list(r) for r in recalls]}
    curve = protocol.size_curve(x, y, [2, 5], folds=3, test_per_class=10, seed=0, kind=kind, C=0.5)
    assert set(curve) == set(expected)
    for n, row in expected.items():
        assert set(curve[n]) == set(row)
        for key, value in row.items():
            np.testing.assert_allclose(np.asarray(curve[n][key], dtype=float), value, atol=1e-12)


def test_layer_table_keys_and_scores():
    x, y = caltech(4, 8, 4, 20.0)
    noise, _ = caltech(4, 8, 4, 0.0, seed=1)
    table = protocol.layer_table({1: noise, 7: x}, y, size=2, layers=[1, 7], classifiers=["softmax", "svm"],
                                 folds=2, test_per_class=3, seed=0)
    assert set(table) == {"softmax", "svm"} and all(set(t) == {"1", "7"} for t in table.values())
    for kind in table:
        assert table[kind]["7"] == {"mean": 1.0, "std": 0.0, "folds": [1.0, 1.0], "per_class": [[1.0] * 4] * 2}
        assert table[kind]["1"]["mean"] < 0.75


@pytest.mark.parametrize("kind", ["softmax", "svm"])
def test_torch_and_sklearn_solvers_agree(kind):
    x, y = caltech(3, 20, 3, 2.5)
    x *= [1.0, 100.0, 0.01]  # scales that matter unless both solvers standardize
    fold = protocol.sample_fold(y, 10, 10, seed=0, fold=0)
    predicted = {solver: protocol.fit_predict(kind, x[fold.train], y[fold.train], x[fold.test], solver=solver)
                 for solver in ("torch", "sklearn")}
    np.testing.assert_array_equal(predicted["torch"], predicted["sklearn"])
    assert protocol.mean_class_accuracy(predicted["torch"], y[fold.test]) > 0.8
