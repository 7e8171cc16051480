"""The occlusion measures on maps small enough to work out by hand."""

import math

import pytest
import torch

from zfnet.probes.occlusion_measures import (
    centre_hits,
    covers,
    distance_to_box,
    drop_on_object,
    energy_centroids,
    label_change_share,
    largest_drop_points,
    mask_hits,
    masked_means,
    object_coverage,
    occluder_centres,
    pointing_hits,
)


def test_occluder_centres_are_x_then_y():
    centres = occluder_centres(side=3, patch=4, stride=5)
    assert centres[0, 0].tolist() == [2, 2]
    assert centres[1, 2].tolist() == [12, 7]  # row i=1 -> y = 5 + 2, column j=2 -> x = 10 + 2


def test_distance_to_box():
    boxes = torch.tensor([[10.0, 10, 20, 20]] * 3)
    points = torch.tensor([[15.0, 15], [23, 24], [5, 12]])
    assert distance_to_box(points, boxes).tolist() == pytest.approx([0, 5, 5])


def test_pointing_game_takes_the_first_largest_drop():
    drop = torch.zeros(2, 3, 3)
    drop[0, 2, 0] = 0.5  # centre (x, y) = (0*8 + 4, 2*8 + 4) = (4, 20)
    drop[1, 0, 1] = drop[1, 2, 2] = 0.3  # a tie: the first in row-major order, centre (12, 4)
    assert largest_drop_points(drop, patch=8, stride=8).tolist() == [[4, 20], [12, 4]]
    boxes = torch.tensor([[0.0, 14, 8, 24], [20, 0, 24, 8]])
    assert pointing_hits(drop, boxes, 8, 8, tolerance=7.5).tolist() == [True, False]  # second: 8 px away
    assert pointing_hits(drop, boxes, 8, 8, tolerance=8.0).tolist() == [True, True]


def test_centre_baseline():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 30, 30]])
    # centre (16, 16) of a 32 px image: 6 * sqrt(2) = 8.49 px from the first box, inside the second
    assert centre_hits(boxes, 32, tolerance=8.4).tolist() == [False, True]
    assert centre_hits(boxes, 32, tolerance=8.5).tolist() == [True, True]


def test_mask_hits_measure_to_the_nearest_object_pixel():
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 2, 3] = mask[0, 9, 9] = True  # the unit squares x 3..4, y 2..3 and x 9..10, y 9..10
    assert mask_hits(torch.tensor([[3.5, 2.5]]), mask, 0).tolist() == [True]
    assert mask_hits(torch.tensor([[7.0, 2.5]]), mask, 2.9).tolist() == [False]  # 3 px to the right
    assert mask_hits(torch.tensor([[7.0, 6.0]]), mask, 5.0).tolist() == [True]  # (3, 3) away: 4.24
    assert mask_hits(torch.tensor([[7.0, 6.0]]), torch.zeros(1, 10, 10, dtype=torch.bool), 100).tolist() == [False]


def test_object_coverage_and_drops():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True  # the top-left quarter
    cover = object_coverage(mask, patch=2, stride=1)  # 3 x 3 positions
    assert cover[0].tolist() == [[1, 0.5, 0], [0.5, 0.25, 0], [0, 0, 0]]
    drop = torch.arange(9.0).view(1, 3, 3)
    on_object, background = drop_on_object(drop, cover)  # share >= 0.5: 0, 1, 3; none: 2, 5, 6, 7, 8
    assert on_object.tolist() == pytest.approx([(0 + 1 + 3) / 3])
    assert background.tolist() == pytest.approx([(2 + 5 + 6 + 7 + 8) / 5])
    on_object, _ = drop_on_object(drop, torch.zeros_like(cover))
    assert math.isnan(on_object[0])


def test_energy_centroids_and_covering_positions():
    projections = torch.zeros(2, 3, 8, 8)
    projections[0, 0, 2, 6] = -3.0  # all the energy in pixel (row 2, col 6): centre (6.5, 2.5)
    projections[0, 1, 2, 6] = 1.0
    centres = energy_centroids(projections)
    assert centres.tolist() == [[6.5, 2.5], [4.0, 4.0]]  # an empty projection: the image centre
    cover = covers(centres, side=3, patch=4, stride=2)  # occluders start at 0, 2, 4
    assert cover[0].tolist() == [[False, False, True], [False, False, True], [False, False, False]]
    assert cover[1].sum() == 4  # 4.0 lies in [2, 6) and [4, 8)
    inside, outside = masked_means(torch.arange(9.0).view(1, 3, 3), cover[:1])
    assert inside.tolist() == [3.5] and outside.tolist() == pytest.approx([(36 - 2 - 5) / 7])


def test_label_change_share():
    top = torch.tensor([[[1, 1], [2, 1]], [[0, 0], [0, 0]]])
    assert label_change_share(top, torch.tensor([1, 3])).tolist() == [0.25, 1.0]
