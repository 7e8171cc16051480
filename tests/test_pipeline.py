"""The whole pipeline through DVC, on the smoke configuration, in a fresh copy of the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zfnet.pipeline import config
from zfnet.report import wandb_report

import browser
from conftest import REPO, read_wandb_records
from test_report_stage import SECTION_IDS

pytestmark = pytest.mark.slow


def run(*command, cwd, timeout=900):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository holding the tracked files, with params.yaml composed for experiment=smoke (and the
    three-run ablations=smoke for Tables 2-3)."""
    root = tmp_path_factory.mktemp("repo")
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, check=True).stdout  # the working tree, new files included
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file() and not name.startswith("metrics/") and not name.endswith("dvc.lock"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    config.write_params(root / "params.yaml", ["experiment=smoke", "ablations=smoke"])
    run("git", "init", "-q", cwd=root)
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A", cwd=root)
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke", cwd=root)
    return root


def nothing_else_ran(output: str) -> bool:
    """A `dvc repro` after which only the always-changed `manifest` stage ran (it lists the data; every
    stage that reads the lists found them unchanged)."""
    return re.findall(r"Running stage '([^']+)'", output) == ["manifest"] and "didn't change, skipping" in output


def test_repro_runs_everything_then_finds_nothing_to_do(repo):
    run("dvc", "repro", cwd=repo)
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {"generate", "prepare", "train@zfnet", "train@alexnet"} <= set(stages)
    for model in ("zfnet", "alexnet"):
        result = json.loads((repo / "metrics" / f"train_{model}.json").read_text())
        assert 0 <= result["val_top1_error_10crop"] <= 1
    assert (repo / "plots" / "generate" / "samples.png").stat().st_size > 0
    assert {f"transfer@{name}" for name in ("caltech101", "caltech256", "pascal")} <= set(stages)
    caltech = json.loads((repo / "metrics" / "transfer_caltech256.json").read_text())
    assert set(caltech["zfnet"]) == {"pretrained", "scratch", "layers", "claims"}
    assert (repo / "plots" / "transfer_caltech256" / "fig9.png").stat().st_size > 0

    again = run("dvc", "repro", cwd=repo)
    assert nothing_else_ran(again), again

    runs = {}
    for run_file in (repo / "wandb").glob("offline-run-*/run-*.wandb"):
        record = next(r.run for r in read_wandb_records(run_file) if r.HasField("run"))
        runs.setdefault(record.job_type, set()).add(record.run_group)
    assert {"generate", "prepare", "train", "transfer"} <= set(runs)
    assert len(set().union(*runs.values())) == 1, "all stages of one pipeline run share one W&B group"


def test_the_report_comes_last_and_shows_every_section(repo):
    """After `dvc repro`: the page opens in a browser, every W&B panel key was really logged by its stage
    (renaming a logged key fails here), and Table 3 says "not run" until the ablations pipeline runs."""
    run("dvc", "repro", cwd=repo)  # (done already when the test above ran)
    summary = json.loads((repo / "metrics" / "report.json").read_text())
    runs = json.loads((repo / "reports" / "wandb_runs.json").read_text())
    assert runs["missing_keys"] == []
    stage_runs = [r for r in (next(rec.run for rec in read_wandb_records(f) if rec.HasField("run"))
                              for f in (repo / "wandb").glob("offline-run-*/run-*.wandb"))
                  if r.run_group == runs["group"] and r.job_type != "report"]
    assert sorted(r["id"] for r in runs["runs"]) == sorted(r.run_id for r in stage_runs)
    assert len(stage_runs) >= 18  # each stage once; the summaries log none
    assert "table3" in summary["not_run_sections"] and "fig5" not in summary["not_run_sections"]
    assert {c["subject"] for c in summary["claims"] if c["section"] == "fig5"} == {"zfnet", "alexnet"}
    wandb_report.validate(json.loads((repo / "reports" / "wandb_report.json").read_text()))
    if browser.chromium_path() is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    result = browser.check_page(repo / "reports" / "index.html", repo / "plots" / "report" / "screenshot.png", SECTION_IDS)
    browser.assert_page_ok(result)


def test_ablations_pipeline_trains_its_runs_then_tables_2_and_3(repo):
    run("dvc", "repro", "train@zfnet", cwd=repo)  # (done already when the test above ran)
    run("dvc", "repro", "ablations/dvc.yaml", cwd=repo)
    stages = yaml.safe_load((repo / "ablations" / "dvc.lock").read_text())["stages"]
    assert set(stages) == {"train@zfnet", "train@zfnet_fc2048", "train@zfnet_seed1", "table3", "table2"}
    metrics = repo / "metrics"
    ablated = {run: json.loads((metrics / "ablations" / f"train_{run}.json").read_text())
               for run in ("zfnet", "zfnet_fc2048", "zfnet_seed1")}
    main = json.loads((metrics / "train_zfnet.json").read_text())
    assert ablated["zfnet"] == main, "the same model, seed and data train to the same numbers"
    assert ablated["zfnet_seed1"] != main

    table3 = json.loads((metrics / "table3.json").read_text())
    assert table3["rows"]["zfnet_fc2048"]["ours"]["val_top1"] == round(100 * ablated["zfnet_fc2048"]["val_top1_error_10crop"], 2)
    assert "alexnet" in table3["not_run"] and "zfnet" not in table3["not_run"]
    table2 = json.loads((metrics / "table2.json").read_text())
    # the ensemble stage's own 10-crop pass agrees with the train stage's test of the same checkpoint
    assert table2["entries"]["zf"]["val_top1_error"] == pytest.approx(main["val_top1_error_10crop"])
    assert table2["entries"]["zf_x5"]["members"] == 2
    assert (repo / "plots" / "table3" / "table3.png").stat().st_size > 0
    assert (repo / "plots" / "table2" / "table2.png").stat().st_size > 0

    assert nothing_else_ran(run("dvc", "repro", "ablations/dvc.yaml", cwd=repo))
    assert nothing_else_ran(run("dvc", "repro", cwd=repo)), "the default pipeline is untouched"

    run("dvc", "repro", "--force", "--single-item", "report", cwd=repo)  # the report reads Table 3 once it exists
    summary = json.loads((repo / "metrics" / "report.json").read_text())
    assert "table3" not in summary["not_run_sections"]
    assert json.loads((repo / "reports" / "wandb_runs.json").read_text())["missing_keys"] == []
    assert any(c["section"] == "table3" and c["subject"] == "zfnet_fc2048" and c["verdict"] != "not run at this scale"
               for c in summary["claims"])


def test_exp_run_with_a_data_setting_is_listed_with_metrics(repo):
    # one target (and what it needs): the stages after train@zfnet would rerun too and show nothing more here
    run("dvc", "exp", "run", "train@zfnet", "-n", "bigger", "-S", "experiment=smoke", "-S", "prepare.size=80", cwd=repo)
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], cwd=repo, capture_output=True,
                                      text=True, check=True).stdout)
    [data] = [node["data"] for node in walk(shown) if node.get("name") == "bigger" and "data" in node]
    assert data["params"]["params.yaml"]["data"]["prepare"]["size"] == 80
    assert "val_top1_error_10crop" in data["metrics"]["metrics/train_zfnet.json"]["data"]


def walk(node):
    """Every dict inside a JSON document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
