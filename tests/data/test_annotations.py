"""Annotations mapped into the network's input, checked against coordinates worked out by hand."""

import json

import numpy as np
import pytest
from PIL import Image

from zfnet.data.annotations import geometry, read_annotations, read_metadata
from zfnet.errors import UserError


def test_geometry_of_a_landscape_image():
    # 200 x 100: the centre square is x 50..150; 100 -> 128 scales by 1.28; the 112 crop starts at 8
    geo = geometry(200, 100, size=128, crop=112)
    assert geo.point(60, 10) == pytest.approx((10 * 1.28 - 8, 10 * 1.28 - 8))
    assert geo.box([50, 0, 150, 100]) == pytest.approx([-8, -8, 120, 120])


def test_geometry_of_a_portrait_image_and_odd_crop_offset():
    geo = geometry(90, 150, size=90, crop=87)  # square rows 30..120, scale 1, offset round(1.5) = 2
    assert geo.point(45, 75) == pytest.approx((43, 43))


def write(root, records, size=(200, 100), mask_box=(60, 20, 100, 60)):
    for record in records:
        (root / record["path"]).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 90, 90)).save(root / record["path"])
        if "mask" in record:
            mask = np.zeros(size[::-1], dtype=np.uint8)
            x0, y0, x1, y1 = mask_box
            mask[y0:y1, x0:x1] = 255
            (root / record["mask"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / record["mask"])
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_boxes_parts_and_masks_land_where_the_crop_puts_them(tmp_path):
    write(tmp_path, [{"path": "val/a/1.png", "mask": "masks/a/1.png", "box": [60, 20, 100, 60], "label": 0,
                      "class": "a", "part_boxes": {"nose": [70, 30, 80, 40]}, "keypoints": {"nose": [75, 35]},
                      "rotation": 3.0}])
    note, missing = read_annotations(tmp_path, ["val/a/1.png", "val/a/2.png"], size=100, crop=90)
    assert missing is None
    # 200 x 100 -> square x 50..150, scale 1, crop offset 5: x' = x - 55, y' = y - 5
    assert note.box == pytest.approx([5, 15, 45, 55])
    assert note.parts["nose"] == pytest.approx([15, 25, 25, 35])
    assert note.keypoints["nose"] == pytest.approx((20, 30))
    assert note.mask.shape == (90, 90)
    rows, cols = np.nonzero(note.mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (15, 55, 5, 45)
    assert note.rotation == 3.0 and note.label == 0 and note.class_name == "a"


@pytest.mark.parametrize("line, words", [
    ("not json", ":1: not valid JSON"),
    ('{"box": [0, 0, 1, 1]}', ':1: expected a JSON object with a "path"'),
    ('{"path": "a.png", "box": [5, 0, 1, 1]}', ':1: "box" must be'),
    ('{"path": "a.png", "part_boxes": {"eye": [1, 2]}}', ":1: part_boxes['eye']"),
])
def test_malformed_metadata_names_the_file_and_line(tmp_path, line, words):
    path = tmp_path / "metadata.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UserError, match=str(path).replace("\\", "\\\\") + ".*"):
        read_metadata(path)
    with pytest.raises(UserError) as info:
        read_metadata(path)
    assert words in str(info.value)


def test_missing_metadata_or_image_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="metadata file not found"):
        read_metadata(tmp_path / "metadata.jsonl")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"path": "gone.png", "box": [0, 0, 2, 2]}) + "\n")
    with pytest.raises(UserError, match="gone.png: cannot read the image"):
        read_annotations(tmp_path, ["gone.png"], size=64, crop=56)
