"""The report stage end to end on hand-made metrics: the page, the verdicts, the W&B spec, the errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zfnet.pipeline import config as zconfig
from zfnet.pipeline import stage
from zfnet.pipeline.tracking import Tracker
from zfnet.report import inputs, wandb_report

import browser
from conftest import REPO, read_wandb_records
from test_visualize_stages import load_stage

# The paper's figures and tables, and the page's two summary sections (written out, not read from the code).
SECTION_IDS = ["claims", "provenance", *(f"fig{i}" for i in range(1, 10)), *(f"table{i}" for i in range(1, 8))]


def overrides(root: Path) -> list[str]:
    return [f"paths.metrics={root / 'metrics'}", f"paths.plots={root / 'plots'}", f"paths.evidence={root / 'evidence'}",
            f"report.dir={root / 'reports'}",
            f"logger.dir={root}", "logger.mode=offline", "logger.group=report-test"]


def write_inputs(root: Path, zf_error: float = 0.016) -> None:
    """What a partial pipeline leaves: prepare and both train stages ran, nothing else."""
    metrics = root / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "prepare.json").write_text(json.dumps({"val": {"images": 500}}))
    for model, error in (("zfnet", zf_error), ("alexnet", 0.038)):
        (metrics / f"train_{model}.json").write_text(json.dumps({"val_top1_error_10crop": error, "parameters": 1000}))
    (root / "plots" / "train_zfnet").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(root / "plots" / "train_zfnet" / "curves.png")


def log_train_run(root: Path, group: str = "report-test") -> str:
    """One offline W&B run of job type `train` in `group`, logging one of the keys the report shows."""
    cfg = zconfig.load([*overrides(root), f"logger.group={group}"])
    with Tracker(cfg, "train", name="train-zfnet") as tracker:
        tracker.log({"train/top1_error": 0.5, "epoch": 1})
        run_id = tracker.run.id
    [run_file] = (root / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    read_wandb_records(run_file)  # wait until the run file is complete
    return run_id


def run_report(root: Path, *extra: str) -> None:
    stage.run("report", load_stage("report").main, [*overrides(root), *extra])


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write_inputs(root)
    run_id = log_train_run(root)
    log_train_run(root, group="another-pipeline")
    run_report(root)
    return root, run_id, json.loads((root / "metrics" / "report.json").read_text())


def wandb_runs(root: Path) -> dict:
    return json.loads((root / "reports" / "wandb_runs.json").read_text())


def verdict(summary: dict, section: str, claim_start: str) -> dict:
    [found] = [c for c in summary["claims"] if c["section"] == section and c["claim"].startswith(claim_start)]
    return found


def test_a_partial_pipeline_reports_what_ran_and_not_run_for_the_rest(partial):
    root, _, summary = partial
    # 3.8% -> 1.6% on 500 images: SE = sqrt((.038 * .962 + .016 * .984) / 500) = 1.02 points, and the
    # change, 2.2 points, is beyond 2 SE in the paper's direction (40.5 -> 38.4).
    assert verdict(summary, "table2", "ZF has a lower top-1")["verdict"] == "reproduced"
    assert {"fig4", "fig5", "fig6", "fig7", "table1", "table3", "table7"} <= set(summary["not_run_sections"])
    assert "table2" not in summary["not_run_sections"]
    for section in ("fig4", "table3"):
        assert {c["verdict"] for c in summary["claims"] if c["section"] == section} == {"not run at this scale"}
    assert sum(summary["counts"].values()) == len(summary["claims"])
    page = (root / "reports" / "index.html").read_text()
    assert "ours 3.8 -&gt; 1.6" in page and "<script" not in page  # the verdict's evidence, as rendered


def test_the_page_links_the_runs_of_its_group_only(partial):
    root, run_id, _ = partial
    runs = wandb_runs(root)
    assert runs["group"] == "report-test" and [r["id"] for r in runs["runs"]] == [run_id]
    assert run_id in (root / "reports" / "index.html").read_text()


def test_panel_keys_the_runs_did_not_log_are_listed(partial):
    """The train run above logged train/top1_error but not val/top1_error: the report names what is missing."""
    root, _, _ = partial
    missing = wandb_runs(root)["missing_keys"]
    assert "train: val/top1_error" in missing and "train: train/top1_error" not in missing


def test_the_wandb_spec_is_written_and_valid(partial):
    root, _, _ = partial
    spec = json.loads((root / "reports" / "wandb_report.json").read_text())
    wandb_report.validate(spec)
    text = json.dumps(spec)
    assert "report-test" in text and "Table 3" in text


def test_the_page_opens_in_a_browser_with_every_section(partial):
    if browser.chromium_path() is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    root, _, _ = partial
    result = browser.check_page(root / "reports" / "index.html", root / "plots" / "report.png", SECTION_IDS)
    browser.assert_page_ok(result)
    assert len(result["images"]) == 1  # the one figure that exists


def test_a_nan_metric_cannot_decide(tmp_path):
    write_inputs(tmp_path, zf_error=math.nan)
    run_report(tmp_path, "logger.mode=disabled")
    summary = json.loads((tmp_path / "metrics" / "report.json").read_text())
    assert verdict(summary, "table2", "ZF has a lower top-1")["verdict"] == "cannot decide"
    # Table 2's row for one ZF net shows the paper's 38.4 / 16.5 beside ours: missing, not a number
    assert "<td>1 convnet as per Fig. 3</td><td>38.4</td><td>16.5</td><td>missing</td>" in (
        tmp_path / "reports" / "index.html").read_text()


def test_a_corrupt_metrics_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    write_inputs(tmp_path)
    (tmp_path / "metrics" / "architecture.json").write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        run_report(tmp_path, "logger.mode=disabled")
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "architecture.json" in message, message
    assert not (tmp_path / "reports").exists() and not (tmp_path / "metrics" / "report.json").exists()


def test_a_stages_evidence_file_reaches_the_rules_and_a_corrupt_one_is_one_line(tmp_path, capsys):
    write_inputs(tmp_path)
    cfg = zconfig.load(overrides(tmp_path))
    written = stage.write_evidence(cfg, "train_zfnet", {"correct": np.array([1, 0, 1]), "p": (np.float32(0.5),)})
    assert written == tmp_path / "evidence" / "train_zfnet.json"
    assert json.loads(written.read_text()) == {"correct": [1, 0, 1], "p": [0.5]}
    loaded = inputs.load_metrics(tmp_path / "metrics", ["train_zfnet", "train_alexnet"], tmp_path / "evidence")
    assert loaded["train_zfnet"]["evidence"] == {"correct": [1, 0, 1], "p": [0.5]}
    assert "evidence" not in loaded["train_alexnet"]            # no file: no key, the rules fall back

    written.write_text("[1, 0,")
    with pytest.raises(SystemExit) as exit_info:
        run_report(tmp_path, "logger.mode=disabled")
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "train_zfnet.json" in message and "evidence" in message, message
    assert not (tmp_path / "reports").exists()


def run_online(root: Path, monkeypatch, *extra: str) -> list:
    """The report stage as if W&B were online (its own run disabled); returns what it published."""
    module, published = load_stage("report"), []
    monkeypatch.setattr(module, "wandb_mode", lambda cfg: "online")
    monkeypatch.setattr(module.wandb_report, "save", lambda report: published.append(report) or "https://example/report")
    stage.run("report", module.main, [*overrides(root), "logger.mode=disabled", *extra])
    return published


def test_online_without_an_entity_writes_the_spec_but_does_not_publish(tmp_path, caplog, monkeypatch):
    write_inputs(tmp_path)
    assert run_online(tmp_path, monkeypatch, "report.entity=null") == []
    assert "report.entity" in caplog.text
    assert (tmp_path / "reports" / "wandb_report.json").is_file()


def test_online_with_an_entity_publishes_and_prints_the_url(tmp_path, capsys, monkeypatch):
    write_inputs(tmp_path)
    [report] = run_online(tmp_path, monkeypatch, "report.entity=me")
    assert report.entity == "me" and report.project == "zfnet"
    assert "W&B report: https://example/report" in capsys.readouterr().out


def test_the_repository_page_after_dvc_repro_opens_in_a_browser(tmp_path):
    """After the README's `dvc repro` (skipped before it): the real page opens; the screenshot goes to a temp
    folder (plots/report/ is the report stage's DVC output)."""
    page = REPO / "reports" / "index.html"
    if not page.is_file() or browser.chromium_path() is None:
        pytest.skip("run `dvc repro` first (and apt-get install -y chromium)")
    result = browser.check_page(page, tmp_path / "screenshot.png", SECTION_IDS)
    browser.assert_page_ok(result)
    assert len(result["images"]) >= 16
