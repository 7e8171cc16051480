"""Stages whose input is the built-in data, under data.name != synthetic: "not run" in the metrics, the
outputs DVC expects, and the report reading it as a stage that did not run, with the reason on the page."""

from __future__ import annotations

import json

import pytest

from zfnet.pipeline import config, not_run

from test_report_stage import run_report, write_inputs
from test_visualize_stages import load_stage


def cfg_for(tmp_path, *extra):
    (tmp_path / "imagenet").mkdir(exist_ok=True)
    return config.load(["data=imagenet", f"data.root={tmp_path}/imagenet", f"paths.synthetic={tmp_path}/synthetic",
                        f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}/metrics",
                        f"paths.plots={tmp_path}/plots", f"paths.evidence={tmp_path}/evidence", "logger.mode=disabled",
                        *extra])


@pytest.mark.parametrize("root, expected", [
    ("synthetic", True), ("synthetic/caltech101", True), ("synthetic/../synthetic", True),
    ("elsewhere", False), ("synthetic_copy", False)])
def test_a_root_in_the_builtin_data_is_not_run_unless_it_is_generated(tmp_path, root, expected):
    cfg = cfg_for(tmp_path)
    reason = not_run.builtin_reason(cfg, tmp_path / root, "transfer.roots.caltech101", "the real dataset's root")
    assert (reason is not None) == expected
    if expected:
        assert reason == (f"transfer.roots.caltech101={tmp_path / root} is the built-in data, which data.name=imagenet "
                          "does not generate; set transfer.roots.caltech101 to the real dataset's root to run it")
    synthetic = config.load([f"paths.synthetic={tmp_path}/synthetic"])
    assert not_run.builtin_reason(synthetic, tmp_path / root, "k", "x") is None, "generated: it runs"


@pytest.mark.parametrize("dataset, header", [("caltech256", "train_per_class\n"), ("pascal", "class\n")])
def test_transfer_on_the_default_roots_under_imagenet_writes_every_output_as_not_run(tmp_path, dataset, header):
    """What DVC expects of transfer@<dataset> (metrics, plot folder, curve CSV, the feature-cache folder),
    written without touching the (absent) checkpoints; an existing feature cache is kept."""
    cfg = cfg_for(tmp_path, f"transfer.dataset={dataset}", f"transfer.roots.{dataset}={tmp_path}/synthetic")
    cache = tmp_path / "outputs" / "transfer" / dataset / "features_zfnet_all.pt"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"kept")
    load_stage("transfer").main(cfg)
    metrics = json.loads((tmp_path / "metrics" / f"transfer_{dataset}.json").read_text())
    assert metrics["ran"] is False and f"transfer.roots.{dataset}=" in metrics["reason"]
    assert (tmp_path / "plots" / f"transfer_{dataset}" / "NOT_RUN.txt").is_file()
    assert (tmp_path / "plots" / "curves" / f"transfer_{dataset}.csv").read_text() == header
    assert cache.read_bytes() == b"kept"
    assert json.loads((tmp_path / "evidence" / f"transfer_{dataset}.json").read_text()) == metrics   # a DVC out too


def test_correspondence_on_the_builtin_data_under_imagenet_writes_its_metrics_and_evidence_as_not_run(tmp_path):
    """Both of the stage's DVC outs exist after a not-run (a missing out fails `dvc repro` under experiment=paper)."""
    load_stage("correspondence").main(cfg_for(tmp_path, "model=zfnet"))
    metrics = json.loads((tmp_path / "metrics" / "correspondence_zfnet.json").read_text())
    assert metrics["ran"] is False and "correspondence.root=" in metrics["reason"]
    assert json.loads((tmp_path / "evidence" / "correspondence_zfnet.json").read_text()) == metrics
    assert (tmp_path / "plots" / "correspondence_zfnet" / "NOT_RUN.txt").is_file()


def test_the_report_shows_a_not_run_stage_as_not_run_with_its_reason(tmp_path):
    write_inputs(tmp_path)
    reason = "correspondence.root=data/synthetic/imagenet is the built-in data, which data.name=imagenet does not ..."
    for model in ("zfnet", "alexnet"):
        (tmp_path / "metrics" / f"correspondence_{model}.json").write_text(json.dumps({"ran": False, "reason": reason}))
    run_report(tmp_path)
    summary = json.loads((tmp_path / "metrics" / "report.json").read_text())
    assert "table1" in summary["not_run_sections"]
    assert {c["verdict"] for c in summary["claims"] if c["section"] == "table1"} == {"not run at this scale"}
    assert summary["not_run_stages"] == {"correspondence_zfnet": reason, "correspondence_alexnet": reason}
    assert f"Not run: correspondence_zfnet: {reason}" in (tmp_path / "reports" / "index.html").read_text()
