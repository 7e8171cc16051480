"""A training run on disk: the Lightning Trainer with the paper's checkpoints, and safe resuming.

`outputs/train/<model>/` holds `checkpoints/` (best.ckpt, last.ckpt every epoch, epoch_NNN.ckpt
snapshots) and `run.json`: whether the run is complete, its world size, and what a resumed run must
share with it, one entry per part (`run_components`): each settings leaf (its value when short, else a
hash), each prepared-data file and each training-code file (hashes). `plan_run` decides from it:

- nothing kept (no checkpoint in the folder): start;
- same components and `last.ckpt`: resume (a complete run trains nothing more and is only tested again);
- same components, no `last.ckpt` (killed while writing the first epoch's checkpoints): move aside, start;
- anything else: refuse with one line naming what changed, or, with `train.restart=true`, move the
  folder aside (`move_aside`) and start over. Nothing is ever deleted.

A run of 0 epochs (`train.epochs=0`, `fit_untrained`) is the network at its initialization: best.ckpt and
last.ckpt hold the initial weights, there are no snapshots, and once recorded it is a finished run like any other.

The world size is left out of the components: the global batch (`train.batch_size`) is in them, so a run
requeued onto another number of devices resumes with another per-device batch. It then draws another
data order (DistributedSampler deals the shuffled split out per rank, and crops are seeded per rank):
a resumed run replays the uninterrupted one exactly only at the same world size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from zfnet.data import jpeg, loading, shards
from zfnet.errors import UserError
from zfnet.io import write_json
from zfnet.nets import evaluation, layers, models, training
from zfnet.nets.evaluation import MONITOR
from zfnet.nets.training import AtomicCheckpointIO, FilterImages, Snapshots

TRAINING_CODE = (training, loading, shards, jpeg, models, layers, evaluation)  # a change here stops an interrupted run
DATA_FILES = ("train/index.json", "val/index.json", "train/mean.npy")  # under the prepared folder: what training reads
RUN_FORMAT = 2       # run.json with its components; format 1 held only {"config", "complete"}
SHORT_VALUE = 40     # settings values up to this many characters of JSON are kept as is (shown old -> new)
SHOWN_CHANGES = 6    # names listed per kind of change in the refusal; the rest are counted

log = logging.getLogger("zfnet")


# --------------------------------------------------------------------------- what a run is made of


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def settings_leaves(settings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted key -> the leaf's JSON text when short, else a hash of it (lists are leaves)."""
    leaves = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves.update(settings_leaves(value, f"{name}."))
            continue
        text = json.dumps(value, sort_keys=True, default=str)
        leaves[name] = text if len(text) <= SHORT_VALUE else "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return leaves


def training_code(stage_file: Path) -> dict[str, Path]:
    """The code files a run depends on, by a readable name: the stage script, this module, TRAINING_CODE."""
    modules = {__name__: Path(__file__), **{m.__name__: Path(m.__file__) for m in TRAINING_CODE}}
    return {f"pipelines/{stage_file.name}": stage_file,
            **{name.replace(".", "/") + ".py": path for name, path in modules.items()}}


def run_components(settings: Mapping[str, Any], data_files: Mapping[str, Path],
                   code_files: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    """What a resumed run must share with the interrupted one, part by part (all JSON-able)."""
    return {"settings": settings_leaves(settings),
            "data": {name: file_digest(path) for name, path in data_files.items()},
            "code": {name: file_digest(path) for name, path in code_files.items()}}


def resume_components(seed: int, key: str, arch: Mapping[str, Any], recipe: Mapping[str, Any],
                      trainer: Mapping[str, Any], prepared: Path, stage_file: Path) -> dict[str, dict[str, str]]:
    """What a resumed run of model `key` must share with the interrupted one: the settings as training sees them
    (the recipe after the per-model merge, less `restart`; not the world size: the global batch is in the recipe),
    the trainer settings that change numbers, the prepared data (`DATA_FILES` under `prepared`: a UserError when
    it holds none) and the code (`training_code` of `stage_file`)."""
    if not (prepared / "train" / "index.json").is_file():
        raise UserError(f"paths.prepared: {prepared} holds no prepared data (run the prepare stage first)")
    settings = {"seed": seed, "models": {key: arch}, "train": {k: v for k, v in recipe.items() if k != "restart"},
                "trainer": {k: trainer[k] for k in ("precision", "channels_last", "deterministic", "compile")}}
    return run_components(settings, {name: prepared / name for name in DATA_FILES}, training_code(stage_file))


def fingerprint(components: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest()[:16]


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """'settings train.lr 0.01 -> 0.02; data train/index.json; code zfnet/nets/training.py' (old -> new)."""
    parts = []
    for kind in ("settings", "data", "code"):
        before, after = old.get(kind, {}), new.get(kind, {})
        names = sorted(set(before) | set(after))
        changed = [_change(name, before.get(name), after.get(name), kind == "settings")
                   for name in names if before.get(name) != after.get(name)]
        if changed:
            shown = ", ".join(changed[:SHOWN_CHANGES])
            more = f" and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
            parts.append(f"{kind} {shown}{more}")
    return "; ".join(parts)


def _change(name: str, old: str | None, new: str | None, show_values: bool) -> str:
    if old is None:
        return f"{name} (new)"
    if new is None:
        return f"{name} (gone)"
    if show_values and not old.startswith("sha256:") and not new.startswith("sha256:"):
        return f"{name} {old} -> {new}"
    return name


# --------------------------------------------------------------------------- resume, start, or refuse


@dataclass(frozen=True)
class RunPlan:
    resume: bool                    # fit from checkpoints/last.ckpt
    complete: bool = False          # ... which has trained all its epochs: only the test runs again
    move_aside: bool = False        # the folder holds checkpoints that this run will not continue
    world_size: int | None = None   # the world size the resumed run trained at (None: unknown or not resuming)
    reason: str = ""                # why the folder is moved aside


def read_run(out_dir: Path) -> dict[str, Any] | None:
    """run.json as a dict; None when absent or unreadable."""
    try:
        state = json.loads((out_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def kept_checkpoints(out_dir: Path) -> list[Path]:
    """The checkpoints in a run folder (Lightning's SLURM auto-requeue writes hpc_ckpt_N.ckpt beside checkpoints/)."""
    return sorted([*out_dir.glob("*.ckpt"), *(out_dir / "checkpoints").glob("*.ckpt")])


def plan_run(out_dir: Path, components: Mapping[str, Any], restart: bool = False) -> RunPlan:
    """Resume, start, or refuse with a UserError naming what changed; moves nothing.

    A run that differs from this one is moved aside (then training starts over) when `restart` is set or
    when it had finished; an unfinished one (the hours of checkpoints a mid-run fix or a requeue would
    otherwise lose) refuses.

    Every rank calls it and gets the same answer: only rank 0 then acts on it (`move_aside`, `record_run`).
    """
    state, last = read_run(out_dir), out_dir / "checkpoints" / "last.ckpt"
    same = state is not None and state.get("config") == fingerprint(components)
    if same and last.is_file():
        return RunPlan(resume=True, complete=bool(state.get("complete")), world_size=state.get("world_size"))
    kept = kept_checkpoints(out_dir)
    if not kept:
        return RunPlan(resume=False)
    if same:  # killed between the first epoch's checkpoints: these settings, nothing to resume from yet
        return RunPlan(resume=False, move_aside=True, reason="it has no checkpoints/last.ckpt to resume from")
    reason = mismatch(state, components)
    if restart:
        return RunPlan(resume=False, move_aside=True, reason=reason)
    if state is not None and state.get("complete"):
        # A finished run is what `dvc repro` / `dvc exp run` retrain after a change of settings, data or code:
        # it is moved aside (and DVC's cache holds its outputs too), never deleted. An unfinished one refuses.
        return RunPlan(resume=False, move_aside=True, reason=f"finished; {reason}")
    count = f"{len(kept)} checkpoint{'s' if len(kept) > 1 else ''}"
    raise UserError(f"{out_dir}: {count} of a run that differs from this one ({reason}); nothing was deleted. "
                    "Undo the change to resume it, or pass train.restart=true to move it aside and start over")


def mismatch(state: dict[str, Any] | None, components: Mapping[str, Any]) -> str:
    if state is None:
        return "its run.json is missing or unreadable: what it was trained with is unknown"
    if not {"settings", "data", "code"} <= set(state):
        return "settings or code changed (run.json from an older version)"
    return f"changed: {describe_changes(state, components) or 'its fingerprint'}"


def move_aside(out_dir: Path, aside_root: Path) -> Path:
    """Rename `out_dir` to `aside_root/<name>-<time>[-n]` (a rename: nothing is copied or deleted)."""
    aside_root.mkdir(parents=True, exist_ok=True)
    stem = f"{out_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = aside_root / stem, 1
    while target.exists():
        n += 1
        target = aside_root / f"{stem}-{n}"
    try:
        os.replace(out_dir, target)
    except OSError as err:  # e.g. another filesystem: then nothing moved
        raise UserError(f"{out_dir}: could not move it aside to {target}: {err}") from err
    return target


def take_over(out_dir: Path, aside_root: Path, plan: RunPlan, world_size: int, batch_size: int, key: str) -> None:
    """Rank 0, before training: move a run that is not continued aside to `aside_root` (never delete it); log a
    new world size (`batch_size` is the global batch)."""
    if plan.move_aside:
        moved = move_aside(out_dir, aside_root)
        log.warning("%s: moved the run that was in %s to %s (%s); starting over", key, out_dir, moved, plan.reason)
    if plan.resume and plan.world_size and plan.world_size != world_size:
        log.warning("%s: resuming on %d devices instead of %d: per-device batch %d -> %d (global batch %d); the "
                    "data order now differs from an uninterrupted run's", key, world_size, plan.world_size,
                    batch_size // plan.world_size, batch_size // world_size, batch_size)


def record_run(out_dir: Path, components: Mapping[str, Any], world_size: int, complete: bool) -> None:
    write_json(out_dir / "run.json", {"format": RUN_FORMAT, "config": fingerprint(components), "complete": complete,
                                      "world_size": world_size, **components})


# --------------------------------------------------------------------------- the Trainer


def device_count(accelerator: str, devices: int | str) -> int:
    if isinstance(devices, int) and devices > 0:
        return devices
    if accelerator in ("gpu", "cuda"):
        return max(torch.cuda.device_count(), 1)
    return 1


def world_size_for(trainer: Mapping[str, Any], batch_size: int) -> int:
    """The processes `trainer` (num_nodes, accelerator, devices) trains on; a UserError when the global batch
    `batch_size` does not split evenly over them."""
    size = trainer["num_nodes"] * device_count(trainer["accelerator"], trainer["devices"])
    if batch_size % size:
        raise UserError(f"train.batch_size: {batch_size} does not split evenly over {size} devices")
    return size


def device_for(accelerator: str) -> torch.device:
    """Where one process evaluates or probes a network (rank 0's 10-crop test, the probe stages): CUDA when the
    trainer config (`trainer.accelerator`) asks for a GPU or lets Lightning pick and one is there, else the CPU."""
    wants_gpu = accelerator in ("gpu", "cuda", "auto")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def classifier(arch: Mapping[str, Any], recipe: Mapping[str, Any], data: loading.PreparedData, seed: int,
               trainer: Mapping[str, Any]) -> training.Classifier:
    """The network of `arch` with the training `recipe` on `data`, initialized after seeding everything by `seed`."""
    pl.seed_everything(seed, workers=True, verbose=False)
    return training.Classifier(
        arch=arch, num_classes=data.num_classes, mean=data.mean, crop=recipe["crop"],
        lr=recipe["lr"], momentum=recipe["momentum"], weight_decay=recipe["weight_decay"],
        lr_factor=recipe["lr_factor"], lr_patience=recipe["lr_patience"], renorm_radius=recipe["renorm_radius"],
        flip=recipe["flip"], input_scale=recipe["input_scale"], seed=seed, channels_last=trainer["channels_last"],
        compile=trainer["compile"], finite_check_every=trainer["finite_check_every"],
    )


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


def fit_untrained(trainer: pl.Trainer, module: training.Classifier, data: pl.LightningDataModule, ckpt_dir: Path,
                  complete: bool = False) -> Path:
    """`train.epochs=0`: the network at its initialization is the run's result (the report's negative control).

    Validates it once (the centre-crop pass a fit runs after each epoch, logged the same way) and keeps that as
    the history's only row, epoch 0, then writes it as `best.ckpt` and then `last.ckpt` (weights, buffers and
    hyperparameters: what `training.load_trained` reads; last.ckpt, written last, marks the folder as holding a
    run, `plan_run`). A `complete` run is validated again from its best.ckpt and nothing is rewritten. Every
    rank calls it (validation and saving are collective). Returns best.ckpt's path.
    """
    best = ckpt_dir / "best.ckpt"
    if complete:
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    trainer.validate(module, datamodule=data, verbose=False)
    module.history = [{"epoch": 0, **{k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k}}]
    if not complete:
        for path in (best, ckpt_dir / "last.ckpt"):
            trainer.save_checkpoint(path, weights_only=True)
    return best


def fit(trainer: pl.Trainer, best: ModelCheckpoint, module: training.Classifier, data: pl.LightningDataModule,
        out_dir: Path, epochs: int, plan: RunPlan, key: str) -> Path:
    """Train `module` as `plan` says (start, resume from checkpoints/last.ckpt, or nothing more for a complete
    run; `epochs` 0: `fit_untrained`) and return the checkpoint of its best epoch. A non-finite loss is re-raised
    naming the last good checkpoint."""
    last = out_dir / "checkpoints" / "last.ckpt"
    if plan.complete:
        log.info("%s finished all %d epochs with these settings: nothing to train, testing %s again", key, epochs,
                 out_dir / "checkpoints" / "best.ckpt")
    elif plan.resume:
        log.info("resuming %s from %s", key, last)
    try:
        if not epochs:   # the network at its initialization: validated, saved as best and last, no snapshots
            return fit_untrained(trainer, module, data, out_dir / "checkpoints", complete=plan.complete)
        trainer.fit(module, datamodule=data, ckpt_path=last if plan.resume else None, weights_only=True)
    except training.NonFiniteLoss as err:
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
        raise training.NonFiniteLoss(f"{err}; {kept}") from None
    return Path(best.best_model_path)
