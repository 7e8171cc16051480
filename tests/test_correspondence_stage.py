"""The correspondence stage end to end on a tiny folder of drawn faces with a metadata.jsonl (the format
real data can follow) and tiny random checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from zfnet.errors import UserError
from zfnet.pipeline import config

from conftest import assert_one_line_error
from test_visualize_stages import CROP, SIZE, load_stage, save_checkpoint

WIDTH, HEIGHT = 96, 80  # landscape: the centre 80 px square is resized to SIZE, then cropped to CROP
PARTS = ("right_eye", "left_eye", "nose")


def draw_face(path, rng) -> dict:
    """A face with two eyes and a nose near the image centre; its metadata record (original pixels)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), tuple(int(v) for v in rng.integers(30, 120, 3)))
    draw = ImageDraw.Draw(image)
    cx, cy = WIDTH / 2 + rng.uniform(-4, 4), HEIGHT / 2 + rng.uniform(-3, 3)
    box = [cx - 24, cy - 22, cx + 24, cy + 22]
    draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(150, 250, 3)))
    parts = {"right_eye": [cx - 14, cy - 10, cx - 5, cy - 1], "left_eye": [cx + 5, cy - 10, cx + 14, cy - 1],
             "nose": [cx - 4, cy + 3, cx + 4, cy + 10]}
    for name, part in parts.items():
        (draw.ellipse if name != "nose" else draw.rectangle)(part, fill=(20, 20, 20))
    image.save(path)
    return {"box": [round(v, 2) for v in box], "part_boxes": {k: [round(v, 2) for v in b] for k, b in parts.items()}}


def write_dataset(root) -> None:
    """Classes fa, fb: 6 frontal faces and 2 turned ones each; class plain: faces without part boxes;
    a train-split face that the val selection must skip. fa has masks, fb none."""
    rng = np.random.default_rng(0)
    records = []
    for name, count in (("fa", 8), ("fb", 8), ("plain", 3)):
        for i in range(count):
            path = f"val/{name}/{name}_{i}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            record = {"path": path, "split": "val", "class": name, **draw_face(root / path, rng),
                      "rotation": 0.5 * i if i < 6 else 30.0}
            if name == "plain":
                del record["part_boxes"]
            if name == "fa":
                mask = Image.new("L", (WIDTH, HEIGHT))
                ImageDraw.Draw(mask).ellipse(record["box"], fill=255)
                record["mask"] = f"masks/{name}_{i}.png"
                (root / "masks").mkdir(exist_ok=True)
                mask.save(root / record["mask"])
            records.append(record)
    (root / "train" / "fa").mkdir(parents=True)
    records.append({"path": "train/fa/extra.png", "split": "train", "class": "fa", "rotation": 0.0,
                    **draw_face(root / "train" / "fa" / "extra.png", rng)})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("corr")
    write_dataset(root / "faces")
    mean = torch.full((3, SIZE, SIZE), 100.0)
    for name in ("zfnet", "alexnet"):
        save_checkpoint(root / "outputs" / "train" / name / "checkpoints" / "best.ckpt", name, 1, mean)
    return root


def overrides(root, *extra):
    return [f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics", f"paths.plots={root}/plots",
            f"paths.evidence={root}/evidence", "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
            "models.alexnet.width=0.25", f"correspondence.root={root}/faces", "correspondence.draws=20", *extra]


def run(root, *extra):
    cfg = config.load(overrides(root, *extra))
    load_stage("correspondence").main(cfg)
    return json.loads((root / "metrics" / f"correspondence_{cfg.model}.json").read_text())


def evidence_of(root, name):
    return json.loads((root / "evidence" / f"correspondence_{name}.json").read_text())


STATS = {"mean", "std", "mean_ignore_zeros", "std_ignore_zeros", "mean_changed_in_both", "std_changed_in_both",
         "zero_share", "changed_in_both_share"}


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_stage_writes_table1_and_fig8(workspace, name):
    result = run(workspace, f"model={name}")
    assert result["images"] == 12 and result["layers"]["layer7"] == "relu7" and result["layer5_setting"] == "auto"
    assert result["average"]["classes"] == ["fa", "fb"]
    for group in (result["classes"]["fa"], result["classes"]["fb"], result["average"]):
        assert set(group["table"]) == {*PARTS, "random"}
        for row in group["table"].values():
            for stats in (row["layer5"], row["layer7"]):
                assert set(stats) == STATS
                assert all(0 <= v <= 1 for v in stats.values())
                assert stats["mean"] <= stats["mean_ignore_zeros"]  # leaving agreeing zeros out only raises it
        assert set(group["random_minus_parts"]) == set(group["random_minus_parts_changed_in_both"]) == {"layer5", "layer7"}
    assert result["classes"]["fa"]["images"] == 6
    plots = workspace / "plots" / f"correspondence_{name}"
    assert sorted(p.name for p in plots.iterdir()) == ["fig8.png", "table1.png"]
    assert min(Image.open(p).size[0] for p in plots.iterdir()) > 400


def map_shapes(workspace, name) -> dict:
    """relu5's and pool5's output shapes for one CROP input, read with plain forward hooks."""
    from zfnet.nets.models import get_layer
    from zfnet.nets.training import load_trained

    model, _ = load_trained(workspace / "outputs" / "train" / name / "checkpoints" / "best.ckpt", "cpu")
    shapes = {}
    for layer in ("relu5", "pool5"):
        get_layer(model, layer).register_forward_hook(lambda m, i, o, layer=layer: shapes.__setitem__(layer, list(o.shape[1:])))
    model.eval()(torch.zeros(1, 3, CROP, CROP))
    return shapes


def test_layer5_is_the_configured_tensor_and_auto_the_map_nearest_6x6(workspace):
    shapes = map_shapes(workspace, "zfnet")
    nearest = min(("pool5", "relu5"), key=lambda n: abs(shapes[n][1] - 6) + abs(shapes[n][2] - 6))
    runs = {setting: run(workspace, "model=zfnet", "correspondence.random=false", f"correspondence.layer5={setting}")
            for setting in ("pool5", "relu5", "auto")}
    for setting in ("pool5", "relu5"):
        assert runs[setting]["layers"] == {"layer5": setting, "layer7": "relu7"}
        assert runs[setting]["layer_shapes"] == {"layer5": shapes[setting], "layer7": [runs[setting]["layer_shapes"]["layer7"][0]]}
    assert set(runs["pool5"]["average"]["table"]) == set(PARTS) and runs["pool5"]["average"]["random_minus_parts"] is None
    nose, nose5 = runs["pool5"]["average"]["table"]["nose"], runs["relu5"]["average"]["table"]["nose"]
    assert nose5["layer7"] == nose["layer7"]  # same layer 7, bit for bit, whatever layer 5 is
    assert nose5["layer5"] != nose["layer5"]
    assert runs["auto"]["layers"]["layer5"] == nearest and runs["auto"]["layer5_setting"] == "auto"
    assert runs["auto"]["average"] == runs[nearest]["average"]


def test_evidence_holds_every_draw_and_pair_and_agrees_with_the_table(workspace):
    result = run(workspace, "model=alexnet")
    evidence = evidence_of(workspace, "alexnet")
    assert evidence["layers"] == result["layers"] and set(evidence["classes"]) == {"fa", "fb"}
    for name, entry in evidence["classes"].items():
        images = len(entry["paths"])
        assert images == result["classes"][name]["images"] == 6 and all(p.startswith(f"val/{name}/") for p in entry["paths"])
        draws, pairs = np.array(entry["per_draw"]["images"]), np.array(entry["per_pair"]["images"])
        assert draws.shape == (20, 5) and all(len(set(d)) == 5 for d in draws.tolist())
        assert sorted(map(tuple, pairs.tolist())) == [(i, j) for i in range(images) for j in range(i + 1, images)]
        for measure, stat in (("delta", "mean"), ("delta_changed_in_both", "mean_changed_in_both")):
            for row in (*PARTS, "random"):
                for layer in ("layer5", "layer7"):
                    per_draw = np.array(entry["per_draw"][measure][row][layer], dtype=float)
                    per_pair = dict(zip(map(tuple, pairs.tolist()), entry["per_pair"][measure][row][layer]))
                    # a draw's Delta is the mean over its pairs (each unordered pair twice among the ordered ones)
                    by_pairs = [np.nanmean([np.nan if per_pair[min(i, j), max(i, j)] is None else per_pair[min(i, j), max(i, j)]
                                            for i in d for j in d if i != j]) for d in draws.tolist()]
                    np.testing.assert_allclose(per_draw, by_pairs, atol=2e-6)
                    assert np.nanmean(per_draw) == pytest.approx(result["classes"][name]["table"][row][layer][stat], abs=1e-6)


def test_the_untrained_control_is_measured_on_the_same_images_and_draws(workspace):
    result, evidence = run(workspace, "model=zfnet"), evidence_of(workspace, "zfnet")
    control = result["untrained"]
    assert control["seed"] == 0 and control["init"] == "fan_in" and control["average"]["classes"] == ["fa", "fb"]
    assert set(control["average"]["table"]) == {*PARTS, "random"}
    assert control["average"]["table"]["nose"]["layer5"] != result["average"]["table"]["nose"]["layer5"]
    for name, entry in evidence["untrained"]["classes"].items():
        trained = evidence["classes"][name]
        assert entry["paths"] == trained["paths"] and entry["per_pair"]["images"] == trained["per_pair"]["images"]
        assert entry["per_pair"]["delta"]["nose"]["layer7"] != trained["per_pair"]["delta"]["nose"]["layer7"]


def test_the_configured_fill_reaches_the_occluder(workspace, monkeypatch):
    """A non-zero `correspondence.fill` is what every occluded view is filled with (the default 0 hides a stage
    that passes 0.0), and it changes Delta."""
    from zfnet.experiments import correspondence as experiment

    fills, real = [], experiment.occlude

    def spy(images, boxes, fill=0.0):
        fills.append(fill)
        return real(images, boxes, fill)

    monkeypatch.setattr(experiment, "occlude", spy)
    result = run(workspace, "model=zfnet", "correspondence.fill=-7.5")
    monkeypatch.undo()
    assert result["fill"] == -7.5 and len(fills) > 4 and set(fills) == {-7.5}
    grey = run(workspace, "model=zfnet")
    assert grey["average"]["table"]["nose"]["layer5"] != result["average"]["table"]["nose"]["layer5"]


@pytest.mark.parametrize("override, key", [
    ("correspondence.layer5=conv5", "correspondence.layer5"),
    ("correspondence.images_per_draw=1", "correspondence.images_per_draw"),
    ("correspondence.parts=[]", "correspondence.parts"),
    ("correspondence.classes=[fa,fa]", "correspondence.classes"),
    ("correspondence.max_rotation=-1", "correspondence.max_rotation"),
    ("correspondence.fill=abc", "correspondence.fill"),
    ("correspondence.draws=0", "correspondence.draws"),
    ("correspondence.random=yes", "correspondence.random"),
    ("correspondence.split=3", "correspondence.split"),
])
def test_a_bad_value_is_one_line_naming_the_key(workspace, capsys, override, key):
    assert_one_line_error("correspondence", overrides(workspace, "model=zfnet", override), key, capsys)


@pytest.mark.parametrize("override, key, words", [
    ("correspondence.max_rotation=0.1", "correspondence.images_per_draw", "no class has 5 usable"),
    ("correspondence.split=test", "correspondence.split", "splits there: train, val"),
    ("correspondence.parts=[right_eye,tail]", "correspondence.parts", "'tail'"),
    ("correspondence.classes=[fa,plain]", "correspondence.classes", "'plain'"),
    ("correspondence.classes=[fa,dog]", "correspondence.classes", "'dog'"),
    ("correspondence.root=/no/such/folder", "correspondence.root", "folder not found"),
])
def test_an_empty_selection_names_the_key(workspace, override, key, words):
    with pytest.raises(UserError) as error:
        run(workspace, "model=zfnet", override)
    assert str(error.value).startswith(f"{key}:") and words in str(error.value)


def test_no_frontal_image_names_max_rotation(workspace, tmp_path):
    lines = (workspace / "faces" / "metadata.jsonl").read_text().splitlines()
    turned = [json.loads(line) | {"rotation": 45.0} for line in lines]
    for entry in (workspace / "faces").iterdir():
        if entry.name != "metadata.jsonl":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in turned))
    with pytest.raises(UserError, match=r"^correspondence\.max_rotation: none of the"):
        run(workspace, "model=zfnet", f"correspondence.root={tmp_path}")


@pytest.mark.parametrize("orientation", [1, 6])
def test_annotations_land_on_the_pixels_the_stage_loads(tmp_path, orientation):
    """A 90 x 60 image (upright) with a dark square at x 50-70, y 20-40, stored as is or turned a quarter
    with EXIF orientation 6: the box maps to the square in what `load_rgb` decodes."""
    from zfnet.data.annotations import read_annotations
    from zfnet.data.prepare import load_rgb

    upright = Image.new("RGB", (90, 60), (200, 200, 200))
    ImageDraw.Draw(upright).rectangle([50, 20, 69, 39], fill=(0, 0, 0))
    stored, exif = upright, Image.Exif()
    if orientation == 6:
        stored = upright.transpose(Image.Transpose.ROTATE_90)  # what exif_transpose turns back
        exif[0x0112] = 6
    stored.save(tmp_path / "a.jpg", quality=95, exif=exif)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"path": "a.jpg", "box": [50, 20, 70, 40]}) + "\n")
    [note] = read_annotations(tmp_path, ["a.jpg"], size=48, crop=40)
    np.testing.assert_allclose(note.box, [(50 - 15) * 0.8 - 4, 20 * 0.8 - 4, (70 - 15) * 0.8 - 4, 40 * 0.8 - 4])
    dark = load_rgb(tmp_path / "a.jpg", 48)[4:44, 4:44].mean(-1) < 100
    ys, xs = np.nonzero(dark)
    assert abs(xs.min() - note.box[0]) <= 1 and abs(xs.max() + 1 - note.box[2]) <= 1
    assert abs(ys.min() - note.box[1]) <= 1 and abs(ys.max() + 1 - note.box[3]) <= 1


def test_without_the_builtin_faces_the_stage_says_not_run(workspace, tmp_path):
    """data.name=imagenet (experiment=paper) with correspondence.root null: the built-in faces are not
    generated, so the stage writes {"ran": false, "reason"} and a note, and loads no checkpoint (none exists)."""
    (tmp_path / "imagenet").mkdir()
    cfg = config.load(["data=imagenet", f"data.root={tmp_path}/imagenet", f"paths.synthetic={tmp_path}/synthetic",
                       f"paths.outputs={tmp_path}/no_outputs", f"paths.metrics={tmp_path}/metrics", f"paths.evidence={tmp_path}/evidence",
                       f"paths.plots={tmp_path}/plots", "logger.mode=disabled", "model=zfnet"])
    load_stage("correspondence").main(cfg)
    result = json.loads((tmp_path / "metrics" / "correspondence_zfnet.json").read_text())
    assert result["ran"] is False and set(result) == {"ran", "reason"}
    assert result["reason"].startswith(f"correspondence.root={tmp_path}/synthetic/imagenet is the built-in data, "
                                       "which data.name=imagenet does not generate")
    assert (tmp_path / "plots" / "correspondence_zfnet" / "NOT_RUN.txt").read_text() == result["reason"] + "\n"


def test_with_its_own_faces_the_stage_runs_on_any_data(workspace):
    result = run(workspace, "model=zfnet", "data=imagenet", f"data.root={workspace}/faces")
    assert "ran" not in result and result["images"] == 12
