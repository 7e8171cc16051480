"""Stage `transfer@<dataset>`: the pretrained nets on Caltech-101, Caltech-256 and PASCAL VOC 2012
(paper Sec. 5.2: Tables 4-7, Fig. 9), every model of `transfer.models` side by side.

    python pipelines/transfer.py transfer.dataset=caltech256 [transfer.folds=5]
    python pipelines/transfer.py transfer.dataset=caltech101 transfer.roots.caltech101=/datasets   # the real one

Datasets are read by torchvision's classes (download=False) from `transfer.roots.<dataset>`, decoded
like the prepare stage did for the model's pretraining (its mean image's size), then centre-cropped. Per model, the features of
every image are extracted once (`zfnet.transfer.features`) and cached in outputs/transfer/<dataset>/,
so every fold, size, layer and classifier reuses them, and so does the next run with the same weights.

Caltech (`zfnet.transfer.protocol`): "pretrained" is a softmax on layer `transfer.layer` (7) of the
frozen net, at every `sizes` entry over `folds` folds; "scratch" is the same architecture trained from
scratch with the pretraining recipe (`zfnet.transfer.scratch`), at `scratch_sizes` over `scratch.folds`
folds; Table 7 is an SVM and a softmax on each of `layers` at `layers_size`. PASCAL: a softmax over the
classes trained on `pascal.train_set`, average precision per class on `pascal.test_set`.

Outputs: metrics/transfer_<dataset>.json ({model: {...}, "data": {...}}; accuracies and APs are
fractions, stds over folds with ddof=1), evidence/transfer_<dataset>.json (what the report's intervals
resample: Caltech, per model, the per-fold accuracies and each fold's per-class accuracies of every
pretrained, scratch and Table 7 cell; PASCAL, per model, the AP of each class and the split scored),
plots/transfer_<dataset>/*.png, plots/curves/transfer_<dataset>.csv (the DVC plot), and one W&B run
with the tables as wandb.Tables.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from zfnet import paper
from zfnet.io import save_figure, write_text
from zfnet.nets.training import load_trained
from zfnet.pipeline import not_run, stage
from zfnet.pipeline.config import architecture, recipe
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.transfer import datasets, features, protocol, scratch
from zfnet.transfer.figures import ap_figure, layer_figure, size_curve_figure


def main(cfg) -> None:
    name, tcfg = cfg.transfer.dataset, cfg.transfer
    reason = not_run.builtin_reason(cfg, tcfg.roots[name], f"transfer.roots.{name}", "the real dataset's root")
    if reason:  # the built-in stand-in is not generated (data.name != synthetic): say so in the metrics
        not_run.write(cfg, f"transfer_{name}", reason, plots=[f"transfer_{name}"],
                      folders=[Path(cfg.paths.outputs) / "transfer" / name], evidence=True)
        write_text(Path(cfg.paths.plots) / "curves" / f"transfer_{name}.csv", plot_csv(name, {}))
        return
    listings = list_data(cfg, name)
    if name != "pascal":
        for key, sizes in (("sizes", tcfg[name].sizes), ("scratch_sizes", tcfg[name].scratch_sizes),
                           ("layers_size", [tcfg[name].layers_size])):
            protocol.check_sizes(f"transfer.{name}.{key}", sizes, listings["all"].labels)
    decoded: dict[int, dict[str, datasets.TargetSet]] = {}  # by image size: each model's pretraining size

    with Tracker(cfg, "transfer", name=f"transfer-{name}") as tracker:
        results = {}
        for key in tcfg.models:
            model, hparams = load_trained(stage.checkpoint_path(cfg, key, tcfg.checkpoint), device_for(cfg.trainer.accelerator))
            size = hparams["mean"].shape[-1]
            if size not in decoded:
                decoded[size] = decode(cfg, name, listings, size, tracker)
            data = decoded[size]
            model_features = extract_features(cfg, key, name, data, model, hparams)
            if name == "pascal":
                train, test = data["train"], data["test"]
                results[key] = protocol.pascal_scores(model_features["train"][tcfg.layer], train.labels,
                                                      model_features["test"][tcfg.layer], test.labels,
                                                      train.classes, tcfg.C, tcfg.solver)
                stage.log.info("%s: PASCAL mAP %.3f", key, results[key]["map"] or float("nan"))
            else:
                results[key] = caltech_results(cfg, key, name, data["all"], model_features["all"])
        data = next(iter(decoded.values()))
        metrics = {**{key: without_folds(r) for key, r in results.items()}, "data": data_summary(cfg, name, data)}
        stage.write_evidence(cfg, f"transfer_{name}", evidence(cfg, name, results))
        figures = draw_figures(cfg, name, results, data)
        tracker.images({f"transfer/{name}/{stem}": path for stem, path in figures.items()})
        log_tables(tracker, name, results, data)
        tracker.summary(stage.flat_numbers(metrics, f"transfer/{name}/"))
        write_text(Path(cfg.paths.plots) / "curves" / f"transfer_{name}.csv", plot_csv(name, results))
        stage.write_metrics(cfg, f"transfer_{name}", metrics)


# ----------------------------------------------------------------------------- data and features


def list_data(cfg, name: str) -> dict[str, datasets.Listing]:
    """The files and labels of dataset `name` as torchvision lists them: {"all"} or {"train", "test"}."""
    tcfg, root = cfg.transfer, cfg.transfer.roots[name]
    if name == "pascal":
        train = datasets.list_voc(root, tcfg.pascal.train_set)
        return {"train": train, "test": datasets.list_voc(root, tcfg.pascal.test_set, classes=train.classes)}
    clutter = bool(tcfg.caltech256.clutter) if name == "caltech256" else False  # `transfer.dataset` is validated
    background = bool(tcfg.caltech101.background) if name == "caltech101" else False
    return {"all": datasets.list_caltech(name, root, clutter=clutter, background=background)}


def decode(cfg, name: str, listings: dict[str, datasets.Listing], size: int, tracker: Tracker
           ) -> dict[str, datasets.TargetSet]:
    """The listed images decoded at `size` as the prepare stage does; skipped files logged and reported
    (a W&B table and outputs/transfer/<dataset>/skipped.tsv, as the prepare stage reports its own)."""
    workers = cfg.workers or os.cpu_count() or 1  # null: every core, as for generate and prepare
    data = {split: datasets.decode(listing, size, workers=workers) for split, listing in listings.items()}
    for split, target in data.items():
        stage.log.info("%s %s: %d images of %d classes at %d px, %d skipped", name, split, len(target.images),
                       len(target.classes), size, len(target.skipped))
    skipped = [[split, path, reason] for split, target in data.items() for path, reason in target.skipped]
    if skipped:
        stage.log.warning("%s: skipped %d files (all in outputs/transfer/%s/skipped.tsv), e.g. %s", name, len(skipped),
                          name, "; ".join(f"{path} ({reason})" for _, path, reason in skipped[:3]))
        tracker.table(f"transfer/{name}/skipped", ["split", "file", "reason"], skipped)
        write_text(Path(cfg.paths.outputs) / "transfer" / name / "skipped.tsv",
                   "".join("\t".join(row) + "\n" for row in skipped))
    return data


def extract_features(cfg, key: str, name: str, data: dict, model, hparams: dict) -> dict[str, dict[int, np.ndarray]]:
    """{split: {layer: (N, D)}} for model `key`, from the cache when weights, pixels and settings match."""
    tcfg = cfg.transfer
    layers = sorted({tcfg.layer, *(tcfg.layers if name != "pascal" else [])})
    weights = hashlib.sha256(stage.checkpoint_path(cfg, key, tcfg.checkpoint).read_bytes()).hexdigest()
    out = {}
    for split, target in data.items():
        settings = f"layers={layers} grid={tcfg.grid} crop={hparams['crop']} scale={hparams['input_scale']}"
        cache_key = features.cache_key(weights, hashlib.sha256(target.images.tobytes()).hexdigest(), settings)
        path = Path(cfg.paths.outputs) / "transfer" / name / f"features_{key}_{split}.pt"
        out[split], reused = features.cached(path, cache_key, lambda: features.extract(
            model, target.images, hparams["mean"], hparams["crop"], layers, tcfg.grid, hparams["input_scale"],
            tcfg.batch_size, progress=True))
        stage.log.info("%s %s: features of %d images %s (%s)", key, split, len(target.images),
                       "reused from the cache" if reused else "extracted", path)
    return out


# ----------------------------------------------------------------------------- Caltech


def caltech_results(cfg, key: str, name: str, target: datasets.TargetSet, feats: dict[int, np.ndarray]) -> dict:
    tcfg, options = cfg.transfer, cfg.transfer[name]
    common = dict(folds=tcfg.folds, test_per_class=options.test_per_class, seed=tcfg.seed, C=tcfg.C, solver=tcfg.solver)
    pretrained = protocol.size_curve(feats[tcfg.layer], target.labels, options.sizes, **common)
    layers = protocol.layer_table(feats, target.labels, options.layers_size, tcfg.layers, tcfg.classifiers, **common)
    for n, result in pretrained.items():
        stage.log.info("%s %s pretrained, %s/class: %.3f +- %s", key, name, n, result["mean"],
                       "n/a" if result["std"] is None else f"{result['std']:.3f}")
    result = {"pretrained": pretrained, "scratch": scratch_curve(cfg, key, name, target, options.scratch_sizes),
              "layers": layers}
    result["claims"] = protocol.claims(result)
    stage.log.info("%s %s: pretrained minus scratch %s; deepest minus shallowest layer %s (the report judges these)",
                   key, name, {n: round(gap, 3) for n, gap in result["claims"]["pretrained_minus_scratch"].items()},
                   {kind: round(d["deepest_minus_shallowest"], 3) for kind, d in result["claims"]["depth"].items()})
    return result


def scratch_curve(cfg, key: str, name: str, target: datasets.TargetSet, sizes) -> dict[str, dict]:
    """The non-pretrained baseline: one training run per size and fold, scored on that fold's test images
    (fold f is the pretrained curve's fold f: the same training and test images, so the two pair up)."""
    tcfg, test_per_class = cfg.transfer, cfg.transfer[name].test_per_class
    settings = recipe(cfg, key)
    arch = architecture(cfg, key)
    table = {}
    for n in sizes if tcfg.scratch.folds else []:
        scores = []
        for f in range(tcfg.scratch.folds):
            fold = protocol.sample_fold(target.labels, n, test_per_class, tcfg.seed, f)
            module = scratch.train_from_scratch(arch, target.images[fold.train], target.labels[fold.train],
                                                len(target.classes), settings, tcfg.scratch.epochs, seed=tcfg.seed + f,
                                                **scratch_trainer(cfg))
            scores.append(protocol.class_accuracies(scratch.predict(module, target.images[fold.test]),
                                                    target.labels[fold.test]))
            stage.log.info("%s from scratch, %d/class, fold %d: %.3f", key, n, f + 1, scores[-1].mean())
        table[str(n)] = protocol.score(scores)
    return table


def scratch_trainer(cfg) -> dict:
    """The from-scratch runs' Trainer options: the train stage's (`trainer.*`), with their own loader
    workers and memory format (`transfer.scratch.num_workers`, `transfer.scratch.channels_last`)."""
    options = {k: cfg.trainer[k] for k in ("accelerator", "precision", "deterministic", "benchmark")}
    own = cfg.transfer.scratch
    return {**options, "num_workers": own.num_workers, "channels_last": own.channels_last}


# ----------------------------------------------------------------------------- outputs


EVIDENCE_KEYS = ("folds", "per_class")


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


def evidence(cfg, name: str, results: dict) -> dict:
    """The evidence file: per model, Caltech's per-fold and per-class accuracies, or PASCAL's per-class AP,
    with the split and protocol that produced them (fold f is the same split in every cell of a dataset)."""
    tcfg = cfg.transfer
    if name == "pascal":
        return {"split": {"train": tcfg.pascal.train_set, "test": tcfg.pascal.test_set},
                **{key: {"ap": r["ap"]} for key, r in results.items()}}
    return {"protocol": {"folds": tcfg.folds, "scratch_folds": tcfg.scratch.folds, "std_ddof": protocol.STD_DDOF,
                         "test_per_class": tcfg[name].test_per_class},
            **{key: fold_evidence(r) for key, r in results.items()}}


def data_summary(cfg, name: str, data: dict) -> dict:
    summary = {split: {"images": len(t.images), "classes": len(t.classes), "skipped": len(t.skipped)}
               for split, t in data.items()}
    tcfg = cfg.transfer
    if name != "pascal":
        options = tcfg[name]
        labels = data["all"].labels
        summary.update(folds=tcfg.folds, scratch_folds=tcfg.scratch.folds, std_ddof=protocol.STD_DDOF,
                       test_per_class=options.test_per_class, layers_size=options.layers_size,
                       test_images=protocol.held_out_counts(labels, sorted({*options.sizes, *options.scratch_sizes,
                                                                        options.layers_size}), options.test_per_class))
    else:
        summary["split"] = {"train": tcfg.pascal.train_set, "test": tcfg.pascal.test_set}  # VOC 2012 image sets
        summary["positives"] = {split: int((t.labels == 1).sum()) for split, t in data.items()}
        summary["chance_map"] = sum(chance_ap(data["test"]).values()) / len(data["test"].classes)
    return summary


def chance_ap(test: datasets.TargetSet) -> dict[str, float]:
    """Per class, the share of positives among the scored test images: a random ranking's expected AP."""
    return {c: float((test.labels[:, k] == 1).sum() / max((test.labels[:, k] != 0).sum(), 1))
            for k, c in enumerate(test.classes)}


PAPER_KEYS = {"caltech101": "table4_caltech101", "caltech256": "table5_caltech256"}


def draw_figures(cfg, name: str, results: dict, data: dict) -> dict[str, Path]:
    plots, tcfg = stage.plot_dir(cfg, f"transfer_{name}"), cfg.transfer
    if name == "pascal":
        save_figure(ap_figure(results, paper.numbers("table6_pascal"), chance_ap(data["test"])), plots / "table6_ap.png")
        return {"table6_ap": plots / "table6_ap.png"}
    classes = len(data["all"].classes)
    curves = {key: {"pretrained": r["pretrained"], "scratch": r["scratch"]} for key, r in results.items()}
    prior = paper.numbers("fig9_caltech256")["prior_best_at_60"] if name == "caltech256" else None
    stem = "fig9" if name == "caltech256" else "table4"
    save_figure(size_curve_figure(curves, paper.numbers(PAPER_KEYS[name]), name, classes, prior), plots / f"{stem}.png")
    table7 = paper.numbers("table7_layers")[name]
    save_figure(layer_figure({key: r["layers"] for key, r in results.items()}, table7["classifiers"], name,
                             tcfg[name].layers_size, table7["train_per_class"]), plots / "table7_layers.png")
    return {stem: plots / f"{stem}.png", "table7_layers": plots / "table7_layers.png"}


def log_tables(tracker: Tracker, name: str, results: dict, data: dict) -> None:
    if name == "pascal":
        classes = data["train"].classes
        tracker.table(f"transfer/{name}/table6", ["model", *classes, "mAP"],
                      [[key, *(r["ap"][c] for c in classes), r["map"]] for key, r in results.items()])
        return
    rows = [[key, method, int(n), v["mean"], v["std"], v["folds"]] for key, r in results.items()
            for method in ("pretrained", "scratch") for n, v in r[method].items()]
    tracker.table(f"transfer/{name}/accuracy", ["model", "method", "train_per_class", "mean", "std", "folds"], rows)
    rows = [[key, kind, int(layer), v["mean"], v["std"], v["folds"]] for key, r in results.items()
            for kind, table in r["layers"].items() for layer, v in table.items()]
    tracker.table(f"transfer/{name}/table7", ["model", "classifier", "layer", "mean", "std", "folds"], rows)


def plot_csv(name: str, results: dict) -> str:
    """The DVC plot: per-class AP (PASCAL) or pretrained accuracy against training images per class."""
    models = list(results)
    if name == "pascal":
        classes = sorted(next(iter(results.values()))["ap"]) if results else []
        lines = [",".join(["class", *models])]
        lines += [",".join([c, *(f"{results[m]['ap'][c] or 0:.6f}" for m in models)]) for c in classes]
    else:
        sizes = sorted({int(n) for r in results.values() for n in r["pretrained"]})
        lines = [",".join(["train_per_class", *models])]
        lines += [",".join([str(n), *(f"{results[m]['pretrained'][str(n)]['mean']:.6f}" for m in models)])
                  for n in sizes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    stage.run("transfer", main)
