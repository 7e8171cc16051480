"""Stages whose input is the built-in data, under a config that does not generate it.

With `data.name` other than synthetic (`experiment=paper` on ImageNet) the generate stage writes only a
NOT_GENERATED note, so a stage that still points at the built-in data (correspondence's faces with part
boxes, the transfer roots' Caltech and VOC stand-ins) has nothing to read. Such a stage does not fail
the pipeline: it writes its outputs as DVC expects them, with a metrics file that says so,

    {"ran": false, "reason": "transfer.roots.caltech101=data/synthetic is the built-in data, ..."}

and the report shows its sections as "not run" with the reason (`zfnet.report.inputs.reason_of`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from zfnet.io import write_text
from zfnet.pipeline import stage


def builtin_reason(cfg: DictConfig, root: str | Path, key: str, needs: str) -> str | None:
    """Why a stage reading `root` (set by config key `key`) cannot run: `root` is in the built-in data
    (`paths.synthetic`) and `data.name` does not generate it. None when it can run. `needs` says what
    the folder must hold, for the reason's advice."""
    if cfg.data.name == "synthetic":
        return None
    builtin, target = Path(cfg.paths.synthetic).resolve(), Path(root).resolve()
    if target != builtin and builtin not in target.parents:
        return None
    return (f"{key}={root} is the built-in data, which data.name={cfg.data.name} does not generate; "
            f"set {key} to {needs} to run it")


def write(cfg: DictConfig, stem: str, reason: str, plots: list[str] = (), folders: list[Path] = (),
          evidence: bool = False) -> None:
    """The not-run outputs of a stage: `<paths.metrics>/<stem>.json` = {"ran": false, "reason"}, each plot
    folder `<paths.plots>/<name>` fresh with a NOT_RUN.txt holding the reason, each of `folders` made if
    absent (its contents kept: a feature cache, say), and with `evidence` the same {"ran": false, "reason"} as
    `<paths.evidence>/<stem>.json` (a DVC out of the stage either way)."""
    stage.log.warning("%s: not run: %s", stem, reason)
    for name in plots:
        write_text(stage.plot_dir(cfg, name) / "NOT_RUN.txt", reason + "\n")
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
    if evidence:
        stage.write_evidence(cfg, stem, {"ran": False, "reason": reason})
    stage.write_metrics(cfg, stem, {"ran": False, "reason": reason})
