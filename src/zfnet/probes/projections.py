"""Deconvnet projections of the strongest activations, cut to their receptive fields as figure tiles
(paper Figs. 2, 4, 6).

    images = ImageSet(PreparedSplit(root / "val"), mean, crop, subset(len(split), 500, seed=0))
    top = top_activations(model, images.batches(64), ["conv2"], k=9)
    projections = project_top(Deconvnet(model), images, "conv2", top["conv2"], maps=[3, 17])  # (2, 9, 3, c, c)
    window = receptive_window(model, "conv2")
    tile = projection_tile(projections[0, 0], window, y, x)   # HWC in [0, 1], the receptive field only

Conventions (ours where the paper is silent):

* The network sees the centre `crop` x `crop` window of each mean-subtracted prepared image (the
  validation view of the training code); patches are cut from the same window of the uint8 image.
* Every tile is the activation's full receptive field, `window.size` pixels square, placed where it
  lies in the image: the part outside the image is blank (mid-grey, i.e. zero, for projections,
  light grey for patches), so tiles of one layer share one size.
* Projections are shown with zero at mid-grey and each tile stretched by its own magnitude scale, the
  99.5th percentile of its nonzero magnitudes (``signed_stretch``; brighter pixels clip): a pixel
  the activation does not depend on stays grey, as in the paper.
* Maps are drawn at random (seeded by the pipeline seed and the layer name) among the maps that
  respond at all on the searched images; a map that never fires has nothing to project.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from zfnet.data.images import ImageSet
from zfnet.errors import UserError
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.top9 import TopK, receptive_field
from zfnet.tiles import to_hwc

OUTSIDE_PATCH = 0.8  # light grey: the part of a receptive field beyond the image border

_FAR = 1000  # a position far from the top-left border, to read receptive fields unclipped


class Window(NamedTuple):
    """Receptive field of a layer: activation (y, x) sees rows start + y*jump .. + size (unclipped)."""

    size: int
    jump: int
    start: int

    def origin(self, y: int, x: int) -> tuple[int, int]:
        return self.start + y * self.jump, self.start + x * self.jump


def receptive_window(model: nn.Module, layer: str) -> Window:
    """The layer's receptive field size, step and offset, read off `zfnet.probes.top9.receptive_field`."""
    big = (10**9, 10**9)
    y0, y1, _, _ = receptive_field(model, layer, _FAR, _FAR, input_size=big)
    next_y0 = receptive_field(model, layer, _FAR + 1, _FAR + 1, input_size=big)[0]
    jump = next_y0 - y0
    return Window(size=y1 - y0, jump=jump, start=y0 - _FAR * jump)


def cut(image, y0: int, x0: int, size: int, fill: float = 0.0) -> np.ndarray:
    """The size x size window of `image` (C,H,W array or CPU tensor) with top-left (y0, x0), as a float32
    array; the part outside the image is `fill`."""
    image = np.asarray(image, dtype=np.float32)
    c, h, w = image.shape
    out = np.full((c, size, size), fill, dtype=np.float32)
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + size, h), min(x0 + size, w)
    if bottom > top and right > left:
        out[:, top - y0:bottom - y0, left - x0:right - x0] = image[:, top:bottom, left:right]
    return out


def responsive_maps(top: TopK) -> list[int]:
    """Maps whose strongest activation on the searched images is positive."""
    return torch.nonzero(top.values[:, 0] > 0).flatten().tolist()


def choose_maps(candidates: Sequence[int], count: int, seed: int, layer: str) -> list[int]:
    """`count` of `candidates` at random (seeded by seed and layer name), sorted."""
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode())])
    if count >= len(candidates):
        return sorted(candidates)
    return sorted(rng.choice(list(candidates), size=count, replace=False).tolist())


@torch.no_grad()
def project_top(
    deconv: Deconvnet, images: ImageSet, layer: str, top: TopK, maps: Sequence[int], batch_size: int = 64
) -> Tensor:
    """Project each of the top-k activations of each map in `maps`, each on its own image.

    Returns (len(maps), k, 3, crop, crop) on the CPU; [m, r] is rank r of map maps[m].
    """
    maps_t = torch.as_tensor(list(maps), dtype=torch.long)
    k = top.values.shape[1]
    image_index = top.image_index[maps_t].flatten()
    channel = maps_t.repeat_interleave(k)
    position = torch.stack([top.y[maps_t].flatten(), top.x[maps_t].flatten()], dim=1)
    device = next(deconv.model.parameters()).device
    out = []
    for start in range(0, len(channel), batch_size):
        part = slice(start, start + batch_size)
        inputs = images.inputs(image_index[part]).to(device)
        out.append(deconv.project(inputs, layer, channel[part].to(device), position[part].to(device)).cpu())
    return torch.cat(out).unflatten(0, (len(maps_t), k))


def signed_stretch(image: Tensor | np.ndarray, quantile: float = 0.995) -> np.ndarray:
    """Zero to mid-grey, +-m to 1 and 0, where m is the `quantile` of the nonzero magnitudes (larger ones
    clip): a few extreme pixels would otherwise leave the rest of a projection invisible. A blank image
    stays grey."""
    array = image.detach().cpu().float().numpy() if isinstance(image, Tensor) else np.asarray(image, np.float32)
    magnitude = np.abs(array)
    nonzero = magnitude[magnitude > 1e-12]
    if nonzero.size == 0:
        return np.full_like(array, 0.5)
    scale = np.quantile(nonzero, quantile) if quantile < 1 else nonzero.max()
    return np.clip(0.5 + array / (2 * scale), 0.0, 1.0)


def projection_tile(projection: Tensor, window: Window, y: int, x: int) -> np.ndarray:
    """HWC tile in [0, 1]: the receptive field of activation (y, x), signed-stretched."""
    return to_hwc(signed_stretch(cut(projection, *window.origin(y, x), window.size, fill=0.0)))


def patch_tile(image: Tensor, window: Window, y: int, x: int) -> np.ndarray:
    """HWC tile in [0, 1]: the image patch under activation (y, x) (uint8 CHW image in)."""
    return to_hwc(cut(np.asarray(image) / 255.0, *window.origin(y, x), window.size, fill=OUTSIDE_PATCH))


def blank_tile(window: Window) -> np.ndarray:
    """A white tile: the place of an activation that does not exist (a map firing on fewer than k images)."""
    return np.ones((window.size, window.size, 3), dtype=np.float32)


def checked_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    """`layers` (config `visualize.layers`), or a UserError naming those that are not conv layers of `model`."""
    unknown = [layer for layer in layers if layer not in model.conv_layer_names]
    if unknown:
        raise UserError(f"visualize.layers: {', '.join(unknown)} not conv layers of this model; "
                        f"present: {', '.join(model.conv_layer_names)}")
    return list(layers)

