"""Occlusion sensitivity (paper Fig. 7), with an exact incremental engine.

    heat = occlusion_map(model, images, labels, patch=24, stride=8)          # (N, G, G) p(label)
    sweep = occlusion_sweep(model, images, labels, patch=24, stride=8)       # + top label, layer-5 totals
    for out in occluded_outputs(model, image, positions, (24, 24)): out.pool5, out.fc7, out.logits

The occluder is a `patch` x `patch` square filled with `fill` in the network's input space (0, the
per-pixel mean: grey). Its top-left corner takes the positions (i*stride, j*stride) for
i, j = 0 .. (S - patch) // stride, so G = (S - patch) // stride + 1; maps are indexed [i, j] (row, column).

Three engines give the same outputs:

* "naive": each occluded image runs through the whole network (batched).
* "exact" (the default; the idea of Krypton, Nakandala et al. SIGMOD 2019): the unoccluded image runs
  once and every layer's output is kept. For a batch of positions, each spatial layer recomputes only
  the output window the occluder can have changed: a window of one size per layer (the largest
  changed extent over all positions, slid inward at the borders), computed with padding 0 on a tile
  of the kept input plus its halo, in which the previous layer's recomputed window is spliced. ReLU
  and LRN (local in space) act on the window alone. pool5 is spliced into the kept pool5 and fc6-fc8
  run in full. Same numbers as "naive" up to float rounding.
* "approximate": Krypton's approximations, two knobs (`Approximation`). Adaptive drill-down (in a
  sweep): every `coarse`-th row and column of positions is computed, the rest interpolated, and the
  `drill` share of the rest where the true class's log-odds seem to drop most is computed exactly.
  Projective-field thresholding (`threshold` < 1, also in `occluded_outputs`): where a layer's
  changed window would span more than `threshold` of its output side, only a centred window of that
  fraction is recomputed and the rest is taken as unchanged; fc6 then multiplies only pool5's
  window's columns. Faster, and not exact (benchmarks/occlusion.py measures the trade-off).

Only these layers may sit in `model.features`: Conv2d and MaxPool2d (dilation 1), and layers that act
on each position alone (ReLU, LocalResponseNorm, Dropout, Identity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import torch
from torch import Tensor, nn

from zfnet.errors import UserError
from zfnet.nets.models import feature_shapes
from zfnet.probes.deconv import evaluating

MODES = ("exact", "naive", "approximate")
POINTWISE = (nn.ReLU, nn.LocalResponseNorm, nn.Dropout, nn.Identity)
LAYER5 = "relu5"  # rectified conv5: the maps whose totals Fig. 7(b) plots
LAYER7 = "relu7"  # rectified fc7


# --------------------------------------------------------------------------- positions


def grid_side(size: int, patch: int, stride: int) -> int:
    """G, the occluder positions along one side: (size - patch) // stride + 1."""
    if not (isinstance(patch, int) and 1 <= patch <= size):
        raise UserError(f"occlusion.patch: expected an integer in 1..{size} (the input side), got {patch!r}")
    if not (isinstance(stride, int) and stride >= 1):
        raise UserError(f"occlusion.stride: expected a positive integer, got {stride!r}")
    return (size - patch) // stride + 1


def grid_positions(size: int, patch: int, stride: int) -> Tensor:
    """(G*G, 2) top-left corners (y, x) in row-major order."""
    steps = torch.arange(grid_side(size, patch, stride)) * stride
    return torch.cartesian_prod(steps, steps)


def occlude(image: Tensor, positions: Tensor, shape: tuple[int, int], fill: float = 0.0) -> Tensor:
    """(P, 3, H, W): `image` (3, H, W) once per position, with the `shape` box at (y, x) set to `fill`."""
    h, w = shape
    out = image.unsqueeze(0).repeat(len(positions), 1, 1, 1)
    for b, (y, x) in enumerate(positions.tolist()):
        out[b, :, y:y + h, x:x + w] = fill
    return out


# --------------------------------------------------------------------------- the plan of windows


@dataclass
class _Step:
    """One layer of model.features and, per position, the output window it recomputes."""

    name: str
    module: nn.Module
    spatial: bool  # conv or pool: reads a tile with halo; else acts on the window alone
    size: tuple[int, int]  # recomputed window (rows, cols), the same for every position
    start: Tensor  # (P, 2) its top-left corner in the layer's output
    tile: tuple[int, int] = (0, 0)  # spatial only: input tile (rows, cols) ...
    tile_start: Tensor | None = None  # ... (P, 2) its top-left corner in the padded input
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # ... and the padding of the kept input (l, r, t, b)
    pad_value: float = 0.0
    changed: Tensor | None = None  # spatial only: (P, 2) rows and cols the occluder can change at each position


def _geometry(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], float]:
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    if isinstance(module, nn.MaxPool2d) and pair(module.dilation) == (1, 1):
        return pair(module.kernel_size), pair(module.stride or module.kernel_size), pair(module.padding), -math.inf
    if isinstance(module, nn.Conv2d) and pair(module.dilation) == (1, 1) and module.padding_mode == "zeros":
        return pair(module.kernel_size), pair(module.stride), pair(module.padding), 0.0
    raise UserError(f"occlusion: {type(module).__name__} {module} is not supported by the incremental engine; "
                    "use mode='naive'")


def _plan(model: nn.Module, shapes: list[torch.Size], positions: Tensor, box: tuple[int, int],
          threshold: float | None) -> list[_Step]:
    """The windows each layer recomputes, from the interval each occluder position can change."""
    lo = positions.clone()  # changed interval [lo, hi) of the current layer's input, per axis
    device = positions.device
    hi = positions + torch.tensor(box, device=device)
    start, size = lo.clone(), tuple(box)  # recomputed window of the previous layer (the occluder itself)
    in_shape = shapes[0]
    steps = []
    for (name, module), out_shape in zip(model.features.named_children(), shapes[1:]):
        if isinstance(module, POINTWISE):
            steps.append(_Step(name, module, False, size, start))
            in_shape = out_shape
            continue
        kernel, stride, padding, pad_value = _geometry(module)
        k, s, p = (torch.tensor(v, device=device) for v in (kernel, stride, padding))
        out_side = torch.tensor(out_shape[-2:], device=device)
        lo = (-((p - k + 1 + lo).neg().div(s, rounding_mode="floor"))).clamp(min=0)  # ceil((lo + p - k + 1) / s)
        hi = torch.minimum((hi - 1 + p).div(s, rounding_mode="floor") + 1, out_side)
        if threshold is not None:
            lo, hi = _truncate(lo, hi, out_side, threshold)
        window = torch.minimum((hi - lo).amax(dim=0).clamp(min=1), out_side)
        start = torch.minimum(lo, out_side - window).clamp(min=0)
        tile = (window - 1) * s + k
        tile_start = start * s  # in padded coordinates: (start * s - p) + p
        in_side = torch.tensor(in_shape[-2:], device=device)
        far = (tile_start + tile).amax(dim=0) - p - in_side  # how far tiles reach past the input's end
        pad_end = far.clamp(min=0)
        size = tuple(window.tolist())
        steps.append(_Step(name, module, True, size, start, tuple(tile.tolist()), tile_start,
                           (padding[1], int(pad_end[1]), padding[0], int(pad_end[0])), pad_value, hi - lo))
        in_shape = out_shape
    return steps


def _truncate(lo: Tensor, hi: Tensor, side: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Krypton's projective-field threshold: keep a centred window of at most `threshold` x side."""
    cap = (side.double() * threshold).ceil().long().clamp(min=1)
    wide = (hi - lo) > cap
    centre = (lo + hi).div(2, rounding_mode="floor")
    new_lo = torch.minimum((centre - cap.div(2, rounding_mode="floor")).clamp(min=0), side - cap)
    return torch.where(wide, new_lo, lo), torch.where(wide, new_lo + cap, hi)


class MultiplyAdds(NamedTuple):
    """Multiply-adds per occluder position (convs and linear layers; pooling, ReLU and LRN are few)."""

    full: int  # a whole forward pass (the naive engine)
    changed: float  # only the outputs the occluder changes, averaged over positions: the FLOP ceiling
    engine: int  # what the incremental engine computes (one window size per layer for all positions)


def multiply_adds(model: nn.Module, size: int, patch: int, stride: int, threshold: float | None = None) -> MultiplyAdds:
    """full / changed is the FLOP ceiling of the incremental engine's speed-up, full / engine its own.
    fc6-fc8 count in full, except fc6's share outside pool5's window when `threshold` shrinks it."""
    layer_shapes = feature_shapes(model, size)
    shapes = [torch.Size((3, size, size))] + [torch.Size(layer_shapes[n]) for n, _ in model.features.named_children()]
    steps = _plan(model, shapes, grid_positions(size, patch, stride), (patch, patch), threshold)
    full, changed, engine = 0, 0.0, 0
    for step, out_shape in zip(steps, shapes[1:]):
        if isinstance(step.module, nn.Conv2d):
            per_output = step.module.out_channels * step.module.weight[0].numel()
            full += per_output * out_shape[1] * out_shape[2]
            changed += per_output * float(step.changed.prod(dim=1).double().mean())
            engine += per_output * step.size[0] * step.size[1]
    pool5_share = math.prod(steps[-1].size) / math.prod(shapes[-1][1:])
    for name, module in model.classifier.named_children():
        if isinstance(module, nn.Linear):
            shrunk = name == "fc6" and threshold is not None and pool5_share < 1
            full += module.weight.numel()
            changed += module.weight.numel() * (pool5_share if shrunk else 1)
            engine += int(module.weight.numel() * (pool5_share if shrunk else 1))
    return MultiplyAdds(full, changed, engine)


# --------------------------------------------------------------------------- tiles and splices


def _windows(source: Tensor, start: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, h, w) in channels-last memory: for each row of `start`, the window at that corner of
    `source`, given as (H, W, C) (channels last, so each gathered pixel is one contiguous copy)."""
    rows = start[:, 0, None] + torch.arange(size[0], device=source.device)
    cols = start[:, 1, None] + torch.arange(size[1], device=source.device)
    return source[rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _splice(base: Tensor, base_start: Tensor, patch: Tensor, patch_start: Tensor) -> Tensor:
    """`base` (B, C, h, w) windows at base_start, with `patch` (B, C, r, c) written where it overlaps."""
    device = base.device
    rows = base_start[:, 0, None] + torch.arange(base.shape[2], device=device) - patch_start[:, 0, None]
    cols = base_start[:, 1, None] + torch.arange(base.shape[3], device=device) - patch_start[:, 1, None]
    inside = (((rows >= 0) & (rows < patch.shape[2]))[:, :, None] & ((cols >= 0) & (cols < patch.shape[3]))[:, None, :])
    rows, cols = rows.clamp(0, patch.shape[2] - 1), cols.clamp(0, patch.shape[3] - 1)
    batch = torch.arange(len(patch), device=device)[:, None, None]
    picked = patch.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return torch.where(inside[:, None], picked, base)


# --------------------------------------------------------------------------- the engines


class Occluded(NamedTuple):
    """Network outputs for a batch of occluded copies of one image."""

    logits: Tensor  # (B, classes)
    layer5_totals: Tensor  # (B, C5) each rectified conv5 map summed over space
    pool5: Tensor  # (B, C5 * h * w) flattened: the layer-5 feature vector fc6 reads
    fc7: Tensor | None  # (B, units) rectified fc7, None when layer 7 was removed


def _classify(model: nn.Module, x: Tensor, fc6: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """fc6..fc8 on flattened pool5 `x`; when `fc6` is given it is fc6's output, and fc6 is skipped."""
    fc7 = None
    for name, module in model.classifier.named_children():
        if fc6 is not None and name == "fc6":
            x = fc6
            continue
        x = module(x)
        if name == LAYER7:
            fc7 = x
    return x, fc7


def _naive(model: nn.Module, images: Tensor) -> tuple[Occluded, Tensor]:
    x, layer5 = images, None
    for name, module in model.features.named_children():
        x = module(x)
        if name == LAYER5:
            layer5 = x
    pool5 = torch.flatten(x, 1)
    logits, fc7 = _classify(model, pool5)
    return Occluded(logits, layer5.sum(dim=(2, 3)), pool5, fc7), layer5


class _Incremental:
    """The exact (or thresholded) engine for one image: its kept activations and the plan of windows."""

    def __init__(self, model: nn.Module, image: Tensor, positions: Tensor, box: tuple[int, int], fill: float,
                 threshold: float | None):
        self.model, self.positions, self.box, self.fill = model, positions, box, fill
        self.kept = [image]
        for module in model.features:
            self.kept.append(module(self.kept[-1].unsqueeze(0))[0])
        self.steps = _plan(model, [k.shape for k in self.kept], positions, box, threshold)
        self.padded = [_hwc(nn.functional.pad(self.kept[i], step.pad, value=step.pad_value)) if step.spatial
                       else None for i, step in enumerate(self.steps)]
        self.kept_hwc = [_hwc(k) for k in self.kept]
        # fc6 is linear, so when pool5's window is smaller than pool5 (thresholded), only the window's
        # columns of fc6 need multiplying; in exact mode fc6-fc8 run in full on the spliced pool5.
        pool5_window = self.steps[-1].size
        self.fc6_cells = None
        if threshold is not None and "fc6" in model.classifier._modules and pool5_window != tuple(self.kept[-1].shape[1:]):
            self.fc6_cells = _fc6_cells(model.classifier.fc6, self.kept[-1].shape)

    def __call__(self, rows: slice) -> Occluded:
        kept = self.kept
        patch_start = self.positions[rows]
        patch = kept[0].new_full((len(patch_start), kept[0].shape[0], *self.box), self.fill)
        layer5_totals = None
        for i, step in enumerate(self.steps):
            start = step.start[rows]
            if step.spatial:
                tile_start = step.tile_start[rows]
                unpadded = tile_start - torch.tensor([step.pad[2], step.pad[0]], device=tile_start.device)
                tile = _splice(_windows(self.padded[i], tile_start, step.tile), unpadded, patch, patch_start)
                patch = _call_unpadded(step.module, tile)
            else:
                patch = step.module(patch)
            patch_start = start
            if step.name == LAYER5:
                kept_window = _windows(self.kept_hwc[i + 1], start, step.size)
                layer5_totals = kept[i + 1].sum(dim=(1, 2)) + (patch - kept_window).sum(dim=(2, 3))
        pool5_kept = kept[-1].expand(len(patch_start), -1, -1, -1)
        pool5 = torch.flatten(_splice(pool5_kept, torch.zeros_like(patch_start), patch, patch_start), 1)
        fc6 = None
        if self.fc6_cells is not None:
            fc6 = _fc6_update(self.model.classifier.fc6, self.fc6_cells, kept[-1], self.kept_hwc[-1], patch,
                              patch_start)
        logits, fc7 = _classify(self.model, pool5, fc6)
        return Occluded(logits, layer5_totals, pool5, fc7)


def _fc6_cells(fc6: nn.Linear, pool5_shape: torch.Size) -> Tensor:
    """fc6's weight as (H*W, out, C): one contiguous (out, C) matrix per pool5 cell."""
    channels, height, width = pool5_shape
    return fc6.weight.view(fc6.out_features, channels, height * width).permute(2, 0, 1).contiguous()


def _fc6_update(fc6: nn.Linear, cells: Tensor, pool5: Tensor, pool5_hwc: Tensor, patch: Tensor,
                start: Tensor) -> Tensor:
    """fc6 of pool5 with `patch` spliced at `start`: fc6(pool5) + the window's columns times the change,
    one (rows x C) @ (C x out) product per pool5 cell, over the positions whose window holds it."""
    _, height, width = pool5.shape
    rows, cols = patch.shape[2:]
    delta = patch - _windows(pool5_hwc, start, (rows, cols))  # (B, C, r, c)
    out = fc6(pool5.reshape(1, -1)).repeat(len(patch), 1)
    for y in range(height):
        for x in range(width):
            dy, dx = y - start[:, 0], x - start[:, 1]
            hit = torch.nonzero((dy >= 0) & (dy < rows) & (dx >= 0) & (dx < cols)).flatten()
            if len(hit):
                change = delta[hit, :, dy[hit], dx[hit]]  # (hits, C)
                out.index_add_(0, hit, change @ cells[y * width + x].T)
    return out


def _hwc(chw: Tensor) -> Tensor:
    return chw.permute(1, 2, 0).contiguous()


def _call_unpadded(module: nn.Module, tile: Tensor) -> Tensor:
    if isinstance(module, nn.Conv2d):
        return nn.functional.conv2d(tile, module.weight, module.bias, module.stride, 0, 1, module.groups)
    return nn.functional.max_pool2d(tile, module.kernel_size, module.stride, 0, 1, ceil_mode=False)


@torch.no_grad()
def occluded_outputs(model: nn.Module, image: Tensor, positions: Tensor, box: tuple[int, int],
                     fill: float = 0.0, mode: str = "exact", batch_size: int = 256,
                     threshold: float = 1.0) -> Iterator[Occluded]:
    """Outputs for `image` (3, H, W) occluded by a `box` (h, w) at each of `positions` (P, 2) (y, x),
    `batch_size` positions at a time, in order. `threshold` is for mode="approximate"."""
    if mode not in MODES:
        raise UserError(f"occlusion.mode: {mode!r} is not one of: {', '.join(MODES)}")
    if mode == "approximate" and not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise UserError(f"occlusion.threshold: expected a number in (0, 1], got {threshold!r}")
    positions = positions.to(image.device)
    with evaluating(model):
        if mode == "naive":
            for b in range(0, len(positions), batch_size):
                yield _naive(model, occlude(image, positions[b:b + batch_size], box, fill))[0]
            return
        engine = _Incremental(model, image, positions, box, fill, threshold if mode == "approximate" and threshold < 1 else None)
        for b in range(0, len(positions), batch_size):
            yield engine(slice(b, b + batch_size))


# --------------------------------------------------------------------------- sweeps


class Sweep(NamedTuple):
    """Per image and occluder position [n, i, j]; `channel` is the layer-5 map whose totals are kept."""

    p_true: Tensor  # (N, G, G) probability of labels[n]
    top_label: Tensor  # (N, G, G) most probable class
    layer5_total: Tensor  # (N, G, G) total (summed over space) activation of map channel[n]
    channel: Tensor  # (N,) by default the layer-5 map strongest on the unoccluded image
    base_p_true: Tensor  # (N,) the unoccluded image's p(label) ...
    base_label: Tensor  # (N,) ... most probable class ...
    base_total: Tensor  # (N,) ... and total of map channel[n]
    log_odds: Tensor  # (N, G, G) log-odds of labels[n], log p - log(1 - p), computed without rounding 1 - p to 0
    base_log_odds: Tensor  # (N,) the unoccluded image's log-odds of labels[n]


@dataclass(frozen=True)
class Approximation:
    """mode="approximate" in a sweep: Krypton's adaptive drill-down, and optionally its thresholding.

    The engine computes every `coarse`-th row and column of the grid of positions (and the last
    ones), interpolates the rest bilinearly (class probabilities and layer-5 totals), then computes
    the `drill` share of the remaining positions where the interpolated p(true) falls furthest below
    the unoccluded image's. `threshold` < 1 also truncates projective fields (see module docstring).
    """

    coarse: int = 2
    drill: float = 0.4
    threshold: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.coarse, int) and self.coarse >= 1):
            raise UserError(f"occlusion.approximate.coarse: expected a positive integer, got {self.coarse!r}")
        if not (isinstance(self.drill, (int, float)) and 0 <= self.drill <= 1):
            raise UserError(f"occlusion.approximate.drill: expected a number in [0, 1], got {self.drill!r}")
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold <= 1):
            raise UserError(f"occlusion.approximate.threshold: expected a number in (0, 1], got {self.threshold!r}")


@torch.no_grad()
def occlusion_sweep(model: nn.Module, images: Tensor, labels: Tensor, patch: int, stride: int, fill: float = 0.0,
                    mode: str = "exact", batch_size: int = 256, approximation: Approximation | None = None,
                    channels: Tensor | None = None) -> Sweep:
    """Slide the occluder over each of `images` (N, 3, S, S) and record what Fig. 7 plots."""
    _check_images(images, labels)
    if mode not in MODES:
        raise UserError(f"occlusion.mode: {mode!r} is not one of: {', '.join(MODES)}")
    side = grid_side(images.shape[-1], patch, stride)
    with evaluating(model):
        base, layer5 = _naive(model, images)
    base_prob = base.logits.float().softmax(dim=1)
    if channels is None:
        channels = layer5.flatten(2).amax(dim=2).argmax(dim=1)  # the map with the strongest activation
    channels = torch.as_tensor(channels, device=images.device).long()
    index = torch.arange(len(images), device=images.device)
    base_p_true = base_prob[index, labels]
    base_log_prob = base.logits.float().log_softmax(dim=1)
    p_true, top_label, totals, log_odds = [], [], [], []
    for n, image in enumerate(images):
        args = (model, image, stride, (patch, patch), fill, batch_size, int(channels[n]))
        label = int(labels[n])
        if mode == "approximate":
            prob, total, odds = _drill_down(*args, side, approximation or Approximation(), label, base_log_prob[n])
        else:
            log_prob, total = _outputs_at(*args, mode, 1.0, torch.cartesian_prod(*2 * [torch.arange(side)]))
            log_prob = log_prob.view(side, side, -1)
            prob, total, odds = log_prob.exp(), total.view(side, side), _log_odds(log_prob, label)
        p_true.append(prob[..., label])
        top_label.append(prob.argmax(dim=-1))
        totals.append(total)
        log_odds.append(odds)
    base_log_odds = torch.stack([_log_odds(base_log_prob[n], int(labels[n])) for n in range(len(images))])
    return Sweep(torch.stack(p_true), torch.stack(top_label), torch.stack(totals), channels, base_p_true,
                 base_prob.argmax(dim=1), base.layer5_totals[index, channels], torch.stack(log_odds), base_log_odds)


def _grid_indices(side: int, step: int = 1) -> Tensor:
    """Grid rows (or columns) 0, step, 2*step, ... and always the last one."""
    return torch.tensor(sorted(set(range(0, side, step)) | {side - 1}))


def _outputs_at(model, image, stride, box, fill, batch_size, channel, mode, threshold,
                cells: Tensor) -> tuple[Tensor, Tensor]:
    """Log class probabilities (P, K) and map `channel`'s totals (P,) at the grid cells (P, 2) (i, j)."""
    positions = (cells * stride).to(image.device)
    outs = list(occluded_outputs(model, image, positions, box, fill, mode, batch_size, threshold))
    log_prob = torch.cat([o.logits for o in outs]).float().log_softmax(dim=1)
    return log_prob, torch.cat([o.layer5_totals[:, channel] for o in outs])


def _drill_down(model, image, stride, box, fill, batch_size, channel, side: int, approx: Approximation,
                label: int, base_log_prob: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The approximate sweep of one image: coarse grid, interpolation, drill-down; the class probabilities
    (G, G, K), the map's totals (G, G) and the label's log-odds (G, G) (interpolated in log-odds)."""
    common = (model, image, stride, box, fill, batch_size, channel)
    coarse = _grid_indices(side, approx.coarse)
    log_prob_c, total_c = _outputs_at(*common, "approximate", approx.threshold, torch.cartesian_prod(coarse, coarse))
    log_prob_c, total_c = log_prob_c.view(len(coarse), len(coarse), -1), total_c.view(len(coarse), len(coarse))
    prob_c = log_prob_c.exp()
    weights = _interpolation(side, coarse).to(prob_c.device)
    prob = torch.einsum("ia,jb,abk->ijk", weights, weights, prob_c)
    total = weights @ total_c @ weights.T
    exact = torch.zeros(side, side, dtype=torch.bool)
    if approx.threshold >= 1:
        exact[coarse[:, None], coarse[None, :]] = True
    candidates = torch.nonzero(~exact)
    count = math.ceil(approx.drill * len(candidates))
    # the true class's log-odds: unlike p(true) they do not saturate near 1, so a dip between two coarse
    # positions still shows as a partial drop at both
    odds = weights @ _log_odds(log_prob_c, label) @ weights.T
    if count:
        # rank by the interpolated drop in log-odds
        drop = (_log_odds(base_log_prob, label) - odds[candidates[:, 0], candidates[:, 1]]).cpu()
        chosen = candidates[drop.argsort(descending=True, stable=True)[:count]]
        log_prob_d, total_d = _outputs_at(*common, "exact", 1.0, chosen)
        prob[chosen[:, 0], chosen[:, 1]] = log_prob_d.exp()
        total[chosen[:, 0], chosen[:, 1]] = total_d
        odds[chosen[:, 0], chosen[:, 1]] = _log_odds(log_prob_d, label)
    return prob, total, odds


def _log_odds(log_prob: Tensor, label: int) -> Tensor:
    """log p(label) - log(1 - p(label)) from log-probabilities (..., K), without rounding 1 - p to 0."""
    others = torch.cat([log_prob[..., :label], log_prob[..., label + 1:]], dim=-1)
    return log_prob[..., label] - others.logsumexp(dim=-1)


def _interpolation(side: int, known: Tensor) -> Tensor:
    """(side, len(known)) weights of 1-D linear interpolation from the `known` grid indices."""
    weights = torch.zeros(side, len(known))
    for i in range(side):
        right = int(torch.searchsorted(known, i))
        if known[right] == i:
            weights[i, right] = 1.0
        else:
            lo, hi = int(known[right - 1]), int(known[right])
            weights[i, right - 1], weights[i, right] = (hi - i) / (hi - lo), (i - lo) / (hi - lo)
    return weights


def occlusion_map(model: nn.Module, images: Tensor, labels: Tensor, patch: int, stride: int, fill: float = 0.0,
                  mode: str = "exact") -> Tensor:
    """(N, G, G): p(labels[n]) with the occluder's top-left corner at (i*stride, j*stride)
    ("approximate": the default `Approximation`)."""
    return occlusion_sweep(model, images, labels, patch, stride, fill, mode).p_true


def _check_images(images: Tensor, labels: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise UserError(f"occlusion: images must be (N, 3, S, S), got {tuple(images.shape)}")
    if labels.shape != (len(images),):
        raise UserError(f"occlusion: labels must be ({len(images)},), got {tuple(labels.shape)}")
