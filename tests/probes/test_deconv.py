"""The deconvnet against independent computations: autograd for unpooling, Captum for projections."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zfnet.probes.deconv import (
    Deconvnet,
    conv_transpose,
    forward_with_switches,
    keep_channel,
    keep_one,
    lrn_gain,
    project_activation,
    strongest_position,
    unpool,
)

import conftest

SIZE = 96  # zfnet maps: conv1 46, conv2 10, conv3-5 5; alexnet: 23, 11, 5
LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


@functools.cache
def random_model(name: str, **options) -> nn.Module:
    return conftest.random_model(name, SIZE, **options)


def images(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def strongest_channel(activation: torch.Tensor) -> int:
    return int(activation[0].amax(dim=(1, 2)).argmax())


def captum_deconvolution(model, layer, x, neuron_selector):
    from captum.attr import NeuronDeconvolution

    x = x.clone().requires_grad_(True)
    return NeuronDeconvolution(model.features, getattr(model.features, layer)).attribute(
        x, neuron_selector=neuron_selector
    ).detach()


# --------------------------------------------------------------------------- unpooling


@pytest.mark.parametrize("size", [13, 14])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("padding", [0, 1])
def test_unpool_is_the_gradient_of_max_pooling(size, ceil_mode, padding):
    g = torch.Generator().manual_seed(size + 2 * padding + ceil_mode)
    # few distinct values: ties, and many locations that are the max of several overlapping windows
    x = torch.randint(0, 3, (2, 3, size, size), generator=g).double().requires_grad_(True)
    y, indices = F.max_pool2d(x, 3, 2, padding, ceil_mode=ceil_mode, return_indices=True)
    up = torch.randint(-5, 6, y.shape, generator=g).double()  # integers: sums are exact in any order
    (vjp,) = torch.autograd.grad(F.max_pool2d(x, 3, 2, padding, ceil_mode=ceil_mode), x, up)
    assert torch.equal(unpool(up, indices, x.shape), vjp)
    # the case is meaningful: MaxUnpool2d, which overwrites shared maxima, gets it wrong
    overwritten = F.max_unpool2d(up, indices, 3, 2, padding, output_size=x.shape[-2:])
    assert not torch.equal(overwritten, vjp)


def test_unpool_random_floats_match_autograd():
    x = torch.randn(2, 4, 15, 15, requires_grad=True)
    y, indices = F.max_pool2d(x, 3, 2, ceil_mode=True, return_indices=True)
    up = torch.randn_like(y)
    (vjp,) = torch.autograd.grad(F.max_pool2d(x, 3, 2, ceil_mode=True), x, up)
    torch.testing.assert_close(unpool(up, indices, x.shape), vjp, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the acceptance test


CAPTUM_CASES = [(name, {"norm": "none"}, layer) for name in ("zfnet", "alexnet") for layer in LAYERS] + [
    ("zfnet", {"norm": "none", "remove": (3, 4)}, "conv5"),
    ("alexnet", {"norm": "none", "remove": (3, 4)}, "conv5"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name, options, layer", CAPTUM_CASES,
                         ids=[f"{n}-{'-'.join(map(str, o.get('remove', ())))}{l}" for n, o, l in CAPTUM_CASES])
def test_projection_equals_captum_deconvolution(name, options, layer):
    """Projection of the strongest activation v = v * gradient with ReLU-rectified backward (Captum)."""
    model = random_model(name, **options)
    x = images()
    activation, _ = forward_with_switches(model, x, layer)
    channel = strongest_channel(activation)
    projection = Deconvnet(model).project(x, layer, channel)
    positions = strongest_position(activation, channel)
    for i in range(len(x)):
        y, x_ = positions[i].tolist()
        value = activation[i, channel, y, x_]
        assert value > 0  # then the pre-ReLU neuron Captum selects is the same activation
        expected = value * captum_deconvolution(model, layer, x[i : i + 1], (channel, y, x_))[0]
        scale = projection[i].abs().max()
        error = (projection[i] - expected).abs().max()
        print(f"{name} {options} {layer} image {i}: max |diff| {error:.3g}, max |projection| {scale:.3g}")
        assert scale > 0
        assert error <= 1e-5 * scale


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_whole_map_projection_equals_captum():
    """A whole feature map (as the occlusion experiment projects) is the VJP with that map."""
    model = random_model("alexnet", norm="none")
    x = images(1)
    activation, record = forward_with_switches(model, x, "conv4")
    channel = strongest_channel(activation)
    top_map = keep_channel(activation, channel)
    projection = project_activation(model, record, top_map)
    weights = activation[:, channel]  # rectified: zero where the pre-ReLU output is negative
    expected = captum_deconvolution(model, "conv4", x, lambda out: (out[:, channel] * weights).sum(dim=(1, 2)))
    assert (projection - expected).abs().max() <= 1e-5 * projection.abs().max()


# --------------------------------------------------------------------------- properties


def test_layer1_projection_is_the_filter_in_its_window():
    """conv_transpose places the filter itself (flipped twice: transposed, then correlated)."""
    model = random_model("zfnet", norm="none")
    x = images(1)
    conv1 = model.features.conv1  # 7x7, stride 2, padding 1
    y, x_ = 10, 7
    activation, record = forward_with_switches(model, x, "conv1")
    channel = strongest_channel(activation)
    projection = Deconvnet(model).project(x, "conv1", channel, position=(y, x_))
    expected = torch.zeros_like(x)
    expected[0, :, 2 * y - 1 : 2 * y + 6, 2 * x_ - 1 : 2 * x_ + 6] = activation[0, channel, y, x_] * conv1.weight[channel]
    torch.testing.assert_close(projection, expected, rtol=0, atol=1e-6)


def test_conv_transpose_is_correlation_with_flipped_filters():
    """The paper's "transposed filters": each filter flipped vertically and horizontally."""
    conv = random_model("zfnet", norm="none").features.conv1  # stride 2, padding 1
    input_shape = (1, 3, SIZE, SIZE)
    top = torch.randn(1, conv.out_channels, 46, 46)
    k, s, p = 7, 2, 1
    dilated = torch.zeros(1, conv.out_channels, (46 - 1) * s + 1, (46 - 1) * s + 1)
    dilated[..., ::s, ::s] = top
    extra = SIZE - ((46 - 1) * s - 2 * p + k)  # the rows the forward stride skipped
    dilated = F.pad(dilated, (k - 1 - p, k - 1 - p + extra, k - 1 - p, k - 1 - p + extra))
    flipped = conv.weight.flip(-2, -1).transpose(0, 1)
    expected = F.conv2d(dilated, flipped)
    result = conv_transpose(top, conv, input_shape)
    assert result.shape == input_shape
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer", ["conv2", "conv5"])
def test_zero_map_projects_to_zero_no_bias(layer):
    """Only the kept activation contributes: without it nothing comes down (no bias on the way down)."""
    model = random_model("zfnet", norm="none")
    x = images()
    activation, record = forward_with_switches(model, x, layer)
    channel = strongest_channel(activation)
    top_map = keep_one(activation, channel)
    assert torch.count_nonzero(top_map) == len(x)
    assert projection_is_nonzero(project_activation(model, record, top_map))
    positions = strongest_position(activation, channel)
    top_map[torch.arange(len(x)), channel, positions[:, 0], positions[:, 1]] = 0
    assert torch.count_nonzero(project_activation(model, record, top_map)) == 0


def projection_is_nonzero(projection: torch.Tensor) -> bool:
    return bool((projection.flatten(1).abs().amax(dim=1) > 0).all())


@pytest.mark.parametrize("factor", [0.5, 3.0])
def test_linear_in_the_kept_activation(factor):
    model = random_model("alexnet", norm="none")
    x = images()
    activation, record = forward_with_switches(model, x, "conv3")
    top_map = keep_one(activation, strongest_channel(activation))
    once = project_activation(model, record, top_map)
    scaled = project_activation(model, record, factor * top_map)
    torch.testing.assert_close(scaled, factor * once, rtol=1e-5, atol=1e-6 * once.abs().max())


def test_shape_and_no_grad():
    model = random_model("zfnet")  # with LRN
    x = images().requires_grad_(True)
    projection = Deconvnet(model).project(x, "conv4", 0)
    assert projection.shape == x.shape
    assert not projection.requires_grad and projection.grad_fn is None


def test_given_positions():
    model = random_model("zfnet", norm="none")
    x = images(3)
    deconvnet = Deconvnet(model)
    activation, record = forward_with_switches(model, x, "conv3")
    channel = strongest_channel(activation)
    # the strongest positions, given explicitly, reproduce the default
    positions = strongest_position(activation, channel)
    torch.testing.assert_close(deconvnet.project(x, "conv3", channel, positions), deconvnet.project(x, "conv3", channel))
    # one (y, x) for every image: the top map holds exactly that activation of each image
    y, x_ = 2, 1
    top_map = torch.zeros_like(activation)
    top_map[:, channel, y, x_] = activation[:, channel, y, x_]
    torch.testing.assert_close(deconvnet.project(x, "conv3", channel, (y, x_)), project_activation(model, record, top_map))
    # per-image positions and channels
    positions = torch.tensor([[0, 0], [4, 3], [2, 4]])
    channels = torch.tensor([channel, 0, 1])
    top_map = torch.zeros_like(activation)
    for i, ((py, px), c) in enumerate(zip(positions.tolist(), channels.tolist())):
        top_map[i, c, py, px] = activation[i, c, py, px]
    torch.testing.assert_close(deconvnet.project(x, "conv3", channels, positions), project_activation(model, record, top_map))


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_batch_independence(name):
    model = random_model(name)  # with LRN: the default skips it on the way down
    x = images(3)
    deconvnet = Deconvnet(model)
    together = deconvnet.project(x, "conv5", 1)
    alone = torch.cat([deconvnet.project(x[i : i + 1], "conv5", 1) for i in range(len(x))])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6 * together.abs().max())


def test_model_left_as_it_was():
    model = random_model("alexnet")
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    Deconvnet(model, normalize_down=True).project(images(), "conv5", 0)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)
    model.eval()


def test_lrn_gain_reproduces_lrn():
    lrn = nn.LocalResponseNorm(5, alpha=1e-1, beta=0.75, k=2.0)  # a large alpha so the gain varies
    x = 3 * torch.randn(2, 7, 4, 5)
    torch.testing.assert_close(x * lrn_gain(x, lrn), lrn(x))


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_normalize_down_applies_the_forward_gain(name):
    model = random_model(name)
    x = images(1)
    activation, record = forward_with_switches(model, x, "conv2")
    top_map = keep_one(activation, strongest_channel(activation))
    skipped = project_activation(model, record, top_map)
    normalized = project_activation(model, record, top_map, normalize_down=True)
    assert normalized.shape == skipped.shape == x.shape
    # only norm1 lies below conv2: its gain is in (0, k^-beta], so the reconstruction shrinks
    assert 0 < normalized.abs().max() < skipped.abs().max()


class DeconvReLU(torch.autograd.Function):
    """A ReLU whose backward rectifies the incoming signal (the deconvnet's rule), whatever the forward input."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


def hand_lrn_gain(a: torch.Tensor, lrn: nn.LocalResponseNorm) -> torch.Tensor:
    """(k + alpha/size * sum of a^2 over channels c - size//2 .. c + (size-1)//2) ^ -beta, channel by channel."""
    squares, channels = a * a, a.shape[1]
    window = torch.stack([squares[:, max(0, c - lrn.size // 2):c + (lrn.size - 1) // 2 + 1].sum(dim=1)
                          for c in range(channels)], dim=1)
    return (lrn.k + lrn.alpha / lrn.size * window) ** -lrn.beta


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_normalize_down_is_the_deconv_vjp_with_the_forward_lrn_gain_held_fixed(name):
    """normalize_down: each LRN on the way down multiplies by the gain its *forward* input got.

    Reference: autograd through the features with every LRN replaced by `x * gain` (gain computed by hand
    from the forward input, held constant) and every ReLU's backward rectified; the projection of activation
    v is v times that gradient. A large alpha makes the gain vary from pixel to pixel and map to map.
    """
    model = random_model(name, lrn_alpha=2.0)
    x = images(1)
    layer = "conv3"  # below it: both LRNs
    activation, record = forward_with_switches(model, x, layer)
    channel = strongest_channel(activation)
    y, x_ = strongest_position(activation, channel)[0].tolist()
    projection = Deconvnet(model, normalize_down=True).project(x, layer, channel)

    pixels = x.clone().requires_grad_(True)
    out, gains = pixels, []
    for child_name, module in model.features.named_children():
        if isinstance(module, nn.LocalResponseNorm):
            gain = hand_lrn_gain(out.detach(), module)
            torch.testing.assert_close(out.detach() * gain, F.local_response_norm(
                out.detach(), module.size, module.alpha, module.beta, module.k))  # the hand formula is LRN's
            gains.append(gain)
            out = out * gain
        elif isinstance(module, nn.ReLU):
            out = DeconvReLU.apply(out)
        else:
            out = module(out)
        if child_name == layer:
            break
    out[0, channel, y, x_].backward()
    expected = activation[0, channel, y, x_] * pixels.grad
    assert all(float(g.max() / g.min()) > 1.5 for g in gains)  # the gains vary: the test can tell inputs apart
    error, scale = float((projection - expected).abs().max()), float(expected.abs().max())
    assert scale > 0 and error <= 1e-5 * scale, (error, scale)


def test_rejects_unknown_layer_and_wrong_map():
    model = random_model("zfnet", norm="none")
    with pytest.raises(ValueError, match="unknown layer"):
        forward_with_switches(model, images(1), "conv9")
    _, record = forward_with_switches(model, images(1), "conv2")
    with pytest.raises(ValueError, match="shape"):
        project_activation(model, record, torch.zeros(1, 3, 3, 3))
