"""Streaming top-k against brute force, and receptive fields against gradients."""

from __future__ import annotations

import functools
import gc
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfnet.probes.top9 import TopK, receptive_field, top_activations

import conftest

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


@functools.cache
def random_model(name: str, size: int = 64, **options) -> nn.Module:
    return conftest.random_model(name, size, **options).double()


def dataset(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def random_batches(images: torch.Tensor, seed: int):
    """(images, indices) in batches of random sizes, in order."""
    g = torch.Generator().manual_seed(seed)
    start = 0
    while start < len(images):
        size = int(torch.randint(1, 7, (1,), generator=g))
        yield images[start : start + size], torch.arange(start, min(start + size, len(images)))
        start += size


def brute_force(model: nn.Module, images: torch.Tensor, layer: str, k: int) -> TopK:
    """All activations of all images at once (hooks on the ReLU), then a plain sort per map."""
    relu = getattr(model.features, "relu" + layer.removeprefix("conv"))
    captured = []
    handle = relu.register_forward_hook(lambda m, i, out: captured.append(out))
    with torch.no_grad():
        model.features(images)
    handle.remove()
    activation = captured[0]  # (N, C, H, W)
    n, c, _, w = activation.shape
    fields = [[], [], [], []]
    for channel in range(c):
        per_image = []
        for i in range(n):
            flat = activation[i, channel].flatten()
            position = int(flat.argmax())
            per_image.append((float(flat[position]), i, position // w, position % w))
        per_image.sort(key=lambda t: (-t[0], t[1]))
        for field, column in zip(fields, zip(*per_image[:k])):
            field.append(column)
    values, index, y, x = fields
    return TopK(torch.tensor(values, dtype=torch.float64), *(torch.tensor(f) for f in (index, y, x)))


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_brute_force(name, seed):
    model = random_model(name)
    images = dataset(23, seed=seed)
    result = top_activations(model, random_batches(images, seed), LAYERS, k=9, with_indices=True)
    assert list(result) == LAYERS
    for layer in LAYERS:
        expected = brute_force(model, images, layer, k=9)
        got = result[layer]
        torch.testing.assert_close(got.values, expected.values, rtol=1e-12, atol=1e-12)
        for field in ("image_index", "y", "x"):
            assert torch.equal(getattr(got, field), getattr(expected, field)), (layer, field)
        # nine different images per map, values descending
        assert all(len(set(row.tolist())) == 9 for row in got.image_index)
        assert (got.values[:, :-1] >= got.values[:, 1:]).all()


def test_dataloader_running_index_and_given_indices_agree():
    model = random_model("zfnet")
    images = dataset(17, seed=3)
    labels = torch.randint(0, 10, (17,))
    from_loader = top_activations(model, DataLoader(TensorDataset(images, labels), batch_size=5), ["conv2", "conv5"])
    # the same images in shuffled order, each with its own index
    order = torch.randperm(17, generator=torch.Generator().manual_seed(0))
    shuffled = [(images[order[i : i + 4]], order[i : i + 4]) for i in range(0, 17, 4)]
    from_shuffled = top_activations(model, shuffled, ["conv2", "conv5"], with_indices=True)
    for layer in ("conv2", "conv5"):
        for got, expected in zip(from_shuffled[layer], from_loader[layer]):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def live_tensor_bytes() -> int:
    """Bytes held by every tensor alive in this process (each storage counted once; views share one)."""
    storages = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance on some torch.distributed leftovers warns
        for obj in gc.get_objects():
            if isinstance(obj, torch.Tensor):
                storage = obj.untyped_storage()
                try:
                    storages[storage.data_ptr()] = storage.nbytes()
                except RuntimeError:  # a FakeTensor that a torch.compile test left behind: it holds no memory
                    continue
    return sum(storages.values())


def test_memory_does_not_grow_with_the_dataset():
    """Measured: the tensors alive between batches are the same for 16 and for 48 images."""
    model = random_model("alexnet")
    batch = 8

    def peak_between_batches(n):
        readings = []

        def stream():  # measures whenever top_activations asks for the next batch (and after the last)
            for start in range(0, n, batch):
                readings.append(live_tensor_bytes())
                yield dataset(batch, seed=start)
            readings.append(live_tensor_bytes())

        before = live_tensor_bytes()
        result = top_activations(model, stream(), LAYERS, k=9)
        return max(readings) - before, result

    small_peak, small = peak_between_batches(16)
    large_peak, large = peak_between_batches(48)
    one_batch = batch * 3 * 64 * 64 * 8  # float64 images: the measurement does see what the loop holds
    assert small_peak >= one_batch
    # Keeping anything per image (its maxima: 8 bytes x 344 maps) for the 32 extra images would add > 80 kB.
    assert large_peak <= small_peak + 1024, (small_peak, large_peak)
    for layer in LAYERS:
        channels = model.features.get_submodule(layer).out_channels
        for a, b in zip(small[layer], large[layer]):
            assert a.shape == b.shape == (channels, 9)
    assert int(large["conv1"].image_index.max()) >= 16  # the later images were seen


def test_fewer_images_than_k():
    model = random_model("zfnet")
    result = top_activations(model, [dataset(4)], ["conv3"], k=9)
    assert result["conv3"].values.shape == (model.features.conv3.out_channels, 4)


# --------------------------------------------------------------------------- receptive fields


def test_zfnet_conv1_corner_is_the_7x7_window_minus_padding():
    model = random_model("zfnet")
    assert receptive_field(model, "conv1", 0, 0) == (0, 6, 0, 6)
    assert receptive_field(model, "conv1", 3, 5) == (5, 12, 9, 16)


def gradient_field(model: nn.Module, layer: str, y: int, x: int, size: int) -> tuple[int, int, int, int]:
    """Bounding box of the nonzero d act / d input of a positive linear copy of the layer stack.

    Positive filters, ReLU and LRN as identity and max pools as average pools (which reach every
    window element), so every pixel in the receptive field gets a positive gradient.
    """
    image = torch.ones(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    out = image
    for name, module in model.features.named_children():
        if isinstance(module, nn.Conv2d):
            weight = module.weight.detach().abs() + 1e-3
            out = F.conv2d(out, weight, None, module.stride, module.padding, module.dilation, module.groups)
        elif isinstance(module, nn.MaxPool2d):
            out = F.avg_pool2d(out, module.kernel_size, module.stride, module.padding, module.ceil_mode)
        if name == layer:
            break
    out[0, 0, y, x].backward()
    rows = image.grad[0].abs().sum(0).nonzero()
    (y0, x0), (y1, x1) = rows.min(0).values.tolist(), rows.max(0).values.tolist()
    assert len(rows) == (y1 - y0 + 1) * (x1 - x0 + 1)  # a full rectangle
    return y0, y1 + 1, x0, x1 + 1


@pytest.mark.parametrize("name, options", [("zfnet", {}), ("alexnet", {}), ("zfnet", {"remove": (3, 4)})])
def test_receptive_field_equals_gradient_support(name, options):
    size = 160
    model = random_model(name, size=size, **options)
    names = [name for name, _ in model.features.named_children()]
    for layer in model.conv_layer_names:
        with torch.no_grad():
            below = model.features[: names.index(layer) + 1]
            h, w = below(torch.zeros(1, 3, size, size, dtype=torch.float64)).shape[-2:]
        for y, x in [(0, 0), (h - 1, w - 1), (h // 2, w // 3), (0, w - 1)]:
            assert receptive_field(model, layer, y, x) == gradient_field(model, layer, y, x, size), (layer, y, x)
