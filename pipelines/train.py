"""Stage `train@<model>`: train one entry of `models` on the prepared data (paper Sec. 3).

    python pipelines/train.py model=alexnet [train.epochs=5] [trainer=gpu]
    python pipelines/train.py model=zfnet trainer.devices=2 trainer.strategy=ddp     # two CPU processes
    python pipelines/train.py ablation=zfnet_fc2048      # a run of Tables 2-3 (ablations/dvc.yaml)
    python pipelines/train.py hparams_search=zfnet_optuna  # an Optuna sweep (Hydra multirun; also -m)

The recipe is `train` with `models.<model>.train` merged over it (the AlexNet baseline keeps
Krizhevsky's: no filter renormalization). An interrupted run (Ctrl-C, kill -9, a SLURM requeue) resumes
from `checkpoints/last.ckpt` on the next call with the same settings, data and training code, also on
another number of devices with the same global batch (`train.batch_size`; the data order then differs
from the uninterrupted run's: exact replay only at the same world size). A finished run is tested again
without training. A folder holding checkpoints of a run with other settings, data or code is never
deleted: the stage stops with one line naming what changed, and `train.restart=true` moves that run
aside, to `<paths.outputs>/moved_aside/train/<model>-<time>/`, and starts over (`zfnet.nets.runs`).
`train.epochs=0` keeps the network at its initialization (the report's negative control): it is validated,
saved as checkpoints/best.ckpt and last.ckpt, and tested like a trained one; a finished run of 0 epochs.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from zfnet.data.loading import PreparedData
from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.nets.evaluation import curves_csv, errors_of, images_per_s, run_metrics, ten_crop_hits
from zfnet.nets.runs import (
    RunPlan,
    device_count,
    fit_untrained,
    make_trainer,
    move_aside,
    plan_run,
    record_run,
    run_components,
    training_code,
)
from zfnet.nets.training import Classifier, NonFiniteLoss
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.config import architecture, recipe
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.figures import curves_figure, filter_mosaic, image_grid

DATA_FILES = ("train/index.json", "val/index.json", "train/mean.npy")  # under paths.prepared: what training reads


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

    # What a resumed run must share with the interrupted one: the settings as training sees them (the recipe
    # after the per-model merge, less `restart`; not the world size: the global batch is in the recipe), what
    # else changes numbers, the prepared data and the training code.
    settings = {"seed": cfg.seed, "models": {key: architecture(cfg, key)},
                "train": {k: v for k, v in train.items() if k != "restart"},
                "trainer": {k: cfg.trainer[k] for k in ("precision", "channels_last", "deterministic", "compile")}}
    components = run_components(settings, {name: prepared / name for name in DATA_FILES}, training_code(Path(__file__)))
    plan = plan_run(out_dir, components, restart=train["restart"])  # every rank: the same answer, or a UserError
    resume = plan.resume
    if rank_zero_only.rank == 0:
        take_over(cfg, key, out_dir, plan, world_size, train["batch_size"])
        record_run(out_dir, components, world_size, complete=plan.complete)

    data = PreparedData(prepared, batch_size=train["batch_size"] // world_size,
                        num_workers=cfg.trainer.num_workers, seed=cfg.seed)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = Classifier(
        arch=architecture(cfg, key), num_classes=data.num_classes, mean=data.mean, crop=train["crop"],
        lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"],
        lr_factor=train["lr_factor"], lr_patience=train["lr_patience"], renorm_radius=train["renorm_radius"],
        flip=train["flip"], input_scale=train["input_scale"], seed=cfg.seed, channels_last=cfg.trainer.channels_last,
        compile=cfg.trainer.compile, finite_check_every=cfg.trainer.finite_check_every,
    )
    tracker = Tracker(cfg, "train", name=f"train-{key}") if rank_zero_only.rank == 0 else None
    logger = WandbLogger(experiment=tracker.run) if tracker and not tracker.run.disabled else False
    trainer, best = make_trainer(out_dir, cfg.trainer, train["epochs"], train["snapshot_epochs"], logger)
    last = out_dir / "checkpoints" / "last.ckpt"
    if plan.complete:
        stage.log.info("%s finished all %d epochs with these settings: nothing to train, testing %s again", key,
                       train["epochs"], out_dir / "checkpoints" / "best.ckpt")
    elif resume:
        stage.log.info("resuming %s from %s", key, last)
    try:
        if train["epochs"]:
            trainer.fit(module, datamodule=data, ckpt_path=last if resume else None, weights_only=True)
        else:   # the network at its initialization: validated, saved as best and last, no snapshots
            fit_untrained(trainer, module, data, out_dir / "checkpoints", complete=plan.complete)
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
        best_path = Path(best.best_model_path) if train["epochs"] else out_dir / "checkpoints" / "best.ckpt"
        module.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"])
        device = "cuda" if cfg.trainer.accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
        history = module.history
        hits = ten_crop_hits(module, data.val_split, train["crop"], device, num_workers=cfg.trainer.num_workers)
        metrics = {**run_metrics(history, errors_of(hits)),
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
        stage.write_evidence(cfg, f"train_{key}", ten_crop_evidence(hits))   # before the metrics: they say "done"
        stage.write_metrics(cfg, f"train_{key}", metrics)
        record_run(out_dir, components, world_size, complete=True)
    return metrics


def ten_crop_evidence(hits) -> dict:
    """Per validation image, in the split's order, whether the 10-crop test got it right (1) or not (0)."""
    top1, top5 = hits
    return {"images": len(top1), "top1_correct": top1.int(), "top5_correct": top5.int()}


def take_over(cfg, key: str, out_dir: Path, plan: RunPlan, world_size: int, batch_size: int) -> None:
    """Rank 0, before training: move a run that is not continued aside (never delete it); log a new world size."""
    if plan.move_aside:
        moved = move_aside(out_dir, Path(cfg.paths.outputs) / "moved_aside" / "train")
        stage.log.warning("%s: moved the run that was in %s to %s (%s); starting over", key, out_dir, moved, plan.reason)
    if plan.resume and plan.world_size and plan.world_size != world_size:
        stage.log.warning("%s: resuming on %d devices instead of %d: per-device batch %d -> %d (global batch %d); the "
                          "data order now differs from an uninterrupted run's", key, world_size, plan.world_size,
                          batch_size // plan.world_size, batch_size // world_size, batch_size)


if __name__ == "__main__":
    stage.run("train", main)
