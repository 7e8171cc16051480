"""Stage `train@<model>`: train one entry of `models` on the prepared data (paper Sec. 3).

    python pipelines/train.py model=alexnet [train.epochs=5] [trainer=gpu]
    python pipelines/train.py model=zfnet trainer.devices=2 trainer.strategy=ddp     # two CPU processes
    python pipelines/train.py ablation=zfnet_fc2048      # a run of Tables 2-3 (ablations/dvc.yaml)
    python pipelines/train.py hparams_search=zfnet_optuna  # an Optuna sweep (Hydra multirun; also -m)

The recipe is `train` with `models.<model>.train` merged over it (the AlexNet baseline keeps
Krizhevsky's: no filter renormalization). An interrupted run (Ctrl-C, kill -9) resumes from
`checkpoints/last.ckpt` on the next call with the same settings; a finished run, or one with other
settings, starts over.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from zfnet.data.loading import PreparedData
from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.nets.evaluation import curves_csv, images_per_s, run_metrics, ten_crop_errors
from zfnet.nets.runs import device_count, make_trainer, mark_run, resumable, run_fingerprint
from zfnet.nets.training import Classifier, NonFiniteLoss
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.config import architecture, recipe
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.figures import curves_figure, filter_mosaic, image_grid


def main(cfg) -> dict | None:
    """Train, test and record one model; its metrics (on rank 0: what a sweep optimizes)."""
    if cfg.ablation:
        cfg = ablations.run_config(cfg, cfg.ablation)
    key, train = cfg.model, recipe(cfg, cfg.model)
    out_dir = Path(cfg.paths.outputs) / "train" / key
    prepared = Path(cfg.paths.prepared)
    if not (prepared / "train" / "index.json").is_file():
        raise UserError(f"paths.prepared: {prepared} holds no prepared data (run the prepare stage first)")
    world_size = cfg.trainer.num_nodes * device_count(cfg.trainer.accelerator, cfg.trainer.devices)
    if train["batch_size"] % world_size:
        raise UserError(f"train.batch_size: {train['batch_size']} does not split evenly over {world_size} devices")

    # The settings as training sees them (the recipe after the per-model merge), and what else changes numbers.
    settings = {"seed": cfg.seed, "arch": architecture(cfg, key), "recipe": train, "world_size": world_size,
                **{k: cfg.trainer[k] for k in ("precision", "channels_last", "deterministic")}}
    run_id = run_fingerprint(json.dumps(settings, sort_keys=True),
                             [prepared / "train" / "index.json", prepared / "val" / "index.json",
                              prepared / "train" / "mean.npy", Path(__file__)])
    resume = resumable(out_dir, run_id)
    if rank_zero_only.rank == 0 and not resume:
        shutil.rmtree(out_dir, ignore_errors=True)
        mark_run(out_dir, run_id, complete=False)

    data = PreparedData(prepared, batch_size=train["batch_size"] // world_size,
                        num_workers=cfg.trainer.num_workers, seed=cfg.seed)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = Classifier(
        arch=architecture(cfg, key), num_classes=data.num_classes, mean=data.mean, crop=train["crop"],
        lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"],
        lr_factor=train["lr_factor"], lr_patience=train["lr_patience"], renorm_radius=train["renorm_radius"],
        flip=train["flip"], input_scale=train["input_scale"], seed=cfg.seed, channels_last=cfg.trainer.channels_last,
    )
    tracker = Tracker(cfg, "train", name=f"train-{key}") if rank_zero_only.rank == 0 else None
    logger = WandbLogger(experiment=tracker.run) if tracker and not tracker.run.disabled else False
    trainer, best = make_trainer(out_dir, cfg.trainer, train["epochs"], train["snapshot_epochs"], logger)
    last = out_dir / "checkpoints" / "last.ckpt"
    if resume:
        stage.log.info("resuming %s from %s", key, last)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=last if resume else None, weights_only=True)
    except BaseException as err:
        if tracker:
            tracker.finish(exit_code=1)
        if isinstance(err, NonFiniteLoss):
            kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
            raise NonFiniteLoss(f"{err}; {kept}") from None
        raise
    if not trainer.is_global_zero:
        return None

    with tracker:
        # The 10-crop test of the best epoch's weights (rank 0, over the exact validation split).
        best_path = Path(best.best_model_path)
        module.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"])
        device = "cuda" if cfg.trainer.accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
        history = module.history
        metrics = {**run_metrics(history, ten_crop_errors(module, data.val_split, train["crop"], device)),
                   "classes": data.num_classes, "parameters": sum(p.numel() for p in module.model.parameters())}
        throughput = images_per_s(history)
        stage.log.info("%s: 10-crop val top-1 error %.3f, top-5 error %.3f (best epoch %d), %.0f images/s", key,
                       metrics["val_top1_error_10crop"], metrics["val_top5_error_10crop"], metrics["best_epoch"],
                       throughput)

        plots = stage.plot_dir(cfg, f"train_{key}")
        write_text(Path(cfg.paths.plots) / "curves" / f"train_{key}.csv", curves_csv(history))
        save_figure(curves_figure(history, key), plots / "curves.png")
        filters = filter_mosaic(module.model.features.conv1.weight)
        save_figure(image_grid([filters], [f"{key} conv1 filters"], ncols=1, cell=4.0), plots / "conv1_filters.png")
        tracker.images({f"train/{key}/curves": plots / "curves.png",
                        f"train/{key}/conv1_filters": plots / "conv1_filters.png"})
        checkpoints = sorted(str(p) for p in (out_dir / "checkpoints").glob("*.ckpt"))
        tracker.summary({**{f"final/{k}": v for k, v in metrics.items()}, "checkpoints": checkpoints,
                         "best_checkpoint": str(best_path), "train/images_per_s_mean": throughput})
        stage.write_metrics(cfg, f"train_{key}", metrics)
        mark_run(out_dir, run_id, complete=True)
    return metrics


if __name__ == "__main__":
    stage.run("train", main)
