"""The table stages refuse missing inputs with one line (the full runs are in tests/test_pipeline.py)."""

import pytest

from zfnet.pipeline import stage

from test_visualize_stages import load_stage


def refused(name: str, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        stage.run(name, load_stage(name).main, argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1, message
    return message


def test_table3_without_a_finished_run_says_how_to_make_one(tmp_path, capsys):
    message = refused("table3", [f"paths.metrics={tmp_path}", "logger.mode=disabled"], capsys)
    assert message.startswith(f"error: {tmp_path}/ablations: no finished run") and "dvc repro ablations/dvc.yaml" in message


def test_table2_names_the_missing_checkpoint(tmp_path, capsys):
    message = refused("table2", [f"paths.outputs={tmp_path}", "logger.mode=disabled"], capsys)
    assert message.startswith(f"error: {tmp_path}/ablations/train/alexnet/checkpoints/best.ckpt: checkpoint not found")
