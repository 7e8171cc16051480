import json

import numpy as np

from zfnet import config
from zfnet.tracking import Tracker, pipeline_fingerprint


def test_offline_run_holds_config_metric_and_image(tmp_path, monkeypatch, wandb_records):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = config.compose([f"logger.dir={tmp_path}", "seed=3"])
    image = (np.arange(16 * 16 * 3) % 255).astype(np.uint8).reshape(16, 16, 3)
    with Tracker(cfg, "unit") as tracker:
        tracker.log({"unit/accuracy": 0.625})
        tracker.image("unit/picture", image)
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


def key_of(item) -> str:
    return item.key or "/".join(item.nested_key)
