import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zfnet.data import synthetic
from zfnet.errors import UserError

TINY = synthetic.SyntheticSpec(num_classes=3, train_per_class=4, val_per_class=2, caltech101_classes=2,
                               caltech256_classes=3, transfer_per_class=3, image_size=48)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    out.mkdir()
    (out / "stale.txt").write_text("left from an older run")
    summary = synthetic.generate(TINY, out, workers=1, progress=False)
    return out, summary


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def frontal_mask(name: str, rotation: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    _, meta = synthetic.render(name, rng, 64, rotation=rotation, scale=0.8, center=(32.0, 32.0), background=False)
    return meta["mask"]


# ----------------------------------------------------------------------------- files on disk


def test_same_seed_same_bytes_whatever_the_worker_count(tiny, tmp_path):
    out, _ = tiny
    again = tmp_path / "again"
    synthetic.generate(TINY, again, workers=2, progress=False)
    assert digests(again) == digests(out)

    other = tmp_path / "other"
    synthetic.generate(replace(TINY, seed=1), other, workers=1, progress=False)
    images = [p for p in digests(out) if p.endswith((".JPEG", ".jpg"))]
    changed = [p for p in images if digests(other)[p] != digests(out)[p]]
    assert sorted(digests(other)) == sorted(digests(out)) and len(changed) == len(images)


def test_replaces_the_output_folder_atomically(tiny):
    out, _ = tiny
    assert not (out / "stale.txt").exists()
    assert [p.name for p in out.parent.iterdir()] == [out.name], "no temporary folder left beside it"


def test_layouts_counts_and_summary(tiny):
    out, summary = tiny
    catalog = json.loads((out / "classes.json").read_text())
    assert catalog["spec"]["seed"] == TINY.seed
    assert summary["counts"] == {"imagenet/train": 12, "imagenet/val": 6, "caltech101": 6, "caltech256": 9}
    assert summary["images"] == 33 and summary["images_per_s"] > 0
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())

    dog = out / "imagenet" / "train" / "dog_face"
    assert sorted(p.name for p in dog.iterdir()) == [f"dog_face_{i:05d}.JPEG" for i in range(1, 5)]
    assert (out / "imagenet" / "val" / "wheel" / "wheel_00002.JPEG").is_file()
    assert (out / "imagenet" / "masks" / "val" / "wheel" / "wheel_00002.png").is_file()
    fox = out / "caltech101" / "101_ObjectCategories" / "fox_face"
    assert sorted(p.name for p in fox.iterdir()) == ["image_0001.jpg", "image_0002.jpg", "image_0003.jpg"]
    caltech256 = out / "caltech256" / "256_ObjectCategories"
    assert sorted(p.name for p in caltech256.iterdir()) == catalog["caltech256_folders"]
    assert catalog["caltech256_folders"][0] == "001.fox_face"
    assert (caltech256 / "003.mug" / "003_0003.jpg").is_file()

    image = Image.open(dog / "dog_face_00001.JPEG")
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (48, 48)


def test_imagefolder_reads_every_layout_and_labels_match_metadata(tiny):
    from torchvision.datasets import ImageFolder

    out, _ = tiny
    catalog = json.loads((out / "classes.json").read_text())
    train = ImageFolder(out / "imagenet" / "train")
    assert train.classes == sorted(catalog["pretrain"]) and len(train) == 12
    assert len(ImageFolder(out / "imagenet" / "val")) == 6
    assert ImageFolder(out / "caltech101" / "101_ObjectCategories").classes == sorted(catalog["caltech101"])
    assert ImageFolder(out / "caltech256" / "256_ObjectCategories").classes == catalog["caltech256_folders"]

    records = synthetic.read_metadata(out / "imagenet", split="train")
    label_of = {str(out / "imagenet" / r["path"]): r["label"] for r in records}
    assert {path: target for path, target in train.samples} == label_of
    image, target = train[0]
    assert image.size == (48, 48) and isinstance(target, int)


def test_metadata_boxes_masks_and_keypoints(tiny):
    out, _ = tiny
    for dataset in ("imagenet", "caltech101", "caltech256"):
        records = synthetic.read_metadata(out / dataset)
        assert len(records) == len(set(r["path"] for r in records)) > 0
        for record in records:
            mask = np.asarray(Image.open(out / dataset / record["mask"]))
            assert mask.dtype == bool and mask.shape == (48, 48)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert record["box"] == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            parts = synthetic.class_info(record["class"])["parts"]
            assert sorted(record["keypoints"]) == sorted(parts) == sorted(record["part_boxes"])
    faces = [r for r in synthetic.read_metadata(out / "imagenet") if r["class"] == "dog_face"]
    for record in faces:
        x0, y0, x1, y1 = record["box"]
        mask = np.asarray(Image.open(out / "imagenet" / record["mask"]))
        for name in synthetic.FACE_KEYPOINTS:
            x, y = record["keypoints"][name]
            assert x0 <= x < x1 and y0 <= y < y1 and mask[int(y), int(x)], (record["path"], name)


# ----------------------------------------------------------------------------- rendering


def test_face_keypoints_lie_on_the_face_and_follow_the_subjects_side():
    faces = [n for n in synthetic.CLASS_ORDER if synthetic.CLASSES[n].family == "face"]
    assert len(faces) >= 10
    for name in faces:
        assert set(synthetic.FACE_KEYPOINTS) <= set(synthetic.class_info(name)["parts"])
        for seed in range(3):
            _, meta = synthetic.render(name, np.random.default_rng(seed), 64)  # random pose, clutter
            x0, y0, x1, y1 = meta["box"]
            for part in synthetic.FACE_KEYPOINTS:
                x, y = meta["keypoints"][part]
                assert x0 <= x < x1 and y0 <= y < y1 and meta["mask"][int(y), int(x)], (name, seed, part)
            _, frontal = synthetic.render_frontal_face(name, np.random.default_rng(seed), 64)
            left, right, nose = (frontal["keypoints"][k] for k in ("left_eye", "right_eye", "nose"))
            assert frontal["rotation"] == 0.0
            assert left[0] > nose[0] > right[0], "the subject's left eye is on the image's right"
            assert abs(left[1] - right[1]) < 0.5 and nose[1] > left[1]
    with pytest.raises(UserError, match="not a face"):
        synthetic.render_frontal_face("wheel", np.random.default_rng(0), 64)


@pytest.mark.parametrize("name", synthetic.CLASS_ORDER)
def test_rotational_symmetry_matches_the_catalog(name):
    info = synthetic.class_info(name)
    upright = frontal_mask(name, 0.0)
    if info["rot_symmetric"]:
        assert iou(upright, frontal_mask(name, info["symmetry_angle"])) > 0.97
        assert iou(upright, frontal_mask(name, info["symmetry_angle"] / 2)) < 0.99 or name == "lifebuoy"
    else:
        assert max(iou(upright, frontal_mask(name, angle)) for angle in (90, 180, 270)) < 0.95


def test_explicit_pose_moves_the_same_object_over_the_same_background():
    def draw(**pose):
        return synthetic.render("house", np.random.default_rng(11), 96, distractors=0, **pose)

    image_a, a = draw(rotation=0.0, scale=0.5, center=(40.0, 48.0))
    image_b, b = draw(rotation=30.0, scale=0.75, center=(56.0, 44.0))
    turn = np.radians(30.0)
    for part, (x, y) in a["keypoints"].items():
        dx, dy = (x - 40.0) * 1.5, (y - 48.0) * 1.5  # counter-clockwise on screen, y down
        expected = (56.0 + dx * np.cos(turn) + dy * np.sin(turn), 44.0 - dx * np.sin(turn) + dy * np.cos(turn))
        assert np.allclose(b["keypoints"][part], expected, atol=0.03), part
    away = ~(a["mask"] | b["mask"])
    away[1:-1, 1:-1] &= away[:-2, 1:-1] & away[2:, 1:-1] & away[1:-1, :-2] & away[1:-1, 2:]  # off the edges
    assert away.sum() > 1000
    assert np.array_equal(np.asarray(image_a)[away], np.asarray(image_b)[away])
    assert not np.array_equal(np.asarray(image_a), np.asarray(image_b))


def test_image_mean_colour_is_a_weak_cue():
    """Palettes and backgrounds are shared: a nearest-centroid classifier on mean colour stays near chance."""
    names = synthetic.CLASS_ORDER[:10]
    colours, labels = [], []
    for label, name in enumerate(names):
        for i in range(12):
            image, _ = synthetic.render(name, np.random.default_rng([label, i]), 32)
            colours.append(np.asarray(image, np.float32).reshape(-1, 3).mean(axis=0))
            labels.append(label)
    x, y = np.array(colours), np.array(labels)
    hits = 0
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        centroids = np.array([x[others & (y == k)].mean(axis=0) for k in range(len(names))])
        hits += np.argmin(((centroids - x[i]) ** 2).sum(axis=1)) == y[i]
    assert hits / len(x) < 0.3  # chance is 0.1


# ----------------------------------------------------------------------------- catalog and errors


@pytest.mark.parametrize("num_classes", [2, 10, 20, 40])
def test_catalog_keeps_transfer_classes_disjoint(num_classes):
    spec = synthetic.SyntheticSpec(num_classes=num_classes)
    catalog = synthetic.class_catalog(spec)
    pretrain, transfer = set(catalog["pretrain"]), set(catalog["caltech101"]) | set(catalog["caltech256"])
    assert len(pretrain) == num_classes and len(catalog["caltech256"]) == spec.caltech256_classes
    assert not pretrain & transfer
    assert set(catalog["caltech101"]) <= set(catalog["caltech256"])
    families = {catalog["classes"][n]["family"] for n in pretrain}
    assert {"face", "radial"} <= families
    assert {"face", "radial", "object"} <= {catalog["classes"][n]["family"] for n in transfer}
    assert "dog_face" in pretrain and catalog["classes"]["wheel"]["rot_symmetric"]
    # Growing one list never changes the other's classes.
    assert catalog["caltech101"] == synthetic.class_catalog(replace(spec, num_classes=2))["caltech101"]


@pytest.mark.parametrize("field, value", [
    ("num_classes", 1), ("num_classes", 50), ("train_per_class", 0), ("val_per_class", -1),
    ("transfer_per_class", 0), ("image_size", 0), ("scale_range", (0.9, 0.5)), ("scale_range", (0.0, 0.5)),
    ("max_rotation", 200.0), ("jpeg_quality", 0), ("distractors", -1), ("seed", -3), ("caltech256_classes", -1),
])
def test_bad_spec_raises_user_error_naming_the_field(field, value, tmp_path):
    spec = replace(synthetic.SyntheticSpec(), **{field: value})
    with pytest.raises(UserError, match=f"synthetic.{field}"):
        synthetic.class_catalog(spec)
    with pytest.raises(UserError, match=f"synthetic.{field}"):
        synthetic.generate(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_render_rejects_unknown_class():
    with pytest.raises(UserError, match="unknown synthetic class 'unicorn'"):
        synthetic.render("unicorn", np.random.default_rng(0), 64)
