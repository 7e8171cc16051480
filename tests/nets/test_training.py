"""The train stage end to end on the smoke configuration (each test runs the real script)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from zfnet.nets.training import load_trained

from conftest import REPO

pytestmark = pytest.mark.slow


def stage(name, *overrides, check=True, **kwargs):
    result = subprocess.run([sys.executable, f"pipelines/{name}.py", *overrides], cwd=REPO, capture_output=True,
                            text=True, timeout=600, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Smoke-sized generated and prepared data; returns a function giving overrides for an output root."""
    root = tmp_path_factory.mktemp("smoke")
    data = [f"paths.synthetic={root}/synthetic", f"paths.prepared={root}/prepared", "logger.mode=disabled",
            "experiment=smoke"]

    def overrides(out):
        return data + [f"paths.outputs={out}/outputs", f"paths.metrics={out}/metrics", f"paths.plots={out}/plots",
                       f"logger.dir={out}"]

    stage("generate", *overrides(root))
    stage("prepare", *overrides(root))
    return overrides


def metrics(out, model="zfnet"):
    return json.loads((out / "metrics" / f"train_{model}.json").read_text())


def test_same_seed_same_metrics_and_kill_9_resumes_to_the_same_result(smoke, tmp_path):
    args = ["model=zfnet", "train.epochs=8"]
    stage("train", *smoke(tmp_path / "a"), *args)
    stage("train", *smoke(tmp_path / "b"), *args)
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")

    out = tmp_path / "killed"
    command = [sys.executable, "pipelines/train.py", *smoke(out), *args]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "outputs" / "train" / "zfnet" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run_state = json.loads((out / "outputs" / "train" / "zfnet" / "run.json").read_text())
    assert process.returncode == -signal.SIGKILL and not run_state["complete"], "the run ended before the kill"
    resumed = stage("train", *smoke(out), *args)
    assert "resuming zfnet" in resumed.stderr
    assert metrics(out) == metrics(tmp_path / "a")


def test_checkpoints_load_weights_only_and_snapshots_exist(smoke, tmp_path):
    stage("train", *smoke(tmp_path), "model=alexnet")
    checkpoints = tmp_path / "outputs" / "train" / "alexnet" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} >= {"best.ckpt", "last.ckpt", "epoch_001.ckpt", "epoch_002.ckpt"}
    model, hparams = load_trained(checkpoints / "epoch_002.ckpt")
    last, _ = load_trained(checkpoints / "last.ckpt")
    assert hparams["arch"]["name"] == "alexnet" and hparams["mean"].shape[0] == 3
    for a, b in zip(model.state_dict().values(), last.state_dict().values()):
        assert torch.equal(a, b)  # epoch 2 is the last epoch of the smoke run
    result = metrics(tmp_path, "alexnet")
    assert 0.0 <= result["val_top1_error_10crop"] <= 1.0 and result["epochs"] == 2


def test_ddp_on_cpu_runs_two_processes(smoke, tmp_path):
    result = stage("train", *smoke(tmp_path), "model=zfnet", "train.epochs=1", "trainer.devices=2",
                   "trainer.strategy=ddp")
    seen = {}
    for line in result.stderr.splitlines():
        if "trained on" in line:
            rank = int(line.split("rank ")[1].split(" of")[0])
            seen[rank] = int(line.split("trained on ")[1].split()[0])
    train_images = json.loads((tmp_path / "metrics" / "train_zfnet.json").read_text())["classes"] * 24
    assert set(seen) == {0, 1}, result.stderr[-2000:]
    assert seen[0] == seen[1] == (train_images + 1) // 2  # each rank its own half of the shuffled set


def test_non_finite_loss_stops_with_one_line(smoke, tmp_path):
    result = stage("train", *smoke(tmp_path), "model=zfnet", "train.lr=1e12", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1
    assert "loss is nan at step 1 " in errors[0] and "no checkpoint was written yet" in errors[0]


def test_unknown_model_is_one_line():
    result = stage("train", "model=nosuchmodel", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: model: 'nosuchmodel' is not configured; expected one of: zfnet, alexnet"]


def test_filter_mosaic_shared_scale_shows_a_dominant_filter():
    from zfnet.nets.training import filter_mosaic

    weight = torch.full((4, 3, 3, 3), 0.01)
    weight[0] = 1.0
    weight[:, :, 0, 0] = -0.01  # every filter spans a range of its own
    own, shared = filter_mosaic(weight), filter_mosaic(weight, shared_scale=True)
    assert own[1:4, 5:8].max() == 255  # stretched alone, a faint filter still reaches full brightness
    assert shared[1:4, 5:8].max() < 10 and shared[1:4, 1:4].max() == 255
