"""Weights & Biases tracking: one run per stage execution, grouped per pipeline configuration.

Offline by default: `logger.mode` (or WANDB_MODE in the environment, which wins) decides, and the
mode is always passed explicitly, so wandb never prompts for a login or waits on the network.
Offline runs land in `<logger.dir>/wandb/offline-run-*`; `wandb sync <that folder>` uploads them.

Every metric logged here is also written to the stage's DVC metrics file by the caller, and
every figure is also saved as a PNG: W&B is a mirror, never the only copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zfnet.pipeline import config as zconfig


class Tracker:
    """Thin wrapper around one wandb run; a no-op when the mode is 'disabled'."""

    def __init__(self, cfg: DictConfig, stage: str, name: str | None = None):
        import wandb

        log_cfg = cfg.logger
        mode = wandb_mode(cfg)
        run_dir = Path(log_cfg.dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._wandb = wandb
        self._finished = False
        self.run = wandb.init(
            project=log_cfg.project,
            entity=log_cfg.entity,
            group=pipeline_group(cfg),
            job_type=stage,
            name=log_cfg.get("name") or name or stage,
            config=OmegaConf.to_container(cfg, resolve=True),
            dir=str(run_dir),
            mode=mode,
            reinit="finish_previous",
            settings=wandb.Settings(
                silent=True,
                console="off",
                x_disable_stats=True,
                x_disable_machine_info=True,
                init_timeout=60,
            ),
        )

    @property
    def run_dir(self) -> Path | None:
        return Path(self.run.dir).parent if self.run is not None and not self.run.disabled else None

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.run.log(metrics, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        self.run.summary.update(values)

    def images(self, figures: dict[str, Any]) -> None:
        """Log images in one step: PNG paths (already saved for DVC) or HWC/HW arrays, under their keys."""
        self.run.log({key: self._image(value) for key, value in figures.items()})

    def table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A wandb.Table; array cells (HWC or HW images) become wandb.Image cells."""
        self.run.log({key: self._wandb.Table(columns=columns, data=[[self._cell(v) for v in row] for row in rows])})

    def _image(self, value):
        return self._wandb.Image(str(value) if isinstance(value, Path) else value)

    def _cell(self, value):
        import numpy as np

        return self._image(value) if isinstance(value, np.ndarray) else value

    def finish(self, exit_code: int = 0) -> None:
        """End the run; when this returns, its offline `run-*.wandb` file is complete on disk.

        `run.finish()` alone is not enough: wandb's service process closes (and so flushes) the run
        file only after it returns, a few seconds later on a busy machine, and a process that exits
        first may leave a file with a partial tail. `wandb.teardown()` waits for the service to exit;
        the next Tracker in the same process starts a fresh one. Safe to call twice.
        """
        if self._finished:
            return
        self._finished = True
        self.run.finish(exit_code=exit_code)
        if not self.run.disabled:
            self._wandb.teardown()

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


def wandb_mode(cfg: DictConfig) -> str:
    """offline | online | disabled: WANDB_MODE in the environment wins over `logger.mode`."""
    mode = os.environ.get("WANDB_MODE") or cfg.logger.mode
    return "offline" if mode == "dryrun" else mode


def pipeline_group(cfg: DictConfig) -> str:
    """The W&B group of every run of this pipeline configuration: `logger.group`, or a hash of the params."""
    return cfg.logger.group or f"pipeline-{pipeline_fingerprint(cfg)}"


def pipeline_fingerprint(cfg: DictConfig) -> str:
    """Same for every stage of one pipeline configuration (all settings but where logs go)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("logger", None)
    container.pop("report", None)  # the report reads the pipeline's runs; how it is titled is not the pipeline
    container.pop("model", None)  # which model, run or dataset a stage handles is not part of the pipeline's identity
    container.pop("ablation", None)
    container.get("transfer", {}).pop("dataset", None)
    container.get("train", {}).pop("restart", None)  # how a run folder is taken over, not what is trained
    return zconfig.fingerprint(OmegaConf.create(container))
