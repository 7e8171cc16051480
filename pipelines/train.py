"""Stage `train@<model>`: train one entry of `models` on the prepared data (paper Sec. 3).

    python pipelines/train.py model=alexnet [train.epochs=5] [trainer=gpu]
    python pipelines/train.py model=zfnet trainer.devices=2 trainer.strategy=ddp     # two CPU processes
    python pipelines/train.py ablation=zfnet_fc2048      # a run of Tables 2-3 (ablations/dvc.yaml)
    python pipelines/train.py hparams_search=zfnet_optuna  # an Optuna sweep (Hydra multirun; also -m)

The recipe is `train` with `models.<model>.train` merged over it. Resuming an interrupted run, moving a changed one
aside (`train.restart=true`) and `train.epochs=0` (the untrained control): `zfnet.nets.runs`. Writes
`outputs/train/<model>/`, `metrics/` and `evidence/train_<model>.json`, `plots/train_<model>/` and its curves CSV.
"""

from contextlib import nullcontext
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from zfnet.data.loading import PreparedData
from zfnet.io import write_text
from zfnet.nets import runs
from zfnet.nets.evaluation import curves_csv, images_per_s, ten_crop_evidence, ten_crop_result
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.config import architecture, recipe
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.training import run_figures


def main(cfg) -> dict | None:
    """Train, test and record one model; its metrics (on rank 0: what a sweep optimizes)."""
    if cfg.ablation:
        cfg = ablations.run_config(cfg, cfg.ablation)
    key, train, arch = cfg.model, recipe(cfg, cfg.model), architecture(cfg, cfg.model)
    out_dir, prepared = Path(cfg.paths.outputs) / "train" / key, Path(cfg.paths.prepared)
    components = runs.resume_components(cfg.seed, key, arch, train, cfg.trainer, prepared, Path(__file__))
    world_size = runs.world_size_for(cfg.trainer, train["batch_size"])
    plan = runs.plan_run(out_dir, components, restart=train["restart"])  # every rank: the same answer, or a UserError
    if rank_zero_only.rank == 0:
        runs.take_over(out_dir, Path(cfg.paths.outputs) / "moved_aside" / "train", plan, world_size,
                       train["batch_size"], key)
        runs.record_run(out_dir, components, world_size, complete=plan.complete)

    data = PreparedData(prepared, train["batch_size"] // world_size, cfg.trainer.num_workers, seed=cfg.seed)
    module = runs.classifier(arch, train, data, cfg.seed, cfg.trainer)
    tracker = Tracker(cfg, "train", name=f"train-{key}") if rank_zero_only.rank == 0 else None
    logger = WandbLogger(experiment=tracker.run) if tracker and not tracker.run.disabled else False
    trainer, best = runs.make_trainer(out_dir, cfg.trainer, train["epochs"], train["snapshot_epochs"], logger)
    with tracker or nullcontext():   # a failure ends the W&B run with exit code 1
        best_path = runs.fit(trainer, best, module, data, out_dir, train["epochs"], plan, key)
        if not trainer.is_global_zero:
            return None
        # The 10-crop test of the best epoch's weights (rank 0, over the exact validation split).
        metrics, hits = ten_crop_result(module, best_path, data.val_split,
                                        runs.device_for(cfg.trainer.accelerator), cfg.trainer.num_workers)
        throughput = images_per_s(module.history)
        stage.log.info("%s: 10-crop val top-1 error %.3f, top-5 error %.3f (best epoch %d), %.0f images/s", key,
                       metrics["val_top1_error_10crop"], metrics["val_top5_error_10crop"], metrics["best_epoch"],
                       throughput)
        write_text(Path(cfg.paths.plots) / "curves" / f"train_{key}.csv", curves_csv(module.history))
        figures = run_figures(module.history, module.model.features.conv1.weight, key)
        tracker.images(stage.save_figures(cfg, f"train_{key}", figures, f"train/{key}"))
        checkpoints = sorted(str(p) for p in (out_dir / "checkpoints").glob("*.ckpt"))
        tracker.summary({**{f"final/{k}": v for k, v in metrics.items()}, "checkpoints": checkpoints,
                         "best_checkpoint": str(best_path), "train/images_per_s_mean": throughput})
        stage.write_evidence(cfg, f"train_{key}", ten_crop_evidence(hits))   # before the metrics: they say "done"
        stage.write_metrics(cfg, f"train_{key}", metrics)
        runs.record_run(out_dir, components, world_size, complete=True)
    return metrics


if __name__ == "__main__":
    stage.run("train", main)
