"""The occlusion stage end to end on tiny annotated data and random checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zfnet.data.prepare import prepare_split
from zfnet.pipeline import config

from conftest import assert_one_line_error
from test_visualize_stages import CLASSES, CROP, SIZE, load_stage, save_checkpoint

SQUARE = 24


def draw_annotated(root, split: str, per_class: int, seed: int) -> list[dict]:
    """A bright square per image, its box and mask in metadata.jsonl records (paths under `root`)."""
    rng = np.random.default_rng(seed)
    records = []
    for c, name in enumerate(CLASSES):
        (root / split / name).mkdir(parents=True)
        (root / "masks" / split / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.full((SIZE, SIZE, 3), rng.integers(40, 200, 3), dtype=np.uint8)
            y, x = (int(v) for v in rng.integers(0, SIZE - SQUARE, 2))
            image[y:y + SQUARE, x:x + SQUARE, c] = 255
            mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
            mask[y:y + SQUARE, x:x + SQUARE] = 255
            path, mask_path = f"{split}/{name}/{i}.png", f"masks/{split}/{name}/{i}.png"
            Image.fromarray(image).save(root / path)
            Image.fromarray(mask).save(root / mask_path)
            records.append({"path": path, "mask": mask_path, "split": split, "class": name, "label": c,
                            "box": [x, y, x + SQUARE, y + SQUARE]})
    return records


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("occ")
    raw = root / "raw"
    records = draw_annotated(raw, "train", 4, seed=0) + draw_annotated(raw, "val", 4, seed=1)
    (raw / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    prepare_split(raw / "train", root / "prepared" / "train", SIZE, compute_mean=True, workers=1, progress=False)
    prepare_split(raw / "val", root / "prepared" / "val", SIZE, classes=list(CLASSES), compute_mean=False,
                  workers=1, progress=False)
    mean = torch.from_numpy(np.load(root / "prepared" / "train" / "mean.npy")).permute(2, 0, 1).contiguous()
    for name in ("zfnet", "alexnet"):
        save_checkpoint(root / "outputs" / "train" / name / "checkpoints" / "best.ckpt", name, 3, mean)
    return root


def overrides(root, *extra):
    return ["data=imagefolder", f"data.root={root}/raw", f"paths.prepared={root}/prepared",
            f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics", f"paths.plots={root}/plots",
            "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
            "models.alexnet.width=0.25", "occlusion.patch=16", "occlusion.stride=8", *extra]


def run(root, *extra) -> dict:
    cfg = config.load(overrides(root, *extra))
    load_stage("occlusion").main(cfg)
    return json.loads((Path(cfg.paths.metrics) / f"occlusion_{cfg.model}.json").read_text())


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_stage_measures_maps_and_draws_fig7(workspace, name):
    result = run(workspace, f"model={name}")
    images, side = 12, (CROP - 16) // 8 + 1
    assert result["images"] == images and result["grid"] == side
    for game in ("pointing_game", "pointing_game_mask"):
        assert result[game]["images"] == images and 0 <= result[game]["accuracy"] <= 1
    assert result["pointing_game"]["tolerance_px"] == pytest.approx(15 * CROP / 224)
    assert result["p_true_drop"]["images"] == images
    assert set(result["top_label_change"]) == {"positions", "images", "on_object", "background"}
    assert set(result["layer5_map_drop"]) == {"covering_projection", "elsewhere", "images_covered",
                                              "share_of_images_where_covering_drops_more"}
    maps = torch.load(workspace / "outputs" / "occlusion" / name / "maps.pt", weights_only=True)
    assert maps["p_true"].shape == (images, side, side) and maps["image_index"].tolist() == list(range(images))
    drop = maps["base_p_true"][:, None, None] - maps["p_true"]
    assert result["top_label_change"]["positions"] == pytest.approx(
        float((maps["top_label"] != maps["base_label"][:, None, None]).double().mean()))
    plots = workspace / "plots" / f"occlusion_{name}"
    assert sorted(p.name for p in plots.iterdir()) == sorted([f"fig7_{c}.png" for c in CLASSES] + ["measures.png"])
    assert drop.abs().max() > 0
    # the pointing game worked out here: the largest drop's occluder centre against each square's box
    boxes = {r["path"]: r["box"] for r in map(json.loads, (workspace / "raw" / "metadata.jsonl").open())}
    split_files = json.loads((workspace / "prepared" / "val" / "index.json").read_text())["files"]
    offset, tolerance, hits = (SIZE - CROP) // 2, 15 * CROP / 224, 0
    for n, file in enumerate(split_files):
        i, j = divmod(int(drop[n].flatten().argmax()), side)
        x, y = j * 8 + 8 + offset, i * 8 + 8 + offset  # back in the stored image's pixels
        x0, y0, x1, y1 = boxes[f"val/{file}"]
        hits += math.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1)) <= tolerance
    assert result["pointing_game"]["accuracy"] == pytest.approx(hits / images)


def test_naive_mode_gives_the_same_maps(workspace):
    run(workspace, "model=zfnet")
    exact = torch.load(workspace / "outputs" / "occlusion" / "zfnet" / "maps.pt", weights_only=True)
    run(workspace, "model=zfnet", "occlusion.mode=naive")
    naive = torch.load(workspace / "outputs" / "occlusion" / "zfnet" / "maps.pt", weights_only=True)
    torch.testing.assert_close(exact["p_true"], naive["p_true"], atol=2e-6, rtol=1e-4)
    assert torch.equal(exact["top_label"], naive["top_label"])


def test_without_metadata_the_maps_and_figures_are_still_made(workspace, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    result = run(workspace, "model=zfnet", f"data.root={bare}", f"paths.plots={tmp_path}/plots",
                 f"paths.metrics={tmp_path}/metrics", f"paths.outputs={workspace}/outputs")
    assert result["pointing_game"] is None and result["p_true_drop"] is None
    assert len(list((tmp_path / "plots" / "occlusion_zfnet").glob("fig7_*.png"))) == len(CLASSES)


@pytest.mark.parametrize("override, key", [
    ("occlusion.patch=65", "occlusion.patch"),
    ("occlusion.mode=fast", "occlusion.mode"),
    ("occlusion.approximate.drill=2", "occlusion.approximate.drill"),
    ("occlusion.stride=0", "occlusion.stride"),
])
def test_a_bad_value_is_one_line_naming_the_key(workspace, capsys, override, key):
    assert_one_line_error("occlusion", overrides(workspace, "model=zfnet", override), key, capsys)
