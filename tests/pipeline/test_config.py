import subprocess
import sys

import pytest
import yaml

from zfnet.errors import UserError
from zfnet.pipeline import config

from conftest import REPO


def test_params_yaml_is_the_composition_of_the_defaults(tmp_path):
    composed = config.write_params(tmp_path / "params.yaml")
    assert yaml.safe_load(composed.read_text()) == yaml.safe_load((REPO / "params.yaml").read_text()), (
        "params.yaml is stale: run `python -m zfnet.pipeline.config` after editing conf/")


def test_compose_resolves_interpolations():
    cfg = config.compose(["seed=7"])
    assert cfg.synthetic.seed == 7
    assert cfg.data.root.startswith(cfg.paths.synthetic)


def test_experiment_files_compose_and_validate():
    for experiment in ("default", "smoke"):
        config.validate(config.compose([f"experiment={experiment}"]))
    paper = config.compose(["experiment=paper", "data.root=/datasets/imagenet"])
    config.validate(paper)
    assert paper.data.name == "imagenet" and paper.prepare.size == 256


def test_params_file_with_overrides(tmp_path):
    path = config.write_params(tmp_path / "params.yaml")
    cfg = config.load(["model=alexnet", "prepare.size=160"], params_file=path)
    assert cfg.model == "alexnet" and cfg.prepare.size == 160
    with pytest.raises(UserError, match="trainer=gpu: a config group choice needs Hydra composition"):
        config.load(["trainer=gpu"], params_file=path)


@pytest.mark.parametrize("overrides, key", [
    (["prepare.size=-3"], "prepare.size"),
    (["synthetic.scale_range=[0.9,0.2]"], "synthetic.scale_range"),
    (["logger.mode=sometimes"], "logger.mode"),
    (["model=nosuchmodel"], "model"),
    (["models.zfnet.norm=batch"], "models.zfnet"),
    (["data=imagenet"], "data.root"),
    (["data=nosuchdata"], "data"),
    (["prepare.nosuchkey=1"], "prepare.nosuchkey"),
    (["trainer.strategy=fsdp"], "trainer.strategy"),
    (["models.alexnet.input_size=96"], "models.alexnet.input_size"),
    (["transfer.scratch.num_workers=-1"], "transfer.scratch.num_workers"),
    (["transfer.scratch.channels_last=3"], "transfer.scratch.channels_last"),
    (["trainer.compile=maybe"], "trainer.compile"),
    (["trainer.finite_check_every=0"], "trainer.finite_check_every"),
    (["train.epochs=-1"], "train.epochs"),
    (["models.zfnet.train.epochs=-1"], "models.zfnet.train.epochs"),
])
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(UserError) as err:
        config.load(overrides)
    message = str(err.value)
    assert key in message and "\n" not in message


def test_zero_epochs_is_an_untrained_run():
    assert config.load(["train.epochs=0"]).train.epochs == 0      # the report's negative control


def test_stage_prints_one_line_and_exits_nonzero():
    result = subprocess.run([sys.executable, "pipelines/prepare.py", "prepare.size=-1"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: prepare.size"), result.stderr


@pytest.mark.parametrize("overrides, expected", [
    (["data=imagefolder", "data.root=/nonexistent/tree"], "error: data.root: /nonexistent/tree is not a folder"),
    (["data=imagenet"], "error: data.root: missing value"),
])
def test_prepare_names_a_missing_root_in_one_line(overrides, expected, tmp_path):
    result = subprocess.run([sys.executable, "pipelines/prepare.py", *overrides, f"paths.prepared={tmp_path}/p"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert not (tmp_path / "p").exists()
