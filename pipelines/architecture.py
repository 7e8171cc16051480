"""Stage `architecture`: ZFNet against AlexNet at layers 1 and 2, drawn and measured (paper Fig. 6).

    python pipelines/architecture.py [visualize.architecture.no_renorm_checkpoint=outputs/norenorm/best.ckpt]

Every entry of `models` (and, when given, a checkpoint trained without RMS renormalization, Fig. 6a) is loaded
from its train checkpoint and measured by zfnet.experiments.architecture.run (what is measured, and how).

Outputs: plots/architecture/{conv1_filters,conv2_projections,measures}.png;
metrics/architecture.json ({label: measures}); evidence/architecture.json (`evidence`: per filter and per
projection, what the report's intervals resample); W&B: the figures and the measures.
"""

from __future__ import annotations

import torch
from torch.utils.data import Subset

from zfnet.data.images import subset
from zfnet.experiments.architecture import run
from zfnet.pipeline import inputs, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.architecture import figures


def main(cfg) -> None:
    vis, arch = cfg.visualize, cfg.visualize.architecture
    checkpoints = {key: stage.checkpoint_path(cfg, key) for key in cfg.models}
    if arch.no_renorm_checkpoint:
        checkpoints[None] = arch.no_renorm_checkpoint
    split = inputs.split(cfg, "val")
    images = Subset(split, subset(len(split), vis.top9.images, cfg.seed))
    shift_images = torch.stack([split[i][0] for i in subset(len(split), arch.shift_images, cfg.seed)])

    models = {}
    for key, path in checkpoints.items():
        net = inputs.trained(cfg, checkpoint=path)
        # entries of `models` keep their names; the extra checkpoint is named for what it is
        models[key or f"{net.hparams['arch']['name']}_no_renorm_checkpoint"] = net.model, net.hparams
    result = run(models, images, shift_images, arch, seed=cfg.seed, batch_size=vis.batch_size,
                 normalize_down=vis.normalize_down, workers=cfg.trainer.num_workers)

    saved = stage.save_figures(cfg, "architecture", figures(result), "architecture")
    with Tracker(cfg, "architecture") as tracker:
        tracker.images(saved)
        tracker.summary({"architecture": result.measures})
    stage.write_evidence(cfg, "architecture", result.evidence)   # before the metrics: they say "done"
    stage.write_metrics(cfg, "architecture", result.measures)


if __name__ == "__main__":
    stage.run("architecture", main)
