"""Stage `visualize@<model>`: the top-9 activations of every feature map, projected (paper Fig. 2).

    python pipelines/visualize.py model=alexnet [visualize.top9.images=200] [visualize.top9.maps=9]

One streaming pass over the validation images keeps, for every map of every layer in
`visualize.layers`, its k strongest activations (`zfnet.probes.top9`; memory grows with layers x maps x k,
not with the images). Then, per layer, a random subset of the maps that fire: each one's k
activations projected to pixels by the deconvnet (a 3x3 block) beside the matching image patches.

Outputs: plots/visualize_<model>/top9_<layer>.png; outputs/visualize/<model>/top9.pt (every map's top
k: values, dataset image indices, positions); metrics/visualize_<model>.json; W&B: the figures and
a table (layer, map, rank, activation, image, projection, patch) of the maps shown.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from zfnet.data.images import image_set, subset
from zfnet.data.prepare import PreparedSplit
from zfnet.io import atomic_path, save_figure
from zfnet.nets.training import load_trained
from zfnet.pipeline import stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
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
from zfnet.tiles import block_mosaic
from zfnet.viz.top9 import top_figure


def main(cfg) -> None:
    key, vis = cfg.model, cfg.visualize
    device = device_for(cfg.trainer.accelerator)
    model, hparams = load_trained(stage.checkpoint_path(cfg, key), device)
    layers = checked_layers(model, list(vis.layers))
    split = PreparedSplit(Path(cfg.paths.prepared) / "val")
    images = image_set(split, hparams, subset(len(split), vis.top9.images, cfg.seed))

    started = time.perf_counter()
    top = top_activations(model, images.batches(vis.batch_size, cfg.trainer.num_workers, device), layers,
                          k=vis.top9.k)
    seconds = time.perf_counter() - started
    stage.log.info("%s: top-%d of %d maps in %d layers over %d images in %.1f s (%.0f images/s)", key,
                   vis.top9.k, sum(len(t.values) for t in top.values()), len(layers), len(images), seconds,
                   len(images) / seconds)
    save_results(Path(cfg.paths.outputs) / "visualize" / key / "top9.pt", top, images.indices)

    plots = stage.plot_dir(cfg, f"visualize_{key}")
    deconv = Deconvnet(model, normalize_down=vis.normalize_down)
    figures, rows = {}, []
    with Tracker(cfg, "visualize", name=f"visualize-{key}") as tracker:
        for layer in layers:
            maps = choose_maps(responsive_maps(top[layer]), vis.top9.maps, cfg.seed, layer)
            if not maps:
                stage.log.warning("%s %s: no feature map fires on these images; no figure", key, layer)
                continue
            projections, patches = layer_tiles(model, deconv, images, layer, top[layer], maps, vis.batch_size)
            path = plots / f"top9_{layer}.png"
            title = (f"{key} {layer}: top {top[layer].values.shape[1]} activations of {len(maps)} random maps "
                     f"over {len(images)} validation images")
            save_figure(top_figure(block_mosaic(projections), block_mosaic(patches), title), path)
            figures[f"visualize/{key}/top9_{layer}"] = path
            rows += table_rows(layer, maps, top[layer], images.indices, projections, patches)
        tracker.images(figures)
        tracker.table(f"visualize/{key}/top9", ["layer", "map", "rank", "activation", "image",
                                                      "projection", "patch"], rows)
        metrics = summarize(top, len(images))
        tracker.summary({f"visualize/{key}/images_per_s": len(images) / seconds, **metrics})
        stage.write_metrics(cfg, f"visualize_{key}", metrics)


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


def save_results(path: Path, top: dict[str, TopK], indices: list[int]) -> None:
    """Every map's top k, with image numbers turned into indices of the validation split."""
    lookup = torch.as_tensor(indices, dtype=torch.long)
    results = {layer: {"values": t.values, "image_index": lookup[t.image_index], "y": t.y, "x": t.x}
               for layer, t in top.items()}
    with atomic_path(path) as tmp:
        torch.save(results, tmp)


if __name__ == "__main__":
    stage.run("visualize", main)
