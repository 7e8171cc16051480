"""The generate stage's samples, read back from files written here by hand."""

import numpy as np
from PIL import Image

from zfnet.data.synthetic.samples import first_per_class, voc_scenes


def test_the_first_images_of_each_class_in_sorted_order(tmp_path):
    for name, count in (("b_cat", 3), ("a_dog", 1), ("c_owl", 2)):
        (tmp_path / name).mkdir()
        for i in range(count):   # written in reverse: the order read must come from the names
            value = 10 * (count - 1 - i) + ord(name[0])
            Image.fromarray(np.full((4, 5, 3), value, np.uint8)).save(tmp_path / name / f"{count - 1 - i}.png")
    (tmp_path / "notes.txt").write_text("not a class")
    images, titles = first_per_class(tmp_path, per_class=2)
    assert titles == ["a_dog", "b_cat", "b_cat", "c_owl", "c_owl"]
    assert [int(image[0, 0, 0]) for image in images] == [ord("a"), ord("b"), 10 + ord("b"), ord("c"), 10 + ord("c")]
    assert all(image.shape == (4, 5, 3) and image.dtype == np.uint8 for image in images)


ANNOTATION = """<annotation><folder>VOC2012</folder><filename>{id}.jpg</filename>
<size><width>8</width><height>6</height><depth>3</depth></size>
<object><name>dog</name><difficult>{difficult}</difficult><bndbox><xmin>2</xmin><ymin>1</ymin><xmax>5</xmax><ymax>4</ymax>
</bndbox></object></annotation>"""


def write_voc(root, ids):
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True)
    for i, scene in enumerate(ids):
        Image.fromarray(np.full((6, 8, 3), 50 * i, np.uint8)).save(voc / "JPEGImages" / f"{scene}.jpg")
        (voc / "Annotations" / f"{scene}.xml").write_text(ANNOTATION.format(id=scene, difficult=i % 2))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("".join(f"{scene}\n" for scene in ids))


def test_voc_scenes_are_the_first_train_scenes_with_their_annotations(tmp_path):
    write_voc(tmp_path, ["2012_000001", "2012_000002"])
    scenes = voc_scenes(tmp_path, count=5)
    assert len(scenes) == 2 and len(voc_scenes(tmp_path, count=1)) == 1
    image, target = scenes[1]
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    [obj] = target["annotation"]["object"]
    assert obj["name"] == "dog" and obj["difficult"] == "1"
    assert obj["bndbox"] == {"xmin": "2", "ymin": "1", "xmax": "5", "ymax": "4"}
