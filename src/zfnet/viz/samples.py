"""The generate stage's sample sheets: the built-in dataset's train images, its VOC-style scenes with their boxes."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from zfnet.viz.figures import image_grid


def sample_sheet(images: list[np.ndarray], titles: list[str], per_class: int = 4):
    """`per_class` images per class (`zfnet.data.synthetic.samples.first_per_class`), two classes a row."""
    return image_grid(images, titles, ncols=per_class * 2, title="Built-in dataset: train samples")


def voc_sample_sheet(scenes: list[tuple[np.ndarray, dict]]):
    """VOC scenes (`zfnet.data.synthetic.samples.voc_scenes`) with each object's box (red: difficult) and class."""
    fig = image_grid([image for image, _ in scenes], ncols=4, cell=1.6,
                     title="Built-in dataset: VOC-style train scenes")
    for ax, (_, target) in zip(fig.axes, scenes):
        for obj in target["annotation"].get("object", []):
            box = {k: int(v) for k, v in obj["bndbox"].items()}  # 1-based inclusive: pixel i spans [i-1.5, i-0.5]
            ax.add_patch(Rectangle((box["xmin"] - 1.5, box["ymin"] - 1.5), box["xmax"] - box["xmin"] + 1,
                                   box["ymax"] - box["ymin"] + 1, fill=False, lw=1, ec="red" if obj["difficult"] == "1"
                                   else "lime"))
            ax.text(box["xmin"] - 1.5, box["ymin"] - 1.5, obj["name"], fontsize=5, color="black", va="bottom",
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "lw": 0})
    return fig
