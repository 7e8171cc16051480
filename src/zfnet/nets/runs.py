"""A training run on disk: the Lightning Trainer with the paper's checkpoints, and safe resuming.

`outputs/train/<model>/` holds `run.json` ({"config": fingerprint, "complete": bool}) and
`checkpoints/` (best.ckpt, last.ckpt every epoch, epoch_NNN.ckpt snapshots). A run whose fingerprint
matches and that is not complete resumes from last.ckpt; anything else starts over.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from zfnet.data import loading
from zfnet.io import write_json
from zfnet.nets import evaluation, layers, models, training
from zfnet.nets.evaluation import MONITOR
from zfnet.nets.training import AtomicCheckpointIO, FilterImages, Snapshots

TRAINING_CODE = (training, loading, models, layers, evaluation)  # a change here makes an interrupted run start over


def run_fingerprint(settings: str, data_files: Iterable[Path]) -> str:
    """What a resumed run must share with the interrupted one: settings, data and the training code."""
    digest = hashlib.sha256(settings.encode())
    for path in [*data_files, Path(__file__), *(Path(module.__file__) for module in TRAINING_CODE)]:
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def resumable(out_dir: Path, run_id: str) -> bool:
    """An unfinished run with these settings and a last checkpoint on disk."""
    state_file, last = out_dir / "run.json", out_dir / "checkpoints" / "last.ckpt"
    if not (state_file.is_file() and last.is_file()):
        return False
    state = json.loads(state_file.read_text())
    return state.get("config") == run_id and not state.get("complete")


def mark_run(out_dir: Path, run_id: str, complete: bool) -> None:
    write_json(out_dir / "run.json", {"config": run_id, "complete": complete})


def device_count(accelerator: str, devices: int | str) -> int:
    if isinstance(devices, int) and devices > 0:
        return devices
    if accelerator in ("gpu", "cuda"):
        return max(torch.cuda.device_count(), 1)
    return 1


def make_trainer(out_dir: Path, trainer: dict[str, Any], epochs: int, snapshot_epochs: Iterable[int],
                 logger=False) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Trainer and its best-checkpoint callback (whose `best_model_path` gets the 10-crop test)."""
    ckpt_dir = out_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=MONITOR, mode="min", save_top_k=1,
                           enable_version_counter=False, save_on_train_epoch_end=True)
    # Lightning's save_last only writes on epochs that improve `best`; resuming needs every epoch.
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False,
                             save_on_train_epoch_end=True)
    pl_trainer = pl.Trainer(
        accelerator=trainer["accelerator"], devices=trainer["devices"], num_nodes=trainer["num_nodes"],
        strategy=trainer["strategy"], precision=trainer["precision"], deterministic=trainer["deterministic"],
        benchmark=trainer["benchmark"], max_epochs=epochs, num_sanity_val_steps=0,
        callbacks=[best, latest, Snapshots(ckpt_dir, list(snapshot_epochs)), FilterImages()],
        logger=logger, plugins=[AtomicCheckpointIO()], default_root_dir=out_dir, enable_model_summary=False,
        log_every_n_steps=10, use_distributed_sampler=False,
    )
    return pl_trainer, best
