"""Fig. 4: feature evolution during training, from the weights snapshots the train stage kept.

    paths = find_snapshots(Path("outputs/train/zfnet/checkpoints"))  # {epoch: path}
    loaders = {epoch: (lambda path=path: load_trained(path)[0]) for epoch, path in paths.items()}  # lazily
    result = run(loaders, images, cfg.visualize, seed=0)  # or run({1: model_a, 5: model_b}, ...)
    result.tiles["conv2"][m][e]  # HWC tile in [0, 1]: map result.maps["conv2"][m] at epoch result.epochs[e]

For each snapshot (`train.snapshot_epochs`), the strongest activation of a fixed random subset of feature
maps per layer (`settings.evolution.maps`), over the chosen images, is projected to pixels by the
deconvnet and cut to its receptive field. The maps are drawn once (seeded by `seed` and the layer name),
among those that fire at the last snapshot, and stay the same at every epoch; each epoch finds its own
strongest image and position for them.

The images: the stage passes `visualize.evolution.images` of the `visualize.evolution.split` split, a
seeded subset, or all of them (null) as the paper (and experiment=paper) does. They are read anew per
snapshot, by `workers` DataLoader processes.

Metrics (`EvolutionResult.metrics`): the epochs, the number of images, the split, and per layer the maps
shown and, per epoch (`epoch_NNN`, the last first), `distance_to_last`: ||w_e - w_last|| / ||w_last|| of
the layer's weights (a layer that has converged sits near 0), and `top1_mean`: the mean strongest
activation of the maps shown.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Union

import numpy as np
import torch
from torch import nn

from zfnet.data.images import ImageSet
from zfnet.errors import UserError
from zfnet.nets.models import get_layer
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.projections import (
    blank_tile,
    checked_layers,
    choose_maps,
    project_top,
    projection_tile,
    receptive_window,
    responsive_maps,
)
from zfnet.probes.top9 import TopK, top_activations

log = logging.getLogger("zfnet")

Snapshot = Union[nn.Module, Callable[[], nn.Module]]  # a network, or what loads it when its turn comes


@dataclass
class EvolutionResult:
    epochs: list[int]  # ascending
    layers: list[str]
    maps: dict[str, list[int]]  # per layer, the maps shown (empty when none fires at the last snapshot)
    tiles: dict[str, list[list[np.ndarray]]]  # per layer: per map, its tile at each epoch (rows of Fig. 4)
    metrics: dict

    def distances(self, layer: str) -> list[float]:
        """The layer's distance to its last-snapshot weights, per epoch in `epochs` order."""
        return [self.metrics[layer]["distance_to_last"][f"epoch_{e:03d}"] for e in self.epochs]


def find_snapshots(ckpt_dir: Path) -> dict[int, Path]:
    """{epoch: path} of the weights-only snapshots `epoch_NNN.ckpt`, by epoch."""
    found = {}
    for path in Path(ckpt_dir).glob("epoch_*.ckpt"):
        match = re.fullmatch(r"epoch_(\d+)\.ckpt", path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise UserError(f"{ckpt_dir}: no epoch_NNN.ckpt snapshots (train.snapshot_epochs lists the epochs "
                        "kept; run the train stage first)")
    return dict(sorted(found.items()))


def run(snapshots: Mapping[int, Snapshot], images: ImageSet, settings, *, seed: int,
        workers: int = 0) -> EvolutionResult:
    """The Fig. 4 tiles and metrics of the networks `snapshots` ({epoch: network (eval mode, on its device) or a
    callable returning it}) over `images`.

    A callable is called when its epoch comes, the last epoch first, and its network dropped after: at most
    the last network and one other are held. `settings`: `layers`, `batch_size`, `normalize_down`,
    `evolution.maps`, `evolution.split` (config `visualize`: the images' split, as the metrics name it); `seed`
    draws the maps shown; `workers` DataLoader processes read the images.
    """
    epochs = sorted(snapshots)
    if not epochs:
        raise UserError("evolution: no training snapshots to compare")
    final = _network(snapshots[epochs[-1]])
    layers = checked_layers(final, list(settings.layers))
    device = next(final.parameters()).device
    final_weights = {layer: get_layer(final, layer).weight.detach().clone() for layer in layers}

    tiles = {layer: [] for layer in layers}  # per layer: one column (a tile per map) per epoch
    metrics: dict = {"epochs": epochs, "images": len(images), "split": settings.evolution.split}
    maps: dict[str, list[int]] = {}
    for epoch in reversed(epochs):  # the last first: it picks the maps
        model = final if epoch == epochs[-1] else _network(snapshots[epoch])
        top = top_activations(model, images.batches(settings.batch_size, workers, device), layers, k=1)
        if not maps:
            maps = {layer: choose_maps(responsive_maps(top[layer]), settings.evolution.maps, seed, layer)
                    for layer in layers}
        deconv = Deconvnet(model, normalize_down=settings.normalize_down)
        for layer in layers:
            tiles[layer].insert(0, strongest_tiles(model, deconv, images, layer, top[layer], maps[layer],
                                                   settings.batch_size))
            entry = metrics.setdefault(layer, {"maps": maps[layer], "distance_to_last": {}, "top1_mean": {}})
            entry["distance_to_last"][f"epoch_{epoch:03d}"] = relative_distance(get_layer(model, layer).weight,
                                                                                final_weights[layer])
            shown = top[layer].values[maps[layer], 0].double() if maps[layer] else torch.zeros(1)
            entry["top1_mean"][f"epoch_{epoch:03d}"] = float(shown.mean())
        log.info("evolution: epoch %d done", epoch)
    rows = {layer: [list(row) for row in zip(*tiles[layer])] for layer in layers}  # per map, a tile per epoch
    return EvolutionResult(epochs, layers, maps, rows, metrics)


def _network(snapshot: Snapshot) -> nn.Module:
    return snapshot if isinstance(snapshot, nn.Module) else snapshot()


def strongest_tiles(model, deconv, images, layer: str, top: TopK, maps: list[int], batch_size: int) -> list:
    """One tile per map: the projection of its strongest activation, cropped to the receptive field."""
    if not maps:
        return []
    window = receptive_window(model, layer)
    projections = project_top(deconv, images, layer, top, maps, batch_size)
    return [projection_tile(projections[m, 0], window, int(top.y[c, 0]), int(top.x[c, 0]))
            if top.values[c, 0] > 0 else blank_tile(window) for m, c in enumerate(maps)]


def relative_distance(weight: torch.Tensor, final: torch.Tensor) -> float:
    """||weight - final|| / ||final||: 0 once a layer has stopped moving."""
    weight, final = weight.detach().double().cpu(), final.detach().double().cpu()
    return float((weight - final).norm() / final.norm().clamp_min(1e-300))
