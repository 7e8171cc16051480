"""Stage `architecture`: ZFNet against AlexNet at layers 1 and 2, drawn and measured (paper Fig. 6).

    python pipelines/architecture.py [visualize.architecture.no_renorm_checkpoint=outputs/norenorm/best.ckpt]

Every entry of `models` (and, when given, a checkpoint trained without RMS renormalization, Fig. 6a)
is loaded from its train checkpoint and searched over the validation images (conv1 and conv2, top 1
per map). Drawn: the conv1 filters side by side (Fig. 6 a-c) and the projections of the strongest
activation of a random set of conv2 maps (Fig. 6 d-e). Measured (definitions in zfnet.probes.filters):
the share of dead conv1 filters, the conv1 filters' energy in low, mid and high spatial frequencies,
and the aliasing of the conv2 projections (their energy share on the stride lattice, next to the
same measure on the image patches under them).

Outputs: plots/architecture/{conv1_filters,conv2_projections,measures}.png;
metrics/architecture.json ({label: measures}); W&B: the figures and the measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zfnet.data.prepare import PreparedSplit
from zfnet.io import save_figure
from zfnet.nets.models import get_layer
from zfnet.nets.training import filter_mosaic, load_trained
from zfnet.pipeline import stage
from zfnet.pipeline.tracking import Tracker
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.filters import dead_filters, lattice_share, spectral_make_up
from zfnet.probes.top9 import top_activations
from zfnet.viz.figures import to_hwc
from zfnet.viz.visualize import (
    choose_maps,
    cut,
    device_for,
    image_set,
    measures_figure,
    mosaic,
    project_top,
    receptive_window,
    responsive_maps,
    side_by_side,
    signed_stretch,
    subset,
)


def main(cfg) -> None:
    vis, arch = cfg.visualize, cfg.visualize.architecture
    device = device_for(cfg.trainer.accelerator)
    checkpoints = {key: Path(cfg.paths.outputs) / "train" / key / "checkpoints" / f"{vis.checkpoint}.ckpt"
                   for key in cfg.models}
    if arch.no_renorm_checkpoint:
        checkpoints[None] = Path(arch.no_renorm_checkpoint)
    split = PreparedSplit(Path(cfg.paths.prepared) / "val")
    indices = subset(len(split), vis.top9.images, cfg.seed)

    measures, filters, projections = {}, {}, {}
    for key, path in checkpoints.items():
        model, hparams = load_trained(path, device)
        label = key or hparams["arch"]["name"]
        if hparams.get("renorm_radius") is None:
            label += "_no_renorm"
        images = image_set(split, hparams, indices)
        measures[label], filters[label], projections[label] = compare(model, images, cfg)
        stage.log.info("%s: dead conv1 share %.3f, conv1 energy low/mid/high %s, conv2 alias share %.4f", label,
                       measures[label]["conv1_dead_share"],
                       "/".join(f"{v:.2f}" for v in measures[label]["conv1_spectrum"]["energy"].values()),
                       measures[label]["conv2_alias_share"])

    plots = stage.plot_dir(cfg, "architecture")
    labels = list(measures)
    figures = {
        "conv1_filters": side_by_side([filters[m] for m in labels], [f"{m} conv1" for m in labels],
                                      "Layer-1 filters (Fig. 6 a-c)"),
        "conv2_projections": side_by_side([projections[m] for m in labels], [f"{m} conv2" for m in labels],
                                          "Layer-2 features: strongest activation of random maps, projected "
                                          "(Fig. 6 d-e)", cell=5.0),
        "measures": measures_figure(measures, "Architecture selection, measured", arch.spectrum_size),
    }
    paths = {}
    for name, fig in figures.items():
        paths[f"architecture/{name}"] = plots / f"{name}.png"
        save_figure(fig, paths[f"architecture/{name}"])
    with Tracker(cfg, "architecture") as tracker:
        tracker.images(paths)
        tracker.summary({"architecture": measures})
    stage.write_metrics(cfg, "architecture", measures)


def compare(model, images, cfg) -> tuple[dict, np.ndarray, np.ndarray]:
    """One model's Fig. 6 measures, its conv1 filter mosaic and its conv2 projection mosaic."""
    vis, arch = cfg.visualize, cfg.visualize.architecture
    top = top_activations(model, images.batches(vis.batch_size), ["conv1", "conv2"], k=1)
    weight = get_layer(model, "conv1").weight.detach().cpu()
    rms = weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
    dead = dead_filters(weight, top["conv1"].values[:, 0], threshold=arch.dead_threshold)
    by_norm = dead_filters(weight, threshold=arch.dead_threshold)

    maps = choose_maps(responsive_maps(top["conv2"]), arch.conv2_maps, cfg.seed, "conv2")
    window = receptive_window(model, "conv2")
    raw = project_top(Deconvnet(model, vis.normalize_down), images, "conv2", top["conv2"], maps, vis.batch_size)
    crops, patches = [], []
    for m, channel in enumerate(maps):
        origin = window.origin(int(top["conv2"].y[channel, 0]), int(top["conv2"].x[channel, 0]))
        crops.append(cut(raw[m, 0], *origin, window.size))
        patches.append(cut(images.raw(int(top["conv2"].image_index[channel, 0])), *origin, window.size))
    crops_t = torch.from_numpy(np.stack(crops)) if crops else torch.zeros(0, 3, window.size, window.size)
    patches_t = torch.from_numpy(np.stack(patches)) if patches else crops_t
    period = arch.alias_period
    measures = {
        "conv1_filters": len(weight),
        "conv1_dead_share": float(dead.double().mean()),
        "conv1_dead_share_by_norm": float(by_norm.double().mean()),
        "conv1_silent_share": float((top["conv1"].values[:, 0] <= 0).double().mean()),
        "conv1_stride": get_layer(model, "conv1").stride[0],
        # Fig. 6(a): without renormalization a few filters dominate; 1 would be a bank of equal norms
        "conv1_rms_max_over_median": float(rms.max() / rms.median()),
        "conv1_spectrum": spectral_make_up(weight, size=arch.spectrum_size),
        "conv2_maps_projected": len(maps),
        "conv2_alias_share": mean(lattice_share(crops_t, period)),
        "conv2_patch_alias_share": mean(lattice_share(patches_t, period)),
        "alias_period": period,
    }
    tiles = [to_hwc(signed_stretch(crop)) for crop in crops] or [np.ones((window.size, window.size, 3))]
    return measures, filter_mosaic(weight, shared_scale=True), mosaic(tiles, int(np.ceil(np.sqrt(len(tiles)))))


def mean(values: torch.Tensor) -> float:
    return float(values.double().mean()) if len(values) else float("nan")


if __name__ == "__main__":
    stage.run("architecture", main)
