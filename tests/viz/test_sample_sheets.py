"""The generate stage's sample sheets: one panel per image, one box per annotated object."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from zfnet.viz.samples import sample_sheet, voc_sample_sheet


def test_the_sample_sheet_shows_two_classes_a_row_with_their_names():
    images = [np.full((6, 6, 3), v, np.uint8) for v in range(12)]
    titles = [f"class{i // 3}" for i in range(12)]
    fig = sample_sheet(images, titles, per_class=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 12 and len(shown) == 12 and fig.axes[0].get_gridspec().ncols == 6
    assert [ax.get_title() for ax in shown] == titles
    plt.close(fig)


def test_each_voc_object_gets_its_box_red_when_difficult():
    obj = {"name": "dog", "difficult": "0", "bndbox": {"xmin": "2", "ymin": "3", "xmax": "5", "ymax": "4"}}
    scenes = [(np.zeros((8, 8, 3), np.uint8), {"annotation": {"object": [obj, {**obj, "difficult": "1"}]}}),
              (np.zeros((8, 8, 3), np.uint8), {"annotation": {}})]              # a scene with no object
    fig = voc_sample_sheet(scenes)
    boxes = [[p for p in ax.patches if isinstance(p, Rectangle)] for ax in fig.axes[:2]]
    assert [len(b) for b in boxes] == [2, 0]
    first = boxes[0][0]
    # 1-based inclusive pixels 2..5 of x: pixel i covers [i - 1.5, i - 0.5] in imshow's coordinates
    assert (first.get_x(), first.get_y(), first.get_width(), first.get_height()) == (0.5, 1.5, 4, 2)
    assert [b.get_edgecolor()[:3] for b in boxes[0]] == [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]   # lime, red
    assert [t.get_text() for t in fig.axes[0].texts] == ["dog", "dog"]
    plt.close(fig)
