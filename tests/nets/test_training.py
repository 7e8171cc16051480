"""The train stage end to end on the smoke configuration (each test runs the real script; one replaces only the
val top-1 metric with a scripted one, to know which epoch is best)."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF

from zfnet.data.prepare import PreparedSplit
from zfnet.nets.training import load_trained
from zfnet.pipeline.config import compose

from conftest import REPO, plateau_schedule

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


def curves(out, model="zfnet"):
    with open(out / "plots" / "curves" / f"train_{model}.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def checkpoint(out, name, model="zfnet"):
    return torch.load(out / "outputs" / "train" / model / "checkpoints" / name, map_location="cpu", weights_only=True)


def ten_crop_errors_by_hand(checkpoint_path, val_dir):
    """Top-1 and top-5 error of a checkpoint on the prepared val split: softmax averaged over torchvision's ten
    crops of (pixels - mean image) * input_scale."""
    model, hparams = load_trained(checkpoint_path)
    split = PreparedSplit(val_dir)
    wrong1 = wrong5 = 0
    for i in range(len(split)):
        image, label = split[i]
        x = (image.float() - hparams["mean"]) * hparams["input_scale"]
        with torch.no_grad():
            probabilities = model(torch.stack(TF.ten_crop(x, [hparams["crop"]] * 2))).softmax(1).mean(0)
        ranking = probabilities.argsort(descending=True).tolist()
        wrong1 += ranking[0] != label
        wrong5 += label not in ranking[:5]
    return wrong1 / len(split), wrong5 / len(split)


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

    # Anchors that do not come from the code: the smoke recipe is lr 0.01, /10 after 2 epochs without a new
    # best val top-1, 96 training images (4 classes x 24) in batches of 16.
    history = curves(tmp_path / "a")
    assert curves(out) == history and [row["epoch"] for row in history] == list(range(1, 9))
    expected_lr = plateau_schedule(0.01, [row["val_top1_error"] for row in history], factor=0.1, patience=2)
    assert [row["train_lr"] for row in history] == pytest.approx(expected_lr, rel=1e-6)  # logged as float32
    steps = 8 * math.ceil(4 * 24 / 16)
    assert checkpoint(tmp_path / "a", "last.ckpt")["global_step"] == checkpoint(out, "last.ckpt")["global_step"] == steps


# The train stage with one change: the val top-1 error each epoch reports is scripted, so that the best
# epoch is known (2 of 3), and the network handed to the 10-crop test is saved for the test to look at.
SCRIPTED_VAL_ERRORS = """
import importlib.util
import sys

import torch
from torchmetrics import Metric

spec = importlib.util.spec_from_file_location("train_stage", "pipelines/train.py")
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)
ERRORS = [0.5, 0.25, 0.375]


class ScriptedError(Metric):
    full_state_update = False

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.add_state("seen", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits, labels):
        self.seen += len(labels)

    def compute(self):
        return torch.tensor(ERRORS[self.epoch()])


class Scripted(train.Classifier):
    def setup(self, stage):
        self.val_top1 = ScriptedError(lambda: self.current_epoch)


evaluated, real = sys.argv.pop(1), train.ten_crop_errors


def recording(module, *args, **kwargs):
    torch.save(module.model.state_dict(), evaluated)
    return real(module, *args, **kwargs)


train.Classifier, train.ten_crop_errors = Scripted, recording
train.stage.run("train", train.main)
"""


def test_the_10_crop_test_gets_the_best_epoch_and_checkpoints_load_weights_only(smoke, tmp_path):
    evaluated = tmp_path / "evaluated.pt"
    result = subprocess.run([sys.executable, "-c", SCRIPTED_VAL_ERRORS, str(evaluated), *smoke(tmp_path),
                             "model=alexnet", "train.epochs=3"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = tmp_path / "outputs" / "train" / "alexnet" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} >= {"best.ckpt", "last.ckpt", "epoch_001.ckpt", "epoch_002.ckpt"}

    snapshot, hparams = load_trained(checkpoints / "epoch_002.ckpt")
    assert hparams["arch"]["name"] == "alexnet" and hparams["mean"].shape[0] == 3
    assert hparams["renorm_radius"] is None and hparams["weight_decay"] == 0.0005  # alexnet's recipe reached it
    weights = torch.load(evaluated, weights_only=True)
    best, _ = load_trained(checkpoints / "best.ckpt")
    last, _ = load_trained(checkpoints / "last.ckpt")

    def same(state):
        return all(torch.equal(value, state[name]) for name, value in weights.items())

    assert same(snapshot.state_dict()) and same(best.state_dict()), "the 10-crop test did not get epoch 2's weights"
    assert not same(last.state_dict())

    result = metrics(tmp_path, "alexnet")
    assert (result["best_epoch"], result["epochs"], result["val_top1_error"]) == (2, 3, 0.25)
    prepared = next(o.split("=", 1)[1] for o in smoke(tmp_path) if o.startswith("paths.prepared="))
    top1, top5 = ten_crop_errors_by_hand(checkpoints / "epoch_002.ckpt", Path(prepared) / "val")
    assert result["val_top1_error_10crop"] == pytest.approx(top1) and result["val_top5_error_10crop"] == pytest.approx(top5)


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
    configured = ", ".join(compose().models)  # zfnet, alexnet, and whatever else conf/ defines
    assert result.stderr.strip().splitlines() == [
        f"error: model: 'nosuchmodel' is not configured; expected one of: {configured}"]


def test_filter_mosaic_shared_scale_shows_a_dominant_filter():
    from zfnet.nets.training import filter_mosaic

    weight = torch.full((4, 3, 3, 3), 0.01)
    weight[0] = 1.0
    weight[:, :, 0, 0] = -0.01  # every filter spans a range of its own
    own, shared = filter_mosaic(weight), filter_mosaic(weight, shared_scale=True)
    assert own[1:4, 5:8].max() == 255  # stretched alone, a faint filter still reaches full brightness
    assert shared[1:4, 5:8].max() < 10 and shared[1:4, 1:4].max() == 255
