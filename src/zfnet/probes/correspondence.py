"""Correspondence analysis (paper Sec. 4.3, Table 1): is the same object part encoded the same way in
different images? Pure tensor functions; the stage `correspondence@<model>` does the reading and writing.

    occluded = occlude(inputs, boxes, fill=0.0)                       # one box per image, input pixels
    box = random_box(object_box, height=11, width=11, size=112, generator=g, mask=mask)
    x = layer_features(model, inputs, {"layer5": "pool5", "layer7": "relu7"})
    x_occ = layer_features(model, occluded, {"layer5": "pool5", "layer7": "relu7"})
    e = x["layer5"] - x_occ["layer5"]                                 # e_i = x_i - x~_i, (N, D)
    strict, ignore_zeros = pairwise_sign_disagreement(e)               # (N, N) each
    both, both_share = pairwise_changed_in_both(e)                     # only coordinates nonzero in e_i and e_j
    subsets = draw_subsets(len(e), k=5, draws=100, generator=g)        # (100, 5) image indices
    draw_statistics(strict, ignore_zeros, subsets)                     # Delta: mean and std over the draws
    subset_means(both, subsets)                                        # (100,) each draw's Delta, changed in both
    nearest_map(layer_shapes(model, {"pool5": "pool5", "relu5": "relu5"}, 112))   # "relu5": its 6x6 map

Conventions (ours where the paper is silent):

* Boxes are [x0, y0, x1, y1] in the pixel-edge coordinates of the network input (x1, y1 exclusive, as
  `zfnet.data.annotations` gives them). An occluder covers every pixel the box touches: the box is
  rounded outward to whole pixels (floor x0, y0; ceil x1, y1) and clipped to the image. It is filled
  with `fill` in the network's input space, where 0 is the per-pixel mean image (grey).
* Delta_l = sum_{i != j} H(sign(e_i), sign(e_j)) is normalized as the table prints it: H is divided by
  the number D of coordinates of the layer (the fraction of coordinates whose signs differ) and the
  sum by the number of ordered pairs k (k - 1), i.e. the mean over pairs. H is symmetric, so ordered
  and unordered pairs give the same value.
* Zeros: sign(0) = 0 is a value of its own. Two zeros agree; a zero against +1 or -1 differs. Rectified
  layers (relu5, pool5, relu7) have many coordinates that are zero in both the image and its occluded
  copy, so e is 0 there for every image and those coordinates count as agreement (the "strict" number,
  the one compared with the paper). The `ignore_zeros` variant leaves out, per pair, the coordinates
  where both e_i and e_j are 0 and divides by the rest; a pair with no such coordinate left is left out
  of the mean (NaN when every pair is). "Changed in both" (`pairwise_changed_in_both`) keeps, per pair,
  only the coordinates where e_i and e_j are both nonzero: a coordinate zero in exactly one of them (a
  unit that the occluder moved in one image only) is a sign change for the strict Delta, not for it.
* Draws: each draw is k different images chosen uniformly at random (seeded); Delta is reported as
  the mean and the population standard deviation (ddof 0) over the draws.
* Random boxes lie inside the object's box (clipped to the image) and, when a mask is given, are
  centred on an object pixel; see `random_box`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from zfnet.nets.models import get_layer
from zfnet.probes.deconv import evaluating

Box = tuple[int, int, int, int]


def pixel_box(box: Sequence[float], width: int, height: int) -> Box:
    """The whole pixels `box` touches, (x0, y0, x1, y1) ints, clipped to a width x height image (may be empty)."""
    x0, y0, x1, y1 = box
    return (min(max(math.floor(x0), 0), width), min(max(math.floor(y0), 0), height),
            max(min(math.ceil(x1), width), 0), max(min(math.ceil(y1), height), 0))


def occlude(images: Tensor, boxes: Sequence[Sequence[float]], fill: float = 0.0) -> Tensor:
    """A copy of `images` (N, C, H, W) with box i's pixels (rounded outward, clipped) set to `fill` in image i."""
    if len(boxes) != len(images):
        raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
    height, width = images.shape[-2:]
    occluded = images.clone()
    for image, box in zip(occluded, boxes):
        x0, y0, x1, y1 = pixel_box(box, width, height)
        image[:, y0:y1, x0:x1] = fill
    return occluded


def random_box(region: Sequence[float], height: int, width: int, size: int, generator: torch.Generator,
               mask: Tensor | None = None) -> Box:
    """A height x width box at a random whole-pixel position inside `region` (the object's box), in a
    size x size image.

    The region is rounded outward to pixels and clipped to the image. Along each axis the box takes
    any position that keeps it inside the region; where the region is narrower than the box, the box is
    centred on the region (clipped to the image), so it still covers the object. With a `mask` ((size,
    size) bool, the object's pixels) only positions whose centre pixel (x0 + width // 2, y0 + height // 2)
    is an object pixel are drawn, unless there are none. The position is uniform over what is left.
    """
    if not (0 < height <= size and 0 < width <= size):
        raise ValueError(f"a {height} x {width} box does not fit a {size} x {size} image")
    rx0, ry0, rx1, ry1 = pixel_box(region, size, size)
    xs = _positions(rx0, rx1, width, size)
    ys = _positions(ry0, ry1, height, size)
    y, x = (grid.flatten() for grid in torch.meshgrid(ys, xs, indexing="ij"))
    if mask is not None:
        inside = torch.as_tensor(mask, dtype=torch.bool)[y + height // 2, x + width // 2]
        if inside.any():
            y, x = y[inside], x[inside]
    pick = int(torch.randint(len(x), (1,), generator=generator))
    x0, y0 = int(x[pick]), int(y[pick])
    return x0, y0, x0 + width, y0 + height


def _positions(lo: int, hi: int, length: int, size: int) -> Tensor:
    """Start positions of a `length` segment inside [lo, hi), or the one centred on it when it is shorter."""
    if hi - lo >= length:
        return torch.arange(lo, hi - length + 1)
    centred = min(max(round((lo + hi - length) / 2), 0), size - length)
    return torch.tensor([centred])


@torch.no_grad()
def layer_features(model: nn.Module, images: Tensor, layers: Mapping[str, str], batch_size: int = 64
                   ) -> dict[str, Tensor]:
    """{key: (N, D) float32 on the CPU}: the output of the layer named `layers[key]` ("pool5", "relu5",
    "relu7": children of model.features or model.classifier) for each image, flattened.

    Read with forward hooks during an ordinary forward pass, with the model in eval mode (dropout off);
    the model's own train/eval flags are restored afterwards. `images` are network inputs (N, 3, S, S).
    """
    modules = {key: get_layer(model, name) for key, name in layers.items()}
    device = next(model.parameters()).device
    collected: dict[str, list[Tensor]] = {key: [] for key in layers}
    hooks = [module.register_forward_hook(_collector(collected[key])) for key, module in modules.items()]
    try:
        with evaluating(model):
            for start in range(0, len(images), batch_size):
                model(images[start:start + batch_size].to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return {key: torch.cat(parts) if parts else torch.empty(0, 0) for key, parts in collected.items()}


PAPER_LAYER5_SIDE = 6    # the paper's pool5 map at its 224 px input is 6 x 6


@torch.no_grad()
def layer_shapes(model: nn.Module, layers: Mapping[str, str], size: int) -> dict[str, tuple[int, ...]]:
    """{key: the output shape (without the batch axis) of the layer named `layers[key]`} for one size x size
    input, read with forward hooks (eval mode, flags restored)."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [get_layer(model, name).register_forward_hook(
        lambda module, inputs, output, key=key: shapes.__setitem__(key, tuple(output.shape[1:])))
        for key, name in layers.items()]
    try:
        with evaluating(model):
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def nearest_map(shapes: Mapping[str, tuple[int, ...]], side: int = PAPER_LAYER5_SIDE) -> str:
    """The key whose (C, H, W) map is nearest side x side (by |H - side| + |W - side|; the first key on a tie)."""
    if not shapes or any(len(shape) != 3 for shape in shapes.values()):
        raise ValueError(f"need (C, H, W) maps, got {dict(shapes)}")
    return min(shapes, key=lambda key: abs(shapes[key][1] - side) + abs(shapes[key][2] - side))


def _collector(store: list[Tensor]):
    def hook(module, inputs, output):
        store.append(output.detach().flatten(1).float().cpu())
    return hook


def pairwise_sign_disagreement(e: Tensor) -> tuple[Tensor, Tensor]:
    """For every pair of rows of `e` (N, D), the share of coordinates whose signs differ, (N, N) float64.

    Returns (strict, ignore_zeros): strict divides by D, with sign(0) = 0 its own value; ignore_zeros
    divides by the coordinates where e_i or e_j is nonzero (NaN where there are none). Counts come
    from products of the sign indicator matrices, exact in float64.
    """
    e = e.flatten(1)
    positive, negative, zero = ((e > 0).double(), (e < 0).double(), (e == 0).double())
    agree = positive @ positive.T + negative @ negative.T + zero @ zero.T
    both_zero = zero @ zero.T
    differ = e.shape[1] - agree
    strict = differ / e.shape[1]
    informative = e.shape[1] - both_zero
    ignore_zeros = torch.where(informative > 0, differ / informative.clamp_min(1), torch.nan)
    return strict, ignore_zeros


def pairwise_changed_in_both(e: Tensor) -> tuple[Tensor, Tensor]:
    """For every pair of rows of `e` (N, D), the coordinates that changed in both images: (N, N) float64 each.

    Returns (disagreement, share): among the coordinates where e_i and e_j are both nonzero, the share whose
    signs are opposite (NaN where there are none); and how many coordinates those are, as a share of D. A
    coordinate that is zero in exactly one of e_i, e_j ("a different unit fired") counts in the strict Delta
    and not here: strict = (1 - share - both zero) + share * disagreement.
    """
    e = e.flatten(1)
    positive, negative = (e > 0).double(), (e < 0).double()
    nonzero = positive + negative
    changed = nonzero @ nonzero.T
    opposite = positive @ negative.T + negative @ positive.T
    return torch.where(changed > 0, opposite / changed.clamp_min(1), torch.nan), changed / e.shape[1]


def subset_means(pairwise: Tensor, subsets: Tensor) -> Tensor:
    """(draws,): for each row of `subsets` (draws, k), the mean of `pairwise` over its ordered pairs i != j
    (NaN entries left out)."""
    k = subsets.shape[1]
    block = pairwise[subsets[:, :, None], subsets[:, None, :]]  # (draws, k, k)
    return block[:, ~torch.eye(k, dtype=torch.bool)].nanmean(dim=1)


def sign_disagreement(e: Tensor) -> tuple[float, float]:
    """Delta of one set of images (every ordered pair of rows of `e`): (strict, ignore_zeros)."""
    everyone = torch.arange(len(e))[None]
    return tuple(float(subset_means(p, everyone)[0]) for p in pairwise_sign_disagreement(e))


def draw_subsets(count: int, k: int, draws: int, generator: torch.Generator) -> Tensor:
    """(draws, k) long: `draws` independent choices of k different indices of range(count)."""
    if not 2 <= k <= count:
        raise ValueError(f"cannot draw {k} different images out of {count} (need 2 <= k <= count)")
    return torch.stack([torch.randperm(count, generator=generator)[:k] for _ in range(draws)])


def draw_statistics(strict: Tensor, ignore_zeros: Tensor, subsets: Tensor) -> dict[str, float]:
    """Delta's mean and std (ddof 0) over the draws, for both zero conventions (pairwise matrices from
    `pairwise_sign_disagreement`)."""
    stats = {}
    for suffix, pairwise in (("", strict), ("_ignore_zeros", ignore_zeros)):
        stats[f"mean{suffix}"], stats[f"std{suffix}"] = mean_and_std(subset_means(pairwise, subsets))
    return stats


def mean_and_std(values: Tensor) -> tuple[float, float]:
    """The mean and std (ddof 0) of the non-NaN values (NaN, NaN when there are none)."""
    values = values[~values.isnan()]
    if not len(values):
        return math.nan, math.nan
    return float(values.mean()), float(values.std(correction=0))


def zero_share(e: Tensor) -> float:
    """The share of coordinates of e that are exactly zero (what the zero convention decides about)."""
    return float((e == 0).double().mean())
