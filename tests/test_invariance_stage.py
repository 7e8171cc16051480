"""The invariance stage end to end on tiny data and random checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zfnet.pipeline import config

from conftest import assert_one_line_error
from test_visualize_stages import CROP, SIZE, load_stage, prepare_tiny, save_checkpoint

FAMILIES = {"a": {"family": "radial", "rot_symmetric": True, "symmetry_angle": 120.0},
            "b": {"family": "object", "rot_symmetric": False, "symmetry_angle": None},
            "c": {"family": "object", "rot_symmetric": False, "symmetry_angle": None}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("inv")
    prepared = prepare_tiny(root, train_per_class=2, val_per_class=3)
    mean = torch.from_numpy(np.load(prepared / "train" / "mean.npy")).permute(2, 0, 1).contiguous()
    save_checkpoint(root / "outputs" / "train" / "zfnet" / "checkpoints" / "best.ckpt", "zfnet", 3, mean)
    (root / "classes.json").write_text(json.dumps({"classes": FAMILIES}))
    return root


def overrides(root, *extra):
    return ["data=imagefolder", f"data.root={root}/raw", f"paths.prepared={root}/prepared",
            f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics", f"paths.plots={root}/plots",
            "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
            "models.alexnet.width=0.25", "model=zfnet", "invariance.translation.steps=5", "invariance.scale.steps=3",
            "invariance.rotation.step=15", "invariance.small_steps=1", "invariance.examples=[a,c,zebra]",
            f"invariance.classes_file={root}/classes.json", *extra]


def run(root, *extra) -> dict:
    cfg = config.load(overrides(root, *extra))
    load_stage("invariance").main(cfg)
    return json.loads((Path(cfg.paths.metrics) / f"invariance_{cfg.model}.json").read_text())


def test_stage_measures_every_transform_and_draws_the_figures(workspace):
    result = run(workspace)
    assert result["images"] == 9 and result["layer1"] == "pool1" and result["layer7"] == "relu7"
    reach = 60 / 224 * CROP  # +-60/224 of the network input's side
    assert result["steps"]["translation"] == pytest.approx([-reach, -reach / 2, 0, reach / 2, reach], abs=1e-3)
    assert result["steps"]["scale"] == [1.0, 1.4, 1.8] and result["steps"]["rotation"] == list(range(0, 360, 15))
    for kind in ("translation", "scale", "rotation"):
        output = result[kind]["output"]
        assert 0 <= output["mean_p_true"] <= 1 and 0 <= output["top_label_true"] <= 1
        assert result[kind]["layer1_relative_mean"] >= 0 and result[kind]["layer7_relative_mean"] >= 0
    assert result["translation"]["small_change"]["steps"] == pytest.approx([-reach / 2, reach / 2], abs=1e-3)
    assert result["scale"]["small_change"]["steps"] == [1.4]
    symmetry = result["rotation"]["symmetry"]
    assert symmetry["classes"]["a"]["symmetric"] and symmetry["classes"]["a"]["period"] == 120.0
    assert not symmetry["classes"]["b"]["symmetric"] and symmetry["classes"]["b"]["images"] == 3
    a = symmetry["classes"]["a"]
    assert a["score"] == pytest.approx(a["at"] - a["between"])
    assert symmetry["difference"] == pytest.approx(
        a["score"] - (symmetry["classes"]["b"]["score"] + symmetry["classes"]["c"]["score"]) / 2)
    assert symmetry["rotated"]["difference"] == pytest.approx(
        a["rotated"] - (symmetry["classes"]["b"]["rotated"] + symmetry["classes"]["c"]["rotated"]) / 2)
    assert set(result["claims"]) == {"i_translation", "i_scale", "ii_translation", "ii_scale", "iii_rotation",
                                     "iii_rotation_symmetric_kept"}
    assert result["claims"]["iii_rotation"] == (symmetry["difference"] > 0.1)
    plots = workspace / "plots" / "invariance_zfnet"
    assert sorted(p.name for p in plots.iterdir()) == ["classes_rotation.png", "classes_scale.png",
                                                       "classes_translation.png", "fig5.png"]


def test_without_a_classes_file_the_rotation_claim_is_null(workspace, tmp_path):
    result = run(workspace, "invariance.classes_file=null", "invariance.images=4", "invariance.layer1=relu1",
                 f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}")
    assert result["images"] == 4 and result["layer1"] == "relu1"
    assert result["rotation"]["symmetry"] is None and result["claims"]["iii_rotation"] is None
    assert (tmp_path / "invariance_zfnet" / "classes_rotation.png").is_file()


@pytest.mark.parametrize("override, key", [
    ("invariance.layer1=conv2", "invariance.layer1"),
    ("invariance.scale.max=0.5", "invariance.scale.max"),
    ("invariance.rotation.step=0", "invariance.rotation.step"),
    ("invariance.examples=[a,a]", "invariance.examples"),
])
def test_a_bad_value_is_one_line_naming_the_key(workspace, capsys, override, key):
    assert_one_line_error("invariance", overrides(workspace, override), key, capsys)


def test_the_smoke_experiment_composes():
    cfg = config.load(["experiment=smoke"])
    assert cfg.invariance.layer1 == "pool1" and cfg.train.crop == 64


def test_on_imagenet_without_the_builtin_data_it_runs_without_the_symmetry_claim(workspace, tmp_path):
    """experiment=paper's case: data.name=imagenet, no classes file, the built-in data not generated
    (paths.synthetic absent): (i) and (ii) are measured, (iii) and the re-rendered scenes are left out."""
    result = run(workspace, "data=imagenet", "invariance.classes_file=null", "invariance.images=3",
                 f"paths.synthetic={tmp_path}/synthetic", f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}")
    assert result["rotation"]["symmetry"] is None and "rerendered" not in result
    assert isinstance(result["claims"]["i_translation"], bool) and result["claims"]["iii_rotation"] is None
