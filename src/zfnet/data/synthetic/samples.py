"""A few images of the written dataset, read back as a user's code would (for the generate stage's sample sheets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def first_per_class(split_dir: Path, per_class: int = 4) -> tuple[list[np.ndarray], list[str]]:
    """(HWC uint8 images, their class names): the first `per_class` files of each class folder of an ImageFolder
    split, classes and files in sorted order."""
    images, titles = [], []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for path in sorted(class_dir.iterdir())[:per_class]:
            images.append(np.asarray(Image.open(path).convert("RGB")))
            titles.append(class_dir.name)
    return images, titles


def voc_scenes(root: Path, count: int = 8) -> list[tuple[np.ndarray, dict]]:
    """The first `count` VOC 2012 train scenes under `root` as torchvision's VOCDetection reads them: (HWC uint8
    image, its target: {"annotation": {..., "object": [{"name", "bndbox", "difficult", ...}]}})."""
    from torchvision.datasets import VOCDetection

    scenes = VOCDetection(root, year="2012", image_set="train")
    return [(np.asarray(image), target) for image, target in (scenes[i] for i in range(min(count, len(scenes))))]
