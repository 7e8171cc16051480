"""Frozen per-layer features and their cache (zfnet.transfer.features)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zfnet.data.loading import center_crop, normalize
from zfnet.errors import UserError
from zfnet.nets.models import build_model
from zfnet.transfer import features

CROP, SIZE = 64, 72


def tiny(name: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, 3, input_size=CROP, width=0.25, init="fan_in", **options).eval()


def test_feature_modules_are_what_the_next_layer_reads():
    # The module docstring's layer order: zfnet pools then normalizes, alexnet normalizes then pools.
    assert features.feature_modules(tiny("zfnet")) == {1: "norm1", 2: "norm2", 3: "relu3", 4: "relu4", 5: "pool5",
                                                       6: "relu6", 7: "relu7"}
    assert features.feature_modules(tiny("alexnet")) == {1: "pool1", 2: "pool2", 3: "relu3", 4: "relu4",
                                                         5: "pool5", 6: "relu6", 7: "relu7"}
    assert features.feature_modules(tiny("zfnet", remove=[3, 4, 7])) == {1: "norm1", 2: "norm2", 5: "pool5", 6: "relu6"}


def test_pool_to_grid_is_a_blockwise_max():
    x = torch.arange(2 * 16, dtype=torch.float32).view(1, 2, 4, 4)
    x[0, 0, 0, 1] = 100.0
    pooled = features.pool_to_grid(x, 2)
    by_hand = [x[0, c, i:i + 2, j:j + 2].max() for c in range(2) for i in (0, 2) for j in (0, 2)]
    assert pooled.tolist() == [[float(v) for v in by_hand]]
    assert features.pool_to_grid(x, 8).shape == (1, 32)  # a map smaller than the grid is kept whole
    assert features.pool_to_grid(torch.ones(3, 5), 2).shape == (3, 5)


def test_extract_matches_a_forward_pass_by_hand():
    model = tiny("zfnet")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    mean = torch.full((3, SIZE, SIZE), 120.0)
    got = features.extract(model, images, mean, CROP, [1, 5, 7], grid=2, input_scale=0.02, batch_size=2)

    x = center_crop(normalize(torch.from_numpy(images).permute(0, 3, 1, 2), mean, 0.02), CROP)
    with torch.no_grad():
        layer1 = model.features[:4](x)  # conv1 relu1 pool1 norm1
        pool5 = model.features(x)
        c = model.classifier
        relu7 = torch.relu(c.fc7(torch.relu(c.fc6(pool5.flatten(1)))))  # dropout is off in eval
    assert np.allclose(got[1], F.adaptive_max_pool2d(layer1, 2).flatten(1).numpy(), atol=1e-5)
    assert np.allclose(got[5], F.adaptive_max_pool2d(pool5, (min(2, pool5.shape[2]),) * 2).flatten(1).numpy(),
                       atol=1e-5)
    assert np.allclose(got[7], relu7.numpy(), atol=1e-5)


def test_extract_gives_the_cpu_path_s_numbers_bit_for_bit():
    """The uint8 batch is cropped before the mean subtraction (on the model's device): the same inputs, in
    the same NHWC memory order, as subtracting the mean from the whole image on the CPU and cropping after,
    so the very same features (the conv kernels and their rounding follow the memory order)."""
    model = tiny("zfnet")
    images = np.random.default_rng(2).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    mean = torch.from_numpy(np.random.default_rng(3).uniform(60, 200, (3, SIZE, SIZE)).astype(np.float32))
    got = features.extract(model, images, mean, CROP, [1, 7], grid=2, input_scale=0.02, batch_size=3)
    hooks, outputs = [], {1: [], 7: []}
    for n, name in ((1, "norm1"), (7, "relu7")):
        module = model.features.norm1 if n == 1 else model.classifier.relu7
        hooks.append(module.register_forward_hook(lambda m, i, o, n=n: outputs[n].append(o)))
    with torch.no_grad():
        for start in (0, 3):
            batch = torch.from_numpy(images[start:start + 3]).permute(0, 3, 1, 2)
            model(center_crop(normalize(batch, mean, 0.02), CROP))
    for hook in hooks:
        hook.remove()
    assert np.array_equal(got[1], F.adaptive_max_pool2d(torch.cat(outputs[1]), 2).flatten(1).numpy())
    assert np.array_equal(got[7], torch.cat(outputs[7]).numpy())


def test_extract_turns_dropout_off_and_names_missing_layers():
    model = tiny("zfnet").train()  # relu7 reads fc7, which reads drop6's output
    images = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    first = features.extract(model, images, torch.zeros(3, SIZE, SIZE), CROP, [7], input_scale=0.02)
    second = features.extract(model, images, torch.zeros(3, SIZE, SIZE), CROP, [7], input_scale=0.02)
    assert np.array_equal(first[7], second[7]) and model.training  # eval inside, the flag restored after
    with pytest.raises(UserError, match=r"layer\(s\) \[7\]"):
        features.extract(tiny("zfnet", remove=[7]), images, torch.zeros(3, SIZE, SIZE), CROP, [7])


def test_cache_is_reused_only_for_the_same_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {7: np.full((3, 2), float(len(calls)), np.float32)}

    path = tmp_path / "cache" / "features.pt"
    first, reused = features.cached(path, "key-a", compute)
    assert not reused and len(calls) == 1
    again, reused = features.cached(path, "key-a", compute)
    assert reused and len(calls) == 1 and np.array_equal(again[7], first[7])
    other, reused = features.cached(path, "key-b", compute)  # other weights or pixels: recomputed
    assert not reused and len(calls) == 2 and other[7][0, 0] == 2.0
    path.write_bytes(b"not a torch file")
    _, reused = features.cached(path, "key-b", compute)
    assert not reused and len(calls) == 3


def test_cache_key_depends_on_every_part():
    assert features.cache_key("w", "x") == features.cache_key("w", "x")
    assert features.cache_key("w", "x") != features.cache_key("w", "y")
    assert features.cache_key("wx", "") != features.cache_key("w", "x")
