"""Fixtures of the report's controls: whole pipelines run on purpose-made inputs.

`untrained_pipeline` (session scope): the default pipeline (`dvc repro` of dvc.yaml) at smoke scale on
UNTRAINED networks (`experiment=smoke train.epochs=0`: every model is its random initialization, saved and
tested by the train stage as if trained; evolution has no snapshots and says "not run"), in a fresh copy of the
working tree. It returns an `UntrainedPipeline` whose `metrics` and `evidence` folders are what the report stage
read, with `report` = metrics/report.json parsed. The negative control asserts on them: no claim about learned
behaviour may be reproduced by an untrained net.

It takes a few minutes (measured on the 2-core CPU of the development machine: see the issue-22 note), so it
runs once per session and only for tests that ask for it; those are marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
UNTRAINED = ("experiment=smoke", "train.epochs=0")   # the params.yaml the untrained pipeline runs with
LEFT_BEHIND = ("metrics/", "evidence/", "reports/")  # the checkout's own results: the copy makes its own


@dataclass(frozen=True)
class UntrainedPipeline:
    root: Path          # the copy of the repository the pipeline ran in
    metrics: Path       # its metrics folder (paths.metrics)
    evidence: Path      # its per-unit evidence folder (paths.evidence)
    report: dict        # metrics/report.json: every claim's verdict
    seconds: float      # how long `dvc repro` took
    log: str            # its stdout and stderr


def run(*command: str, cwd: Path, timeout: float = 3600) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "WANDB_SILENT": "true"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def copy_checkout(target: Path) -> Path:
    """The working tree's files (tracked and new, as git lists them) without its results, as a git repository."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file() and not name.startswith(LEFT_BEHIND) and not name.endswith("dvc.lock"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@t")
    run("git", "init", "-q", cwd=target)
    run(*git, "add", "-A", cwd=target)
    run(*git, "commit", "-qm", "untrained", cwd=target)
    return target


def run_untrained_pipeline(root: Path, overrides: tuple[str, ...] = UNTRAINED) -> UntrainedPipeline:
    """Copy the checkout into `root`, compose params.yaml with `overrides`, `dvc repro` every stage."""
    from zfnet.pipeline import config

    copy_checkout(root)
    config.write_params(root / "params.yaml", list(overrides))
    started = time.perf_counter()
    log = run("dvc", "repro", cwd=root)
    seconds = time.perf_counter() - started
    paths = yaml.safe_load((root / "params.yaml").read_text())["paths"]
    metrics, evidence = root / paths["metrics"], root / paths["evidence"]
    report = json.loads((metrics / "report.json").read_text())
    return UntrainedPipeline(root, metrics, evidence, report, seconds, log)


@pytest.fixture(scope="session")
def untrained_pipeline(tmp_path_factory) -> UntrainedPipeline:
    return run_untrained_pipeline(tmp_path_factory.mktemp("untrained"))
