"""What the report reads: which metrics files, what a not-run stage says, the commit and the W&B runs' links."""

import json
import subprocess
from types import SimpleNamespace

import pytest

from zfnet.errors import UserError
from zfnet.report.inputs import (
    git_commit,
    header,
    load_metrics,
    metric_stems,
    not_run_reasons,
    read_json,
    reason_of,
    run_url,
)


def test_the_stems_cover_every_stage_per_model_and_dataset_in_pipeline_order():
    cfg = SimpleNamespace(models={"zfnet": {}, "alexnet": {}}, visualize=SimpleNamespace(models=["zfnet"]),
                          transfer=SimpleNamespace(roots={"caltech101": "a", "pascal": "b"}))
    assert metric_stems(cfg) == [
        "generate", "prepare", "train_zfnet", "train_alexnet", "visualize_zfnet", "evolution_zfnet", "occlusion_zfnet",
        "correspondence_zfnet", "invariance_zfnet", "architecture", "transfer_caltech101", "transfer_pascal",
        "table2", "table3"]


def test_reason_of_reads_only_an_explicit_ran_false():
    assert reason_of({"ran": False, "reason": "why"}) == "why" and reason_of({"ran": False}) == "no reason given"
    assert reason_of({"ran": True}) is None and reason_of(None) is None and reason_of({"not_run": ["x"]}) is None


def write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def test_a_stage_that_did_not_run_loads_as_none_with_its_reason_and_evidence_joins_its_metrics(tmp_path):
    metrics, evidence = tmp_path / "metrics", tmp_path / "evidence"
    write(metrics / "train_zfnet.json", {"val_top1_error_10crop": 0.25})
    write(evidence / "train_zfnet.json", {"top1_correct": [1, 0]})
    write(metrics / "transfer_pascal.json", {"ran": False, "reason": "built-in data"})
    write(evidence / "transfer_pascal.json", {"ran": False, "reason": "built-in data"})
    write(metrics / "prepare.json", {"val": {"images": 2}})
    stems = ["train_zfnet", "transfer_pascal", "prepare", "architecture"]
    assert load_metrics(metrics, stems, evidence) == {
        "train_zfnet": {"val_top1_error_10crop": 0.25, "evidence": {"top1_correct": [1, 0]}},
        "transfer_pascal": None, "prepare": {"val": {"images": 2}}, "architecture": None}
    assert "evidence" not in load_metrics(metrics, stems)["train_zfnet"]      # no evidence folder given
    assert not_run_reasons(metrics, stems) == {"transfer_pascal": "built-in data"}


def test_a_file_that_is_not_json_is_one_line_naming_it(tmp_path):
    (tmp_path / "table2.json").write_text("{not json")
    with pytest.raises(UserError, match=f"^{tmp_path}/table2.json: not a JSON evidence file"):
        read_json(tmp_path / "table2.json", "evidence")
    with pytest.raises(UserError, match="table2.json: not a JSON metrics file"):
        load_metrics(tmp_path, ["table2"])


def git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


def test_the_commit_says_when_tracked_files_changed(tmp_path):
    assert git_commit(tmp_path) == "unknown (not a git checkout)"
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == head[:12]
    (tmp_path / "untracked.txt").write_text("x")                 # untracked files do not count
    assert git_commit(tmp_path) == head[:12]
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == head[:12] + " + uncommitted changes"


def run(job_type="train", entity="", run_id="r1"):
    return SimpleNamespace(job_type=job_type, name=f"{job_type}-zfnet", id=run_id, entity=entity, project="zfnet")


def test_an_online_run_links_to_its_page_and_an_offline_one_to_nothing(monkeypatch):
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    assert run_url(run(entity="me")) == "https://wandb.ai/me/zfnet/runs/r1" and run_url(run()) == ""
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.example.org")
    assert run_url(run(entity="me")) == "https://wandb.example.org/me/zfnet/runs/r1"


def test_the_header_lists_the_runs_and_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    reasons = {"transfer_pascal": "built-in data"}
    empty = header("T", "tiny", "g", [], "logs", reasons)
    assert empty.experiment == "exp-1" and empty.runs == []
    assert empty.notes == ["No W&B run of group g under logs/wandb.", "Not run: transfer_pascal: built-in data"]
    offline = header("T", "tiny", "g", [run(), run("report", "me", "r2")], "logs", {})
    assert offline.runs == [("train", "train-zfnet", "r1", ""), ("report", "report-zfnet", "r2",
                                                                  "https://wandb.ai/me/zfnet/runs/r2")]
    assert len(offline.notes) == 1 and "wandb sync" in offline.notes[0]
    assert header("T", "tiny", "g", [run(entity="me")], "logs", {}).notes == []
