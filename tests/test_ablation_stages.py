"""The table stages refuse missing inputs with one line and save the per-image evidence the report pairs images
with (the full runs are in tests/test_pipeline.py)."""

import json

import numpy as np
import pytest
import torch
from studies.test_ensemble import hand_ten_crop

from zfnet.data.prepare import PreparedSplit
from zfnet.nets.training import load_trained
from zfnet.pipeline import stage

from test_visualize_stages import CROP, SIZE, load_stage, prepare_tiny, save_checkpoint


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


# ----------------------------------------------------------------------- per-image evidence (the report pairs images)


@pytest.fixture(scope="module")
def ablation_workspace(tmp_path_factory):
    """Tiny prepared data and untrained checkpoints for the runs of `ablations=smoke` (zfnet, zfnet_fc2048,
    zfnet_seed1), each its own random init."""
    root = tmp_path_factory.mktemp("ablations")
    prepared = prepare_tiny(root, train_per_class=4, val_per_class=5)
    mean = torch.from_numpy(np.load(prepared / "train" / "mean.npy")).permute(2, 0, 1).contiguous()
    for seed, run in enumerate(("zfnet", "zfnet_fc2048", "zfnet_seed1"), start=1):
        save_checkpoint(root / "outputs" / "ablations" / "train" / run / "checkpoints" / "best.ckpt", "zfnet", seed, mean)
    return root


def ablation_argv(root) -> list[str]:
    return ["ablations=smoke", "data=imagefolder", f"data.root={root}/raw", f"paths.prepared={root}/prepared",
            f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics", f"paths.plots={root}/plots",
            f"paths.evidence={root}/evidence", "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}"]


def hand_correct(root, runs: list[str]) -> list[int]:
    """1 where the members' 10-crop softmax, averaged (by hand, tests/studies/test_ensemble.py), ranks the label first."""
    split = PreparedSplit(root / "prepared" / "val")
    models = [load_trained(root / "outputs" / "ablations" / "train" / run / "checkpoints" / "best.ckpt") for run in runs]
    correct = []
    for i in range(len(split)):
        image, label = split[i]
        scores = np.mean([hand_ten_crop(model, image.numpy(), hparams["mean"].numpy(), hparams["input_scale"])
                          for model, hparams in models], axis=0)
        assert np.sort(scores)[-1] - np.sort(scores)[-2] > 1e-5, "a near tie: the ranking would be rounding"
        correct.append(int(np.argmax(scores) == label))
    return correct


def test_table2_writes_each_run_s_and_entry_s_per_image_correctness(ablation_workspace):
    root = ablation_workspace
    stage.run("table2", load_stage("table2").main, ablation_argv(root))
    evidence = json.loads((root / "evidence" / "table2.json").read_text())
    result = json.loads((root / "metrics" / "table2.json").read_text())
    assert "evidence" not in result and evidence["images"] == result["images"] == 15
    expected = {"zfnet": hand_correct(root, ["zfnet"]), "zfnet_seed1": hand_correct(root, ["zfnet_seed1"])}
    assert {run: e["top1_correct"] for run, e in evidence["runs"].items()} == expected
    both = hand_correct(root, ["zfnet", "zfnet_seed1"])
    assert evidence["entries"]["zf_x5"] == {"members": ["zfnet", "zfnet_seed1"], "top1_correct": both,
                                            "top5_correct": [1] * 15}          # 3 classes: always in the top 5
    assert evidence["entries"]["zf"]["top1_correct"] == expected["zfnet"]
    assert evidence["seeds"] == {"zfnet": ["zfnet", "zfnet_seed1"], "zfnet_seed1": ["zfnet_seed1", "zfnet"]}
    for name, entry in evidence["entries"].items():   # the metrics' errors are these images' misses
        assert result["entries"][name]["val_top1_error"] == pytest.approx(1 - sum(entry["top1_correct"]) / 15)
    assert all(0 < sum(c) < 15 for c in (both, *expected.values())), "untrained nets that tell no image apart"


def test_table3_gathers_the_runs_evidence_and_their_seeds(tmp_path):
    ran = {"zfnet": [1, 0, 1, 1], "zfnet_seed1": [1, 1, 1, 0], "zfnet_fc2048": None}     # fc2048 saved none
    for run, correct in ran.items():
        wrong = 0.5 if correct is None else 1 - sum(correct) / 4
        (tmp_path / "metrics" / "ablations").mkdir(parents=True, exist_ok=True)
        (tmp_path / "metrics" / "ablations" / f"train_{run}.json").write_text(json.dumps(
            {"train_top1_error": 0.1, "val_top1_error_10crop": wrong, "val_top5_error_10crop": 0.0}))
        if correct is not None:
            (tmp_path / "evidence" / "ablations").mkdir(parents=True, exist_ok=True)
            (tmp_path / "evidence" / "ablations" / f"train_{run}.json").write_text(json.dumps(
                {"images": 4, "top1_correct": correct, "top5_correct": [1] * 4}))
    argv = ["ablations=smoke", f"paths.metrics={tmp_path}/metrics", f"paths.evidence={tmp_path}/evidence",
            f"paths.plots={tmp_path}/plots", "logger.mode=disabled"]
    stage.run("table3", load_stage("table3").main, argv)
    evidence = json.loads((tmp_path / "evidence" / "table3.json").read_text())
    assert set(evidence["runs"]) == {"zfnet", "zfnet_seed1"}
    assert evidence["runs"]["zfnet"]["top1_correct"] == [1, 0, 1, 1]
    assert evidence["seeds"] == {"zfnet": ["zfnet", "zfnet_seed1"], "zfnet_seed1": ["zfnet_seed1", "zfnet"]}
    assert "evidence" not in json.loads((tmp_path / "metrics" / "table3.json").read_text())

    (tmp_path / "evidence" / "ablations" / "train_zfnet.json").write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        stage.run("table3", load_stage("table3").main, argv)
    assert exit_info.value.code == 2
