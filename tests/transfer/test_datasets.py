"""Transfer datasets listed by torchvision and decoded as for pretraining (zfnet.transfer.datasets).

The trees here are drawn by hand in the real datasets' layouts, independently of the built-in generator
(tests/data/test_synthetic.py checks that torchvision reads the generated ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zfnet.errors import UserError
from zfnet.transfer import datasets

COLOURS = {"ant": (200, 30, 30), "bee": (30, 200, 30), "clutter": (30, 30, 200), "BACKGROUND_Google": (90, 90, 90)}


def save_image(path: Path, colour, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def caltech_root(tmp_path) -> Path:
    for name, count in (("BACKGROUND_Google", 2), ("ant", 3), ("bee", 2)):
        for i in range(1, count + 1):
            save_image(tmp_path / "caltech101" / "101_ObjectCategories" / name / f"image_{i:04d}.jpg", COLOURS[name])
    for number, (name, count) in enumerate((("ant", 2), ("bee", 3), ("clutter", 2)), start=1):
        for i in range(1, count + 1):
            folder = tmp_path / "caltech256" / "256_ObjectCategories" / f"{number:03d}.{name}"
            save_image(folder / f"{number:03d}_{i:04d}.jpg", COLOURS[name])
    return tmp_path


def test_caltech101_leaves_out_the_background_class(caltech_root):
    listing = datasets.list_caltech("caltech101", caltech_root)
    assert listing.classes == ["ant", "bee"]
    assert listing.labels.tolist() == [0, 0, 0, 1, 1]
    assert [Path(f).parent.name for f in listing.files] == ["ant"] * 3 + ["bee"] * 2


def test_caltech101_adds_the_background_class_last_when_asked(caltech_root):
    listing = datasets.list_caltech("caltech101", caltech_root, background=True)
    assert listing.classes == ["ant", "bee", "BACKGROUND_Google"]     # last: ant and bee keep labels 0, 1
    assert listing.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert [Path(f).parent.name for f in listing.files] == ["ant"] * 3 + ["bee"] * 2 + ["BACKGROUND_Google"] * 2
    assert all(Path(f).is_file() for f in listing.files)


def test_caltech101_background_without_its_folder_names_the_key(caltech_root):
    for path in (caltech_root / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google").iterdir():
        path.rename(path.with_suffix(".png"))     # torchvision still sees the folder; no image_*.jpg in it
    with pytest.raises(UserError, match=r"transfer\.caltech101\.background: .*BACKGROUND_Google holds no image_\*\.jpg"):
        datasets.list_caltech("caltech101", caltech_root, background=True)


@pytest.mark.parametrize("clutter", [False, True])
def test_caltech256_clutter_is_kept_only_when_asked(caltech_root, clutter):
    listing = datasets.list_caltech("caltech256", caltech_root, clutter=clutter)
    expected = ["001.ant", "002.bee"] + (["003.clutter"] if clutter else [])
    assert listing.classes == expected
    assert [listing.classes[y] for y in listing.labels] == [Path(f).parent.name for f in listing.files]
    assert len(listing.files) == 5 + 2 * clutter
    assert all(Path(f).is_file() for f in listing.files)


def test_decode_skips_bad_files_and_keeps_labels_aligned(caltech_root):
    bad = caltech_root / "caltech101" / "101_ObjectCategories" / "ant" / "image_0002.jpg"
    bad.write_bytes(b"not a jpeg")
    target = datasets.decode(datasets.list_caltech("caltech101", caltech_root), size=16, progress=False)
    assert target.images.shape == (4, 16, 16, 3) and target.images.dtype == np.uint8
    assert target.skipped == [(str(bad), "not a decodable image")]
    assert target.labels.tolist() == [0, 0, 1, 1] and str(bad) not in target.files
    reds = target.images[target.labels == 0][..., 0].mean()
    assert reds > 150  # the ant images are red: pixels and labels still belong together


def test_missing_root_names_the_config_key(tmp_path):
    with pytest.raises(UserError, match=r"transfer\.roots\.caltech101: .* has no caltech101/101_ObjectCategories"):
        datasets.list_caltech("caltech101", tmp_path)
    with pytest.raises(UserError, match=r"transfer\.roots\.pascal"):
        datasets.list_voc(tmp_path, "train")


def write_voc(root: Path, image_set: str, annotations: dict[str, list[tuple[str, int]]]) -> None:
    base = root / "VOCdevkit" / "VOC2012"
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in annotations))
    for image_id, objects in annotations.items():
        save_image(base / "JPEGImages" / f"{image_id}.jpg", (128, 128, 128))
        xml = "".join(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>1</xmin>"
                      f"<ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>" for name, difficult in objects)
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename>{xml}</annotation>")


def test_voc_targets_follow_the_difficult_rule(tmp_path):
    write_voc(tmp_path, "train", {"2012_000001": [("cat", 0), ("dog", 1)],
                                  "2012_000002": [("dog", 0), ("dog", 1)],
                                  "2012_000003": [("cat", 1)],
                                  "2012_000004": [("bird", 0), ("cat", 0)]})
    listing = datasets.list_voc(tmp_path, "train")
    assert listing.classes == ["bird", "cat", "dog"]
    assert listing.labels.tolist() == [[-1, 1, 0], [-1, -1, 1], [-1, 0, -1], [1, 1, -1]]
    assert [Path(f).name for f in listing.files] == [f"2012_00000{i}.jpg" for i in range(1, 5)]

    write_voc(tmp_path, "val", {"2012_000005": [("cow", 0)]})
    with pytest.raises(UserError, match="'cow' is not a class of the training set"):
        datasets.list_voc(tmp_path, "val", classes=listing.classes)
