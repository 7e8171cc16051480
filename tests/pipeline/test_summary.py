import json

import pytest

from zfnet.errors import UserError
from zfnet.pipeline.summary import headline


def write(path, values):
    path.write_text(json.dumps(values))


def test_headline_picks_the_tables_numbers_under_short_names(tmp_path):
    write(tmp_path / "train_zfnet.json", {"val_top1_error_10crop": 0.25, "val_top5_error_10crop": 0.05,
                                          "train_top1_error": 0.125, "epochs": 12})
    assert headline(tmp_path, "zfnet") == {"top1": 0.25, "top5": 0.05, "train_top1": 0.125}


def test_a_missing_file_or_metric_is_an_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="train_alexnet.json: metrics file not found"):
        headline(tmp_path, "alexnet")
    write(tmp_path / "train_alexnet.json", {"val_top1_error_10crop": 0.25, "train_top1_error": 0.1})
    with pytest.raises(UserError, match="has no 'val_top5_error_10crop'"):
        headline(tmp_path, "alexnet")


def test_an_untrained_run_has_no_train_error_and_the_stage_still_writes_its_summary(tmp_path):
    """train.epochs=0 writes "train_top1_error": null (no epoch trained); the summary keeps it as null."""
    import importlib.util

    from zfnet.pipeline import config

    from conftest import REPO

    write(tmp_path / "train_zfnet.json", {"val_top1_error_10crop": 0.75, "val_top5_error_10crop": 0.5,
                                          "train_top1_error": None, "epochs": 0})
    spec = importlib.util.spec_from_file_location("summary_stage", REPO / "pipelines" / "summary.py")
    stage_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage_module)
    stage_module.main(config.load(["model=zfnet", f"paths.metrics={tmp_path}"]))
    written = json.loads((tmp_path / "summary_zfnet.json").read_text())
    assert written == {"headline": {"zfnet": {"top1": 0.75, "top5": 0.5, "train_top1": None}}}
