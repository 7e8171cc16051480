"""The occlusion engines against occluded images built here and run through the whole model.

The oracle is always `model(image with the square set to fill)`, built by slicing in this file; Captum's
`Occlusion` is a second, independent oracle.
"""

import math
from collections import OrderedDict

import pytest
import torch
from captum.attr import Occlusion
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zfnet.errors import UserError
from zfnet.nets.models import build_model
from zfnet.probes.occlusion import (
    Approximation,
    grid_positions,
    grid_side,
    multiply_adds,
    occluded_outputs,
    occlusion_map,
    occlusion_sweep,
)


def tiny(name: str, size: int, classes: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name, classes, input_size=size, width=0.125, fc_units=64, init="fan_in").eval()


def oracle(model, image, patch: int, stride: int, fill: float = 0.0, hooks=("relu5", "pool5", "relu7")):
    """Per position in row-major order: softmax, and the hooked layers' outputs, from whole forward passes."""
    size = image.shape[-1]
    side = (size - patch) // stride + 1
    occluded = []
    for i in range(side):
        for j in range(side):
            x = image.clone()
            x[:, i * stride:i * stride + patch, j * stride:j * stride + patch] = fill
            occluded.append(x)
    seen = {}
    handles = [model.get_submodule(part).get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, out))
        for part in ("features", "classifier") for name in hooks if name in model.get_submodule(part)._modules]
    with torch.no_grad():
        prob = model(torch.stack(occluded)).softmax(dim=1)
    for handle in handles:
        handle.remove()
    return prob, seen


CASES = [  # (size, patch, stride): borders reached or not, patch < stride, patch = image
    (64, 16, 8), (64, 7, 5), (64, 23, 13), (67, 10, 19), (64, 64, 1),
]


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
@pytest.mark.parametrize("size,patch,stride", CASES)
def test_exact_and_naive_equal_whole_forward_passes(name, size, patch, stride):
    model = tiny(name, size)
    images = torch.randn(2, 3, size, size) * 3
    labels = torch.tensor([1, 4])
    side = grid_side(size, patch, stride)
    for mode in ("exact", "naive"):
        sweep = occlusion_sweep(model, images, labels, patch, stride, fill=0.5, mode=mode, batch_size=7)
        for n in range(2):
            prob, seen = oracle(model, images[n], patch, stride, fill=0.5)
            expected = prob[:, labels[n]].view(side, side)
            torch.testing.assert_close(sweep.p_true[n], expected, atol=2e-6, rtol=1e-4)
            assert torch.equal(sweep.top_label[n], prob.argmax(dim=1).view(side, side))
            totals = seen["relu5"][:, sweep.channel[n]].sum(dim=(1, 2)).view(side, side)
            torch.testing.assert_close(sweep.layer5_total[n], totals, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("mode", ["exact", "naive"])
def test_log_odds_of_the_true_class_at_every_position(mode):
    model = tiny("zfnet", 64, seed=6)
    images = torch.randn(2, 3, 64, 64) * 3
    labels = torch.tensor([2, 0])
    sweep = occlusion_sweep(model, images, labels, 16, 8, fill=0.5, mode=mode)
    for n in range(2):
        prob, _ = oracle(model, images[n], 16, 8, fill=0.5)
        p = prob[:, labels[n]].double().view(7, 7)
        torch.testing.assert_close(sweep.log_odds[n].double(), torch.log(p / (1 - p)), atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        p = model(images).softmax(dim=1)[torch.arange(2), labels].double()
    torch.testing.assert_close(sweep.base_log_odds.double(), torch.log(p / (1 - p)), atol=1e-4, rtol=1e-4)


def test_log_odds_do_not_saturate_where_p_rounds_to_one():
    model = tiny("zfnet", 64, seed=6)
    with torch.no_grad():  # a last layer that makes class 1 certain to within float32 rounding
        model.classifier[-1].weight.zero_()
        model.classifier[-1].bias.copy_(torch.tensor([0.0, 30.0, 0.0, 0.0, 0.0]))
    sweep = occlusion_sweep(model, torch.randn(1, 3, 64, 64), torch.tensor([1]), 16, 16)
    assert float(sweep.base_p_true[0]) == 1.0  # p itself says nothing more
    expected = 30.0 - math.log(4)  # log p1 - log(p0 + p2 + p3 + p4) = 30 - log 4 from the logits by hand
    torch.testing.assert_close(sweep.base_log_odds[0].double(), torch.tensor(expected, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(sweep.log_odds[0].double(), torch.full((4, 4), expected, dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_occluded_outputs_give_the_layer5_and_layer7_vectors(name):
    model = tiny(name, 64)
    image = torch.randn(3, 64, 64)
    positions = grid_positions(64, 12, 6)
    _, seen = oracle(model, image, 12, 6)
    for mode in ("exact", "naive"):
        outs = list(occluded_outputs(model, image, positions, (12, 12), mode=mode, batch_size=40))
        torch.testing.assert_close(torch.cat([o.pool5 for o in outs]), seen["pool5"].flatten(1), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(torch.cat([o.fc7 for o in outs]), seen["relu7"], atol=1e-4, rtol=1e-4)


class CeilNet(nn.Module):
    """pool1's ceil mode adds a window that floor mode would not have (16 -> 8, not 7); pool5 is padded."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 6, 5, stride=2, padding=2)), ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", nn.LocalResponseNorm(3)),
            ("conv5", nn.Conv2d(6, 8, 3, padding=1)), ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(8 * 5 * 5, 16)), ("relu6", nn.ReLU()),
            ("fc7", nn.Linear(16, 16)), ("relu7", nn.ReLU()), ("fc8", nn.Linear(16, 4)),
        ]))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_ceil_mode_pooling_and_padded_pools():
    torch.manual_seed(1)
    model = CeilNet().eval()
    image = torch.randn(1, 3, 32, 32)
    assert model.features[:3](image).shape[-1] == 8
    for patch, stride in ((5, 3), (9, 4), (3, 13), (4, 28)):
        prob, _ = oracle(model, image[0], patch, stride, hooks=())
        side = grid_side(32, patch, stride)
        got = occlusion_map(model, image, torch.tensor([2]), patch, stride)
        torch.testing.assert_close(got[0], prob[:, 2].view(side, side), atol=2e-6, rtol=1e-4)


def test_agrees_with_captum_on_non_overlapping_windows():
    """Captum's attribution of a pixel is the mean of p(base) - p(occluded) over the windows covering it;
    with stride = patch each pixel lies in one window, so it is exactly that window's drop."""
    model = tiny("zfnet", 64, seed=3)
    image = torch.randn(1, 3, 64, 64)
    label = 2
    patch = stride = 16
    with torch.no_grad():
        attribution = Occlusion(lambda x: model(x).softmax(dim=1)).attribute(
            image, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride), baselines=0.0,
            target=label, perturbations_per_eval=5)
    sweep = occlusion_sweep(model, image, torch.tensor([label]), patch, stride)
    drop = sweep.base_p_true[0] - sweep.p_true[0]
    expected = attribution[0, 0, ::stride, ::stride]
    torch.testing.assert_close(drop, expected, atol=2e-6, rtol=1e-4)


def test_layer5_channel_defaults_to_the_strongest_map():
    model = tiny("alexnet", 64, seed=2)
    images = torch.randn(3, 3, 64, 64)
    seen = {}
    handle = model.features.relu5.register_forward_hook(lambda _m, _i, out: seen.__setitem__("relu5", out))
    with torch.no_grad():
        model(images)
    handle.remove()
    sweep = occlusion_sweep(model, images, torch.zeros(3, dtype=torch.long), 16, 16)
    assert torch.equal(sweep.channel, seen["relu5"].flatten(2).amax(dim=2).argmax(dim=1))
    torch.testing.assert_close(sweep.base_total, seen["relu5"].sum(dim=(2, 3))[torch.arange(3), sweep.channel])


def test_approximate_computes_coarse_positions_exactly_and_interpolates_between():
    model = tiny("zfnet", 64, seed=4)
    images = torch.randn(1, 3, 64, 64)
    labels = torch.tensor([3])
    exact = occlusion_sweep(model, images, labels, 8, 4)  # 15 x 15 grid
    coarse = occlusion_sweep(model, images, labels, 8, 4, mode="approximate",
                             approximation=Approximation(coarse=2, drill=0.0))
    for field, atol in (("p_true", 2e-6), ("log_odds", 1e-4)):
        want, got = getattr(exact, field)[0], getattr(coarse, field)[0]
        torch.testing.assert_close(got[::2, ::2], want[::2, ::2], atol=atol, rtol=1e-4)
        torch.testing.assert_close(got[1, 0], (want[0, 0] + want[2, 0]) / 2, atol=atol, rtol=1e-4)
        torch.testing.assert_close(got[1, 1], want[0:3:2, 0:3:2].mean(), atol=atol, rtol=1e-4)
    totals = exact.layer5_total[0]
    third = occlusion_sweep(model, images, labels, 8, 4, mode="approximate",
                            approximation=Approximation(coarse=3, drill=0.0)).layer5_total[0]  # rows 0, 3, .., 12, 14
    torch.testing.assert_close(third[1, 0], (2 * totals[0, 0] + totals[3, 0]) / 3, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(third[0, 13], (totals[0, 12] + totals[0, 14]) / 2, rtol=1e-4, atol=1e-5)
    full_drill = occlusion_sweep(model, images, labels, 8, 4, mode="approximate",
                                 approximation=Approximation(coarse=3, drill=1.0))
    torch.testing.assert_close(full_drill.p_true[0], exact.p_true[0], atol=2e-6, rtol=1e-4)
    torch.testing.assert_close(full_drill.log_odds[0], exact.log_odds[0], atol=1e-4, rtol=1e-4)


def test_drill_down_computes_its_share_exactly_where_drops_look_largest():
    model = tiny("zfnet", 64, seed=5)
    images = torch.randn(1, 3, 64, 64) * 4
    labels = torch.tensor([0])
    exact = occlusion_sweep(model, images, labels, 8, 4).p_true[0]
    interpolated = occlusion_sweep(model, images, labels, 8, 4, mode="approximate",
                                   approximation=Approximation(coarse=2, drill=0.0)).p_true[0]
    approx = occlusion_sweep(model, images, labels, 8, 4, mode="approximate",
                             approximation=Approximation(coarse=2, drill=0.3)).p_true[0]
    coarse = torch.zeros(15, 15, dtype=torch.bool)
    coarse[::2, ::2] = True  # 8 x 8 of the 15 x 15 positions
    refined = ~coarse & ((approx - exact).abs() < 1e-6) & ((interpolated - exact).abs() > 1e-6)
    left = ~coarse & ((approx - interpolated).abs() < 1e-9)
    assert refined.sum() + left.sum() == 225 - 64 and refined.sum() == math.ceil(0.3 * (225 - 64))
    # the refined ones are where the interpolated map predicted the lowest p(true)
    assert interpolated[refined].mean() < interpolated[left].mean()
    assert (approx - exact).abs().mean() < (interpolated - exact).abs().mean()


def test_threshold_one_is_exact_and_small_thresholds_shrink_windows():
    model = tiny("zfnet", 160, seed=6)  # pool5 is 4 x 4, so threshold 0.3 leaves fc6 a 2 x 2 window
    image = torch.randn(3, 160, 160)
    positions = grid_positions(160, 24, 16)
    exact = torch.cat([o.logits for o in occluded_outputs(model, image, positions, (24, 24))])
    same = torch.cat([o.logits for o in occluded_outputs(model, image, positions, (24, 24), mode="approximate",
                                                         threshold=1.0)])
    torch.testing.assert_close(same, exact)
    cut = list(occluded_outputs(model, image, positions, (24, 24), mode="approximate", threshold=0.3, batch_size=10))
    assert not torch.allclose(torch.cat([o.logits for o in cut]), exact)
    # fc6 then takes the changed pool5 window's columns only: the logits still follow from the pool5 it gives
    with torch.no_grad():
        for out in cut:
            torch.testing.assert_close(out.logits, model.classifier(out.pool5), atol=1e-5, rtol=1e-4)


def flops(run) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        run()
    return counter.get_total_flops()


def test_multiply_adds_match_torch_flop_counter():
    model = build_model("zfnet", 10, input_size=96, width=0.25, fc_units=64)
    image = torch.randn(3, 96, 96)
    full, changed, engine = multiply_adds(model, 96, 16, 8)
    assert full == flops(lambda: model(image[None])) // 2
    positions = grid_positions(96, 16, 8)
    kept_pass = flops(lambda: model.features(image[None]))  # the engine's one pass that keeps the activations
    engine_pass = flops(lambda: list(occluded_outputs(model, image, positions, (16, 16), batch_size=len(positions))))
    assert (engine_pass - kept_pass) / 2 / len(positions) == pytest.approx(engine, rel=1e-9)
    assert changed < engine < full


@pytest.mark.parametrize("call,key", [
    (lambda m, x, y: occlusion_map(m, x, y, 65, 8), "occlusion.patch"),
    (lambda m, x, y: occlusion_map(m, x, y, 8, 0), "occlusion.stride"),
    (lambda m, x, y: occlusion_map(m, x, y, 8, 8, mode="fast"), "occlusion.mode"),
    (lambda m, x, y: occlusion_map(m, x[0], y, 8, 8), "images must be"),
    (lambda m, x, y: Approximation(drill=1.5), "occlusion.approximate.drill"),
])
def test_bad_arguments_name_what_is_wrong(call, key):
    model = tiny("zfnet", 64)
    with pytest.raises(UserError, match=key):
        call(model, torch.randn(1, 3, 64, 64), torch.tensor([0]))
