import json

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


def test_group_ignores_logger_and_model_choice():
    a = config.compose(["model=zfnet"])
    b = config.compose(["model=alexnet", "logger.dir=elsewhere"])
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
