"""The train stage's run folder end to end, on tiny prepared data (3 classes x 8 training images, batch 16):
killed on one device and resumed on two (a SLURM requeue onto another GPU count), then other settings
refused with every checkpoint kept, `train.restart=true` moving the run aside, and a finished run tested
again without training. Each step runs the real script in a fresh process; the steps build on each other."""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from test_visualize_stages import CLASSES, prepare_tiny

pytestmark = pytest.mark.slow
TRAIN_PER_CLASS, BATCH, EPOCHS = 8, 16, 4


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    prepared = prepare_tiny(root, train_per_class=TRAIN_PER_CLASS, val_per_class=4)
    overrides = ["experiment=smoke", "model=zfnet", f"train.epochs={EPOCHS}", f"train.batch_size={BATCH}",
                 f"paths.prepared={prepared}", f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics",
                 f"paths.plots={root}/plots", f"paths.evidence={root}/evidence", f"logger.dir={root}", "logger.mode=disabled"]
    return {"root": root, "run": root / "outputs" / "train" / "zfnet", "overrides": overrides,
            "aside": root / "outputs" / "moved_aside" / "train"}


def train(workspace, *extra):
    return subprocess.run([sys.executable, "pipelines/train.py", *workspace["overrides"], *extra], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def files(folder) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder`: (mtime_ns, a hash of its bytes), so a rewrite with equal bytes shows too."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).digest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def images_per_rank(stderr: str) -> dict[int, int]:
    seen = {}
    for line in stderr.splitlines():
        if "trained on" in line:
            seen[int(line.split("rank ")[1].split(" of")[0])] = int(line.split("trained on ")[1].split()[0])
    return seen


@pytest.fixture(scope="module")
def requeued(workspace):
    """A one-device run killed after its first checkpoint, then resumed with trainer.devices=2 (DDP on CPU)."""
    command = [sys.executable, "pipelines/train.py", *workspace["overrides"]]
    log = workspace["root"] / "killed.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    last = workspace["run"] / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    if process.poll() is not None:
        pytest.fail(f"the run ended before the kill:\n{log.read_text()[-3000:]}")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    state = json.loads((workspace["run"] / "run.json").read_text())
    assert process.returncode == -signal.SIGKILL and not state["complete"], "the run ended before the kill"
    done = torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1  # epochs finished before the kill
    before = files(workspace["run"] / "checkpoints")
    result = train(workspace, "trainer.devices=2", "trainer.strategy=ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    return {"done": done, "before": before, "result": result, "world_size": state["world_size"]}


def test_a_run_killed_on_one_device_resumes_on_two(workspace, requeued):
    stderr = requeued["result"].stderr
    assert requeued["world_size"] == 1 and "resuming zfnet" in stderr
    assert f"per-device batch {BATCH} -> {BATCH // 2} (global batch {BATCH})" in stderr
    train_images = len(CLASSES) * TRAIN_PER_CLASS
    remaining = EPOCHS - requeued["done"]
    assert images_per_rank(stderr) == {0: remaining * train_images // 2, 1: remaining * train_images // 2}
    # One device: ceil(24 / 16) = 2 steps an epoch; two: ceil(12 / 8) = 2 steps an epoch on each rank.
    last = torch.load(workspace["run"] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == requeued["done"] * math.ceil(train_images / BATCH) + \
        remaining * math.ceil(train_images / 2 / (BATCH // 2))
    assert [row["epoch"] for row in last["history"]] == list(range(1, EPOCHS + 1))
    after = files(workspace["run"] / "checkpoints")
    snapshots = [name for name in requeued["before"] if name.startswith("epoch_")]  # taken before the kill
    assert snapshots and all(after[name] == requeued["before"][name] for name in snapshots)
    state = json.loads((workspace["run"] / "run.json").read_text())
    assert state["complete"] and state["world_size"] == 2


def test_other_settings_are_refused_with_every_file_kept(workspace, requeued):
    """An unfinished run (here: the finished one marked as interrupted) with other settings refuses."""
    state_file = workspace["run"] / "run.json"
    finished = state_file.read_text()
    state_file.write_text(json.dumps({**json.loads(finished), "complete": False}))
    before = files(workspace["run"])
    result = train(workspace, "train.lr=0.02")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(changed: settings train.lr 0.01 -> 0.02)" in errors[0], result.stderr[-2000:]
    assert "train.restart=true" in errors[0]
    assert files(workspace["run"]) == before and not workspace["aside"].exists()
    state_file.write_text(finished)


def test_restart_moves_the_run_aside_and_trains_anew(workspace, requeued):
    before = files(workspace["run"])
    result = train(workspace, "train.lr=0.02", "train.restart=true")
    assert result.returncode == 0, result.stderr[-3000:]
    [moved] = list(workspace["aside"].iterdir())
    assert f"moved the run that was in {workspace['run']} to {moved}" in result.stderr
    assert files(moved) == before  # renamed as it was: every checkpoint, run.json and all
    state = json.loads((workspace["run"] / "run.json").read_text())
    assert state["complete"] and state["settings"]["train.lr"] == "0.02"
    assert "resuming" not in result.stderr
    train_images = len(CLASSES) * TRAIN_PER_CLASS
    assert images_per_rank(result.stderr) == {0: EPOCHS * train_images}  # trained from the first epoch

    # The same settings again, without restart (it is not part of what a run is): the run is finished with
    # them, so it is only tested again: no training, no checkpoint rewritten, nothing moved, the same metrics.
    metrics = (workspace["root"] / "metrics" / "train_zfnet.json").read_text()
    checkpoints = files(workspace["run"] / "checkpoints")
    again = train(workspace, "train.lr=0.02")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to train" in again.stderr and images_per_rank(again.stderr) == {0: 0}
    assert files(workspace["run"] / "checkpoints") == checkpoints
    assert (workspace["root"] / "metrics" / "train_zfnet.json").read_text() == metrics
    assert list(workspace["aside"].iterdir()) == [moved]
