"""Stage `train@<model>`: train one entry of `models` on the prepared data (paper Sec. 3).

    python pipelines/train.py model=alexnet [train.epochs=5] [trainer=gpu]
    python pipelines/train.py model=zfnet trainer.devices=2 trainer.strategy=ddp     # two CPU processes

An interrupted run (Ctrl-C, kill -9) resumes from `checkpoints/last.ckpt` on the next call with the
same settings; a finished run, or one with other settings, starts over.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

import zfnet
from zfnet.data.loading import PreparedData, ten_crop_probabilities
from zfnet.errors import UserError
from zfnet.io import save_figure, write_json, write_text
from zfnet.nets.training import AtomicCheckpointIO, Classifier, FilterImages, NonFiniteLoss, Snapshots, filter_mosaic
from zfnet.pipeline import stage
from zfnet.pipeline.config import fingerprint, select
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.figures import image_grid

MONITOR = "val/top1_error"


def main(cfg) -> None:
    key = cfg.model
    out_dir = Path(cfg.paths.outputs) / "train" / key
    ckpt_dir = out_dir / "checkpoints"
    run_id = run_fingerprint(cfg, key)
    resume = resumable(out_dir, run_id)
    is_rank_zero = rank_zero_only.rank == 0
    if is_rank_zero and not resume:
        shutil.rmtree(out_dir, ignore_errors=True)
        write_json(out_dir / "run.json", {"config": run_id, "complete": False})

    world_size = cfg.trainer.num_nodes * device_count(cfg.trainer)
    if cfg.train.batch_size % world_size:
        raise UserError(f"train.batch_size: {cfg.train.batch_size} does not split evenly over {world_size} devices")
    prepared = Path(cfg.paths.prepared)
    if not (prepared / "train" / "index.json").is_file():
        raise UserError(f"paths.prepared: {prepared} holds no prepared data (run the prepare stage first)")
    data = PreparedData(prepared, batch_size=cfg.train.batch_size // world_size,
                        num_workers=cfg.trainer.num_workers, seed=cfg.seed)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = Classifier(
        arch=select(cfg, f"models.{key}"), num_classes=data.num_classes, mean=data.mean, crop=cfg.train.crop,
        lr=cfg.train.lr, momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay,
        lr_factor=cfg.train.lr_factor, lr_patience=cfg.train.lr_patience, renorm_radius=cfg.train.renorm_radius,
        flip=cfg.train.flip, input_scale=cfg.train.input_scale, seed=cfg.seed, channels_last=cfg.trainer.channels_last,
    )
    tracker = Tracker(cfg, "train", name=f"train-{key}") if is_rank_zero else None
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=MONITOR, mode="min", save_top_k=1,
                           enable_version_counter=False, save_on_train_epoch_end=True)
    # Lightning's save_last only writes on epochs that improve `best`; resuming needs every epoch.
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False,
                             save_on_train_epoch_end=True)
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes,
        strategy=cfg.trainer.strategy, precision=cfg.trainer.precision, deterministic=cfg.trainer.deterministic,
        benchmark=cfg.trainer.benchmark, max_epochs=cfg.train.epochs, num_sanity_val_steps=0,
        callbacks=[best, latest, Snapshots(ckpt_dir, list(cfg.train.snapshot_epochs)), FilterImages()],
        logger=WandbLogger(experiment=tracker.run) if tracker and not tracker.run.disabled else False,
        plugins=[AtomicCheckpointIO()], default_root_dir=out_dir, enable_model_summary=False,
        log_every_n_steps=10, use_distributed_sampler=False,
    )
    last = ckpt_dir / "last.ckpt"
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
        return
    with tracker:
        finish(cfg, key, out_dir, module, data, best, tracker)
        write_json(out_dir / "run.json", {"config": run_id, "complete": True})


def finish(cfg, key, out_dir, module, data, best, tracker) -> None:
    """Rank 0, after fit: 10-crop test of the best weights, metrics, curves, figures."""
    history = module.history
    throughput = images_per_s(history)
    best_path = Path(best.best_model_path)
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    device = torch.device("cuda") if cfg.trainer.accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
    top1, top5 = ten_crop_errors(module.to(device).eval(), data, cfg.train.crop, device)
    last_row = history[-1]
    best_row = min(history, key=lambda row: row[MONITOR])
    metrics = {
        "val_top1_error_10crop": top1, "val_top5_error_10crop": top5,
        "val_top1_error": best_row[MONITOR], "val_top5_error": best_row["val/top5_error"],
        "train_top1_error": last_row["train/top1_error"], "best_epoch": best_row["epoch"],
        "epochs": last_row["epoch"], "classes": data.num_classes,
        "parameters": sum(p.numel() for p in module.model.parameters()),
    }
    stage.log.info("%s: 10-crop val top-1 error %.3f, top-5 error %.3f (best epoch %d), %.0f images/s",
                   key, top1, top5, best_row["epoch"], throughput)
    plots = stage.plot_dir(cfg, f"train_{key}")
    timings = {"train/images_per_s"}  # kept out of the git-tracked curves: they differ run to run
    write_text(Path(cfg.paths.plots) / "curves" / f"train_{key}.csv",
               curves_csv([{k: v for k, v in row.items() if k not in timings} for row in history]))
    save_figure(curves_figure(history, key), plots / "curves.png")
    filters = filter_mosaic(module.model.features.conv1.weight)
    save_figure(image_grid([filters], [f"{key} conv1 filters"], ncols=1, cell=4.0), plots / "conv1_filters.png")
    tracker.images({f"train/{key}/curves": plots / "curves.png", f"train/{key}/conv1_filters": plots / "conv1_filters.png"})
    checkpoints = sorted(str(p) for p in (out_dir / "checkpoints").glob("*.ckpt"))
    tracker.summary({**{f"final/{k}": v for k, v in metrics.items()}, "checkpoints": checkpoints,
                     "best_checkpoint": str(best_path), "train/images_per_s_mean": throughput})
    stage.write_metrics(cfg, f"train_{key}", metrics)


@torch.no_grad()
def ten_crop_errors(module: Classifier, data: PreparedData, crop: int, device) -> tuple[float, float]:
    loader = torch.utils.data.DataLoader(data.val_split, batch_size=64, num_workers=0)
    k = min(5, data.num_classes)
    wrong1 = wrong5 = total = 0
    for images, labels in loader:
        probabilities = ten_crop_probabilities(module, module.normalize(images.to(device)), crop).cpu()
        topk = probabilities.topk(k, dim=1).indices
        wrong1 += int((topk[:, 0] != labels).sum())
        wrong5 += int((topk != labels[:, None]).all(dim=1).sum())
        total += len(labels)
    return wrong1 / total, wrong5 / total


def run_fingerprint(cfg, key: str) -> str:
    """What a resumed run must share with the interrupted one: settings, prepared data and training code."""
    import hashlib

    digest = hashlib.sha256(fingerprint(cfg, "seed", f"models.{key}", "train", "trainer.precision").encode())
    prepared = Path(cfg.paths.prepared)
    code = Path(zfnet.__file__).parent
    for path in (prepared / "train" / "index.json", prepared / "val" / "index.json", prepared / "train" / "mean.npy",
                 Path(__file__), code / "nets" / "training.py", code / "data" / "loading.py", code / "nets" / "models.py"):
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def resumable(out_dir: Path, run_id: str) -> bool:
    """An unfinished run with these settings and a last checkpoint on disk."""
    import json

    state_file, last = out_dir / "run.json", out_dir / "checkpoints" / "last.ckpt"
    if not (state_file.is_file() and last.is_file()):
        return False
    state = json.loads(state_file.read_text())
    return state.get("config") == run_id and not state.get("complete")


def device_count(trainer_cfg) -> int:
    devices = trainer_cfg.devices
    if isinstance(devices, int) and devices > 0:
        return devices
    if trainer_cfg.accelerator in ("gpu", "cuda"):
        return max(torch.cuda.device_count(), 1)
    return 1


def images_per_s(history: list[dict]) -> float:
    rates = [row["train/images_per_s"] for row in history if "train/images_per_s" in row]
    return sum(rates) / len(rates) if rates else float("nan")


def curves_csv(rows: list[dict]) -> str:
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k != "epoch", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c.replace("/", "_") for c in columns], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c.replace("/", "_"): row.get(c, "") for c in columns})
    return buffer.getvalue()


def curves_figure(rows: list[dict], key: str):
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in rows]
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name in ("train/loss", "val/loss"):
        loss_ax.plot(epochs, [row.get(name) for row in rows], marker=".", label=name)
    for name in ("train/top1_error", "val/top1_error", "val/top5_error"):
        error_ax.plot(epochs, [row.get(name) for row in rows], marker=".", label=name)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title=f"{key}: loss")
    error_ax.set(xlabel="epoch", ylabel="error", ylim=(0, 1), title=f"{key}: error (centre crop)")
    for ax in (loss_ax, error_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    stage.run("train", main)
