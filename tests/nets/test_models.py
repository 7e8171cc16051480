"""ZFNet / AlexNet construction: paper parameter counts and sizes, the layer-name contract, options."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from zfnet.errors import UserError
from zfnet.nets.models import ARCHITECTURES, build_model, clip_filter_rms_, feature_shapes, get_layer

ZFNET_FEATURES = [
    "conv1", "relu1", "pool1", "norm1", "conv2", "relu2", "pool2", "norm2",
    "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
]  # fmt: skip
ALEXNET_FEATURES = [
    "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2",
    "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
]  # fmt: skip
CLASSIFIER = ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]  # Krizhevsky's order

TINY = dict(input_size=64, width=0.25)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, num_classes: int = 1000, **options) -> nn.Module:
    """Full-size model on the meta device: exact structure and counts, no memory, no init time."""
    with torch.device("meta"):
        return build_model(name, num_classes, **options)


# --------------------------------------------------------------------------- paper numbers


@pytest.mark.parametrize(
    "name, options, expected",
    [
        ("zfnet", {}, 62_357_608),
        ("alexnet", {}, 60_965_224),
        ("zfnet", {"conv_maps": (512, 1024, 512)}, 107_627_624),
    ],
)
def test_parameter_counts_match_the_paper(name, options, expected):
    assert param_count(meta_model(name, **options)) == expected


def conv_params(in_maps: int, out_maps: int, kernel: int, groups: int = 1) -> int:
    return out_maps * (in_maps // groups) * kernel * kernel + out_maps


def fc_params(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def expected_count(name, remove=(), fc_units=4096, conv_maps=(384, 384, 256), grouped=True, classes=1000):
    """Independent count from the layer shapes of Fig. 3 / Krizhevsky et al.; pool5 is 6x6 at 224 px."""
    g = 2 if name == "alexnet" and grouped else 1
    c3, c4, c5 = conv_maps
    total = conv_params(3, 96, 7 if name == "zfnet" else 11) + conv_params(96, 256, 5, g)
    maps = 256
    if 3 not in remove:
        total += conv_params(maps, c3, 3)
        maps = c3
    if 4 not in remove:
        total += conv_params(maps, c4, 3, g)
        maps = c4
    total += conv_params(maps, c5, 3, g)
    units = c5 * 6 * 6
    for layer in (6, 7):
        if layer not in remove:
            total += fc_params(units, fc_units)
            units = fc_units
    return total + fc_params(units, classes)


TABLE_3 = [
    ("alexnet", {}),
    ("alexnet", {"remove": [3, 4]}),
    ("alexnet", {"remove": [7]}),
    ("alexnet", {"remove": [6, 7]}),
    ("alexnet", {"remove": [3, 4, 6, 7]}),
    ("alexnet", {"fc_units": 2048}),
    ("alexnet", {"fc_units": 8192}),
    ("zfnet", {}),
    ("zfnet", {"fc_units": 2048}),
    ("zfnet", {"fc_units": 8192}),
    ("zfnet", {"conv_maps": [512, 1024, 512]}),
    ("zfnet", {"fc_units": 8192, "conv_maps": [512, 1024, 512]}),
    ("alexnet", {"grouped": False}),
]


@pytest.mark.parametrize("name, options", TABLE_3, ids=[f"{n}-{o}" for n, o in TABLE_3])
def test_table_3_variants_have_the_arithmetic_parameter_count(name, options):
    assert param_count(meta_model(name, **options)) == expected_count(name, **options)


def test_zfnet_224_feature_map_sizes_and_logits():
    torch.manual_seed(0)
    model = build_model("zfnet", 1000).eval()
    assert param_count(model) == 62_357_608
    seen: dict[str, tuple[int, ...]] = {}
    for name in ZFNET_FEATURES + CLASSIFIER:
        get_layer(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: seen.__setitem__(name, tuple(output.shape[1:]))
        )
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 1000)
    assert logits.dtype == torch.float32
    sizes = [seen[n][1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    assert seen["pool5"] == (256, 6, 6)
    assert seen == feature_shapes(model)


def test_alexnet_224_feature_map_sizes():
    shapes = feature_shapes(meta_model("alexnet"))
    sizes = [shapes[n][1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]
    assert shapes["pool5"] == (256, 6, 6)
    assert shapes["fc8"] == (1000,)


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("size", [64, 101, 227])
def test_feature_shapes_agree_with_a_real_forward(name, size):
    model = build_model(name, 3, input_size=size, width=0.25).eval()
    seen = {}
    for layer in list(model.features) + list(model.classifier):
        layer.register_forward_hook(lambda m, i, o: seen.__setitem__(m, tuple(o.shape[1:])))
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3)
    expected = feature_shapes(model)
    assert [seen[get_layer(model, n)] for n in expected] == list(expected.values())


# --------------------------------------------------------------------------- the layer contract


@pytest.mark.parametrize("name, features", [("zfnet", ZFNET_FEATURES), ("alexnet", ALEXNET_FEATURES)])
def test_layer_names_and_types(name, features):
    model = build_model(name, 5, **TINY)
    assert [n for n, _ in model.features.named_children()] == features
    assert [n for n, _ in model.classifier.named_children()] == CLASSIFIER
    assert model.conv_layer_names == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert model.fc_layer_names == ["fc6", "fc7", "fc8"]
    assert model.arch == name and model.num_classes == 5 and model.input_size == 64
    for layer_name, layer in list(model.features.named_children()) + list(model.classifier.named_children()):
        assert get_layer(model, layer_name) is layer
        kind = layer_name.rstrip("0123456789")
        expected_type = {
            "conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d, "norm": nn.LocalResponseNorm,
            "drop": nn.Dropout, "fc": nn.Linear,
        }[kind]  # fmt: skip
        assert isinstance(layer, expected_type)
        if kind == "relu":
            assert layer.inplace is False
        if kind == "norm":
            assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 5e-4, 0.75, 2.0)
    assert model.features.conv3 is get_layer(model, "features.conv3")
    assert model.classifier.fc6 is get_layer(model, "fc6")


def test_zfnet_layer_hyperparameters_follow_fig_3():
    f = meta_model("zfnet").features
    assert (f.conv1.out_channels, f.conv1.kernel_size, f.conv1.stride, f.conv1.padding) == (96, (7, 7), (2, 2), (1, 1))
    assert (f.conv2.out_channels, f.conv2.kernel_size, f.conv2.stride, f.conv2.padding) == (256, (5, 5), (2, 2), (0, 0))
    for conv, maps in ((f.conv3, 384), (f.conv4, 384), (f.conv5, 256)):
        assert (conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.groups) == (
            maps, (3, 3), (1, 1), (1, 1), 1,
        )  # fmt: skip
    for pool in (f.pool1, f.pool2, f.pool5):
        assert (pool.kernel_size, pool.stride) == (3, 2)
    assert f.pool1.ceil_mode and f.pool2.ceil_mode and not f.pool5.ceil_mode


def test_forward_hooks_attach_by_name():
    model = build_model("alexnet", 4, **TINY)
    captured = {}
    handles = [
        get_layer(model, n).register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o))
        for n in model.conv_layer_names + model.fc_layer_names
    ]
    model(torch.randn(2, 3, 64, 64))
    assert set(captured) == {"conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"}
    assert captured["fc8"].shape == (2, 4)
    for handle in handles:
        handle.remove()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_norm_none_has_no_lrn(name):
    model = build_model(name, 4, norm="none", **TINY)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert "norm1" not in model.features._modules and "norm2" not in model.features._modules
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 4)


def test_alexnet_groups():
    grouped = meta_model("alexnet").features
    assert [grouped._modules[f"conv{i}"].groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    dense = meta_model("alexnet", grouped=False).features
    assert [dense._modules[f"conv{i}"].groups for i in range(1, 6)] == [1, 1, 1, 1, 1]
    assert all(m.groups == 1 for m in meta_model("zfnet").modules() if isinstance(m, nn.Conv2d))
    assert grouped.conv1.kernel_size == (11, 11) and grouped.conv1.stride == (4, 4)
    assert grouped.conv1.out_channels == 96  # Krizhevsky's 96, not torchvision's 64


def test_removed_layers_are_absent_and_rewired():
    model = build_model("alexnet", 4, remove=[3, 4], **TINY)
    assert model.conv_layer_names == ["conv1", "conv2", "conv5"]
    assert "relu3" not in model.features._modules and "relu4" not in model.features._modules
    assert model.features.conv5.in_channels == model.features.conv2.out_channels
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4)

    model = meta_model("zfnet", remove=[7])
    assert [n for n, _ in model.classifier.named_children()] == ["fc6", "relu6", "drop6", "fc8"]
    assert model.classifier.fc8.in_features == 4096

    model = meta_model("alexnet", remove=[6, 7])
    assert [n for n, _ in model.classifier.named_children()] == ["fc8"]
    assert model.classifier.fc8.in_features == 256 * 6 * 6
    assert model.fc_layer_names == ["fc8"]
    with pytest.raises(UserError, match="removed"):
        get_layer(model, "fc7")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_width_and_input_size_scale_the_model(name):
    model = build_model(name, 4, input_size=64, width=0.25)
    pool5 = feature_shapes(model)["pool5"]
    assert model.classifier.fc6.in_features == math.prod(pool5)
    assert model.features.conv1.out_channels == 24 and model.classifier.fc6.out_features == 1024
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4)
    with pytest.raises(UserError, match="input_size"):
        model(torch.randn(2, 3, 128, 128))


def test_width_keeps_grouped_maps_even():
    model = meta_model("alexnet", width=0.3)
    assert all(m.out_channels % 2 == 0 for m in model.modules() if isinstance(m, nn.Conv2d))
    tiny = meta_model("alexnet", width=0.001)
    assert min(m.out_channels for m in tiny.modules() if isinstance(m, nn.Conv2d)) == 2


def test_options_round_trip_and_are_json():
    model = meta_model("alexnet", remove=(7, 6), conv_maps=(256, 256, 128), width=0.5, norm="none")
    assert model.options["remove"] == [6, 7]
    json.dumps(model.options)
    again = meta_model(model.arch, model.num_classes, **model.options)
    assert str(again) == str(model)
    assert build_model("zfnet", 2, **TINY).options["init_std"] == 0.01


def test_initialization_follows_the_paper():
    torch.manual_seed(0)
    model = build_model("zfnet", 10, input_size=64, width=0.5, init_std=0.02)
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            assert torch.count_nonzero(layer.bias) == 0
            if layer.weight.numel() > 10_000:
                assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)
                assert abs(layer.weight.mean().item()) < 0.002


def test_hydra_lists_are_accepted():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"remove": [3, 4], "conv_maps": [512, 1024, 512], "width": 1})
    model = meta_model("alexnet", remove=cfg.remove, conv_maps=cfg.conv_maps, width=cfg.width)
    assert model.options["remove"] == [3, 4] and type(model.options["conv_maps"]) is list
    json.dumps(model.options)


BAD_OPTIONS = [
    ("vgg", {}, "model.name: 'vgg' is not one of: alexnet, zfnet"),
    ("zfnet", {"depth": 3}, "model.depth: not an option"),
    ("zfnet", {"grouped": False}, "alexnet-only"),
    ("zfnet", {"width": 0}, "model.width"),
    ("zfnet", {"width": "wide"}, "model.width"),
    ("zfnet", {"norm": "batch"}, "model.norm: 'batch' is not one of: lrn, none"),
    ("zfnet", {"remove": [5]}, "layer 5 cannot be removed"),
    ("alexnet", {"remove": [1]}, "layer 1 cannot be removed"),
    ("alexnet", {"remove": [8]}, "layer 8 cannot be removed"),
    ("alexnet", {"remove": "34"}, "model.remove"),
    ("zfnet", {"conv_maps": [512, 1024]}, "model.conv_maps"),
    ("alexnet", {"conv_maps": [383, 384, 256]}, "even"),
    ("zfnet", {"fc_units": 0}, "model.fc_units"),
    ("zfnet", {"fc_units": 1.5}, "model.fc_units"),
    ("zfnet", {"dropout": 1.0}, "model.dropout"),
    ("zfnet", {"init_std": 0.0}, "model.init_std"),
    ("zfnet", {"input_size": 32}, "smallest that works is 63"),
    ("zfnet", {"input_size": True}, "model.input_size"),
    ("alexnet", {"grouped": "yes"}, "model.grouped"),
]


@pytest.mark.parametrize("name, options, message", BAD_OPTIONS, ids=[m for _, _, m in BAD_OPTIONS])
def test_bad_options_raise_one_line_user_errors(name, options, message):
    with pytest.raises(UserError) as info:
        meta_model(name, **options)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_num_classes():
    with pytest.raises(UserError, match="model.num_classes"):
        meta_model("zfnet", 0)


# --------------------------------------------------------------------------- filter RMS renormalization


def filter_rms(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().pow(2).mean(dim=(1, 2, 3)).sqrt()


def test_clip_filter_rms_rescales_only_filters_above_the_radius():
    torch.manual_seed(0)
    model = build_model("alexnet", 4, **TINY)  # grouped convs included
    with torch.no_grad():
        for conv in (model.features.conv1, model.features.conv4):
            conv.weight[::3] *= 50.0  # every third filter far above 0.1, the rest at ~0.01
    before = {name: filter_rms(get_layer(model, name)) for name in model.conv_layer_names}
    weights = {name: get_layer(model, name).weight.detach().clone() for name in model.conv_layer_names}
    expected = sum(int((rms > 0.1).sum()) for rms in before.values())
    assert expected > 0

    count = clip_filter_rms_(model, radius=0.1)
    assert isinstance(count, torch.Tensor) and count.dtype == torch.int64  # read when wanted: no wait per step
    assert int(count) == expected
    for name in model.conv_layer_names:
        big = before[name] > 0.1
        after = filter_rms(get_layer(model, name))
        assert torch.allclose(after[big], torch.full_like(after[big], 0.1), rtol=0, atol=1e-6)
        assert torch.equal(get_layer(model, name).weight[~big], weights[name][~big])
    assert int(clip_filter_rms_(model, radius=0.1)) == 0
    with pytest.raises(UserError):
        clip_filter_rms_(model, radius=0)


# --------------------------------------------------------------------------- it learns


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_overfits_a_tiny_batch(name):
    """8 noise images, 4 classes, 64 px, width 0.25: the loss must fall well below chance.

    init_std is raised from the paper's 0.01 because at width 0.25 the fan-ins are 16x smaller; with
    0.01 the logits start near zero and plain SGD barely moves in a few dozen steps.
    """
    torch.manual_seed(0)
    images, labels = torch.randn(8, 3, 64, 64), torch.arange(8) % 4
    model = build_model(name, 4, input_size=64, width=0.25, dropout=0.0, init_std=0.05)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clip_filter_rms_(model)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses



def test_fan_in_initialization_keeps_conv1_at_the_paper_scale():
    torch.manual_seed(0)
    model = build_model("alexnet", 10, input_size=96, width=0.5, init="fan_in")
    assert model.features.conv1.weight.std().item() == pytest.approx(0.01, rel=0.05)
    for name in ("conv3", "fc6"):
        layer = get_layer(model, name)
        fan_in = layer.weight[0].numel()
        assert layer.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    with pytest.raises(UserError, match="model.init"):
        build_model("zfnet", 10, init="xavier")


def classifier_inputs_in_training(order: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fc6's input, fc8's input and the flattened pool5 for one training-mode pass, with fc7's output
    forced to 1 everywhere (zero weights, bias 1), so dropout is the only thing that can zero it."""
    torch.manual_seed(0)
    model = build_model("zfnet", 3, dropout_order=order, **TINY).train()
    nn.init.zeros_(model.classifier.fc7.weight)
    nn.init.ones_(model.classifier.fc7.bias)
    seen = {}
    hooks = [getattr(model.classifier, name).register_forward_pre_hook(
        lambda module, args, name=name: seen.__setitem__(name, args[0].detach())) for name in ("fc6", "fc8")]
    hooks.append(model.features.register_forward_hook(lambda m, a, out: seen.__setitem__("pool5", out.flatten(1))))
    model(torch.randn(8, 3, TINY["input_size"], TINY["input_size"]))
    for hook in hooks:
        hook.remove()
    return seen["fc6"], seen["fc8"], seen["pool5"]


def test_paper_dropout_order_drops_fc7_outputs_and_never_pool5():
    fc6_in, fc8_in, pool5 = classifier_inputs_in_training("paper")
    torch.testing.assert_close(fc6_in, pool5)  # pool5 reaches fc6 untouched
    values = set(fc8_in.unique().tolist())
    assert values == {0.0, 2.0}  # fc7's ones, dropped at p=0.5 and the survivors scaled by 1/(1-p)
    assert 0.3 < (fc8_in == 0).float().mean() < 0.7


def test_torchvision_dropout_order_drops_pool5_and_leaves_fc7_outputs():
    fc6_in, fc8_in, pool5 = classifier_inputs_in_training("torchvision")
    assert (fc6_in == 0).float().mean() > (pool5 == 0).float().mean() + 0.2
    assert set(fc8_in.unique().tolist()) == {1.0}


def test_lrn_constants_are_options_with_krizhevskys_defaults():
    model = build_model("zfnet", 3, **TINY)
    norm = model.features.norm1
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 5e-4, 0.75, 2.0)
    norm = build_model("alexnet", 3, lrn_size=3, lrn_alpha=1e-3, lrn_beta=0.5, lrn_k=1.0, **TINY).features.norm2
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (3, 1e-3, 0.5, 1.0)


def test_krizhevsky_init_sets_unit_biases_where_his_paper_did():
    model = build_model("alexnet", 3, init="krizhevsky", **TINY)
    layers = {name: m for part in (model.features, model.classifier) for name, m in part.named_children()
              if isinstance(m, (nn.Conv2d, nn.Linear))}
    ones = {name for name, m in layers.items() if bool((m.bias == 1).all())}
    zeros = {name for name, m in layers.items() if bool((m.bias == 0).all())}
    assert ones == {"conv2", "conv4", "conv5", "fc6", "fc7"} and zeros == {"conv1", "conv3", "fc8"}
    assert all(abs(m.weight.std().item() - 0.01) < 0.003 for m in layers.values())
