"""What occlusion maps say about where the evidence is, measured against the object's box and mask.

    drop = sweep.base_p_true[:, None, None] - sweep.p_true           # (N, G, G), larger = more important
    hits = pointing_hits(drop, boxes, patch, stride, tolerance=7.5)   # (N,) bool
    cover = object_coverage(masks, patch, stride)                     # (N, G, G) share of the occluder on the object

Conventions (ours where the paper is silent):

* A position's point is the occluder's centre, (j*stride + patch/2, i*stride + patch/2) as (x, y).
* Pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop"): the point of
  the largest drop in p(true) (the first in row-major order on ties) is a hit when it lies within
  `tolerance` pixels of the object's box (Euclidean distance to the box; 0 inside). Zhang et al. use
  15 px at 224 px; callers scale it to the input size. The centre baseline points at the image centre.
* The same game against the object's mask (a hit within `tolerance` of an object pixel) is stricter
  where the box holds much background (rings, stars, thin shapes).
* "On the object": at least `object_share` (default 1/2) of the occluder's pixels are object pixels;
  "background only": none are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def occluder_centres(side: int, patch: int, stride: int) -> Tensor:
    """(G, G, 2) centres (x, y) of the occluder at each grid position [i, j]."""
    steps = torch.arange(side, dtype=torch.float64) * stride + patch / 2
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([x, y], dim=-1)


def distance_to_box(points: Tensor, boxes: Tensor) -> Tensor:
    """Euclidean distance from points (N, 2) (x, y) to boxes (N, 4) [x0, y0, x1, y1]; 0 inside."""
    boxes = boxes.to(points.dtype)
    dx = (boxes[:, 0] - points[:, 0]).clamp(min=0) + (points[:, 0] - boxes[:, 2]).clamp(min=0)
    dy = (boxes[:, 1] - points[:, 1]).clamp(min=0) + (points[:, 1] - boxes[:, 3]).clamp(min=0)
    return torch.hypot(dx, dy)


def pointing_hits(drop: Tensor, boxes: Tensor, patch: int, stride: int, tolerance: float) -> Tensor:
    """(N,) bool: the largest drop of each (N, G, G) map points within `tolerance` px of its box."""
    return distance_to_box(largest_drop_points(drop, patch, stride), boxes.cpu()) <= tolerance


def largest_drop_points(drop: Tensor, patch: int, stride: int) -> Tensor:
    """(N, 2) the (x, y) centre of the occluder where each (N, G, G) map drops most (first on ties)."""
    side = drop.shape[-1]
    return occluder_centres(side, patch, stride).view(-1, 2)[drop.flatten(1).argmax(dim=1).cpu()]


def mask_hits(points: Tensor, masks: Tensor, tolerance: float) -> Tensor:
    """(N,) bool: points (N, 2) (x, y) lie within `tolerance` px of an object pixel of masks (N, S, S)
    (pixel (r, c) is the unit square with centre (c + 0.5, r + 0.5))."""
    hits = []
    for point, mask in zip(points.double(), masks.cpu()):
        rows, cols = torch.nonzero(mask, as_tuple=True)
        if len(rows) == 0:
            hits.append(False)
            continue
        dx = ((cols.double() - point[0]).clamp(min=0) + (point[0] - cols.double() - 1).clamp(min=0))
        dy = ((rows.double() - point[1]).clamp(min=0) + (point[1] - rows.double() - 1).clamp(min=0))
        hits.append(bool(torch.hypot(dx, dy).min() <= tolerance))
    return torch.tensor(hits)


def centre_hits(boxes: Tensor, size: int, tolerance: float) -> Tensor:
    """(N,) bool: the pointing game's centre baseline, which always points at the image centre."""
    centre = torch.full((len(boxes), 2), size / 2, dtype=torch.float64)
    return distance_to_box(centre, boxes.cpu()) <= tolerance


def object_coverage(masks: Tensor, patch: int, stride: int) -> Tensor:
    """(N, G, G): the share of the occluder's pixels that are object pixels, for (N, S, S) bool masks."""
    return F.avg_pool2d(masks.double().unsqueeze(1), patch, stride).squeeze(1)


def drop_on_object(drop: Tensor, coverage: Tensor, object_share: float = 0.5) -> tuple[Tensor, Tensor]:
    """Per image, the mean drop over positions on the object and over background-only positions
    ((N,) each; NaN where an image has no such position)."""
    on_object = coverage >= object_share
    background = coverage == 0
    return _masked_mean(drop, on_object), _masked_mean(drop, background)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    values = values.double().cpu()
    mask = mask.cpu()
    count = mask.sum(dim=(1, 2))
    total = (values * mask).sum(dim=(1, 2))
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def energy_centroids(projections: Tensor) -> Tensor:
    """(N, 2) the (x, y) centre of mass of |projection| (summed over colour) of (N, 3, S, S) projections,
    in pixel-centre coordinates ((c + 0.5, r + 0.5) for pixel (r, c)); the image centre when all zero."""
    weight = projections.abs().sum(dim=1).double().cpu()  # (N, S, S)
    n, height, width = weight.shape
    total = weight.sum(dim=(1, 2))
    ys = torch.arange(height, dtype=torch.float64) + 0.5
    xs = torch.arange(width, dtype=torch.float64) + 0.5
    x = (weight.sum(dim=1) * xs).sum(dim=1) / total.clamp(min=1e-300)
    y = (weight.sum(dim=2) * ys).sum(dim=1) / total.clamp(min=1e-300)
    centre = torch.tensor([width / 2, height / 2], dtype=torch.float64)
    return torch.where((total > 0)[:, None], torch.stack([x, y], dim=1), centre)


def covers(points: Tensor, side: int, patch: int, stride: int) -> Tensor:
    """(N, G, G) bool: the occluder at [i, j] covers point n (x, y): i*stride <= y < i*stride + patch, same in x."""
    starts = torch.arange(side, dtype=torch.float64) * stride
    inside = lambda v: (starts <= v[:, None]) & (v[:, None] < starts + patch)  # noqa: E731
    return inside(points[:, 1].double())[:, :, None] & inside(points[:, 0].double())[:, None, :]


def masked_means(values: Tensor, where: Tensor) -> tuple[Tensor, Tensor]:
    """Per image, the mean of (N, G, G) `values` where `where` holds and where it does not (NaN if none)."""
    return _masked_mean(values, where), _masked_mean(values, ~where)


def label_change_share(top_label: Tensor, base_label: Tensor) -> Tensor:
    """(N,): the share of positions whose most probable class differs from the unoccluded image's."""
    return (top_label != base_label[:, None, None]).double().mean(dim=(1, 2))
