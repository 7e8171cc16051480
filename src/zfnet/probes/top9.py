"""The strongest activations of every feature map over a dataset, in one streaming pass (Fig. 2, 4).

    top = top_activations(model, loader, ["conv1", "conv5"], k=9)
    top["conv5"].values[c]       # (k,) the 9 strongest activations of map c, descending
    top["conv5"].image_index[c]  # the images they come from (9 different images)
    top["conv5"].y[c], .x[c]     # their positions in the conv5 map
    receptive_field(model, "conv5", y, x)  # -> (y0, y1, x0, x1): image[:, y0:y1, x0:x1] is the patch

Conventions:

* Activations are the ReLU-rectified conv outputs (the maps the paper visualizes).
* Each image contributes at most one activation per map, its maximum in that map (ties: the first in
  row-major order), so the top k of a map are k *different* images, as in the paper's figures.
* Ties between images go to the smaller image index, so the result does not depend on how the
  stream is split into batches.
* Memory is O(layers x maps x k): per batch each map is reduced to per-image maxima and merged with
  the running top k; nothing grows with the dataset.
* Fewer than k images seen: the tensors have as many columns as images.
* The result is on the CPU.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from zfnet.probes.deconv import evaluating, output_module_name


class TopK(NamedTuple):
    """For each of C maps, its k strongest activations in descending order: each field is (C, k)."""

    values: Tensor
    image_index: Tensor
    y: Tensor
    x: Tensor


def _rectified_maps(features: nn.Sequential, outputs: dict[str, str], images: Tensor) -> dict[str, Tensor]:
    """Run `features` just far enough to collect the output of each module named in `outputs`' values."""
    wanted = {module_name: layer for layer, module_name in outputs.items()}
    maps: dict[str, Tensor] = {}
    x = images
    for name, module in features.named_children():
        x = module(x)
        if name in wanted:
            maps[wanted[name]] = x
            if len(maps) == len(wanted):
                break
    return maps


def per_image_maxima(activation: Tensor, image_index: Tensor) -> TopK:
    """Each image's maximum in each map: a TopK with one column per image, (C, N), unsorted."""
    n, c, _, w = activation.shape
    flat = activation.flatten(2)  # (N, C, H*W)
    position = flat.argmax(dim=2)  # first maximum in row-major order
    values = flat.gather(2, position.unsqueeze(2)).squeeze(2)
    return TopK(
        values.T,
        image_index.to(activation.device).expand(c, n),
        (position // w).T,
        (position % w).T,
    )


def _take(top: TopK, order: Tensor) -> TopK:
    return TopK(*(field.gather(1, order) for field in top))


def merge_top(running: TopK | None, candidates: TopK, k: int) -> TopK:
    """The k largest of both, per map: sorted by value descending, then image index ascending."""
    if running is not None:
        candidates = TopK(*(torch.cat(pair, dim=1) for pair in zip(running, candidates)))
    # two stable sorts give the lexicographic order (value desc, index asc)
    merged = _take(candidates, candidates.image_index.argsort(dim=1, stable=True))
    order = merged.values.argsort(dim=1, descending=True, stable=True)[:, :k]
    return _take(merged, order)


def _unpack(batch, seen: int, with_indices: bool) -> tuple[Tensor, Tensor]:
    if isinstance(batch, Tensor):
        images = batch
    else:
        images = batch[0]
    if with_indices:
        indices = torch.as_tensor(batch[1]).long().reshape(-1)
        if len(indices) != len(images):
            raise ValueError(f"batch has {len(images)} images but {len(indices)} indices")
    else:
        indices = torch.arange(seen, seen + len(images))
    return images, indices


@torch.no_grad()
def top_activations(
    model: nn.Module,
    batches: Iterable,
    layers: Sequence[str],
    k: int = 9,
    with_indices: bool = False,
) -> dict[str, TopK]:
    """The k strongest activations of every map of each conv layer in `layers`, over `batches`.

    `batches` yields image tensors (N,3,H,W) or tuples whose first element is the images.
    `with_indices=False`: images are numbered by a running count over the stream (a DataLoader
    with shuffle=False over a dataset gives the dataset index); the rest of a tuple (labels) is
    ignored. `with_indices=True`: each batch is (images, indices) with every image's index.
    """
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    outputs = {layer: output_module_name(model, layer) for layer in layers}
    device = next(model.parameters()).device
    running: dict[str, TopK | None] = {layer: None for layer in layers}
    seen = 0
    with evaluating(model):
        for batch in batches:
            images, indices = _unpack(batch, seen, with_indices)
            maps = _rectified_maps(model.features, outputs, images.to(device))
            for layer, activation in maps.items():
                running[layer] = merge_top(running[layer], per_image_maxima(activation, indices), k)
            seen += len(images)
    if seen == 0:
        raise ValueError("top_activations: no images in batches")
    return {layer: TopK(*(field.cpu() for field in top)) for layer, top in running.items()}


def _window(module: nn.Module) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding, dilation) per spatial dim, or None for spatially pointwise modules."""
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise ValueError(f"receptive_field: string padding {module.padding!r} is not supported")
        return tuple(zip(module.kernel_size, module.stride, module.padding, module.dilation))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        stride = module.stride or module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return tuple(zip(*(pair(v) for v in (module.kernel_size, stride, module.padding, dilation))))
    return None


def receptive_field(
    model: nn.Module,
    layer: str,
    y: int,
    x: int,
    input_size: int | Sequence[int] | None = None,
) -> tuple[int, int, int, int]:
    """Input pixels that activation (y, x) of `layer` can see: (y0, y1, x0, x1), half-open.

    Computed from the kernel, stride, padding and dilation of every conv and pool below the layer,
    then clipped to the image: `image[:, y0:y1, x0:x1]` is the patch. `input_size` (side or (H, W))
    defaults to `model.input_size`; without either, only the clip at 0 is applied.
    """
    stop = output_module_name(model, layer)
    stack = []
    for name, module in model.features.named_children():
        stack.append(module)
        if name == stop:
            break
    span = [[y, y], [x, x]]  # inclusive bounds, per spatial dim
    for module in reversed(stack):
        window = _window(module)
        if window is None:
            continue
        for bounds, (kernel, stride, padding, dilation) in zip(span, window):
            bounds[0] = bounds[0] * stride - padding
            bounds[1] = bounds[1] * stride - padding + dilation * (kernel - 1)
    if input_size is None:
        input_size = getattr(model, "input_size", None)
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    (y0, y1), (x0, x1) = ((max(lo, 0), hi + 1) for lo, hi in span)
    if input_size is not None:
        y1, x1 = min(y1, input_size[0]), min(x1, input_size[1])
    return y0, y1, x0, x1
