"""The invariance stage end to end on tiny data and random checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zfnet.data.prepare import PreparedSplit
from zfnet.nets.models import build_model
from zfnet.pipeline import config

from conftest import assert_one_line_error
from test_visualize_stages import CLASSES, CROP, SIZE, load_stage, prepare_tiny, save_checkpoint

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
            f"paths.evidence={root}/evidence",
            "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
            "models.alexnet.width=0.25", "model=zfnet", "invariance.translation.steps=5", "invariance.scale.steps=3",
            "invariance.rotation.step=15", "invariance.small_steps=1", "invariance.examples=[a,c,zebra]",
            f"invariance.classes_file={root}/classes.json", *extra]


def run(root, *extra) -> dict:
    cfg = config.load(overrides(root, *extra))
    load_stage("invariance").main(cfg)
    return json.loads((Path(cfg.paths.metrics) / f"invariance_{cfg.model}.json").read_text())


def evidence_of(folder, model: str = "zfnet") -> dict:
    return json.loads((folder / f"invariance_{model}.json").read_text())


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
    assert "claims" not in result   # the report judges the claims, from the evidence
    untrained = result["untrained"]
    assert untrained["seed"] == 0 and untrained["init"] == "fan_in"   # the checkpoint's own init scheme
    assert set(untrained) == {"seed", "init", "base_top1_error", "translation", "scale", "rotation"}
    assert untrained["rotation"]["symmetry"]["classes"]["a"]["period"] == 120.0
    plots = workspace / "plots" / "invariance_zfnet"
    assert sorted(p.name for p in plots.iterdir()) == ["classes_rotation.png", "classes_scale.png",
                                                       "classes_translation.png", "fig5.png"]


def forward_p_true(model, indices, labels, root) -> np.ndarray:
    """p(true) of the untransformed centre view, by hand: (uint8 - mean) * 0.02, the central 64 of 72 pixels."""
    split = PreparedSplit(root / "prepared" / "val")
    mean = torch.from_numpy(np.load(root / "prepared" / "train" / "mean.npy")).permute(2, 0, 1).float()
    images = torch.stack([split[i][0] for i in indices]).float()
    offset = (SIZE - CROP) // 2
    views = ((images - mean) * 0.02)[..., offset:offset + CROP, offset:offset + CROP]
    with torch.no_grad():
        return model.eval()(views).double().softmax(1)[torch.arange(len(indices)), torch.as_tensor(labels)].numpy()


def checkpoint_model(path):
    state = torch.load(path, weights_only=True)
    arch = dict(state["hyper_parameters"]["arch"])
    model = build_model(arch.pop("name"), len(CLASSES), **arch)
    model.load_state_dict({k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")})
    return model, arch


def test_the_evidence_holds_each_image_for_the_trained_and_the_untrained_net(workspace):
    result = run(workspace)
    evidence = evidence_of(workspace / "evidence")
    split = PreparedSplit(workspace / "prepared" / "val")
    indices, labels = evidence["image_index"], evidence["label"]
    assert evidence["images"] == len(indices) == len(labels) == 9 and sorted(indices) == list(range(9))
    assert labels == [int(split.labels[i]) for i in indices] and evidence["classes"] == list(CLASSES)
    names = [CLASSES[c] for c in labels]
    assert evidence["symmetric"] == [int(n == "a") for n in names]
    assert evidence["symmetry_order"] == [3 if n == "a" else 1 for n in names]    # 360 / 120
    assert evidence["period"] == [120.0 if n == "a" else 90.0 for n in names]     # the others at the control angle
    assert evidence["steps"] == result["steps"]

    trained, arch = checkpoint_model(workspace / "outputs" / "train" / "zfnet" / "checkpoints" / "best.ckpt")
    torch.manual_seed(0)   # seed=0: the untrained control is the checkpoint's architecture initialized from it
    fresh = build_model("zfnet", len(CLASSES), **arch)
    for net, model in ((evidence, trained), (evidence["untrained"], fresh)):
        expected = forward_p_true(model, indices, labels, workspace)
        np.testing.assert_allclose(net["base_p_true"], expected, atol=2e-6)
        for kind in ("translation", "scale", "rotation"):
            curves = {k: np.array(v) for k, v in net["curves"][kind].items()}
            assert all(c.shape == (9, len(result["steps"][kind])) for c in curves.values())
            identity = result["steps"][kind].index(1.0 if kind == "scale" else 0.0)
            np.testing.assert_allclose(curves["p_true"][:, identity], expected, atol=1e-4)   # the identity step
            assert np.abs(curves["layer1"][:, identity]).max() < 1e-3
        # the per-image measures, recomputed from the curves: translation steps -r, -r/2, 0, r/2, r; small = +-r/2
        translation = {k: np.array(v) for k, v in net["curves"]["translation"].items()}
        np.testing.assert_allclose(net["p_true"]["translation"], translation["p_true"][:, [0, 1, 3, 4]].mean(1), atol=2e-6)
        np.testing.assert_allclose(net["small_change"]["translation"]["layer7"], translation["layer7"][:, [1, 3]].mean(1),
                                   atol=2e-6)
        rotation = np.array(net["curves"]["rotation"]["p_true"])   # 0, 15, ..., 345: beyond 20 degrees = 30 .. 330
        np.testing.assert_allclose(net["p_true"]["rotated"], rotation[:, 2:23].mean(1), atol=2e-6)
        a = np.array(names) == "a"   # at 120, 240 (steps 8, 16); between 180 (step 12)
        np.testing.assert_allclose(np.array(net["symmetry"]["at"])[a], rotation[a][:, [8, 16]].mean(1), atol=2e-6)
        np.testing.assert_allclose(np.array(net["symmetry"]["between"])[a], rotation[a][:, 12], atol=2e-6)
    assert not np.allclose(evidence["base_p_true"], evidence["untrained"]["base_p_true"], atol=1e-3)
    # the metrics' means are the evidence's
    for name, net in (("trained", evidence), ("untrained", evidence["untrained"])):
        metrics = result if name == "trained" else result["untrained"]
        for kind in ("translation", "scale", "rotation"):
            assert metrics[kind]["output"]["mean_p_true"] == pytest.approx(np.mean(net["curves"][kind]["p_true"]),
                                                                            abs=1e-5)


def test_without_a_classes_file_the_rotation_claim_is_null(workspace, tmp_path):
    result = run(workspace, "invariance.classes_file=null", "invariance.images=4", "invariance.layer1=relu1",
                 f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}", f"paths.evidence={tmp_path}/evidence")
    assert result["images"] == 4 and result["layer1"] == "relu1"
    assert result["rotation"]["symmetry"] is None and result["untrained"]["rotation"]["symmetry"] is None
    assert (tmp_path / "invariance_zfnet" / "classes_rotation.png").is_file()
    evidence = evidence_of(tmp_path / "evidence")
    assert evidence["images"] == 4 and evidence["symmetric"] is None and evidence["symmetry_order"] is None
    assert evidence["symmetry"] is None and evidence["untrained"]["symmetry"] is None


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
    assert result["translation"]["small_change"]["layer7"] >= 0 and "untrained" in result
