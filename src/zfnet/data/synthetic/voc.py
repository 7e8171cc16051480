"""The PASCAL VOC 2012-style part of the built-in dataset: annotation XML and the ImageSets lists.

Layout (as the real VOCtrainval tar, what torchvision.datasets.VOCDetection reads), under out_dir:
    VOCdevkit/VOC2012/JPEGImages/2012_000001.jpg
    VOCdevkit/VOC2012/Annotations/2012_000001.xml
    VOCdevkit/VOC2012/ImageSets/Main/{train,val,trainval}.txt            one image id a line
    VOCdevkit/VOC2012/ImageSets/Main/<class>_{train,val,trainval}.txt    "<id> <label>", label  1 / 0 / -1
Ids number the train images first, then the val ones. A class list's label is 1 if the image holds a
non-difficult object of the class, 0 if it holds only difficult ones, -1 if none (the real files' rule
and format). Boxes in the XML follow VOC: 1-based, inclusive pixel indices.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

VOC_DIR = "VOCdevkit/VOC2012"  # the dataset folder under out_dir
SPLITS = ("train", "val")


def image_id(number: int) -> str:
    return f"2012_{number:06d}"


def annotation_xml(image_id: str, size: int, objects: list[dict]) -> str:
    """The annotation file of one image, shaped as VOC 2012's. objects: dicts with "class", "box"
    [x0, y0, x1, y1] (0-based pixels, x1/y1 exclusive), "truncated" and "difficult"."""
    root = ET.Element("annotation")

    def add(parent: ET.Element, tag: str, text=None) -> ET.Element:
        element = ET.SubElement(parent, tag)
        if text is not None:
            element.text = str(text)
        return element

    add(root, "folder", "VOC2012")
    add(root, "filename", f"{image_id}.jpg")
    source = add(root, "source")
    add(source, "database", "The zfnet synthetic database")
    add(source, "annotation", "PASCAL VOC2012 layout")
    add(source, "image", "procedurally generated")
    shape = add(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        add(shape, tag, value)
    add(root, "segmented", 0)
    for obj in objects:
        element = add(root, "object")
        add(element, "name", obj["class"])
        add(element, "pose", "Unspecified")
        add(element, "truncated", int(obj["truncated"]))
        add(element, "difficult", int(obj["difficult"]))
        box = add(element, "bndbox")
        x0, y0, x1, y1 = obj["box"]
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            add(box, tag, int(value))
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def presence(objects: list[dict], class_name: str) -> int:
    """A class list's label: 1 (a non-difficult object of the class), 0 (only difficult ones), -1 (none)."""
    difficult = [obj["difficult"] for obj in objects if obj["class"] == class_name]
    if not difficult:
        return -1
    return 0 if all(difficult) else 1


def write_image_sets(voc_root: Path, classes: list[str], records: list[dict]) -> None:
    """ImageSets/Main lists from per-image records {"id", "split", "objects": [{"class", "difficult"}]}."""
    main = voc_root / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    sets = {split: [r for r in records if r["split"] == split] for split in SPLITS}
    sets["trainval"] = sets["train"] + sets["val"]

    def write(path: Path, lines: list[str]) -> None:
        path.write_text("".join(line + "\n" for line in lines))

    for name, chosen in sets.items():
        write(main / f"{name}.txt", [r["id"] for r in chosen])
        for class_name in classes:
            write(main / f"{class_name}_{name}.txt",
                  [f"{r['id']} {presence(r['objects'], class_name):2d}" for r in chosen])
