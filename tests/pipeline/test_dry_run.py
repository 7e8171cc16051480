"""The paper-shaped dry run (zfnet.pipeline.dry_run): its tree, its timing, and a reduced run end to end."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from zfnet.pipeline import dry_run

from conftest import REPO


def test_the_tree_has_imagenets_layout(tmp_path):
    counts = dry_run.write_tree(tmp_path, classes=3, train_per_class=2, val_per_class=1, size=64)
    assert counts == {"train": 6, "val": 3}
    for split, per_class in (("train", 2), ("val", 1)):
        folders = sorted(p.name for p in (tmp_path / split).iterdir())
        assert len(folders) == 3 and all(len(f) == 9 and f[0] == "n" and f[1:].isdigit() for f in folders)
        for folder in folders:
            files = sorted((tmp_path / split / folder).iterdir())
            assert [f.name for f in files] == [f"{folder}_{n}.JPEG" for n in range(per_class)]
            for path in files:
                with Image.open(path) as image:
                    assert image.format == "JPEG" and image.mode == "RGB" and min(image.size) == 64
                    assert max(image.size) <= 96
    assert len(set(dry_run.wnids(1000))) == 1000 and dry_run.wnids(1000) == sorted(dry_run.wnids(1000))


def test_stage_times_run_from_one_running_line_to_the_next():
    lines = [(0.0, "Verifying data sources"), (1.0, "Running stage 'generate':"), (3.5, "> python ..."),
             (4.0, "Running stage 'prepare':"), (9.0, "Updating lock file 'dvc.lock'"),
             (10.0, "Running stage 'train@zfnet':")]
    assert dry_run.stage_times(lines, end=25.0) == {"generate": 3.0, "prepare": 6.0, "train@zfnet": 15.0}


def test_the_command_is_what_a_new_user_types(tmp_path):
    command = dry_run.dvc_command(tmp_path, ["occlusion.images=4"])
    assert " ".join(command) == (f"dvc exp run -S experiment=paper -S data.root={tmp_path} -S trainer=cpu "
                                 "-S train.epochs=1 -S occlusion.images=4")


# The paper's shapes (full-width models, 256 px images, 224 px crops) with less of everything a stage repeats:
# fewer maps projected, a coarser occluder grid over fewer images, fewer invariance steps.
TINY = ["visualize.top9.maps=2", "visualize.evolution.maps=2", "visualize.architecture.conv2_maps=4",
        "visualize.architecture.noise_samples=200", "occlusion.stride=32", "occlusion.images=4",
        "invariance.images=4", "invariance.translation.steps=3", "invariance.scale.steps=3",
        "invariance.rotation.step=90", "invariance.small_steps=1"]


@pytest.mark.slow
def test_a_reduced_dry_run_passes_every_stage(tmp_path):
    """12 classes x (2 train + 1 val) at 256 px, experiment=paper on CPU, one epoch: every stage runs; the
    stages on the built-in data say "not run"; the report is written."""
    result = dry_run.dry_run(tmp_path / "dry", classes=12, train_per_class=2, val_per_class=1, size=256,
                             settings=TINY, source=REPO)
    repo = tmp_path / "dry" / "repo"
    assert set(result["stage_seconds"]) == set(result["stages"]), "every stage ran in this one command"
    assert set(result["not_run_stages"]) == {"correspondence_zfnet", "correspondence_alexnet", "transfer_caltech101",
                                             "transfer_caltech256", "transfer_pascal"}
    prepare = json.loads((repo / "metrics" / "prepare.json").read_text())
    assert prepare["classes"] == 12 and prepare["train"]["images"] == 24 and prepare["size"] == 256
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["crop"] == 224 and params["models"]["zfnet"]["width"] == 1.0
    assert json.loads((repo / "metrics" / "train_zfnet.json").read_text())["val_top1_error_10crop"] >= 0
    report = json.loads((repo / "metrics" / "report.json").read_text())
    assert {"table1", "table4", "table5"} <= set(report["not_run_sections"])
    assert "fig5" not in report["not_run_sections"] and "fig7" not in report["not_run_sections"]
