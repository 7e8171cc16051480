"""`-m` / `--multirun` on a stage: detection, each job in its own folder, the number returned, errors."""

import pytest
from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.pipeline import multirun, stage

from conftest import assert_one_line_error


@pytest.mark.parametrize("argv, expected", [
    (["-m", "seed=1,2"], True), (["--multirun"], True), (["hparams_search=zfnet_optuna"], True),
    (["+hparams_search=zfnet_optuna", "experiment=smoke"], True), (["seed=1"], False),
    (["logger.name=hparams_search=x"], False),
])
def test_a_multirun_is_asked_for_by_flag_or_by_a_search_config(argv, expected):
    assert multirun.requested(argv) is expected


def test_each_job_runs_in_its_own_folder_and_returns_the_optimized_metric(tmp_path):
    seen = []

    def body(cfg):
        seen.append(OmegaConf.to_container(cfg, resolve=True))
        return {"val_top1_error_10crop": cfg.seed / 10, "epochs": 1}

    stage.run("probe", body, ["-m", "seed=1,2", f"hydra.sweep.dir={tmp_path}/sweep", "optimized_metric=val_top1_error_10crop",
                              "logger.mode=disabled"])
    assert [cfg["seed"] for cfg in seen] == [1, 2]
    assert [cfg["paths"]["outputs"] for cfg in seen] == [f"{tmp_path}/sweep/0", f"{tmp_path}/sweep/1"]
    assert seen[1]["paths"]["metrics"] == f"{tmp_path}/sweep/1/metrics"
    assert seen[1]["paths"]["evidence"] == f"{tmp_path}/sweep/1/evidence"
    assert {cfg["logger"]["group"] for cfg in seen} == {"multirun-sweep"}
    assert [cfg["logger"]["name"] for cfg in seen] == ["probe-0", "probe-1"]
    cfg = OmegaConf.create(seen[1])
    assert multirun.objective(cfg, {"val_top1_error_10crop": 0.25}) == 0.25
    with pytest.raises(UserError, match=r"^optimized_metric: 'top1' is not a metric of this stage; it reports: a, b$"):
        multirun.objective(OmegaConf.create({"optimized_metric": "top1"}), {"b": 1, "a": 2})
    assert multirun.objective(OmegaConf.create({"optimized_metric": None}), {"a": 1}) is None


def test_a_multirun_refuses_a_params_file(capsys):
    assert_one_line_error("probe", ["-m", "--params", "params.yaml", "seed=1,2"], "--params", capsys)
