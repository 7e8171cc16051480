"""`train.epochs=0`: the train stage keeps the network at its initialization (the report's negative control).

The real script in a fresh process on tiny prepared data (3 classes x 8 training images): it writes best.ckpt and
last.ckpt holding the initial weights, no snapshots, metrics saying "epochs": 0; the finished run is tested again
without rewriting anything; asking for epochs afterwards moves the untrained run aside (never deletes it)."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from test_visualize_stages import prepare_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrained")
    prepared = prepare_tiny(root, train_per_class=8, val_per_class=4)
    overrides = ["experiment=smoke", "model=zfnet", "train.epochs=0", "train.batch_size=16",
                 f"paths.prepared={prepared}", f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics",
                 f"paths.plots={root}/plots", f"paths.evidence={root}/evidence", f"logger.dir={root}",
                 "logger.mode=disabled"]
    return {"root": root, "run": root / "outputs" / "train" / "zfnet", "overrides": overrides}


def train(workspace, *extra):
    result = subprocess.run([sys.executable, "pipelines/train.py", *workspace["overrides"], *extra], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def files(folder) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).digest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def untrained(workspace):
    train(workspace)
    return files(workspace["run"])


def initial_weights(hparams: dict) -> dict[str, torch.Tensor]:
    """The network the recipe draws before any step: Lightning's seed_everything(seed), then the model built
    (zfnet.nets.models, by hand here: the train stage is not imported)."""
    from zfnet.nets.models import build_model

    torch.manual_seed(hparams["seed"])
    arch = dict(hparams["arch"])
    return build_model(arch.pop("name"), num_classes=hparams["num_classes"], **arch).state_dict()


def test_the_checkpoints_hold_the_initialized_network(workspace, untrained):
    from zfnet.nets.training import load_trained

    checkpoints = workspace["run"] / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]   # no epoch_NNN snapshots
    model, hparams = load_trained(checkpoints / "best.ckpt")
    expected = initial_weights(hparams)
    assert set(model.state_dict()) == set(expected)
    assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected)
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(torch.equal(last["state_dict"][f"model.{k}"], expected[k]) for k in expected)
    assert [row["epoch"] for row in last["history"]] == [0]


def test_the_metrics_say_zero_epochs_and_test_the_untrained_net(workspace, untrained):
    metrics = json.loads((workspace["root"] / "metrics" / "train_zfnet.json").read_text())
    assert metrics["epochs"] == 0 and metrics["best_epoch"] == 0 and metrics["train_top1_error"] is None
    assert 0 <= metrics["val_top1_error_10crop"] <= 1 and 0 <= metrics["val_top1_error"] <= 1
    state = json.loads((workspace["run"] / "run.json").read_text())
    assert state["complete"]


def test_a_finished_untrained_run_is_tested_again_without_rewriting(workspace, untrained):
    result = train(workspace)
    assert "finished all 0 epochs" in result.stderr
    after = files(workspace["run"])
    assert {k: v for k, v in after.items() if k.endswith(".ckpt")} == {k: v for k, v in untrained.items() if k.endswith(".ckpt")}
    metrics = json.loads((workspace["root"] / "metrics" / "train_zfnet.json").read_text())
    assert metrics["epochs"] == 0


def test_training_it_later_moves_the_untrained_run_aside(workspace, untrained):
    result = train(workspace, "train.epochs=1", "train.snapshot_epochs=[1]")
    [moved] = list((workspace["root"] / "outputs" / "moved_aside" / "train").iterdir())
    assert f"to {moved}" in result.stderr
    assert (moved / "checkpoints" / "best.ckpt").is_file()
    metrics = json.loads((workspace["root"] / "metrics" / "train_zfnet.json").read_text())
    assert metrics["epochs"] == 1 and metrics["train_top1_error"] is not None
