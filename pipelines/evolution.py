"""Stage `evolution@<model>`: feature evolution during training (paper Fig. 4).

    python pipelines/evolution.py model=zfnet [visualize.evolution.images=300] [visualize.evolution.maps=4]

For each weights snapshot the train stage kept (`train.snapshot_epochs`), the strongest activation
of a fixed random subset of feature maps per layer, over the chosen images, is projected to pixels.
The maps are drawn once, among those that fire at the last snapshot, and stay the same at every
epoch; each epoch finds its own strongest image and position for them.

The images: `visualize.evolution.images` of the `visualize.evolution.split` split, a seeded subset, or
all of them (null) as the paper (and experiment=paper) does; the default run takes 500 of its 3,000.
They are read anew per snapshot, by `trainer.num_workers` DataLoader processes.

Outputs: plots/evolution_<model>/evolution_<layer>.png (rows: maps, columns: epochs) and
convergence.png (each layer's distance to its last-snapshot weights, ||w_e - w_last|| / ||w_last||,
per epoch: a layer that has converged sits near 0); metrics/evolution_<model>.json (per layer and
epoch: that distance, and the mean strongest activation of the maps shown); W&B: the figures.
An untrained model (train.epochs=0) has no snapshots: the stage writes {"ran": false, "reason"} instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from zfnet.data.images import image_set, subset
from zfnet.data.prepare import PreparedSplit
from zfnet.errors import UserError
from zfnet.io import save_figure
from zfnet.nets.models import get_layer
from zfnet.nets.training import load_trained
from zfnet.pipeline import not_run, stage
from zfnet.pipeline.config import recipe
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
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
from zfnet.probes.top9 import top_activations
from zfnet.viz.evolution import evolution_figure
from zfnet.viz.figures import plt


def main(cfg) -> None:
    key, vis = cfg.model, cfg.visualize
    if recipe(cfg, key)["epochs"] == 0:
        not_run.write(cfg, f"evolution_{key}", f"{key} was not trained (train.epochs=0): no training snapshots",
                      plots=[f"evolution_{key}"])
        return
    device = device_for(cfg.trainer.accelerator)
    snapshots = find_snapshots(Path(cfg.paths.outputs) / "train" / key / "checkpoints")
    epochs = list(snapshots)
    final, hparams = load_trained(snapshots[epochs[-1]], device)
    layers = checked_layers(final, list(vis.layers))
    split = PreparedSplit(Path(cfg.paths.prepared) / vis.evolution.split)
    images = image_set(split, hparams, subset(len(split), vis.evolution.images, cfg.seed))
    final_weights = {layer: get_layer(final, layer).weight.detach().clone() for layer in layers}

    tiles = {layer: [] for layer in layers}  # per layer: one column (a tile per map) per epoch
    metrics: dict = {"epochs": epochs, "images": len(images), "split": vis.evolution.split}
    maps: dict[str, list[int]] = {}
    for epoch in reversed(epochs):  # the last first: it picks the maps
        model = final if epoch == epochs[-1] else load_trained(snapshots[epoch], device)[0]
        top = top_activations(model, images.batches(vis.batch_size, cfg.trainer.num_workers, device), layers, k=1)
        if not maps:
            maps = {layer: choose_maps(responsive_maps(top[layer]), vis.evolution.maps, cfg.seed, layer)
                    for layer in layers}
        deconv = Deconvnet(model, normalize_down=vis.normalize_down)
        for layer in layers:
            tiles[layer].insert(0, strongest_tiles(model, deconv, images, layer, top[layer], maps[layer],
                                                   vis.batch_size))
            entry = metrics.setdefault(layer, {"maps": maps[layer], "distance_to_last": {}, "top1_mean": {}})
            entry["distance_to_last"][f"epoch_{epoch:03d}"] = relative_distance(get_layer(model, layer).weight,
                                                                                final_weights[layer])
            shown = top[layer].values[maps[layer], 0].double() if maps[layer] else torch.zeros(1)
            entry["top1_mean"][f"epoch_{epoch:03d}"] = float(shown.mean())
        stage.log.info("%s: epoch %d done", key, epoch)

    plots = stage.plot_dir(cfg, f"evolution_{key}")
    figures = {}
    for layer in layers:
        if not maps[layer]:
            stage.log.warning("%s %s: no feature map fires at the last snapshot; no figure", key, layer)
            continue
        rows = [list(row) for row in zip(*tiles[layer])]  # per map, its tile at each epoch
        title = (f"{key} {layer}: strongest activation over {len(images)} {vis.evolution.split} images, "
                 "projected, per training epoch")
        path = plots / f"evolution_{layer}.png"
        save_figure(evolution_figure(rows, epochs, maps[layer], title), path)
        figures[f"evolution/{key}/{layer}"] = path
    path = plots / "convergence.png"
    save_figure(convergence_figure(metrics, layers, epochs, key), path)
    figures[f"evolution/{key}/convergence"] = path
    with Tracker(cfg, "evolution", name=f"evolution-{key}") as tracker:
        tracker.images(figures)
        tracker.summary({f"evolution/{key}": metrics})
    stage.write_metrics(cfg, f"evolution_{key}", metrics)


def find_snapshots(ckpt_dir: Path) -> dict[int, Path]:
    """{epoch: path} of the weights-only snapshots `epoch_NNN.ckpt`, by epoch."""
    found = {}
    for path in ckpt_dir.glob("epoch_*.ckpt"):
        match = re.fullmatch(r"epoch_(\d+)\.ckpt", path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise UserError(f"{ckpt_dir}: no epoch_NNN.ckpt snapshots (train.snapshot_epochs lists the epochs "
                        "kept; run the train stage first)")
    return dict(sorted(found.items()))


def strongest_tiles(model, deconv, images, layer, top, maps, batch_size) -> list:
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


def convergence_figure(metrics: dict, layers: list[str], epochs: list[int], key: str):
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for layer in layers:
        distances = metrics[layer]["distance_to_last"]
        ax.plot(epochs, [distances[f"epoch_{e:03d}"] for e in epochs], marker=".", label=layer)
    ax.set(xlabel="epoch", ylabel=f"||w - w_{epochs[-1]}|| / ||w_{epochs[-1]}||", ylim=(0, None),
           title=f"{key}: distance of each layer's weights to the last snapshot")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    stage.run("evolution", main)
