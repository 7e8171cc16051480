"""`-m` / `--multirun`: a stage run as a Hydra app over many configurations (grids, Optuna sweeps).

    python pipelines/train.py -m train.lr=0.005,0.01,0.02                 # Hydra's basic grid
    python pipelines/train.py hparams_search=zfnet_optuna                 # an Optuna study (implies -m)

Each job writes under its own folder, `<hydra.sweep.dir>/<hydra.sweep.subdir>/` (paths.outputs; its
metrics and plots in `metrics/` and `plots/` there), so jobs never share a checkpoint. A job returns
`optimized_metric` (a key of the stage's metrics, e.g. `val_top1_error_10crop`) when the config names
one: that is what the Optuna sweeper optimizes. W&B: every job is a run of one group (`logger.group`,
by default `multirun-<sweep folder>`), named after its folder.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf, open_dict

from zfnet.errors import UserError
from zfnet.pipeline import config as zconfig

MULTIRUN_FLAGS = ("-m", "--multirun")
SEARCH_GROUP = "hparams_search"


def requested(argv: list[str]) -> bool:
    """Whether the command line asks for a multirun: -m, --multirun, or an `hparams_search` choice."""
    return any(arg in MULTIRUN_FLAGS or _chooses_search(arg) for arg in argv)


def _chooses_search(arg: str) -> bool:
    return arg.lstrip("+").startswith(f"{SEARCH_GROUP}=")


def run(stage: str, body: Callable[[DictConfig], Any], argv: list[str]) -> None:
    """Run `body` as the task of a Hydra multirun over `argv` (Hydra overrides, sweep syntax allowed)."""
    import hydra

    if "--params" in argv or any(a.startswith("--params=") for a in argv):
        raise UserError("--params: a multirun composes conf/ itself; drop --params (sweep what `dvc exp run -S` would set)")
    if "--print-config" in argv:
        raise UserError("--print-config: not with -m; print one job's config with its overrides and no -m")
    overrides = [arg for arg in argv if arg not in MULTIRUN_FLAGS]
    if not any(_chooses_search(o) for o in overrides) and not any(o.startswith("hydra.sweep.dir=") for o in overrides):
        overrides.insert(0, f"hydra.sweep.dir=outputs/multirun/{stage}-${{now:%Y-%m-%d_%H-%M-%S}}")

    @hydra.main(version_base="1.3", config_path=str(zconfig.conf_dir()), config_name=zconfig.CONFIG_NAME)
    def job(cfg: DictConfig) -> float | None:
        return run_job(stage, cfg, body)

    saved, sys.argv = sys.argv, [f"pipelines/{stage}.py", "--multirun", *overrides]
    try:
        job()
    finally:
        sys.argv = saved


def run_job(stage: str, cfg: DictConfig, body: Callable[[DictConfig], Any]) -> float | None:
    """One job: its own output folder and W&B name, validation, the stage, and the number to optimize."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    with open_dict(cfg):
        cfg.paths.outputs = str(job_dir)
        cfg.paths.metrics = str(job_dir / "metrics")
        cfg.paths.evidence = str(job_dir / "evidence")  # never the default pipeline's evidence/
        cfg.paths.plots = str(job_dir / "plots")
        if cfg.logger.get("group") is None:
            cfg.logger.group = f"multirun-{Path(hydra_cfg.sweep.dir).name}"
        if cfg.logger.get("name") is None:
            cfg.logger.name = f"{stage}-{hydra_cfg.sweep.subdir}"
    OmegaConf.resolve(cfg)
    try:
        zconfig.validate(cfg)
        metrics = body(cfg)
        return objective(cfg, metrics)
    except UserError as err:
        print(f"error: {job_dir}: {err}", file=sys.stderr)
        raise


def objective(cfg: DictConfig, metrics: dict[str, Any] | None) -> float | None:
    """The value of `optimized_metric` among the stage's metrics (None when the config names none)."""
    name = cfg.get("optimized_metric")
    if name is None or metrics is None:
        return None
    if name not in metrics:
        raise UserError(f"optimized_metric: {name!r} is not a metric of this stage; it reports: "
                        f"{', '.join(sorted(metrics))}")
    return float(metrics[name])


def summarize(study, sweep_cfg: DictConfig, sweep_dir: Path) -> None:
    """The sweep's table (`trials.csv`) and figure (`sweep.png`) in its folder, and a W&B run with both."""
    from hydra.core.hydra_config import HydraConfig

    from zfnet.io import save_figure, write_text
    from zfnet.pipeline.tracking import Tracker
    from zfnet.studies.sweeps import log_scaled, sweep_figure, trial_rows

    names, rows = trial_rows(study)
    metric = sweep_cfg.get("optimized_metric") or "value"
    minimize = study.direction.name == "MINIMIZE"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["trial", "state", "value", "seconds", *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(sweep_dir / "trials.csv", buffer.getvalue())
    save_figure(sweep_figure(names, rows, metric, minimize, log_scaled(study)), sweep_dir / "sweep.png")

    HydraConfig.instance().set_config(sweep_cfg)  # for ${hydra:...} in the logger settings
    plain = OmegaConf.to_container(sweep_cfg, resolve=False)
    plain.pop("hydra", None)
    cfg = OmegaConf.create(plain)
    cfg.logger.name = f"sweep-{study.study_name}"
    OmegaConf.resolve(cfg)
    with Tracker(cfg, "sweep", name=cfg.logger.name) as tracker:
        tracker.images({"sweep/figure": sweep_dir / "sweep.png"})
        tracker.table("sweep/trials", list(rows[0]) if rows else ["trial"], [list(r.values()) for r in rows])
        complete = [r for r in rows if r["state"] == "complete"]
        if complete:
            best = (min if minimize else max)(complete, key=lambda r: r["value"])
            tracker.summary({"best/trial": best["trial"], f"best/{metric}": best["value"],
                             **{f"best/{name}": best[name] for name in names}, "trials/complete": len(complete)})
