"""Tiny inputs for the deconvnet probes and the experiments built on them (test helper, `import probe_inputs`):
random-weight networks at a 64-pixel crop and sets of random images, no files."""

from __future__ import annotations

import functools

import torch
from torch import nn

from zfnet.data.images import ImageSet
from zfnet.nets.models import build_model

SIZE, CROP = 72, 64


@functools.cache
def random_model(name: str, seed: int = 0) -> nn.Module:
    """A width-0.25 network whose conv weights and biases are drawn large enough that most maps fire."""
    torch.manual_seed(seed)
    model = build_model(name, 5, input_size=CROP, width=0.25)
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
            nn.init.normal_(module.bias, std=0.3)
    return model.eval()


class Images(torch.utils.data.Dataset):
    """A stand-in for PreparedSplit: (uint8 CHW, label)."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], 0


def image_set(n: int = 12, indices=None, scale: float = 0.02) -> ImageSet:
    mean = torch.full((3, SIZE, SIZE), 120.0)
    return ImageSet(Images(n), mean, CROP, indices, scale=scale)


@torch.no_grad()
def rectified(model: nn.Module, inputs: torch.Tensor, layer: str) -> torch.Tensor:
    """The ReLU output after conv layer `layer` ("convN" -> module "reluN"), read by a forward hook: a path
    that shares nothing with zfnet.probes."""
    seen = []
    hook = getattr(model.features, "relu" + layer.removeprefix("conv")).register_forward_hook(
        lambda module, args, out: seen.append(out.clone()))
    try:
        model(inputs)
    finally:
        hook.remove()
    return seen[0]
