"""Stage `evolution@<model>`: feature evolution during training (paper Fig. 4).

    python pipelines/evolution.py model=zfnet [visualize.evolution.images=300] [visualize.evolution.maps=4]

What is measured and how: `zfnet.experiments.evolution`. The snapshots are the train stage's
outputs/train/<model>/checkpoints/epoch_NNN.ckpt, loaded one at a time. Outputs:
plots/evolution_<model>/evolution_<layer>.png (rows: maps, columns: epochs) and convergence.png (each
layer's distance to its last-snapshot weights, per epoch); metrics/evolution_<model>.json; W&B: the figures.
An untrained model (train.epochs=0) has no snapshots: the stage writes {"ran": false, "reason"} instead.
"""

from __future__ import annotations

from pathlib import Path

from zfnet.experiments import evolution
from zfnet.io import save_figure
from zfnet.nets.training import load_trained
from zfnet.pipeline import inputs, not_run, stage
from zfnet.pipeline.config import recipe
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.evolution import convergence_figure, layer_figure


def main(cfg) -> None:
    key, vis = cfg.model, cfg.visualize
    if recipe(cfg, key)["epochs"] == 0:
        not_run.write(cfg, f"evolution_{key}", f"{key} was not trained (train.epochs=0): no training snapshots",
                      plots=[f"evolution_{key}"])
        return
    paths = evolution.find_snapshots(Path(cfg.paths.outputs) / "train" / key / "checkpoints")
    *earlier, last = paths
    final = inputs.trained(cfg, checkpoint=paths[last])  # its hparams say how the images are fed
    snapshots = {epoch: (lambda path=paths[epoch]: load_trained(path, final.device)[0]) for epoch in earlier}
    snapshots[last] = final.model
    prepared = inputs.split(cfg, vis.evolution.split)
    images = inputs.images(cfg, prepared, final.hparams, vis.evolution.images).images
    result = evolution.run(snapshots, images, vis, seed=cfg.seed, workers=cfg.trainer.num_workers)

    plots = stage.plot_dir(cfg, f"evolution_{key}")
    figures = {}
    for layer in result.layers:
        if not result.maps[layer]:
            stage.log.warning("%s %s: no feature map fires at the last snapshot; no figure", key, layer)
            continue
        figures[f"evolution/{key}/{layer}"] = path = plots / f"evolution_{layer}.png"
        save_figure(layer_figure(result, layer, key), path)
    figures[f"evolution/{key}/convergence"] = path = plots / "convergence.png"
    save_figure(convergence_figure(result, key), path)
    with Tracker(cfg, "evolution", name=f"evolution-{key}") as tracker:
        tracker.images(figures)
        tracker.summary({f"evolution/{key}": result.metrics})
    stage.write_metrics(cfg, f"evolution_{key}", result.metrics)


if __name__ == "__main__":
    stage.run("evolution", main)
