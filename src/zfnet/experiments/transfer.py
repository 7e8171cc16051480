"""Transfer: the pretrained nets on Caltech-101, Caltech-256 and PASCAL VOC 2012 (paper Sec. 5.2: Tables 4-7,
Fig. 9), every model side by side, on one target dataset per call of `run`.

Datasets are read by torchvision's classes (download=False, `zfnet.transfer.datasets.list_target`), decoded
like the prepare stage did for the model's pretraining (its mean image's size), then centre-cropped. Per
model, the features of every image are extracted once (`extract_features`, cached by the stage under
outputs/transfer/<dataset>/ with `cache_key`), so every fold, size, layer and classifier reuses them.

Caltech (`zfnet.transfer.protocol`): "pretrained" is a softmax on layer `settings.layer` (7) of the frozen
net, at every `sizes` entry over `folds` folds; "scratch" is the same architecture trained from scratch with
the pretraining recipe (`zfnet.transfer.scratch`), at `scratch_sizes` over `scratch.folds` folds (fold f is
the pretrained curve's fold f: the same training and test images, so the two pair up); Table 7 is an SVM and
a softmax on each of `layers` at `layers_size`. PASCAL: a softmax over the classes trained on
`pascal.train_set`, average precision per class on `pascal.test_set`.

The result (`TransferResult`): the metrics ({model: {...}, "data": {...}}; accuracies and APs are fractions,
stds over folds with ddof=1, no per-fold lists), the evidence (what the report's intervals resample: Caltech,
per model, the per-fold accuracies and each fold's per-class accuracies of every pretrained, scratch and
Table 7 cell, rounded to 6 digits; PASCAL, per model, the AP of each class and the split scored), the DVC
plot's CSV, the tables for W&B, and what the figures (`zfnet.viz.transfer`) need.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

import numpy as np
from torch import nn

from zfnet.errors import UserError
from zfnet.transfer import features, protocol, scratch
from zfnet.transfer.datasets import TargetSet

log = logging.getLogger("zfnet")

EVIDENCE_KEYS = ("folds", "per_class")  # the per-fold lists: evidence, not DVC metrics


class ModelInputs(NamedTuple):
    """One pretrained net's share of a transfer run."""
    key: str  # its name in the metrics (models.<key>)
    data: dict[str, TargetSet]  # {"all"} (Caltech) or {"train", "test"} (PASCAL), decoded at the net's size
    features: dict[str, dict[int, np.ndarray]]  # {split: {layer: (N, D)}}, at least `feature_layers`
    arch: dict | None = None  # build options of the net, for the from-scratch baseline (Caltech, scratch.folds > 0)
    recipe: dict | None = None  # its training recipe (the train settings)


@dataclass
class TransferResult:
    dataset: str  # caltech101 | caltech256 | pascal
    results: dict[str, dict]  # per model: Caltech {pretrained, scratch, layers, claims} with the per-fold lists;
    #                           PASCAL {"ap": {class: AP or None}, "map"}
    data: dict[str, TargetSet]  # the first model's decoded images (the data summary's)
    metrics: dict  # exactly as metrics/transfer_<dataset>.json holds it
    evidence: dict  # exactly as evidence/transfer_<dataset>.json holds it
    csv: str  # the DVC plot plots/curves/transfer_<dataset>.csv
    tables: dict[str, tuple[list[str], list[list]]]  # W&B tables: {name: (columns, rows)}
    layers_size: int | None  # Caltech: Table 7's training images per class
    chance: dict[str, float] | None  # PASCAL: per class, a random ranking's expected AP


def run(models: Iterable[ModelInputs], settings: Any, *, dataset: str, trainer: Any = None) -> TransferResult:
    """Tables 4-7 for each of `models` on `dataset`. `settings` is the `transfer` config section (or any object
    with its attributes); `trainer` holds the from-scratch runs' Trainer options (`accelerator`, `precision`,
    `deterministic`, `benchmark`: the train stage's `trainer` section), needed when `scratch.folds` > 0.
    `models` may be a generator: each net's features are used, then dropped, before the next is asked for."""
    results, first = {}, None
    for net in models:
        first = net.data if first is None else first
        if dataset == "pascal":
            results[net.key] = pascal_result(net, settings)
        else:
            results[net.key] = caltech_result(net, settings, dataset, trainer)
    if first is None:
        raise UserError("transfer.models: no model given")
    metrics = {**{key: without_folds(r) for key, r in results.items()}, "data": data_summary(settings, dataset, first)}
    return TransferResult(dataset, results, first, metrics, evidence(settings, dataset, results),
                          curve_csv(dataset, results), tables(dataset, results, first),
                          None if dataset == "pascal" else getattr(settings, dataset).layers_size,
                          chance_ap(first["test"]) if dataset == "pascal" else None)


# ----------------------------------------------------------------------------- features and sizes


def feature_layers(settings: Any, dataset: str) -> list[int]:
    """The layers whose features a run reads: `layer`, and Table 7's `layers` on Caltech."""
    return sorted({settings.layer, *(settings.layers if dataset != "pascal" else [])})


def extract_features(model: nn.Module, hparams: dict, target: TargetSet, settings: Any, dataset: str
                     ) -> dict[int, np.ndarray]:
    """{layer: (N, D)} of `target`'s images through the frozen `model` (hparams: its checkpoint's)."""
    return features.extract(model, target.images, hparams["mean"], hparams["crop"], feature_layers(settings, dataset),
                            settings.grid, hparams["input_scale"], settings.batch_size, progress=True)


def cache_key(weights: str, target: TargetSet, hparams: dict, settings: Any, dataset: str) -> str:
    """What `extract_features` of `target` depends on: the weights (the checkpoint file's sha256 hex digest),
    the pixels and the settings."""
    options = (f"layers={feature_layers(settings, dataset)} grid={settings.grid} crop={hparams['crop']} "
               f"scale={hparams['input_scale']}")
    return features.cache_key(weights, hashlib.sha256(target.images.tobytes()).hexdigest(),
                              options)


def check_sizes(settings: Any, dataset: str, labels: np.ndarray) -> None:
    """A UserError naming `transfer.<dataset>.<key>` when a Caltech size leaves a class without a test image."""
    if dataset == "pascal":
        return
    options = getattr(settings, dataset)
    for key, sizes in (("sizes", options.sizes), ("scratch_sizes", options.scratch_sizes),
                       ("layers_size", [options.layers_size])):
        protocol.check_sizes(f"transfer.{dataset}.{key}", sizes, labels)


# ----------------------------------------------------------------------------- PASCAL and Caltech


def pascal_result(net: ModelInputs, settings: Any) -> dict:
    train, test = net.data["train"], net.data["test"]
    result = protocol.pascal_scores(net.features["train"][settings.layer], train.labels,
                                    net.features["test"][settings.layer], test.labels, train.classes,
                                    settings.C, settings.solver)
    log.info("%s: PASCAL mAP %.3f", net.key, result["map"] or float("nan"))
    return result


def caltech_result(net: ModelInputs, settings: Any, dataset: str, trainer: Any) -> dict:
    options, target, feats = getattr(settings, dataset), net.data["all"], net.features["all"]
    common = dict(folds=settings.folds, test_per_class=options.test_per_class, seed=settings.seed, C=settings.C,
                  solver=settings.solver)
    pretrained = protocol.size_curve(feats[settings.layer], target.labels, options.sizes, **common)
    layers = protocol.layer_table(feats, target.labels, options.layers_size, settings.layers, settings.classifiers,
                                  **common)
    for n, score in pretrained.items():
        log.info("%s %s pretrained, %s/class: %.3f +- %s", net.key, dataset, n, score["mean"],
                 "n/a" if score["std"] is None else f"{score['std']:.3f}")
    result = {"pretrained": pretrained, "scratch": scratch_curve(net, settings, dataset, trainer), "layers": layers}
    result["claims"] = protocol.claims(result)
    log.info("%s %s: pretrained minus scratch %s; deepest minus shallowest layer %s (the report judges these)",
             net.key, dataset, {n: round(gap, 3) for n, gap in result["claims"]["pretrained_minus_scratch"].items()},
             {kind: round(d["deepest_minus_shallowest"], 3) for kind, d in result["claims"]["depth"].items()})
    return result


def scratch_curve(net: ModelInputs, settings: Any, dataset: str, trainer: Any) -> dict[str, dict]:
    """The non-pretrained baseline: one training run per size and fold, scored on that fold's test images."""
    target, test_per_class, folds = net.data["all"], getattr(settings, dataset).test_per_class, settings.scratch.folds
    table = {}
    for n in getattr(settings, dataset).scratch_sizes if folds else []:
        scores = []
        for f in range(folds):
            fold = protocol.sample_fold(target.labels, n, test_per_class, settings.seed, f)
            module = scratch.train_from_scratch(net.arch, target.images[fold.train], target.labels[fold.train],
                                                len(target.classes), net.recipe, settings.scratch.epochs,
                                                seed=settings.seed + f, **scratch_trainer(trainer, settings))
            scores.append(protocol.class_accuracies(scratch.predict(module, target.images[fold.test]),
                                                    target.labels[fold.test]))
            log.info("%s from scratch, %d/class, fold %d: %.3f", net.key, n, f + 1, scores[-1].mean())
        table[str(n)] = protocol.score(scores)
    return table


def scratch_trainer(trainer: Any, settings: Any) -> dict:
    """The from-scratch runs' Trainer options: the train stage's (`trainer.*`), with their own loader
    workers and memory format (`transfer.scratch.num_workers`, `transfer.scratch.channels_last`)."""
    options = {k: getattr(trainer, k) for k in ("accelerator", "precision", "deterministic", "benchmark")}
    own = settings.scratch
    return {**options, "num_workers": own.num_workers, "channels_last": own.channels_last}


# ----------------------------------------------------------------------------- metrics, evidence, tables


def without_folds(result):
    """The DVC metrics drop the per-fold lists (they go to W&B and to the evidence file)."""
    if isinstance(result, dict):
        return {k: without_folds(v) for k, v in result.items() if k not in EVIDENCE_KEYS}
    return result


def fold_evidence(result):
    """The per-fold lists of a Caltech result ({"folds", "per_class"} of every cell), rounded to 6 digits."""
    if isinstance(result, dict) and "folds" in result:
        return {"folds": np.round(result["folds"], 6), "per_class": [np.round(c, 6) for c in result["per_class"]]}
    if isinstance(result, dict):
        return {k: fold_evidence(v) for k, v in result.items() if k != "claims"}
    return result


def evidence(settings: Any, dataset: str, results: dict) -> dict:
    """The evidence file: per model, Caltech's per-fold and per-class accuracies, or PASCAL's per-class AP,
    with the split and protocol that produced them (fold f is the same split in every cell of a dataset)."""
    if dataset == "pascal":
        return {"split": {"train": settings.pascal.train_set, "test": settings.pascal.test_set},
                **{key: {"ap": r["ap"]} for key, r in results.items()}}
    return {"protocol": {"folds": settings.folds, "scratch_folds": settings.scratch.folds,
                         "std_ddof": protocol.STD_DDOF, "test_per_class": getattr(settings, dataset).test_per_class},
            **{key: fold_evidence(r) for key, r in results.items()}}


def data_summary(settings: Any, dataset: str, data: dict[str, TargetSet]) -> dict:
    """Images, classes and skipped files per split; Caltech's protocol and test images per fold, or PASCAL's
    split, positives and chance mAP."""
    summary = {split: {"images": len(t.images), "classes": len(t.classes), "skipped": len(t.skipped)}
               for split, t in data.items()}
    if dataset != "pascal":
        options = getattr(settings, dataset)
        sizes = sorted({*options.sizes, *options.scratch_sizes, options.layers_size})
        summary.update(folds=settings.folds, scratch_folds=settings.scratch.folds, std_ddof=protocol.STD_DDOF,
                       test_per_class=options.test_per_class, layers_size=options.layers_size,
                       test_images=protocol.held_out_counts(data["all"].labels, sizes, options.test_per_class))
    else:
        summary["split"] = {"train": settings.pascal.train_set, "test": settings.pascal.test_set}  # VOC 2012 sets
        summary["positives"] = {split: int((t.labels == 1).sum()) for split, t in data.items()}
        summary["chance_map"] = sum(chance_ap(data["test"]).values()) / len(data["test"].classes)
    return summary


def chance_ap(test: TargetSet) -> dict[str, float]:
    """Per class, the share of positives among the scored test images: a random ranking's expected AP."""
    return {c: float((test.labels[:, k] == 1).sum() / max((test.labels[:, k] != 0).sum(), 1))
            for k, c in enumerate(test.classes)}


def tables(dataset: str, results: dict, data: dict[str, TargetSet]) -> dict[str, tuple[list[str], list[list]]]:
    """The W&B tables: Table 6 (PASCAL), or the accuracies and Table 7 with their per-fold lists (Caltech)."""
    if dataset == "pascal":
        classes = data["train"].classes
        return {"table6": (["model", *classes, "mAP"],
                           [[key, *(r["ap"][c] for c in classes), r["map"]] for key, r in results.items()])}
    accuracy = [[key, method, int(n), v["mean"], v["std"], v["folds"]] for key, r in results.items()
                for method in ("pretrained", "scratch") for n, v in r[method].items()]
    layers = [[key, kind, int(layer), v["mean"], v["std"], v["folds"]] for key, r in results.items()
              for kind, table in r["layers"].items() for layer, v in table.items()]
    return {"accuracy": (["model", "method", "train_per_class", "mean", "std", "folds"], accuracy),
            "table7": (["model", "classifier", "layer", "mean", "std", "folds"], layers)}


def curve_csv(dataset: str, results: dict) -> str:
    """The DVC plot: per-class AP (PASCAL) or pretrained accuracy against training images per class."""
    models = list(results)
    if dataset == "pascal":
        classes = sorted(next(iter(results.values()))["ap"]) if results else []
        lines = [",".join(["class", *models])]
        lines += [",".join([c, *(f"{results[m]['ap'][c] or 0:.6f}" for m in models)]) for c in classes]
    else:
        sizes = sorted({int(n) for r in results.values() for n in r["pretrained"]})
        lines = [",".join(["train_per_class", *models])]
        lines += [",".join([str(n), *(f"{results[m]['pretrained'][str(n)]['mean']:.6f}" for m in models)])
                  for n in sizes]
    return "\n".join(lines) + "\n"
