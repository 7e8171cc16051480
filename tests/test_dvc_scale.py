"""DVC at ImageNet scale, in small, in a copy of the repository: prepare resumes under `dvc repro` after
a kill, its shards stay out of .dvc/cache, and no stage depends on the dataset tree itself (the manifest
stage lists it; a touched file reruns prepare, an untouched tree does not)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from zfnet.pipeline import config
from zfnet.pipeline.dry_run import copy_repository

from conftest import REPO

pytestmark = pytest.mark.slow

IMAGES_PER_CLASS = 8
SHARD_SIZE = 2  # 8 train shards: the kill lands after the first


def env():
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def dvc(*args, cwd) -> str:
    result = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env())
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def write_slow_tree(root: Path) -> None:
    """Two classes of large PNGs (no JPEG draft shortcut: each decode takes a while), one small val image each."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        big = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((2400, 2400), Image.BILINEAR)
        (root / "train" / name).mkdir(parents=True)
        big.save(root / "train" / name / "0.png", compress_level=1)
        for i in range(1, IMAGES_PER_CLASS):
            os.link(root / "train" / name / "0.png", root / "train" / name / f"{i}.png")
        (root / "val" / name).mkdir(parents=True)
        big.resize((96, 96)).save(root / "val" / name / "0.png")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("dvc_scale")
    write_slow_tree(work / "tree")
    repo = copy_repository(REPO, work / "repo")
    config.write_params(repo / "params.yaml", ["experiment=smoke", "data=imagefolder", f"data.root={work / 'tree'}",
                                               f"prepare.shard_size={SHARD_SIZE}", "workers=1", "logger.mode=disabled"])
    return repo


def kill_after_first_shard(repo: Path, log: Path) -> None:
    marker = repo / "data" / "prepared" / "train.partial" / "_resume" / "shard_00000.json"
    with open(log, "w") as out:
        proc = subprocess.Popen(["dvc", "repro", "prepare"], cwd=repo, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage under it, as a crash or a preempted job would
        proc.wait()
    assert marker.exists(), f"prepare never committed its first shard:\n{log.read_text()[-3000:]}"
    assert not (repo / "data" / "prepared" / "train").exists(), "the kill came after prepare had finished"


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_resumes_under_dvc_repro_after_a_kill(repo, tmp_path):
    kill_after_first_shard(repo, tmp_path / "killed.log")
    log = dvc("repro", "prepare", cwd=repo)
    assert "reusing" in log and f"of {IMAGES_PER_CLASS * 2 // SHARD_SIZE} shards" in log, log
    assert not list((repo / "data" / "prepared").glob("*.partial")), "the work folders are published"

    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "pipelines/prepare.py", "--params", "params.yaml", f"paths.prepared={reference}",
                    f"paths.plots={tmp_path}/plots", f"paths.metrics={tmp_path}/metrics"], cwd=repo, env=env(),
                   check=True, capture_output=True)
    for split in ("train", "val"):
        assert folder_bytes(repo / "data" / "prepared" / split) == folder_bytes(reference / split), \
            f"the resumed {split} split differs from an uninterrupted run"

    cached = {p.parent.name + p.name for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()}
    assert cached, "the other outputs are cached"
    prepared = {hashlib.md5(data).hexdigest() for data in folder_bytes(repo / "data" / "prepared").values()}
    assert not prepared & cached, "the prepared shards must not be copied into .dvc/cache (cache: false)"
    assert "data/prepared" in [o["path"] for o in yaml.safe_load((repo / "dvc.lock").read_text())
                               ["stages"]["prepare"]["outs"]], "the lock still records the shards' hash"


def test_dvc_depends_on_the_manifest_not_the_tree(repo):
    dvc("repro", "prepare", cwd=repo)  # (done already when the test above ran)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    tree = str(yaml.safe_load((repo / "params.yaml").read_text())["data"]["root"])
    deps = [d["path"] for stage in lock.values() for d in stage.get("deps", [])]
    assert deps and not [d for d in deps if d.startswith(tree)], deps
    assert "Stage 'prepare' didn't change" in dvc("repro", "prepare", cwd=repo)

    image = Path(tree) / "val" / "a" / "0.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten in place, same bytes
    assert "Running stage 'prepare'" in dvc("repro", "prepare", cwd=repo)
