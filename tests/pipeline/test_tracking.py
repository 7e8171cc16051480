import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from zfnet.pipeline import config
from zfnet.pipeline.tracking import Tracker, pipeline_fingerprint


def test_offline_run_holds_config_metric_and_image(tmp_path, monkeypatch, wandb_records):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = config.compose([f"logger.dir={tmp_path}", "seed=3"])
    image = (np.arange(16 * 16 * 3) % 255).astype(np.uint8).reshape(16, 16, 3)
    with Tracker(cfg, "unit") as tracker:
        tracker.log({"unit/accuracy": 0.625})
        tracker.images({"unit/picture": image})
        run_dir = tracker.run_dir
    [run_file] = run_dir.glob("run-*.wandb")
    records = wandb_records(run_file)
    run = next(r.run for r in records if r.HasField("run"))
    config_items = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config_items["seed"] == 3 and config_items["prepare"]["size"] == cfg.prepare.size
    history = [{key_of(item): item.value_json for item in r.history.item} for r in records if r.HasField("history")]
    assert any(h.get("unit/accuracy") == "0.625" for h in history)
    assert any(h.get("unit/picture/_type") == '"image-file"' for h in history)
    assert list(run_dir.glob("files/media/images/unit/picture_*.png"))
    assert run.job_type == "unit" and run.run_group == f"pipeline-{pipeline_fingerprint(cfg)}"


def test_group_ignores_logger_and_model_or_dataset_choice():
    a = config.compose(["model=zfnet", "transfer.dataset=caltech101"])
    b = config.compose(["model=alexnet", "logger.dir=elsewhere", "transfer.dataset=pascal"])
    c = config.compose(["seed=1"])
    assert pipeline_fingerprint(a) == pipeline_fingerprint(b) != pipeline_fingerprint(c)


def test_table_logs_array_cells_as_images(tmp_path, monkeypatch, wandb_records):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = config.compose([f"logger.dir={tmp_path}"])
    tile = np.zeros((8, 8, 3), dtype=np.uint8)
    with Tracker(cfg, "unit") as tracker:
        tracker.table("unit/top9", ["layer", "rank", "projection"], [["conv1", 1, tile], ["conv1", 2, tile]])
        run_dir = tracker.run_dir
    [run_file] = run_dir.glob("run-*.wandb")
    records = wandb_records(run_file)
    history = {"/".join(item.nested_key): item.value_json for r in records if r.HasField("history")
               for item in r.history.item}
    assert history["unit/top9/_type"] == '"table-file"' and history["unit/top9/nrows"] == "2"
    # wandb stores a logged table as a run artifact: the table JSON plus one PNG per image cell
    [table] = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    paths = [entry.path for entry in table.manifest.contents]
    assert any(p.endswith(".table.json") for p in paths) and any(p.endswith(".png") for p in paths)


def key_of(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_finish_returns_with_the_run_file_complete(tmp_path, monkeypatch, wandb_records):
    """No waiting after finish, for several runs in one process (each Tracker after a finished one works)."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for i in range(3):
        tracker = Tracker(config.compose([f"logger.dir={tmp_path / str(i)}"]), "unit", name=f"unit-{i}")
        tracker.log({"unit/step": i})
        tracker.images({"unit/last": np.full((8, 8, 3), i, dtype=np.uint8)})
        tracker.finish()
        tracker.finish()  # a second call changes nothing
        [run_file] = tracker.run_dir.glob("run-*.wandb")
        records = wandb_records(run_file, timeout=0)  # one read: complete already, or fail
        history = [{key_of(item): item.value_json for item in r.history.item} for r in records
                   if r.HasField("history")]
        assert [h.get("unit/step") for h in history[:1]] == [str(i)]
        assert history[-1].get("unit/last/_type") == '"image-file"'


def test_disabled_tracker_finishes_without_wandb_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with Tracker(config.compose([f"logger.dir={tmp_path}"]), "unit") as tracker:
        tracker.log({"unit/accuracy": 1.0})
        tracker.images({"unit/picture": np.zeros((4, 4, 3), dtype=np.uint8)})
        assert tracker.run_dir is None
    tracker.finish()
    assert not list(tmp_path.rglob("*.wandb"))


def test_finished_run_file_is_complete_when_the_process_exits(tmp_path, monkeypatch, wandb_records):
    """A stage that exits right after finishing (no atexit hooks: os._exit) keeps the run's last record."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    child = (
        "import os, sys\n"
        "import numpy as np\n"
        "from zfnet.pipeline.config import compose\n"
        "from zfnet.pipeline.tracking import Tracker\n"
        "tracker = Tracker(compose([f'logger.dir={sys.argv[1]}']), 'unit')\n"
        "tracker.log({'unit/accuracy': 0.5})\n"
        "print(tracker.run_dir, flush=True)\n"
        "tracker.images({'unit/last': np.full((8, 8, 3), 7, dtype=np.uint8)})\n"
        "tracker.finish()\n"
        "os._exit(0)\n"
    )
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_file] = Path(result.stdout.strip().splitlines()[-1]).glob("run-*.wandb")
    records = wandb_records(run_file, timeout=0)  # complete already: one read, no waiting for the service
    history = [{key_of(item): item.value_json for item in r.history.item} for r in records if r.HasField("history")]
    assert history and history[-1].get("unit/last/_type") == '"image-file"'
