"""Fig. 2: the top-9 activations of every feature map, projected to pixels beside their image patches.

    result = run(model, images, cfg.visualize, seed=0)
    result.metrics                     # what metrics/visualize_<model>.json holds
    result.top["conv5"].values[c]      # map c's k strongest activations (image numbers: positions in `images`)
    result.projections["conv5"][m][r]  # HWC tile in [0, 1]: rank r of map result.maps["conv5"][m], projected

One streaming pass over the images keeps, for every map of every layer in `settings.layers`, its k
(`settings.top9.k`) strongest activations (`zfnet.probes.top9`: memory grows with layers x maps x k, not
with the images). Then, per layer, `settings.top9.maps` maps drawn at random (seeded by `seed` and the
layer name) among those that fire: each one's k activations projected to pixels by the deconvnet
(`settings.normalize_down`), cut to the receptive field, beside the matching image patches (the paper's
3x3 blocks; a map firing on fewer than k images leaves white tiles). A layer where no map fires has no maps
and no tiles.

Metrics, per layer: the number of maps, the share of maps that never fire on these images
(`silent_share`), the mean of every map's strongest activation (`top1_mean`) and of all its top k
(`topk_mean`); and the number of images.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from zfnet.data.images import ImageSet
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.projections import (
    blank_tile,
    checked_layers,
    choose_maps,
    patch_tile,
    project_top,
    projection_tile,
    receptive_window,
    responsive_maps,
)
from zfnet.probes.top9 import TopK, top_activations

log = logging.getLogger("zfnet")

TABLE_COLUMNS = ["layer", "map", "rank", "activation", "image", "projection", "patch"]

Blocks = list[list[np.ndarray]]  # per map, its k tiles (HWC in [0, 1])


@dataclass
class Top9Result:
    top: dict[str, TopK]  # per layer, every map's top k; image numbers are positions in `images`
    indices: list[int]  # the images' positions in their split (ImageSet.indices)
    maps: dict[str, list[int]]  # per layer, the maps shown (sorted; empty when none fires)
    projections: dict[str, Blocks]  # per layer with maps: per map, its k projection tiles
    patches: dict[str, Blocks]  # per layer with maps: per map, its k image patch tiles
    metrics: dict
    seconds: float  # the streaming top-k pass, wall clock

    def saved(self) -> dict[str, dict[str, torch.Tensor]]:
        """Every map's top k, with image numbers turned into indices of the split: outputs/.../top9.pt."""
        lookup = torch.as_tensor(self.indices, dtype=torch.long)
        return {layer: {"values": t.values, "image_index": lookup[t.image_index], "y": t.y, "x": t.x}
                for layer, t in self.top.items()}

    def table_rows(self) -> list[list]:
        """One row (TABLE_COLUMNS) per shown activation that fires, tiles as uint8 HWC."""
        return [row for layer in self.projections for row in table_rows(
            layer, self.maps[layer], self.top[layer], self.indices, self.projections[layer], self.patches[layer])]


def run(model: nn.Module, images: ImageSet, settings, *, seed: int, workers: int = 0) -> Top9Result:
    """The top-k pass and the figure tiles of `model` (eval mode, on its device) over `images`.

    `settings`: `layers`, `batch_size`, `normalize_down`, `top9.k`, `top9.maps` (config `visualize`);
    `seed` draws the maps shown; `workers` DataLoader processes read the images.
    """
    layers = checked_layers(model, list(settings.layers))
    device = next(model.parameters()).device
    started = time.perf_counter()
    top = top_activations(model, images.batches(settings.batch_size, workers, device), layers, k=settings.top9.k)
    seconds = time.perf_counter() - started
    log.info("top-%d of %d maps in %d layers over %d images in %.1f s (%.0f images/s)", settings.top9.k,
             sum(len(t.values) for t in top.values()), len(layers), len(images), seconds, len(images) / seconds)

    deconv = Deconvnet(model, normalize_down=settings.normalize_down)
    maps, projections, patches = {}, {}, {}
    for layer in layers:
        maps[layer] = choose_maps(responsive_maps(top[layer]), settings.top9.maps, seed, layer)
        if not maps[layer]:
            log.warning("%s: no feature map fires on these images; no tiles", layer)
            continue
        projections[layer], patches[layer] = layer_tiles(model, deconv, images, layer, top[layer], maps[layer],
                                                          settings.batch_size)
    return Top9Result(top, list(images.indices), maps, projections, patches, summarize(top, len(images)), seconds)


def layer_tiles(model, deconv, images, layer: str, top: TopK, maps: list[int], batch_size: int):
    """Per map, its k projection tiles and k patch tiles (HWC in [0, 1], the receptive field)."""
    window = receptive_window(model, layer)
    projections = project_top(deconv, images, layer, top, maps, batch_size)
    projection_blocks, patch_blocks = [], []
    for m, channel in enumerate(maps):
        projection_blocks.append([])
        patch_blocks.append([])
        for rank, (value, i, y, x) in enumerate(zip(*(field[channel].tolist() for field in top))):
            fired = value > 0  # a map that fires on fewer than k images leaves blanks
            projection_blocks[-1].append(projection_tile(projections[m, rank], window, y, x) if fired
                                         else blank_tile(window))
            patch_blocks[-1].append(patch_tile(images.raw(i), window, y, x) if fired else blank_tile(window))
    return projection_blocks, patch_blocks


def table_rows(layer, maps, top: TopK, indices, projections, patches) -> list[list]:
    as_uint8 = lambda tile: (np.clip(tile, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    rows = []
    for m, channel in enumerate(maps):
        for rank in range(top.values.shape[1]):
            if top.values[channel, rank] <= 0:
                continue
            rows.append([layer, channel, rank + 1, float(top.values[channel, rank]),
                         indices[int(top.image_index[channel, rank])],
                         as_uint8(projections[m][rank]), as_uint8(patches[m][rank])])
    return rows


def summarize(top: dict[str, TopK], num_images: int) -> dict:
    """Deterministic summaries: per layer, how many maps fire at all and how strongly."""
    metrics: dict = {"images": num_images}
    for layer, result in top.items():
        strongest = result.values[:, 0].double()
        metrics[layer] = {
            "maps": len(strongest),
            "silent_share": float((strongest <= 0).double().mean()),
            "top1_mean": float(strongest.mean()),
            "topk_mean": float(result.values.double().mean()),
        }
    return metrics
