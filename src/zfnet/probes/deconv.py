"""Deconvnet projections of single activations to pixel space (Zeiler & Fergus, Sec. 2.1, Fig. 1).

To look at one activation, every other activation of its layer is set to zero and the map is passed
down to the pixels by repeating, layer by layer, the reverse of the forward pass:

* unpooling: the transpose of max pooling, using the switches (argmax locations) recorded on the
  forward pass of *that* image. With overlapping 3x3/2 windows one input location can be the maximum
  of several windows: their contributions add (``nn.MaxUnpool2d`` would overwrite).
* rectification: a ReLU on the reconstruction, wherever the forward pass has a ReLU.
* filtering: ``conv_transpose2d`` with the *same* weights, stride, padding, dilation and groups (the
  filters flipped vertically and horizontally) and no bias; ``output_padding`` restores the exact
  input size of each conv.

Contrast normalization (``nn.LocalResponseNorm``) is skipped on the way down, as in the ECCV text.
``normalize_down=True`` instead multiplies the reconstruction by the local gain the LRN applied on the
forward pass, ``a / (k + alpha/n * sum a^2)^beta = a * gain``: the diagonal of its Jacobian, ignoring
the cross-channel terms (a choice of ours: the paper does not define a reverse LRN).

With every ReLU's backward replaced by a ReLU of the incoming gradient, the deconvnet is exactly a
vector-Jacobian product: the projection of a single activation ``v`` equals ``v`` times Captum's
``NeuronDeconvolution`` of the pre-ReLU conv output (tests/probes/test_deconv.py checks this).

Layers are named by ``model.features`` children. A conv name (``"conv3"``) means the ReLU-rectified
output of that conv, the map the paper visualizes; any other child name means that child's output.
All functions run under ``torch.no_grad()``, register no hooks and leave the model (including its
train/eval flags) as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from zfnet.nets.layers import lrn_denominator

# Modules that do not change the spatial layout and are the identity on the way down.
_PASS_THROUGH = (nn.Identity, nn.Dropout)


@dataclass
class Step:
    """What the way down needs from one forward module."""

    name: str
    input_shape: torch.Size
    indices: Tensor | None = None  # max pooling switches, flat indices into each input plane
    lrn_input: Tensor | None = None  # LRN input, for normalize_down


@dataclass
class SwitchRecord:
    """The forward pass of a batch up to `layer`: one Step per module, in forward order."""

    layer: str
    output_name: str  # the module whose output is the projected map (a conv's ReLU)
    output_shape: torch.Size
    steps: list[Step] = field(default_factory=list)


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode, restoring each one's own flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def _children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return list(model.features.named_children())


def output_module_name(model: nn.Module, layer: str) -> str:
    """The `model.features` child whose output is the map of `layer`.

    A conv is followed to its ReLU (the first ReLU before the next conv), since the paper visualizes
    rectified maps; any other name is itself.
    """
    children = _children(model)
    names = [name for name, _ in children]
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r}; model.features has {names}")
    i = names.index(layer)
    if isinstance(children[i][1], nn.Conv2d):
        for name, module in children[i + 1 :]:
            if isinstance(module, nn.ReLU):
                return name
            if isinstance(module, nn.Conv2d):
                break
    return layer


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


@torch.no_grad()
def forward_with_switches(model: nn.Module, images: Tensor, layer: str) -> tuple[Tensor, SwitchRecord]:
    """Run `model.features` on `images` (N,3,H,W) up to `layer`, recording pooling switches.

    Returns the map of `layer` (for a conv: its rectified output, (N,C,h,w)) and the record that
    `project_activation` needs to go back down.
    """
    stop = output_module_name(model, layer)
    record = SwitchRecord(layer, stop, torch.Size())
    x = images
    with evaluating(model):
        for name, module in _children(model):
            step = Step(name, x.shape)
            if isinstance(module, nn.MaxPool2d):
                x, step.indices = F.max_pool2d(
                    x, module.kernel_size, module.stride, module.padding, module.dilation,
                    ceil_mode=module.ceil_mode, return_indices=True,
                )
            elif isinstance(module, nn.LocalResponseNorm):
                step.lrn_input = x
                x = module(x)
            elif isinstance(module, (nn.Conv2d, nn.ReLU) + _PASS_THROUGH):
                x = module(x)
            else:
                raise TypeError(f"deconvnet: unsupported module {name}: {type(module).__name__}")
            record.steps.append(step)
            if name == stop:
                break
    record.output_shape = x.shape
    return x, record


def unpool(x: Tensor, indices: Tensor, input_shape: Sequence[int]) -> Tensor:
    """Transpose of max pooling: send each value to its window's argmax, adding where windows share one.

    `indices` are those of ``F.max_pool2d(..., return_indices=True)`` (flat positions in each input
    plane), so this is right for overlapping windows, ``ceil_mode`` and padding alike, and equals the
    gradient of max pooling. `input_shape` is the pooling input's shape (only its last two sizes are used).
    """
    h, w = input_shape[-2:]
    out = x.new_zeros(*x.shape[:-2], h * w)
    out.scatter_add_(-1, indices.flatten(-2), x.flatten(-2))
    return out.view(*x.shape[:-2], h, w)


def _conv_padding(conv: nn.Conv2d) -> tuple[int, int]:
    if conv.padding_mode != "zeros":
        raise ValueError(f"deconvnet: padding_mode {conv.padding_mode!r} is not supported")
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(t % 2 for t in total):
            raise ValueError("deconvnet: asymmetric 'same' padding is not supported")
        return (total[0] // 2, total[1] // 2)
    return _pair(conv.padding)


def conv_transpose(x: Tensor, conv: nn.Conv2d, input_shape: Sequence[int]) -> Tensor:
    """Filter `x` with the transposed filters of `conv` (no bias), back to `conv`'s input size."""
    padding = _conv_padding(conv)
    output_padding = []
    for i in range(2):
        s, p, d, k = conv.stride[i], padding[i], conv.dilation[i], conv.kernel_size[i]
        reached = (x.shape[-2 + i] - 1) * s - 2 * p + d * (k - 1) + 1
        output_padding.append(input_shape[-2 + i] - reached)  # rows/cols the forward stride skipped
    return F.conv_transpose2d(
        x, conv.weight, None, conv.stride, padding, tuple(output_padding), conv.groups, conv.dilation
    )


def lrn_gain(x: Tensor, lrn: nn.LocalResponseNorm) -> Tensor:
    """The factor LRN multiplies each input by: ``lrn(x) == x * lrn_gain(x, lrn)``."""
    return lrn_denominator(x, lrn.size, lrn.alpha, lrn.k).pow(-lrn.beta)


@torch.no_grad()
def project_activation(
    model: nn.Module, record: SwitchRecord, top_map: Tensor, normalize_down: bool = False
) -> Tensor:
    """Reconstruct `top_map` (any tensor of the recorded layer's output shape) down to pixels.

    Walks the record backwards: unpool with the switches, rectify at every ReLU, filter with the
    transposed convs (no bias); LRN is skipped, or its forward gain applied if `normalize_down`.
    The map itself is rectified first (the layer's ReLU). Returns a tensor of the images' shape.
    """
    if top_map.shape != record.output_shape:
        raise ValueError(f"top_map has shape {tuple(top_map.shape)}, layer {record.layer} gives "
                         f"{tuple(record.output_shape)}")
    modules = dict(_children(model))
    x = top_map
    for step in reversed(record.steps):
        module = modules[step.name]
        if isinstance(module, nn.MaxPool2d):
            x = unpool(x, step.indices, step.input_shape)
        elif isinstance(module, nn.ReLU):
            x = F.relu(x)
        elif isinstance(module, nn.Conv2d):
            x = conv_transpose(x, module, step.input_shape)
        elif isinstance(module, nn.LocalResponseNorm):
            if normalize_down:
                x = x * lrn_gain(step.lrn_input, module)
        # pass-through modules: identity
    return x


def _per_image(value, n: int, device) -> Tensor:
    return torch.as_tensor(value, device=device).long().expand(n)


def strongest_position(activation: Tensor, channel: int | Tensor) -> Tensor:
    """(N,2) long tensor of (y, x): the strongest activation of map `channel` in each image.

    Ties go to the first position in row-major order. `channel` is an int or one per image (N,).
    """
    n, _, _, w = activation.shape
    maps = activation[torch.arange(n, device=activation.device), _per_image(channel, n, activation.device)]
    flat = maps.flatten(1).argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def keep_one(
    activation: Tensor, channel: int | Tensor, position: Sequence[int] | Tensor | None = None
) -> Tensor:
    """A map of `activation`'s shape that is zero except one activation per image, kept at its value.

    `channel`: int or (N,) tensor. `position`: None (the strongest in that map), one (y, x) for all
    images, or an (N,2) tensor.
    """
    n, device = activation.shape[0], activation.device
    if position is None:
        position = strongest_position(activation, channel)
    position = torch.as_tensor(position, device=device).long().reshape(-1, 2).expand(n, 2)
    index = (torch.arange(n, device=device), _per_image(channel, n, device), position[:, 0], position[:, 1])
    top_map = torch.zeros_like(activation)
    top_map[index] = activation[index]
    return top_map


def keep_channel(activation: Tensor, channel: int | Tensor) -> Tensor:
    """A map of `activation`'s shape that keeps the whole feature map `channel` (int or (N,)), zero elsewhere."""
    n, device = activation.shape[0], activation.device
    mask = torch.zeros(activation.shape[:2], dtype=torch.bool, device=device)
    mask[torch.arange(n, device=device), _per_image(channel, n, device)] = True
    return activation * mask[:, :, None, None]


class Deconvnet:
    """A deconvnet attached to `model` (any model with a `features` Sequential of conv/ReLU/pool/LRN).

    ``Deconvnet(model).project(images, "conv5", channel=17)`` projects, for each image, the strongest
    activation of map 17 of conv5 (rectified) to pixels. See the module docstring for the conventions.
    """

    def __init__(self, model: nn.Module, normalize_down: bool = False):
        self.model = model
        self.normalize_down = normalize_down

    @torch.no_grad()
    def project(
        self,
        images: Tensor,
        layer: str,
        channel: int | Tensor,
        position: Sequence[int] | Tensor | None = None,
    ) -> Tensor:
        """Project one activation of map `channel` of `layer` per image; returns `images`' shape.

        `position`: None (the strongest activation of that map in each image), (y, x) for all
        images, or an (N,2) tensor of per-image positions.
        """
        activation, record = forward_with_switches(self.model, images, layer)
        top_map = keep_one(activation, channel, position)
        return project_activation(self.model, record, top_map, self.normalize_down)

    @torch.no_grad()
    def project_map(self, images: Tensor, layer: str, channel: int | Tensor) -> Tensor:
        """Project the whole feature map `channel` of `layer` (all its activations together)."""
        activation, record = forward_with_switches(self.model, images, layer)
        return project_activation(self.model, record, keep_channel(activation, channel), self.normalize_down)
