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
                               caltech256_classes=3, transfer_per_class=3, image_size=48, voc_train=4, voc_val=3)
VOC = Path("VOCdevkit") / "VOC2012"


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
    assert summary["counts"] == {"imagenet/train": 12, "imagenet/val": 6, "caltech101": 6 + 3, "caltech256": 9 + 3,
                                 "voc2012/train": 4, "voc2012/val": 3}  # Caltech: classes + clutter
    assert summary["classes"] == {"imagenet": 3, "caltech101": 2, "caltech256": 3, "voc2012": 3}
    assert summary["images"] == 46 and summary["images_per_s"] > 0
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())

    dog = out / "imagenet" / "train" / "dog_face"
    assert sorted(p.name for p in dog.iterdir()) == [f"dog_face_{i:05d}.JPEG" for i in range(1, 5)]
    assert (out / "imagenet" / "val" / "wheel" / "wheel_00002.JPEG").is_file()
    assert (out / "imagenet" / "masks" / "val" / "wheel" / "wheel_00002.png").is_file()
    fox = out / "caltech101" / "101_ObjectCategories" / "fox_face"
    assert sorted(p.name for p in fox.iterdir()) == ["image_0001.jpg", "image_0002.jpg", "image_0003.jpg"]
    caltech256 = out / "caltech256" / "256_ObjectCategories"
    assert sorted(p.name for p in caltech256.iterdir()) == catalog["caltech256_folders"] + ["004.clutter"]
    assert catalog["caltech256_folders"][0] == "001.fox_face"
    assert (caltech256 / "003.mug" / "003_0003.jpg").is_file()
    assert sorted(p.name for p in (caltech256 / "004.clutter").iterdir()) == [f"004_{i:04d}.jpg" for i in (1, 2, 3)]
    background = out / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google"
    assert sorted(p.name for p in background.iterdir()) == ["image_0001.jpg", "image_0002.jpg", "image_0003.jpg"]
    assert catalog["voc2012"] == catalog["caltech256"]  # the transfer classes (Caltech-101's are a prefix)
    voc = out / VOC
    assert sorted(p.name for p in (voc / "JPEGImages").iterdir()) == [f"2012_00000{i}.jpg" for i in range(1, 8)]
    assert sorted(p.name for p in (voc / "Annotations").iterdir()) == [f"2012_00000{i}.xml" for i in range(1, 8)]

    image = Image.open(dog / "dog_face_00001.JPEG")
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (48, 48)


def test_imagefolder_reads_every_layout_and_labels_match_metadata(tiny):
    from torchvision.datasets import ImageFolder

    out, _ = tiny
    catalog = json.loads((out / "classes.json").read_text())
    train = ImageFolder(out / "imagenet" / "train")
    assert train.classes == sorted(catalog["pretrain"]) and len(train) == 12
    assert len(ImageFolder(out / "imagenet" / "val")) == 6
    caltech101 = ImageFolder(out / "caltech101" / "101_ObjectCategories").classes
    assert caltech101 == ["BACKGROUND_Google"] + sorted(catalog["caltech101"])
    caltech256 = ImageFolder(out / "caltech256" / "256_ObjectCategories").classes
    assert caltech256 == catalog["caltech256_folders"] + ["004.clutter"]

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
            if record["class"] in ("BACKGROUND_Google", "clutter"):
                continue
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


def test_torchvision_reads_the_caltech_trees_and_clutter_has_no_object(tiny):
    from torchvision.datasets import Caltech101, Caltech256

    out, _ = tiny
    catalog = json.loads((out / "classes.json").read_text())
    caltech101 = Caltech101(out, download=False)
    assert caltech101.categories == sorted(catalog["caltech101"]) and "BACKGROUND_Google" not in caltech101.categories
    assert len(caltech101) == TINY.caltech101_classes * TINY.transfer_per_class
    labels = {r["path"]: r["label"] for r in synthetic.read_metadata(out / "caltech101")}
    for i in range(len(caltech101)):
        image, target = caltech101[i]
        path = f"101_ObjectCategories/{caltech101.categories[target]}/image_{caltech101.index[i]:04d}.jpg"
        assert image.size == (48, 48) and labels[path] == target

    caltech256 = Caltech256(out, download=False)
    assert caltech256.categories == catalog["caltech256_folders"] + ["004.clutter"]
    assert len(caltech256) == (TINY.caltech256_classes + 1) * TINY.transfer_per_class
    labels = {r["path"]: r["label"] for r in synthetic.read_metadata(out / "caltech256")}
    for i in range(len(caltech256)):  # torchvision names the files from the folder's position
        image, target = caltech256[i]
        path = f"256_ObjectCategories/{caltech256.categories[target]}/{target + 1:03d}_{caltech256.index[i]:04d}.jpg"
        assert image.size == (48, 48) and labels[path] == target

    for dataset, name, label in (("caltech101", "BACKGROUND_Google", -1), ("caltech256", "clutter", 3)):
        clutter = [r for r in synthetic.read_metadata(out / dataset) if r["class"] == name]
        assert len(clutter) == TINY.transfer_per_class
        assert all(r["label"] == label and r["box"] is None and r["mask"] is None and "keypoints" not in r
                   for r in clutter)


def voc_targets(out: Path, image_set: str) -> list[dict]:
    from torchvision.datasets import VOCDetection

    dataset = VOCDetection(out, year="2012", image_set=image_set, download=False)
    targets = []
    for image, target in (dataset[i] for i in range(len(dataset))):
        assert image.size == (48, 48) and image.mode == "RGB"
        targets.append(target["annotation"])
    return targets


def test_torchvision_reads_the_voc_tree(tiny):
    out, _ = tiny
    classes = json.loads((out / "classes.json").read_text())["voc2012"]
    ids = {split: [t["filename"][:-4] for t in voc_targets(out, split)] for split in ("train", "val", "trainval")}
    assert ids["train"] == [f"2012_{i:06d}" for i in (1, 2, 3, 4)] and ids["val"] == [f"2012_{i:06d}" for i in (5, 6, 7)]
    assert ids["trainval"] == ids["train"] + ids["val"]
    objects = 0
    for split in ("train", "val"):
        for i, target in enumerate(voc_targets(out, split)):
            assert target["folder"] == "VOC2012" and target["size"] == {"width": "48", "height": "48", "depth": "3"}
            names = [obj["name"] for obj in target["object"]]
            assert 1 <= len(names) <= TINY.voc_max_objects and set(names) <= set(classes)
            assert classes[i % len(classes)] in names  # the first object's class cycles: every class has positives
            for obj in target["object"]:
                box = [int(obj["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                assert 1 <= box[0] <= box[2] <= 48 and 1 <= box[1] <= box[3] <= 48, box  # 1-based, inclusive
                assert obj["difficult"] in ("0", "1") and obj["truncated"] in ("0", "1")
                objects += 1
    assert objects > 7, "some scenes hold several objects"


def test_voc_class_lists_agree_with_the_annotations(tiny):
    out, _ = tiny
    classes = json.loads((out / "classes.json").read_text())["voc2012"]
    main = out / VOC / "ImageSets" / "Main"
    for split in ("train", "val", "trainval"):
        for name in classes:
            expected = []
            for target in voc_targets(out, split):
                difficult = [obj["difficult"] == "1" for obj in target["object"] if obj["name"] == name]
                label = -1 if not difficult else 0 if all(difficult) else 1
                expected.append(f"{target['filename'][:-4]} {' 1' if label == 1 else ' 0' if label == 0 else '-1'}")
            assert main.joinpath(f"{name}_{split}.txt").read_text().splitlines() == expected, (name, split)


def test_voc_class_label_is_zero_when_every_object_of_the_class_is_difficult(tmp_path):
    from zfnet.data.synthetic import voc

    records = [{"id": "2012_000001", "split": "train", "objects": [{"class": "a", "difficult": 1}]},
               {"id": "2012_000002", "split": "train", "objects": [{"class": "a", "difficult": 1},
                                                                   {"class": "a", "difficult": 0}]},
               {"id": "2012_000003", "split": "val", "objects": [{"class": "b", "difficult": 0}]}]
    voc.write_image_sets(tmp_path, ["a", "b"], records)
    main = tmp_path / "ImageSets" / "Main"
    assert (main / "a_trainval.txt").read_text() == "2012_000001  0\n2012_000002  1\n2012_000003 -1\n"
    assert (main / "b_train.txt").read_text() == "2012_000001 -1\n2012_000002 -1\n"
    assert (main / "val.txt").read_text() == "2012_000003\n"


def test_no_voc_tree_when_both_voc_splits_are_zero(tmp_path):
    spec = replace(TINY, num_classes=2, train_per_class=1, val_per_class=1, transfer_per_class=1, voc_train=0,
                   voc_val=0)
    summary = synthetic.generate(spec, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "VOCdevkit").exists()
    assert summary["classes"]["voc2012"] == 0 and not any(k.startswith("voc2012") for k in summary["counts"])
    with pytest.raises(UserError, match="synthetic.voc_val=2: expected 0 without transfer classes"):
        synthetic.class_catalog(replace(spec, caltech101_classes=0, caltech256_classes=0, voc_val=2))


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


def scene(names, poses, seed=5) -> list[dict]:
    return synthetic.render_scene(names, np.random.default_rng(seed), 64, poses=poses, distractors=0)[1]["objects"]


def test_scene_boxes_follow_the_visible_masks_and_occlusion():
    alone = scene(["fox_face"], [(0.0, 0.6, (24.0, 32.0))])  # object 0 is drawn alike in any scene of this seed
    assert len(alone) == 1 and alone[0]["difficult"] == 0 and alone[0]["truncated"] == 0
    full = alone[0]["mask"]
    for x, difficult in ((44.0, 1), (50.0, 0)):  # an apple drawn over the fox: more or less of it hidden
        fox, apple = scene(["fox_face", "apple"], [(0.0, 0.6, (24.0, 32.0)), (0.0, 0.8, (x, 32.0))])
        assert (fox["class"], apple["class"]) == ("fox_face", "apple")
        lost = full & ~fox["mask"]
        assert not (fox["mask"] & ~full).any() and lost.sum() > 50 and (lost & ~apple["mask"]).sum() <= 3
        assert fox["difficult"] == difficult == int(fox["mask"].sum() < 0.5 * full.sum())
        for obj in (fox, apple):
            rows, cols = np.flatnonzero(obj["mask"].any(axis=1)), np.flatnonzero(obj["mask"].any(axis=0))
            assert obj["box"] == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    hidden = scene(["rocket", "pig_face"], [(0.0, 0.3, (32.0, 32.0)), (0.0, 0.9, (32.0, 32.0))])
    assert [obj["class"] for obj in hidden] == ["pig_face"], "an object with no visible pixel is left out"
    edge = scene(["mug"], [(0.0, 0.5, (3.0, 32.0))])[0]
    assert edge["truncated"] == 1 and edge["box"][0] == 0


def test_random_scenes_keep_boxes_inside_the_image():
    spec = synthetic.SyntheticSpec()
    for seed in range(6):
        names = ["mug", "bird", "nut"][: 1 + seed % 3]
        image, meta = synthetic.render_scene(names, np.random.default_rng(seed), 64, spec)
        assert image.size == (64, 64) and 1 <= len(meta["objects"]) <= len(names)
        for obj in meta["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            assert spec.voc_scale_range[0] <= obj["scale"] <= spec.voc_scale_range[1]


def test_scene_objects_mostly_keep_apart():
    heavy = pairs = 0
    for seed in range(30):
        objects = synthetic.render_scene(["mug", "bird", "nut"], np.random.default_rng(seed), 32)[1]["objects"]
        circles = [(obj["center"], obj["scale"] * 32 / 2) for obj in objects]
        for i, (c1, r1) in enumerate(circles):
            for c2, r2 in circles[:i]:
                pairs += 1
                heavy += (r1 + r2 - np.hypot(c1[0] - c2[0], c1[1] - c2[1])) / min(r1, r2) > 0.3
    assert pairs > 60 and heavy < 0.2 * pairs  # bounding circles reaching a third into another are rare


def test_clutter_is_the_background_alone():
    image, meta = synthetic.render_clutter(np.random.default_rng(2), 64, distractors=2)
    assert image.size == (64, 64) and meta == {"distractors": 2}
    with pytest.raises(UserError, match="render_scene"):
        synthetic.render_scene([], np.random.default_rng(0), 64)


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
    ("voc_train", -1), ("voc_val", 1.5), ("voc_max_objects", 0), ("voc_scale_range", (0.6, 0.3)),
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
