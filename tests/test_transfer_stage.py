"""The transfer stage end to end on a tiny generated dataset and random checkpoints."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from zfnet.data import synthetic
from zfnet.pipeline import config, stage

from conftest import assert_one_line_error
from test_visualize_stages import CROP, SIZE, load_stage, save_checkpoint

SPEC = synthetic.SyntheticSpec(num_classes=3, train_per_class=2, val_per_class=1, caltech101_classes=3,
                               caltech256_classes=3, transfer_per_class=6, image_size=SIZE, voc_train=9, voc_val=9)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    synthetic.generate(SPEC, root / "synthetic", workers=1, progress=False)
    mean = torch.full((3, SIZE, SIZE), 120.0)
    for seed, name in enumerate(("zfnet", "alexnet")):
        save_checkpoint(root / "outputs" / "train" / name / "checkpoints" / "best.ckpt", name, seed, mean)
    return root


def overrides(root, *extra):
    sizes = ["sizes=[1,2,4]", "scratch_sizes=[2]", "layers_size=4"]
    return [f"paths.synthetic={root}/synthetic", f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics",
            f"paths.plots={root}/plots", f"paths.evidence={root}/evidence", "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}",
            "models.zfnet.width=0.25", "models.alexnet.width=0.25", "transfer.folds=2", "transfer.scratch.epochs=1",
            "transfer.scratch.folds=1", *(f"transfer.{d}.{s}" for d in ("caltech101", "caltech256") for s in sizes),
            *extra]


def run(root, dataset, *extra) -> dict:
    cfg = config.load(overrides(root, f"transfer.dataset={dataset}", *extra))
    load_stage("transfer").main(cfg)
    return json.loads((Path(cfg.paths.metrics) / f"transfer_{dataset}.json").read_text())


def evidence(root, dataset) -> dict:
    return json.loads((root / "evidence" / f"transfer_{dataset}.json").read_text())


def cache_files(root, dataset) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (root / "outputs" / "transfer" / dataset).glob("*.pt")}


def test_caltech256_tables_figures_and_feature_cache(workspace):
    result = run(workspace, "caltech256")
    assert set(result) == {"zfnet", "alexnet", "data"}
    assert result["data"]["all"] == {"images": 18, "classes": 3, "skipped": 0}  # 257.clutter's analogue dropped
    assert result["data"]["test_images"] == {"1": 15, "2": 12, "4": 6}
    assert (result["data"]["test_per_class"], result["data"]["std_ddof"], result["data"]["layers_size"]) == (25, 1, 4)
    found = evidence(workspace, "caltech256")
    assert found["protocol"] == {"folds": 2, "scratch_folds": 1, "std_ddof": 1, "test_per_class": 25}
    for model in ("zfnet", "alexnet"):
        tables = result[model]
        assert set(tables["pretrained"]) == {"1", "2", "4"} and set(tables["scratch"]) == {"2"}
        assert set(tables["layers"]) == {"svm", "softmax"}
        assert all(set(t) == {"1", "2", "3", "4", "5", "7"} for t in tables["layers"].values())
        for score in [*tables["pretrained"].values(), *tables["scratch"].values()]:
            assert set(score) == {"mean", "std"} and 0 <= score["mean"] <= 1  # per-fold lists go to the evidence
        assert tables["scratch"]["2"]["std"] is None                           # one fold: no std (ddof=1)
        assert tables["claims"]["pretrained_minus_scratch"]["2"] == pytest.approx(
            tables["pretrained"]["2"]["mean"] - tables["scratch"]["2"]["mean"])
        # the evidence: each cell's folds, each fold's 3 classes; the metrics' mean and std are over those folds
        cells = [*(found[model][m][n] for m in ("pretrained", "scratch") for n in tables[m]),
                 *(found[model]["layers"][k][layer] for k in tables["layers"] for layer in tables["layers"][k])]
        assert len(cells) == 3 + 1 + 12 and all(len(c["per_class"][0]) == 3 for c in cells)
        for n, score in tables["pretrained"].items():
            folds = found[model]["pretrained"][n]
            assert len(folds["folds"]) == 2
            assert folds["folds"] == pytest.approx([sum(c) / 3 for c in folds["per_class"]], abs=1e-6)
            assert score["mean"] == pytest.approx(statistics.mean(folds["folds"]), abs=1e-6)
            assert score["std"] == pytest.approx(statistics.stdev(folds["folds"]), abs=1e-6)
        assert len(found[model]["scratch"]["2"]["folds"]) == 1
    plots = workspace / "plots"
    assert sorted(p.name for p in (plots / "transfer_caltech256").iterdir()) == ["fig9.png", "table7_layers.png"]
    lines = (plots / "curves" / "transfer_caltech256.csv").read_text().splitlines()
    assert lines[0] == "train_per_class,zfnet,alexnet" and [line.split(",")[0] for line in lines[1:]] == ["1", "2", "4"]
    assert float(lines[2].split(",")[2]) == pytest.approx(result["alexnet"]["pretrained"]["2"]["mean"], abs=1e-6)

    cached = cache_files(workspace, "caltech256")
    assert set(cached) == {"features_zfnet_all.pt", "features_alexnet_all.pt"}
    run(workspace, "caltech256", "transfer.folds=1")  # another protocol, the same features: reused
    assert cache_files(workspace, "caltech256") == cached
    run(workspace, "caltech256", "transfer.grid=2")  # other features: extracted again
    assert all(cache_files(workspace, "caltech256")[name] != mtime for name, mtime in cached.items())


def test_caltech256_keeps_clutter_when_asked(workspace, tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "train").symlink_to(workspace / "outputs" / "train")
    result = run(workspace, "caltech256", "transfer.caltech256.clutter=true", "transfer.models=[zfnet]",
                 f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}",
                 "transfer.classifiers=[softmax]", "transfer.layers=[7]", "transfer.scratch.folds=0",
                 "prepare.size=80")  # images are decoded at the checkpoint's size (its mean image: 72), not this
    assert result["data"]["all"] == {"images": 24, "classes": 4, "skipped": 0}
    assert set(result) == {"zfnet", "data"}
    assert result["zfnet"]["scratch"] == {} and result["zfnet"]["claims"]["pretrained_minus_scratch"] == {}


def test_caltech_test_images_per_class_is_the_dataset_s_own(workspace, tmp_path):
    """Each dataset's `test_per_class` reaches the folds: with 1, every per-class accuracy is 0 or 1; with 2
    (on 6 images per class, 4 for training), 0, 1/2 or 1. The defaults: 50 (the paper's) and 25 (Griffin et al.)."""
    defaults = config.load([])
    assert (defaults.transfer.caltech101.test_per_class, defaults.transfer.caltech256.test_per_class) == (50, 25)
    assert defaults.transfer.caltech101.background is False
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "train").symlink_to(workspace / "outputs" / "train")
    for dataset, per_class, held_out in (("caltech256", 1, {"1": 3, "2": 3, "4": 3}),
                                         ("caltech101", 2, {"1": 6, "2": 6, "4": 6})):
        result = run(workspace, dataset, f"transfer.{dataset}.test_per_class={per_class}", "transfer.models=[zfnet]",
                     f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}",
                     f"paths.evidence={tmp_path}/evidence", "transfer.classifiers=[softmax]", "transfer.layers=[7]",
                     "transfer.scratch.folds=0")
        assert result["data"]["test_images"] == held_out
        found = json.loads((tmp_path / "evidence" / f"transfer_{dataset}.json").read_text())
        allowed = {0.0, 1.0} if per_class == 1 else {0.0, 0.5, 1.0}
        values = {v for cell in found["zfnet"]["pretrained"].values() for fold in cell["per_class"] for v in fold}
        assert values <= allowed, (dataset, values)


def test_caltech101_background_is_a_class_when_asked(workspace, tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "train").symlink_to(workspace / "outputs" / "train")
    result = run(workspace, "caltech101", "transfer.caltech101.background=true", "transfer.models=[zfnet]",
                 f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}", f"paths.plots={tmp_path}",
                 f"paths.evidence={tmp_path}/evidence", "transfer.classifiers=[softmax]", "transfer.layers=[7]",
                 "transfer.scratch.folds=0")
    assert result["data"]["all"] == {"images": 24, "classes": 4, "skipped": 0}   # 3 classes of 6, and 6 backgrounds
    found = json.loads((tmp_path / "evidence" / "transfer_caltech101.json").read_text())
    assert all(len(fold) == 4 for cell in found["zfnet"]["pretrained"].values() for fold in cell["per_class"])


def test_pascal_average_precision_per_class(workspace):
    result = run(workspace, "pascal")
    classes = sorted(synthetic.class_catalog(SPEC)["voc2012"])
    assert result["data"]["train"]["images"] == 9 and result["data"]["test"]["images"] == 9
    assert result["data"]["split"] == {"train": "train", "test": "val"}        # named: the paper's is the test set
    found = evidence(workspace, "pascal")
    assert found["split"] == result["data"]["split"]
    assert all(found[m]["ap"] == result[m]["ap"] for m in ("zfnet", "alexnet"))
    for model in ("zfnet", "alexnet"):
        ap = result[model]["ap"]
        assert sorted(ap) == classes
        present = [v for v in ap.values() if v is not None]
        assert all(0 <= v <= 1 for v in present) and result[model]["map"] == pytest.approx(sum(present) / len(present))
    # A random ranking's expected AP, by hand from the val annotations: per class, the share of images
    # holding a non-difficult object of it (the built-in scenes have no difficult-only images).
    base = workspace / "synthetic" / "VOCdevkit" / "VOC2012"
    ids = (base / "ImageSets" / "Main" / "val.txt").read_text().split()
    names = [{o.findtext("name") for o in ET.parse(base / "Annotations" / f"{i}.xml").iter("object")
              if o.findtext("difficult") == "0"} for i in ids]
    assert result["data"]["chance_map"] == pytest.approx(
        sum(sum(c in found for found in names) / len(ids) for c in classes) / len(classes))
    assert (workspace / "plots" / "transfer_pascal" / "table6_ap.png").is_file()
    lines = (workspace / "plots" / "curves" / "transfer_pascal.csv").read_text().splitlines()
    assert lines[0] == "class,zfnet,alexnet" and [line.split(",")[0] for line in lines[1:]] == classes


def run_failing(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        stage.run("transfer", load_stage("transfer").main, argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1, message
    return message


def test_bad_input_stops_with_one_line(workspace, tmp_path, capsys):
    message = run_failing(overrides(workspace, "transfer.dataset=caltech256", "transfer.caltech256.sizes=[6]"), capsys)
    assert message.startswith("error: transfer.caltech256.sizes: [6] training images per class leave no test image")
    message = run_failing(overrides(workspace, "transfer.dataset=caltech101", f"transfer.roots.caltech101={tmp_path}"),
                          capsys)
    assert message.startswith("error: transfer.roots.caltech101:")
    assert not (workspace / "metrics" / "transfer_caltech101.json").exists()  # nothing half-written
    assert_one_line_error("transfer", overrides(workspace, "transfer.layer=9"), "transfer.layer", capsys)
    assert_one_line_error("transfer", overrides(workspace, "transfer.models=[vgg]"), "transfer.models", capsys)
    assert_one_line_error("transfer", overrides(workspace, "transfer.caltech101.background=maybe"),
                          "transfer.caltech101.background", capsys)
    assert_one_line_error("transfer", overrides(workspace, "transfer.caltech256.test_per_class=0"),
                          "transfer.caltech256.test_per_class", capsys)
