"""Linear classifiers on frozen features, solved in full batch with L-BFGS (float64, deterministic).

The same objectives as scikit-learn's LogisticRegression (multinomial, L2) and LinearSVC (one-vs-rest,
squared hinge, L2), on standardized features:

    softmax: C * sum_i w_i CE(W x_i + b, y_i)          + 1/2 ||W||^2
    svm:     C * sum_i sum_k max(0, 1 - t_ik (w_k . x_i + b_k))^2 + 1/2 ||W||^2,  t_ik = +1 if y_i = k else -1

The one difference from LinearSVC: the bias is not penalized (LinearSVC treats it as one more weight,
scaled by intercept_scaling). On the default run's Caltech-256 features LinearSVC takes 1.7-23 s per fit
(its liblinear solver often stops at max_iter), this SVM 0.5-1.0 s; the softmax is within 0.4-3x of
LogisticRegression either way (benchmarks/transfer_classifiers.py). Tests check both agree.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from zfnet.errors import UserError

KINDS = ("softmax", "svm")
DTYPE = torch.float64


class LinearModel(NamedTuple):
    kind: str
    mean: torch.Tensor  # (D,) standardization, from the training features
    scale: torch.Tensor  # (D,) their std (1 where a feature is constant)
    weight: torch.Tensor  # (K, D)
    bias: torch.Tensor  # (K,)

    def decision(self, features: np.ndarray) -> np.ndarray:
        x = (torch.as_tensor(features, dtype=DTYPE) - self.mean) / self.scale
        return (x @ self.weight.T + self.bias).numpy()

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.decision(features).argmax(axis=1)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return torch.from_numpy(self.decision(features)).softmax(dim=1).numpy()


def standardizer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per feature (ddof 0, as StandardScaler), std 1 where a feature is constant."""
    mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
    return mean, torch.where(std > 1e-12 * mean.abs().clamp(min=1.0), std, torch.ones_like(std))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Fit on one thread. Each L-BFGS step is a few small ops, and a second thread that has to wait for a
    busy core makes every one of them wait: measured on 2 cores, 2 threads were 1.4x faster when idle but
    40x slower while another process kept one core busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit(kind: str, features: np.ndarray, labels: np.ndarray, num_classes: int, C: float = 1.0,
        sample_weight: np.ndarray | None = None, max_iter: int = 300, tolerance: float = 1e-6) -> LinearModel:
    """Fit `kind` ("softmax" or "svm") to features (N, D) and integer labels (N,) in [0, num_classes).

    L-BFGS stops when the gradient's largest entry is below `tolerance` or after `max_iter` iterations.
    The softmax usually converges first; the squared hinge, nearly separable in a few thousand
    dimensions, creeps. On the built-in Caltech-256 features (45 per class, 6 layers x 3 folds) the SVM's
    test accuracy after 300 iterations is within 5 points (mean 1.6) of 3,000 iterations, in a sixth of
    the time; 1,000 iterations: within 2.2 points, in 40%.
    """
    if kind not in KINDS:
        raise UserError(f"classifier {kind!r}: expected one of {', '.join(KINDS)}")
    with one_thread():
        return _fit(kind, features, labels, num_classes, C, sample_weight, max_iter, tolerance)


def _fit(kind, features, labels, num_classes, C, sample_weight, max_iter, tolerance) -> LinearModel:
    x = torch.as_tensor(features, dtype=DTYPE)
    mean, scale = standardizer(x)
    x = (x - mean) / scale
    # With more features than images the optimal W lies in the span of the images (the data term's
    # gradient does, and the penalty is isotropic): solve in an orthonormal basis of that span, the
    # same problem in at most N dimensions, and map back.
    basis = torch.linalg.svd(x, full_matrices=False).Vh if x.shape[1] > x.shape[0] else None
    if basis is not None:
        x = x @ basis.T
    y = torch.as_tensor(labels, dtype=torch.int64)
    w = torch.ones(len(y), dtype=DTYPE) if sample_weight is None else torch.as_tensor(sample_weight,
                                                                                           dtype=DTYPE)
    weight = torch.zeros(num_classes, x.shape[1], dtype=DTYPE, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=DTYPE, requires_grad=True)
    signs = F.one_hot(y, num_classes).to(DTYPE) * 2 - 1
    scale_loss = 1.0 / (C * float(w.sum()))  # the objective divided by C * sum(w): same minimizer, O(1) values

    def objective() -> torch.Tensor:
        scores = x @ weight.T + bias
        if kind == "softmax":
            data = (w * F.cross_entropy(scores, y, reduction="none")).sum()
        else:
            data = (w[:, None] * F.relu(1 - signs * scores) ** 2).sum()
        return data / float(w.sum()) + 0.5 * scale_loss * (weight ** 2).sum()

    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=tolerance, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    optimizer.step(closure)
    weight = weight.detach() if basis is None else weight.detach() @ basis
    return LinearModel(kind, mean, scale, weight, bias.detach())
