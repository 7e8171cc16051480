"""Stage `visualize@<model>`: the top-9 activations of every feature map, projected (paper Fig. 2).

    python pipelines/visualize.py model=alexnet [visualize.top9.images=200] [visualize.top9.maps=9]

What is measured and how: `zfnet.experiments.top9`. Outputs: plots/visualize_<model>/top9_<layer>.png;
outputs/visualize/<model>/top9.pt (every map's top k: values, dataset image indices, positions);
metrics/visualize_<model>.json; W&B: the figures and a table (layer, map, rank, activation, image,
projection, patch) of the maps shown.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zfnet.experiments import top9
from zfnet.io import atomic_path
from zfnet.pipeline import inputs, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.top9 import layer_figure


def main(cfg) -> None:
    key, vis = cfg.model, cfg.visualize
    net = inputs.trained(cfg)
    images = inputs.images(cfg, inputs.split(cfg, "val"), net.hparams, vis.top9.images).images
    result = top9.run(net.model, images, vis, seed=cfg.seed, workers=cfg.trainer.num_workers)
    with atomic_path(Path(cfg.paths.outputs) / "visualize" / key / "top9.pt") as tmp:
        torch.save(result.saved(), tmp)

    figures = stage.save_figures(cfg, f"visualize_{key}", ((f"top9_{layer}", layer_figure(result, layer, key))
                                                            for layer in result.projections), f"visualize/{key}")
    with Tracker(cfg, "visualize", name=f"visualize-{key}") as tracker:
        tracker.images(figures)
        tracker.table(f"visualize/{key}/top9", top9.TABLE_COLUMNS, result.table_rows())
        tracker.summary({f"visualize/{key}/images_per_s": len(images) / result.seconds, **result.metrics})
        stage.write_metrics(cfg, f"visualize_{key}", result.metrics)


if __name__ == "__main__":
    stage.run("visualize", main)
