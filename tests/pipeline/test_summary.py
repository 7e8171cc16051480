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
