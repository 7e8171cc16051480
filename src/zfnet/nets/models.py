"""ZFNet (Zeiler & Fergus, Fig. 3) and the AlexNet they replicated, with the Table 3 variants.

    model = build_model("zfnet", num_classes=1000)                      # 62,357,608 parameters
    model = build_model("alexnet", num_classes=1000)                    # 60,965,224 parameters
    model = build_model("zfnet", 1000, conv_maps=(512, 1024, 512))      # 107,627,624 parameters
    model = build_model("alexnet", 1000, remove=[3, 4])                 # a Table 3 ablation

Module layout (a contract: the deconvnet, forward hooks, Captum and the trainer rely on it):

    model.features    nn.Sequential, children named
                      zfnet:   conv1 relu1 pool1 norm1 conv2 relu2 pool2 norm2 conv3 relu3 conv4 relu4
                               conv5 relu5 pool5           (pool then norm, as Fig. 3 lists them)
                      alexnet: conv1 relu1 norm1 pool1 conv2 relu2 norm2 pool2 conv3 relu3 conv4 relu4
                               conv5 relu5 pool5           (norm then pool, as Krizhevsky et al.)
    model.classifier  nn.Sequential: fc6 relu6 drop6 fc7 relu7 drop7 fc8   (dropout_order="paper")
                                     drop6 fc6 relu6 drop7 fc7 relu7 fc8   (dropout_order="torchvision")
    model.forward(x) = classifier(flatten(features(x)))

Removed layers are simply absent (`remove=[3, 4]` drops conv3, relu3, conv4, relu4; `norm="none"`
drops norm1 and norm2). Every ReLU is `nn.ReLU(inplace=False)` so hooks and Captum see unmodified
activations. `model.features.conv3` or `get_layer(model, "conv3")` reach a layer by name;
`model.conv_layer_names` / `model.fc_layer_names` list the ones present; `model.arch`,
`model.num_classes`, `model.input_size` and `model.options` (every option, defaults filled in)
describe the model, so `build_model(model.arch, model.num_classes, **model.options)` rebuilds it.

Options (both models unless noted; each is checked and a bad one raises `UserError`):

    input_size  224           square input side in pixels; fc6's input size follows from it (>= 64 works)
    width       1.0           multiplies every conv's map count and the fc units
    norm        "lrn"         "lrn" or "none"
    remove      []            layer numbers to remove, any of 3, 4, 6, 7 (Table 3: [3,4], [7], [6,7], [3,4,6,7])
    fc_units    4096          units in fc6 and fc7 (Table 3 also uses 2048 and 8192)
    conv_maps   (384,384,256) maps in conv3, conv4, conv5 (Table 3 / Table 2 (b): (512, 1024, 512))
    dropout     0.5           dropout probability in layers 6 and 7
    dropout_order "paper"     "paper": on the outputs of fc6 and fc7 (fc -> ReLU -> dropout, as cuda-convnet
                              and Caffe); "torchvision": on their inputs (dropout -> fc -> ReLU)
    lrn_size    5             local response normalization window (channels)
    lrn_alpha   5e-4          PyTorch's convention, divided by lrn_size: Krizhevsky's alpha 1e-4 on the sum
    lrn_beta    0.75
    lrn_k       2.0
    init        "paper"       "paper": every weight ~ N(0, init_std^2), biases 0; "krizhevsky": the same
                              weights, biases 1 in conv2, conv4, conv5, fc6, fc7 (Krizhevsky et al. Sec. 5);
                              "fan_in": conv1 ~ N(0, init_std^2), every later layer ~ N(0, 2/fan_in) (He et
                              al.), biases 0
    init_std    0.01          the paper's weight scale
    grouped     True          alexnet only: conv2, conv4, conv5 in two groups (the 2-GPU split)

`clip_filter_rms_(model, radius=0.1)` is the paper's filter renormalization (the trainer calls it after
every optimizer step); `feature_shapes(model)` gives each layer's output shape.

Choices made where the paper is silent (PAPER.md sec. 1 and 2):

- Padding: zfnet conv1 padding 1, conv2 padding 0, conv3-5 padding 1 (gives 110, 26, 13 at 224 px);
  alexnet conv1 padding 2 (224 -> 55, Krizhevsky's 227-px arithmetic), conv2 padding 2, conv3-5 padding 1.
- Pooling: all pools are max 3x3 stride 2. pool1 and pool2 use ceil_mode=True (110 -> 55 and 26 -> 13
  in zfnet need it; cuda-convnet and Caffe round up too); pool5 uses ceil_mode=False (13 -> 6 either
  way, and small inputs then shrink predictably). For alexnet at 224 px ceil and floor agree everywhere.
- Contrast normalization: Krizhevsky's size 5, k 2, beta 0.75 and alpha 1e-4 on the sum, which is
  alpha 5e-4 in PyTorch's convention (`zfnet.nets.layers.LocalResponseNorm`, a faster drop-in for
  `nn.LocalResponseNorm`); every constant is an option.
- Dropout: "dropout in the fully connected layers (6 and 7)" is read as Krizhevsky's cuda-convnet
  order, on the outputs of fc6 and fc7 after their ReLU; `dropN` belongs to layer N and goes with it
  when N is removed. So `remove=[7]` leaves fc6 relu6 drop6 fc8 (fc8 still sees dropped-out units),
  and `remove=[6, 7]` leaves no dropout at all (pool5 feeds fc8 directly).
- Removing layers: the previous layer feeds the next one present (remove 3,4: norm2/pool2 -> conv5,
  whose input then has conv2's map count; remove 6,7: flattened pool5 -> fc8). Layers 1, 2, 5 and 8
  cannot be removed (they carry the pools and the output).
- Width: conv maps are rounded to the nearest multiple of the group count (2 for grouped alexnet, else
  1), at least one group's worth; fc units are rounded to the nearest integer, at least 1.
- Initialization: "all weights initialized to 1e-2 and biases 0" is read as N(0, 0.01^2) for every conv
  and fc weight, all biases 0. With that small scale and no batch norm the 8-layer net's output starts
  tiny and plain SGD can take a long while to get going (Krizhevsky used std 0.005 for fc6/fc7 and bias 1
  in several layers for this reason); the default follows the paper. `init="fan_in"` is for short runs:
  the later layers get fan-in scaling so the signal does not vanish, while conv1 keeps the paper's small
  scale, so its filters grow from faint noise into learned structure (started at fan-in scale they would
  sit at the 0.1 RMS radius from step one and keep their random look).
- Input size: the paper uses 224x224 crops; other square sizes are allowed and only change fc6's input
  (computed by arithmetic on the layers, no dry run, so building on the 'meta' device is free).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from zfnet.errors import UserError
from zfnet.nets.layers import LocalResponseNorm

__all__ = [
    "ARCHITECTURES",
    "ConvNet",
    "build_model",
    "clip_filter_rms_",
    "feature_shapes",
    "get_layer",
]

ARCHITECTURES = ("alexnet", "zfnet")
REMOVABLE_LAYERS = (3, 4, 6, 7)

DEFAULT_OPTIONS: dict[str, Any] = {
    "input_size": 224,
    "width": 1.0,
    "norm": "lrn",
    "remove": [],
    "fc_units": 4096,
    "conv_maps": [384, 384, 256],
    "dropout": 0.5,
    "dropout_order": "paper",
    "lrn_size": 5,
    "lrn_alpha": 5e-4,
    "lrn_beta": 0.75,
    "lrn_k": 2.0,
    "init": "paper",
    "init_std": 0.01,
}
ALEXNET_ONLY_OPTIONS: dict[str, Any] = {"grouped": True}


class ConvSpec(NamedTuple):
    """One conv layer and what follows its ReLU ("pool", "norm", in order)."""

    number: int
    maps: int
    kernel_size: int
    stride: int
    padding: int
    groups: int = 1
    followed_by: tuple[str, ...] = ()


class ConvNet(nn.Module):
    """features -> flatten -> classifier, with the layer names described in the module docstring."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        features: nn.Sequential,
        classifier: nn.Sequential,
        input_size: int,
        options: dict[str, Any],
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.input_size = input_size
        self.options = options
        self.features = features
        self.classifier = classifier
        self.conv_layer_names = [name for name, m in features.named_children() if isinstance(m, nn.Conv2d)]
        self.fc_layer_names = [name for name, m in classifier.named_children() if isinstance(m, nn.Linear)]
        self.classifier_in_features = _first_linear(classifier).in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        if x.shape[1] != self.classifier_in_features:
            raise UserError(
                f"model input {tuple(x.shape)} does not fit this {self.arch}: it was built for "
                f"{self.input_size}x{self.input_size} images (model.input_size)"
            )
        return self.classifier(x)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_classes={self.num_classes}, input_size={self.input_size}"


# --------------------------------------------------------------------------- building


def build_model(name: str, num_classes: int, **options: Any) -> ConvNet:
    """Build "zfnet" or "alexnet" with `num_classes` outputs; see the module docstring for options."""
    if name not in ARCHITECTURES:
        raise UserError(f"model.name: {name!r} is not one of: {', '.join(ARCHITECTURES)}")
    num_classes = _positive_int("num_classes", num_classes)
    opts = _check_options(name, options)

    groups = 2 if opts.get("grouped") else 1
    conv_specs = _conv_specs(name, opts, groups)
    lrn = {key: opts[f"lrn_{key}"] for key in ("size", "alpha", "beta", "k")} if opts["norm"] == "lrn" else None
    features = _make_features(conv_specs, lrn)
    pool5_shape = _pool5_shape(name, features, opts["input_size"])
    fc_units = max(1, round(opts["fc_units"] * opts["width"]))
    classifier = _make_classifier(
        math.prod(pool5_shape), fc_units, num_classes, opts["dropout"], opts["dropout_order"], opts["remove"]
    )
    model = ConvNet(name, num_classes, features, classifier, opts["input_size"], opts)
    _init_weights(model, opts["init"], opts["init_std"])
    return model


def _conv_specs(name: str, opts: dict[str, Any], groups: int) -> list[ConvSpec]:
    """The five conv layers of `name`, scaled by width, without the removed ones."""
    width = opts["width"]
    conv3_maps, conv4_maps, conv5_maps = opts["conv_maps"]

    def maps(count: int) -> int:
        return max(groups, round(count * width / groups) * groups)

    if name == "zfnet":
        specs = [
            ConvSpec(1, maps(96), 7, stride=2, padding=1, followed_by=("pool", "norm")),
            ConvSpec(2, maps(256), 5, stride=2, padding=0, followed_by=("pool", "norm")),
            ConvSpec(3, maps(conv3_maps), 3, stride=1, padding=1),
            ConvSpec(4, maps(conv4_maps), 3, stride=1, padding=1),
            ConvSpec(5, maps(conv5_maps), 3, stride=1, padding=1, followed_by=("pool",)),
        ]
    else:
        specs = [
            ConvSpec(1, maps(96), 11, stride=4, padding=2, followed_by=("norm", "pool")),
            ConvSpec(2, maps(256), 5, stride=1, padding=2, groups=groups, followed_by=("norm", "pool")),
            ConvSpec(3, maps(conv3_maps), 3, stride=1, padding=1),
            ConvSpec(4, maps(conv4_maps), 3, stride=1, padding=1, groups=groups),
            ConvSpec(5, maps(conv5_maps), 3, stride=1, padding=1, groups=groups, followed_by=("pool",)),
        ]
    return [spec for spec in specs if spec.number not in opts["remove"]]


def _make_features(conv_specs: list[ConvSpec], lrn: dict[str, float] | None, in_channels: int = 3) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    for spec in conv_specs:
        n = spec.number
        conv = nn.Conv2d(
            in_channels, spec.maps, spec.kernel_size, stride=spec.stride, padding=spec.padding, groups=spec.groups
        )
        layers += [(f"conv{n}", conv), (f"relu{n}", nn.ReLU(inplace=False))]
        for kind in spec.followed_by:
            if kind == "pool":
                # ceil for pool1/pool2 (110->55, 26->13 in zfnet), floor for pool5 (13->6 either way).
                layers.append((f"pool{n}", nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=n < 5)))
            elif lrn is not None:
                layers.append((f"norm{n}", LocalResponseNorm(**lrn)))
        in_channels = spec.maps
    return nn.Sequential(OrderedDict(layers))


def _make_classifier(
    in_features: int, fc_units: int, num_classes: int, dropout: float, order: str, remove: list[int]
) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    for n in (6, 7):
        if n in remove:
            continue
        layer = [(f"fc{n}", nn.Linear(in_features, fc_units)), (f"relu{n}", nn.ReLU(inplace=False))]
        drop = (f"drop{n}", nn.Dropout(p=dropout))
        layers += layer + [drop] if order == "paper" else [drop] + layer
        in_features = fc_units
    layers.append(("fc8", nn.Linear(in_features, num_classes)))
    return nn.Sequential(OrderedDict(layers))


KRIZHEVSKY_UNIT_BIAS = ("conv2", "conv4", "conv5", "fc6", "fc7")


def _init_weights(model: ConvNet, scheme: str, std: float) -> None:
    """Weights N(0, std^2), or fan-in scaled after conv1 ("fan_in"); biases 0, or 1 where Krizhevsky had 1."""
    first = model.features.conv1
    for part in (model.features, model.classifier):
        for name, module in part.named_children():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            if scheme == "fan_in" and module is not first:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            else:
                nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.constant_(module.bias, 1.0 if scheme == "krizhevsky" and name in KRIZHEVSKY_UNIT_BIAS else 0.0)


def _pool5_shape(name: str, features: nn.Sequential, input_size: int) -> tuple[int, int, int]:
    """pool5's output (C, H, W) at `input_size`, or a UserError naming the smallest size that works."""
    shape = _features_output_shape(features, input_size)
    if shape is None:
        smallest = next((s for s in range(input_size + 1, 4096) if _features_output_shape(features, s)), None)
        raise UserError(
            f"model.input_size: {input_size} px is too small for this {name} (a layer's output would be "
            f"empty); the smallest that works is {smallest}"
        )
    return shape


def _features_output_shape(features: nn.Sequential, input_size: int) -> tuple[int, int, int] | None:
    shape: tuple[int, ...] = (3, input_size, input_size)
    for module in features:
        shape = _output_shape(module, shape)
        if min(shape) < 1:
            return None
    return shape  # type: ignore[return-value]


# --------------------------------------------------------------------------- options


def _check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """All options with defaults filled in, checked, as plain JSON-friendly values."""
    allowed = dict(DEFAULT_OPTIONS)
    if name == "alexnet":
        allowed.update(ALEXNET_ONLY_OPTIONS)
    for key in options:
        if key not in allowed:
            extra = f" ({key} is alexnet-only)" if key in ALEXNET_ONLY_OPTIONS else ""
            raise UserError(
                f"model.{key}: not an option of {name}{extra}; allowed: {', '.join(sorted(allowed))}"
            )
    opts = {**allowed, **options}
    checked: dict[str, Any] = {
        "input_size": _positive_int("input_size", opts["input_size"]),
        "width": _positive_number("width", opts["width"]),
        "norm": _choice("norm", opts["norm"], ("lrn", "none")),
        "remove": _removed_layers(opts["remove"]),
        "fc_units": _positive_int("fc_units", opts["fc_units"]),
        "conv_maps": _conv_maps(opts["conv_maps"]),
        "dropout": _probability("dropout", opts["dropout"]),
        "dropout_order": _choice("dropout_order", opts["dropout_order"], ("paper", "torchvision")),
        "lrn_size": _positive_int("lrn_size", opts["lrn_size"]),
        "lrn_alpha": _positive_number("lrn_alpha", opts["lrn_alpha"]),
        "lrn_beta": _positive_number("lrn_beta", opts["lrn_beta"]),
        "lrn_k": _positive_number("lrn_k", opts["lrn_k"]),
        "init": _choice("init", opts["init"], ("paper", "krizhevsky", "fan_in")),
        "init_std": _positive_number("init_std", opts["init_std"]),
    }
    if name == "alexnet":
        checked["grouped"] = _boolean("grouped", opts["grouped"])
        if checked["grouped"] and any(m % 2 for m in checked["conv_maps"]):
            raise UserError(
                f"model.conv_maps: {checked['conv_maps']} must be even for the grouped alexnet "
                "(2 groups); use even counts or grouped=false"
            )
    return checked


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(key: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise UserError(f"model.{key}: expected a positive integer, got {value!r}")
    return int(value)


def _positive_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"model.{key}: expected a number > 0, got {value!r}")
    return float(value)


def _probability(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"model.{key}: expected a number in [0, 1), got {value!r}")
    return float(value)


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"model.{key}: expected true or false, got {value!r}")
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UserError(f"model.{key}: {value!r} is not one of: {', '.join(allowed)}")
    return value


def _int_list(value: Any) -> list[int] | None:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return None
    items = list(value)
    return items if all(_is_int(item) for item in items) else None


def _removed_layers(value: Any) -> list[int]:
    layers = _int_list(value)
    if layers is None:
        raise UserError(f"model.remove: expected a list of layer numbers, e.g. [3, 4], got {value!r}")
    for layer in layers:
        if layer not in REMOVABLE_LAYERS:
            raise UserError(
                f"model.remove: layer {layer} cannot be removed; removable: "
                f"{', '.join(map(str, REMOVABLE_LAYERS))} (Table 3: [3, 4], [7], [6, 7], [3, 4, 6, 7])"
            )
    return sorted(set(layers))


def _conv_maps(value: Any) -> list[int]:
    maps = _int_list(value)
    if maps is None or len(maps) != 3 or min(maps) < 1:
        raise UserError(
            f"model.conv_maps: expected 3 positive integers (maps in conv3, conv4, conv5), got {value!r}"
        )
    return maps


# --------------------------------------------------------------------------- layers and shapes


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The layer called `name` ("conv3", "pool5", "fc6", ...) in model.features or model.classifier.

    A dotted path ("features.conv3") works too. Raises UserError naming the layers present.
    """
    for part in ("features", "classifier"):
        container = getattr(model, part, None)
        if isinstance(container, nn.Module) and name in container._modules:
            return container._modules[name]
    if "." in name:
        try:
            return model.get_submodule(name)
        except AttributeError:
            pass
    present = [n for part in ("features", "classifier") for n, _ in getattr(model, part).named_children()]
    raise UserError(f"layer {name!r} is not in this model (removed?); present: {', '.join(present)}")


def feature_shapes(model: ConvNet, input_size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Each named layer's output shape for one image: (C, H, W) in features, (units,) in the classifier.

    `input_size` defaults to the model's; at another size only the feature layers are listed (the
    classifier would not accept them). Computed by arithmetic, so it is free for any model size.
    """
    size = model.input_size if input_size is None else input_size
    shapes: dict[str, tuple[int, ...]] = {}
    shape: tuple[int, ...] = (3, size, size)
    for name, module in model.features.named_children():
        shape = _output_shape(module, shape)
        shapes[name] = shape
    if size != model.input_size:
        return shapes
    shape = (math.prod(shape),)
    for name, module in model.classifier.named_children():
        shape = _output_shape(module, shape)
        shapes[name] = shape
    return shapes


def _output_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape of `module` for one input of `shape` (no batch dimension); PyTorch's rounding."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
        channels, height, width = shape
        if isinstance(module, nn.Conv2d):
            channels, ceil_mode = module.out_channels, False
        else:
            ceil_mode = module.ceil_mode
        kernel, stride, padding, dilation = (
            _pair(v) for v in (module.kernel_size, module.stride, module.padding, module.dilation)
        )
        return (
            channels,
            *(
                _window_count(size, kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
                for i, size in enumerate((height, width))
            ),
        )
    if isinstance(module, nn.Linear):
        return (module.out_features,)
    return shape  # ReLU, LRN, Dropout: shape unchanged


def _window_count(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a sliding window; with ceil_mode the last window must start inside the input."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    count = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (count - 1) * stride >= size + padding:
        count -= 1
    return count


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _first_linear(classifier: nn.Sequential) -> nn.Linear:
    return next(m for m in classifier if isinstance(m, nn.Linear))


# --------------------------------------------------------------------------- filter renormalization


_RMS_TOLERANCE = 1e-6  # float32 rounding leaves a rescaled filter up to ~2e-7 (relative) above the radius


def clip_filter_rms_(model: nn.Module, radius: float = 0.1) -> torch.Tensor:
    """Rescale every conv filter whose RMS exceeds `radius` to exactly `radius`; return how many were.

    A filter is one output channel's weights (in_channels/groups x kh x kw); its RMS is the square root
    of their mean square. The paper's renormalization (Sec. 3, radius 1e-1), done in place after each
    optimizer step. Biases are left alone. A filter counts as above the radius only when it exceeds it by
    more than float rounding (relative 1e-6), so a filter already rescaled is not rescaled (or counted)
    again on the next step.

    Nothing here waits for the device: the count comes back as a 0-d int64 tensor on the weights' device
    (`int(...)` it to read it, which waits), and filters are rescaled by a factor that is 1 for the others.
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise UserError(f"filter RMS radius: expected a number > 0, got {radius!r}")
    clipped = []
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                weight = module.weight
                rms = weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
                too_big = rms > radius * (1 + _RMS_TOLERANCE)
                scale = torch.where(too_big, radius / rms, torch.ones_like(rms))
                weight.mul_(scale.view(-1, 1, 1, 1).to(weight.dtype))
                clipped.append(too_big.sum())
    if not clipped:
        return torch.zeros((), dtype=torch.int64)
    return torch.stack(clipped).sum()
