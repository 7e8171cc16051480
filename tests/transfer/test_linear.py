"""The L-BFGS softmax and squared-hinge SVM against scikit-learn, which solves the same objectives.

Expected values come from scikit-learn (LogisticRegression; LinearSVC with a huge intercept_scaling,
so that its bias penalty vanishes as in ours) or from an equivalent dataset, never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from zfnet.transfer import linear

C = 0.1  # strong regularization, so that C and an (un)penalized bias visibly matter
CLASSES = 3


def blobs(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping class blobs on features of very different offsets and scales (standardization matters)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    centers = np.random.default_rng(99).normal(size=(CLASSES, dim))
    offset, scale = np.random.default_rng(98).normal(0, 3, dim), np.random.default_rng(97).uniform(0.5, 5, dim)
    return (centers[labels] + 1.5 * rng.normal(size=(n, dim)) + offset) * scale, labels


# (48, 5): more samples than features; (30, 80): more features than samples, the SVD path
SHAPES = pytest.mark.parametrize("n, dim", [(48, 5), (30, 80)])


@SHAPES
def test_softmax_matches_logistic_regression(n, dim):
    x, y = blobs(n, dim, 0)
    test_x, _ = blobs(20, dim, 1)
    oracle = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-10, max_iter=100000)).fit(x, y)
    model = linear.fit("softmax", x, y, CLASSES, C, max_iter=1000, tolerance=1e-9)
    np.testing.assert_allclose(model.probabilities(test_x), oracle.predict_proba(test_x), atol=1e-5)
    np.testing.assert_array_equal(model.predict(test_x), oracle.predict(test_x))


@SHAPES
def test_svm_matches_linear_svc_with_unpenalized_bias(n, dim):
    x, y = blobs(n, dim, 0)
    test_x, _ = blobs(20, dim, 1)
    svc = LinearSVC(C=C, loss="squared_hinge", intercept_scaling=1000, tol=1e-12, max_iter=1000000, dual=False)
    oracle = make_pipeline(StandardScaler(), svc).fit(x, y)
    model = linear.fit("svm", x, y, CLASSES, C, max_iter=1000, tolerance=1e-9)
    # the squared hinge's L-BFGS stops a little short of the optimum (~1e-5 here, on decisions of size ~2)
    np.testing.assert_allclose(model.decision(test_x), oracle.decision_function(test_x), atol=1e-4)
    np.testing.assert_array_equal(model.predict(test_x), oracle.predict(test_x))


@pytest.mark.parametrize("kind", linear.KINDS)
def test_weight_two_equals_a_duplicated_row(kind):
    # Standardization ignores the weights (as scikit-learn's pipeline does), so the duplicated rows `a`
    # are given the same per-feature mean and std as the others `b`: both datasets then standardize alike.
    a, a_y = blobs(12, 4, 2)
    b, b_y = blobs(18, 4, 3)
    b = (b - b.mean(0)) / b.std(0) * a.std(0) + a.mean(0)
    weighted = linear.fit(kind, np.concatenate([a, b]), np.concatenate([a_y, b_y]), CLASSES, C,
                          sample_weight=np.r_[np.full(len(a), 2.0), np.ones(len(b))], tolerance=1e-9)
    duplicated = linear.fit(kind, np.concatenate([a, a, b]), np.concatenate([a_y, a_y, b_y]), CLASSES, C,
                            tolerance=1e-9)
    unweighted = linear.fit(kind, np.concatenate([a, b]), np.concatenate([a_y, b_y]), CLASSES, C, tolerance=1e-9)
    test_x, _ = blobs(10, 4, 4)
    np.testing.assert_allclose(weighted.decision(test_x), duplicated.decision(test_x), atol=1e-5)
    assert np.abs(weighted.decision(test_x) - unweighted.decision(test_x)).max() > 1e-2  # the weights matter


@pytest.mark.parametrize("kind", linear.KINDS)
def test_constant_feature_is_ignored_not_nan(kind):
    x, y = blobs(48, 5, 0)
    test_x, _ = blobs(10, 5, 1)
    with_constant = np.column_stack([x, np.full(len(x), 0.3)])
    model = linear.fit(kind, with_constant, y, CLASSES, C)
    decision = model.decision(np.column_stack([test_x, np.full(len(test_x), 0.3)]))
    assert np.isfinite(decision).all()
    np.testing.assert_allclose(decision, linear.fit(kind, x, y, CLASSES, C).decision(test_x), atol=1e-6)
