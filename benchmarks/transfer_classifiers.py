"""Benchmark of the transfer classifiers: zfnet.transfer.linear (L-BFGS, torch) against scikit-learn.

    python benchmarks/transfer_classifiers.py                      # stand-in features of the default run's sizes
    python benchmarks/transfer_classifiers.py --features outputs/transfer/caltech256/features_zfnet_all.pt \\
        --dataset caltech256 --root data/synthetic                 # the transfer stage's cached features
    python benchmarks/transfer_classifiers.py --dims 16 --classes 3 --per-class 6 --repeats 1   # tiny: a smoke run

For each feature size and classifier (softmax; linear SVM), on the same training split: the time of
one fit by the pipeline's solver (`zfnet.transfer.linear.fit`, its default iteration cap) and by
scikit-learn (LogisticRegression, LinearSVC on standardized features, `--sklearn-max-iter`), the best
of `--repeats`, the ratio scikit-learn / torch, and both classifiers' mean per-class accuracy on the
held-out images (the solvers optimize the same objective, so the accuracies should be close).

Stand-in features (without --features): per class a random non-negative mean, images drawn around
it with unit noise and rectified, like pooled ReLU features. Prints ratios, never asserts a time;
`--json PATH` also writes a summary.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from zfnet.transfer import protocol


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, help="a transfer-stage feature cache (features_<model>_all.pt)")
    parser.add_argument("--dataset", default="caltech256", choices=["caltech101", "caltech256"],
                        help="with --features: the dataset whose labels they follow (default caltech256)")
    parser.add_argument("--root", default="data/synthetic", help="with --features: that dataset's root")
    parser.add_argument("--dims", default="768,3072,512,2048",
                        help="stand-in feature sizes, comma-separated (default: the default run's layers 1, 3, 5, 7)")
    parser.add_argument("--classes", type=int, default=12, help="stand-in classes (default 12)")
    parser.add_argument("--per-class", type=int, default=60, help="stand-in images per class (default 60)")
    parser.add_argument("--train", type=int, default=None, help="training images per class (default: 3/4 of them)")
    parser.add_argument("--sklearn-max-iter", type=int, default=2000, help="scikit-learn's iteration cap (default 2000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed fits of each kind; best kept (default 2)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    args = parser.parse_args(argv)
    for name in ("classes", "per_class", "sklearn_max_iter", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def stand_in(dims: int, classes: int, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, dims])
    means = rng.exponential(1.0, (classes, dims)) * (rng.random((classes, dims)) < 0.3)
    labels = np.repeat(np.arange(classes), per_class)
    return np.maximum(means[labels] + rng.standard_normal((len(labels), dims)), 0).astype(np.float32), labels


def feature_sets(args) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if args.features is None:
        return {f"{d} features": stand_in(d, args.classes, args.per_class)
                for d in (int(v) for v in args.dims.split(","))}
    from zfnet.transfer.datasets import list_caltech

    labels = list_caltech(args.dataset, args.root).labels
    stored = torch.load(args.features, map_location="cpu", weights_only=True)["features"]
    return {f"layer {n}, {v.shape[1]} features": (v.numpy(), labels) for n, v in sorted(stored.items())}


def best_time(fit, repeats: int) -> tuple[float, np.ndarray]:
    times, predictions = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        predictions = fit()
        times.append(time.perf_counter() - start)
    return min(times), predictions


def main(argv=None) -> None:
    args = parse_args(argv)
    summary = {"sets": {}}
    for name, (features, labels) in feature_sets(args).items():
        per_class = int(np.bincount(labels).min())
        n_train = args.train or max(1, per_class * 3 // 4)
        fold = protocol.sample_fold(labels, n_train, per_class, seed=0, fold=0)
        train_x, train_y, test_x, test_y = features[fold.train], labels[fold.train], features[fold.test], labels[fold.test]
        results = {}
        for kind in ("softmax", "svm"):
            torch_s, torch_pred = best_time(lambda: protocol.fit_predict(kind, train_x, train_y, test_x), args.repeats)

            def sklearn_fit():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = protocol.make_classifier(kind, max_iter=args.sklearn_max_iter).fit(train_x, train_y)
                return model.predict(test_x)

            sklearn_s, sklearn_pred = best_time(sklearn_fit, args.repeats)
            results[kind] = {"torch_s": torch_s, "sklearn_s": sklearn_s, "ratio_sklearn_to_torch": sklearn_s / torch_s,
                             "accuracy_torch": protocol.mean_class_accuracy(torch_pred, test_y),
                             "accuracy_sklearn": protocol.mean_class_accuracy(sklearn_pred, test_y)}
            r = results[kind]
            print(f"{kind}, {name}: torch {r['torch_s']:.3f} s (accuracy {r['accuracy_torch']:.3f}), "
                  f"scikit-learn {r['sklearn_s']:.3f} s (accuracy {r['accuracy_sklearn']:.3f})")
            print(f"scikit-learn / torch ({kind}, {name}): {r['ratio_sklearn_to_torch']:.2f}")
        summary["sets"][name] = {"train_images": len(train_y), "test_images": len(test_y), **results}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
