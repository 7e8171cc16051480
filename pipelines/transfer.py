"""Stage `transfer@<dataset>`: the pretrained nets on Caltech-101, Caltech-256 and PASCAL VOC 2012 (paper Sec. 5.2:
Tables 4-7, Fig. 9), every model of `transfer.models` side by side; the experiment is `zfnet.experiments.transfer`.
    python pipelines/transfer.py transfer.dataset=caltech101 [transfer.roots.caltech101=/datasets] [transfer.folds=5]
Outputs: metrics/ and evidence/transfer_<dataset>.json, plots/transfer_<dataset>/*.png, plots/curves/transfer_<dataset>.csv
(the DVC plot), outputs/transfer/<dataset>/ (the feature cache per model and split; skipped.tsv), one W&B run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from zfnet.experiments import transfer
from zfnet.io import write_text
from zfnet.pipeline import inputs, not_run, stage
from zfnet.pipeline.config import architecture, recipe
from zfnet.pipeline.tracking import Tracker
from zfnet.transfer import datasets, features
from zfnet.viz.transfer import figures


def main(cfg) -> None:
    name, tcfg = cfg.transfer.dataset, cfg.transfer
    csv, cache = Path(cfg.paths.plots) / "curves" / f"transfer_{name}.csv", Path(cfg.paths.outputs) / "transfer" / name
    reason = not_run.builtin_reason(cfg, tcfg.roots[name], f"transfer.roots.{name}", "the real dataset's root")
    if reason:  # the built-in stand-in is not generated (data.name != synthetic): say so in the metrics
        not_run.write(cfg, f"transfer_{name}", reason, plots=[f"transfer_{name}"], folders=[cache], evidence=True)
        write_text(csv, transfer.curve_csv(name, {}))
        return
    listings = datasets.list_target(tcfg, name)
    transfer.check_sizes(tcfg, name, next(iter(listings.values())).labels)
    with Tracker(cfg, "transfer", name=f"transfer-{name}") as tracker:
        result = transfer.run(model_inputs(cfg, listings, cache, tracker), tcfg, dataset=name, trainer=cfg.trainer)
        stage.write_evidence(cfg, f"transfer_{name}", result.evidence)
        tracker.images(stage.save_figures(cfg, f"transfer_{name}", figures(result), f"transfer/{name}"))
        for table, (columns, rows) in result.tables.items():
            tracker.table(f"transfer/{name}/{table}", columns, rows)
        tracker.summary(stage.flat_numbers(result.metrics, f"transfer/{name}/"))
        write_text(csv, result.csv)
        stage.write_metrics(cfg, f"transfer_{name}", result.metrics)


def model_inputs(cfg, listings: dict, cache: Path, tracker: Tracker):
    """Per model of `transfer.models`: the images decoded at its pretraining size and their (cached) features.
    Undecodable files go to a W&B table and <cache>/skipped.tsv, as the prepare stage reports its own."""
    name, tcfg, decoded = cfg.transfer.dataset, cfg.transfer, {}
    for key in tcfg.models:
        path = stage.checkpoint_path(cfg, key, tcfg.checkpoint)
        net, weights = inputs.trained(cfg, key, path), hashlib.sha256(path.read_bytes()).hexdigest()
        if (size := net.hparams["mean"].shape[-1]) not in decoded:  # the net's pretraining image size
            decoded[size] = datasets.decode_splits(listings, size, name, workers=cfg.workers or os.cpu_count() or 1)
            if skipped := datasets.skipped_rows(decoded[size]):
                tracker.table(f"transfer/{name}/skipped", ["split", "file", "reason"], skipped)
                write_text(cache / "skipped.tsv", "".join("\t".join(row) + "\n" for row in skipped))
        feats = {}
        for split, target in decoded[size].items():
            stored, digest = cache / f"features_{key}_{split}.pt", transfer.cache_key(weights, target, net.hparams, tcfg, name)
            feats[split], reused = features.cached(stored, digest, lambda: transfer.extract_features(
                net.model, net.hparams, target, tcfg, name))
            stage.log.info("%s %s: features of %d images %s (%s)", key, split, len(target.images),
                           "reused from the cache" if reused else "extracted", stored)
        yield transfer.ModelInputs(key, decoded[size], feats, architecture(cfg, key), recipe(cfg, key))


if __name__ == "__main__":
    stage.run("transfer", main)
