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
from zfnet.experiments import occlusion as experiment
from zfnet.nets.models import build_model
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
            f"paths.evidence={root}/evidence", "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
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


def coverage_by_hand(box, side: int) -> np.ndarray:
    """(side, side): the share of the 16 px occluder's pixels inside `box` (stored-image pixels) at each position."""
    offset = (SIZE - CROP) // 2
    x0, y0, x1, y1 = (v - offset for v in box)
    share = np.zeros((side, side))
    for i in range(side):
        for j in range(side):
            rows = max(0, min(i * 8 + 16, y1) - max(i * 8, y0))
            cols = max(0, min(j * 8 + 16, x1) - max(j * 8, x0))
            share[i, j] = rows * cols / 256
    return share


def test_stage_writes_per_image_evidence(workspace):
    result = run(workspace, "model=alexnet")
    evidence = json.loads((workspace / "evidence" / "occlusion_alexnet.json").read_text())
    maps = torch.load(workspace / "outputs" / "occlusion" / "alexnet" / "maps.pt", weights_only=True)
    images, side = result["images"], maps["p_true"].shape[-1]
    assert {len(column) for name, column in evidence.items() if name != "untrained"} == {images}
    assert evidence["image"] == maps["image_index"].tolist()
    p = maps["base_p_true"].double().numpy()
    np.testing.assert_allclose(evidence["p_true"], p, atol=1e-6)
    np.testing.assert_allclose(evidence["log_odds"], np.log(p / (1 - p)), atol=1e-4)
    boxes = {r["path"]: r["box"] for r in map(json.loads, (workspace / "raw" / "metadata.jsonl").open())}
    files = json.loads((workspace / "prepared" / "val" / "index.json").read_text())["files"]
    p_maps, odds_maps = maps["p_true"].double().numpy(), maps["log_odds"].double().numpy()
    for n, file in enumerate(files):
        share = coverage_by_hand(boxes[f"val/{file}"], side)
        on_object, background = share >= 0.5, share == 0
        assert on_object.any() and background.any()
        assert evidence["object_p_true"][n] == pytest.approx(p_maps[n][on_object].mean(), abs=1e-6)
        assert evidence["background_p_true"][n] == pytest.approx(p_maps[n][background].mean(), abs=1e-6)
        assert evidence["object_log_odds"][n] == pytest.approx(odds_maps[n][on_object].mean(), abs=1e-5)
        assert evidence["background_log_odds"][n] == pytest.approx(odds_maps[n][background].mean(), abs=1e-5)
    # the metrics' mean p(true) drops are the evidence's, averaged
    assert result["p_true_drop"]["object"] == pytest.approx(np.mean(p - np.array(evidence["object_p_true"])), abs=1e-5)
    covering, elsewhere = np.array(evidence["layer5_covering_drop"]), np.array(evidence["layer5_elsewhere_drop"])
    assert result["layer5_map_drop"]["share_of_images_where_covering_drops_more"] == pytest.approx(
        np.mean(covering > elsewhere))


CONTROL_SEED = 11  # not the checkpoints' seed (3): the untrained net must differ from the "trained" one


def test_the_untrained_control_is_a_fresh_seeded_net_on_the_same_images(workspace, tmp_path):
    """The control's unoccluded p(true) is a seeded, freshly built net's on the centre crop of the stored image,
    computed here from the PNG files and `build_model` alone; its block and per-image columns are written."""
    result = run(workspace, "model=zfnet", f"seed={CONTROL_SEED}", f"paths.metrics={tmp_path}/metrics",
                 f"paths.plots={tmp_path}/plots", f"paths.evidence={tmp_path}/evidence")
    evidence = json.loads((tmp_path / "evidence" / "occlusion_zfnet.json").read_text())
    control, block = evidence["untrained"], result["untrained"]
    images = result["images"]
    assert control["seed"] == block["seed"] == CONTROL_SEED and block["init"] == "fan_in"
    for name in ("p_true", "log_odds", "object_log_odds", "background_log_odds", "layer5_covering_drop",
                 "layer5_elsewhere_drop"):
        assert len(control[name]) == images and all(v is not None for v in control[name])
    assert block["p_true_drop"]["images"] == images and block["layer5_map_drop"]["images_covered"] == images
    covering, elsewhere = np.array(control["layer5_covering_drop"]), np.array(control["layer5_elsewhere_drop"])
    assert block["layer5_map_drop"]["share_of_images_where_covering_drops_more"] == pytest.approx(
        np.mean(covering > elsewhere))

    torch.manual_seed(CONTROL_SEED)
    fresh = build_model("zfnet", len(CLASSES), input_size=CROP, width=0.25, init="fan_in").eval()
    mean = torch.from_numpy(np.load(workspace / "prepared" / "train" / "mean.npy")).permute(2, 0, 1).float()
    files = json.loads((workspace / "prepared" / "val" / "index.json").read_text())["files"]
    offset = (SIZE - CROP) // 2
    for n in (0, images - 1):
        pixels = torch.from_numpy(np.array(Image.open(workspace / "raw" / "val" / files[n]))).permute(2, 0, 1)
        inputs = ((pixels.float() - mean) * 0.02)[None, :, offset:offset + CROP, offset:offset + CROP]
        with torch.no_grad():
            p = fresh(inputs).softmax(dim=1)[0, CLASSES.index(files[n].split("/")[0])]
        assert control["p_true"][n] == pytest.approx(float(p), abs=2e-6)
        assert evidence["p_true"][n] != pytest.approx(float(p), abs=1e-4)   # the trained (seed 3) net's differs


FILL = 0.7


def test_the_configured_fill_reaches_the_engine(workspace, tmp_path, monkeypatch):
    """The stage's maps are p(true) of the model on images occluded with occlusion.fill, built here by slicing."""
    seen = []
    engine = experiment.occlusion_sweep

    def spy(model, images, labels, patch, stride, fill, *args, **kwargs):
        seen.append((model, images.clone(), labels.clone(), fill))
        return engine(model, images, labels, patch, stride, fill, *args, **kwargs)

    monkeypatch.setattr(experiment, "occlusion_sweep", spy)
    result = run(workspace, "model=zfnet", f"occlusion.fill={FILL}", f"paths.metrics={tmp_path}/metrics",
                 f"paths.plots={tmp_path}/plots", f"paths.evidence={tmp_path}/evidence")
    assert result["fill"] == FILL
    assert {s[3] for s in seen} == {FILL}   # the untrained control's sweep gets it too
    maps = torch.load(workspace / "outputs" / "occlusion" / "zfnet" / "maps.pt", weights_only=True)
    model = seen[0][0].eval()
    seen = [s for s in seen if s[0] is model]   # the trained net's calls: the maps are its
    images, labels = torch.cat([s[1] for s in seen]).cpu(), torch.cat([s[2] for s in seen]).cpu()

    def p_true_occluded_at(i: int, j: int, fill: float) -> torch.Tensor:
        occluded = images.clone()
        occluded[:, :, i * 8:i * 8 + 16, j * 8:j * 8 + 16] = fill
        with torch.no_grad():
            return model(occluded).softmax(dim=1)[torch.arange(len(images)), labels]

    for i, j in ((0, 0), (3, 2)):
        expected = p_true_occluded_at(i, j, FILL)
        torch.testing.assert_close(maps["p_true"][:, i, j], expected, atol=2e-6, rtol=1e-4)
        # and the fill matters here: a grey (0) occluder gives other numbers
        assert (expected - p_true_occluded_at(i, j, 0.0)).abs().max() > 1e-3


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
