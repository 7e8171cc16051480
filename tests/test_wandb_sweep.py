"""sweeps/wandb.yaml (W&B Sweeps, online only): checked offline against the config and the train stage."""

import math

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from zfnet.nets.evaluation import run_metrics
from zfnet.pipeline import config

from conftest import REPO

SWEEP = yaml.safe_load((REPO / "sweeps" / "wandb.yaml").read_text())
OPTUNA = yaml.safe_load((REPO / "conf" / "hparams_search" / "zfnet_optuna.yaml").read_text())


def fixed_overrides() -> list[str]:
    """The command's own key=value items, as the agent passes them (its ${...} macros dropped)."""
    return [item for item in SWEEP["command"] if "=" in item and not item.startswith("${")]


@pytest.mark.parametrize("end", ["min", "max"])
def test_every_value_the_sweep_can_draw_composes_and_validates(end, monkeypatch):
    monkeypatch.setenv("WANDB_RUN_ID", "abc123")
    drawn = [f"{name}={spec[end]}" for name, spec in SWEEP["parameters"].items()]  # ${args_no_hyphens}
    cfg = config.load([*fixed_overrides(), *drawn])
    assert cfg.paths.outputs == "outputs/wandb_sweeps/abc123" and cfg.logger.mode == "online"
    for name, spec in SWEEP["parameters"].items():
        assert math.isclose(config.select(cfg, name), spec[end])


def test_the_sweep_runs_the_train_stage_and_optimizes_a_metric_it_reports():
    assert (REPO / SWEEP["program"]).is_file() and SWEEP["program"] == "pipelines/train.py"
    assert "${args_no_hyphens}" in SWEEP["command"] and "${program}" in SWEEP["command"]
    history = [{"epoch": 1, "val/top1_error": 0.5, "val/top5_error": 0.1, "train/top1_error": 0.6}]
    reported = run_metrics(history, (0.4, 0.1))
    prefix, _, name = SWEEP["metric"]["name"].partition("/")
    assert prefix == "final" and name in reported  # train.py logs final/<metric> to the run summary
    assert name == OPTUNA["optimized_metric"]


def test_the_wandb_and_optuna_sweeps_search_the_same_ranges():
    optuna_params = OPTUNA["hydra"]["sweeper"]["params"]
    assert set(optuna_params) == set(SWEEP["parameters"])
    parser = OverridesParser.create()
    for name, spec in SWEEP["parameters"].items():
        value = parser.parse_override(f"{name}={optuna_params[name]}").value()
        interval = getattr(value, "interval", value)  # tag(log, interval(...)) wraps the interval
        assert (interval.start, interval.end) == (spec["min"], spec["max"]), name
        assert ("log" in getattr(value, "tags", set())) == spec["distribution"].startswith("log"), name
