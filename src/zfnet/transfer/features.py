"""Frozen features of a trained net for transfer (paper Sec. 5.2, Table 7), and their on-disk cache.

Layer n's features are what layer n + 1 reads, in eval mode (dropout off):
    conv layers: the last module of layer n's block, so rectified, pooled and normalized where the
                 block pools and normalizes (zfnet: norm1, norm2, relu3, relu4, pool5;
                 alexnet: pool1, pool2, relu3, relu4, pool5);
    fc layers:   the rectified output (relu6, relu7). "Pretrained" (Tables 4-6) uses layer 7.
Size (ours; the paper does not say how it kept them manageable): a conv layer's (C, H, W) map is
max-pooled to at most grid x grid cells (adaptive max pooling), so layer 1 of ZFNet at 224 px gives
96 x 4 x 4 = 1,536 numbers instead of 96 x 55 x 55. Maps already that small are kept whole.

Inputs are the images as pretraining saw them at test time: the prepared uint8 image minus the
training mean, times input_scale, centre-cropped to the model's input size.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from zfnet.data import loading
from zfnet.data.loading import center_crop, normalize
from zfnet.errors import UserError
from zfnet.io import atomic_path
from zfnet.nets import layers as nets_layers
from zfnet.nets import models as nets_models
from zfnet.nets.models import get_layer
from zfnet.probes.deconv import evaluating

log = logging.getLogger("zfnet.transfer")

def feature_modules(model: nn.Module) -> dict[int, str]:
    """{layer number: name of the module whose output is that layer's features} for the layers present."""
    children = [name for name, _ in model.features.named_children()]
    starts = [i for i, name in enumerate(children) if re.fullmatch(r"conv\d+", name)]
    layers = {}
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(children)
        layers[int(children[start][4:])] = children[end - 1]
    for name, _ in model.classifier.named_children():
        if re.fullmatch(r"relu\d+", name):
            layers[int(name[4:])] = name
    return layers


def pool_to_grid(x: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C * min(grid, H) * min(grid, W)) by adaptive max pooling; (N, D) unchanged."""
    if x.dim() == 2:
        return x
    height, width = x.shape[-2:]
    return F.adaptive_max_pool2d(x, (min(grid, height), min(grid, width))).flatten(1)


@torch.no_grad()
def extract(model: nn.Module, images: np.ndarray, mean: torch.Tensor, crop: int, layers: Sequence[int],
            grid: int = 4, input_scale: float = 1.0, batch_size: int = 64, progress: bool = False
            ) -> dict[int, np.ndarray]:
    """{layer: (N, D) float32} for uint8 images (N, S, S, 3) (prepared: resized and centre-cropped to S)."""
    names = feature_modules(model)
    missing = [n for n in layers if n not in names]
    if missing:
        raise UserError(f"transfer: layer(s) {missing} not in this {getattr(model, 'arch', 'model')} "
                        f"(present: {sorted(names)})")
    device = next(model.parameters()).device
    mean = center_crop(mean, crop).to(device)
    collected: dict[int, list[np.ndarray]] = {n: [] for n in layers}

    def collector(n: int):
        def hook(module, inputs, output):
            collected[n].append(pool_to_grid(output.float(), grid).cpu().numpy())
        return hook

    hooks = [get_layer(model, names[n]).register_forward_hook(collector(n)) for n in layers]
    try:
        with evaluating(model):
            for start in tqdm(range(0, len(images), batch_size), desc="features", unit="batch", disable=not progress):
                model(device_inputs(images[start:start + batch_size], mean, crop, input_scale, device))
    finally:
        for hook in hooks:
            hook.remove()
    return {n: np.concatenate(parts) if parts else np.zeros((0, 0), np.float32) for n, parts in collected.items()}


def device_inputs(images: np.ndarray, cropped_mean: torch.Tensor, crop: int, input_scale: float,
                  device: torch.device) -> torch.Tensor:
    """uint8 (n, S, S, 3) -> the network's (n, 3, crop, crop) float32 inputs on `device`: the uint8 pixels
    travel (pinned, for CUDA), the centre crop and the mean subtraction run there, on the crop only.

    The same numbers, and the same NHWC memory order, as cropping `normalize(images, mean, input_scale)`
    on the CPU: the conv kernels (and their rounding) follow the memory order.
    """
    batch = torch.from_numpy(np.ascontiguousarray(images))
    if device.type == "cuda":
        batch = batch.pin_memory()
    batch = batch.to(device, non_blocking=True).permute(0, 3, 1, 2)
    return normalize(center_crop(batch, crop), cropped_mean, input_scale)


def cache_key(*parts: bytes | str) -> str:
    """A digest of everything a cached feature set depends on: the parts given (weights, pixels,
    settings) and the extraction code itself (this module, the models, the crops)."""
    digest = hashlib.sha256()
    for module in (sys.modules[__name__], nets_models, nets_layers, loading):
        digest.update(Path(module.__file__).read_bytes())
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def cached(path: str | Path, key: str, compute: Callable[[], dict[int, np.ndarray]]
           ) -> tuple[dict[int, np.ndarray], bool]:
    """The features stored at `path` if they were made with `key`, else compute(), stored atomically.

    Returns (features, reused). A file made with another key (other weights, images or settings) is
    replaced; one that does not load is recomputed with a warning.
    """
    path = Path(path)
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("key") == key:
                return {int(n): v.numpy() for n, v in stored["features"].items()}, True
        except Exception as err:  # a damaged cache is only a cache
            log.warning("%s: unreadable feature cache (%s); recomputing", path, err)
    features = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"key": key, "features": {int(n): torch.from_numpy(v) for n, v in features.items()}}, tmp)
    return features, False
