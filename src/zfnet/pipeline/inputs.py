"""What every probe stage does before its experiment runs: pick the device, load the trained network (and its
untrained control), open a prepared split, draw the seeded image subset. Stage scripts call these; the
experiments in `zfnet.experiments` take what they return."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from omegaconf import DictConfig

from zfnet.data.images import ImageSet, image_set, subset
from zfnet.data.prepare import PreparedSplit
from zfnet.nets.runs import device_for
from zfnet.nets.training import load_trained, untrained_like
from zfnet.pipeline.stage import checkpoint_path


class Trained(NamedTuple):
    model: torch.nn.Module  # eval mode, on `device`
    hparams: dict  # the checkpoint's: arch, num_classes, crop, mean, input_scale
    device: torch.device


class Images(NamedTuple):
    images: ImageSet  # the network's inputs, numbered 0..n-1
    labels: torch.Tensor  # (n,) long, on the CPU
    indices: list[int]  # their positions in the split


def trained(cfg: DictConfig, key: str | None = None, checkpoint: str | Path | None = None) -> Trained:
    """Model `key`'s (default `cfg.model`) network from its train checkpoint (`visualize.checkpoint`, or the
    file `checkpoint`), on the device `trainer.accelerator` asks for."""
    device = device_for(cfg.trainer.accelerator)
    path = checkpoint or checkpoint_path(cfg, key or cfg.model)
    model, hparams = load_trained(path, device)
    return Trained(model, hparams, device)


def untrained(cfg: DictConfig, net: Trained) -> torch.nn.Module:
    """The negative control: `net`'s architecture initialized from `cfg.seed`, never trained, on its device."""
    return untrained_like(net.hparams, cfg.seed, net.device)


def split(cfg: DictConfig, name: str = "val") -> PreparedSplit:
    """The prepared split `name` (`<paths.prepared>/<name>`)."""
    return PreparedSplit(Path(cfg.paths.prepared) / name)


def images(cfg: DictConfig, prepared: PreparedSplit, hparams: dict, count: int | None) -> Images:
    """`count` images of `prepared` (all when None), drawn by `cfg.seed`, as the network sees them."""
    indices = subset(len(prepared), count, cfg.seed)
    labels = torch.as_tensor(prepared.labels[indices], dtype=torch.long)
    return Images(image_set(prepared, hparams, indices), labels, indices)
