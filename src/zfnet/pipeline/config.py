"""Loading and validating the pipeline configuration.

Two ways in, one result:
- standalone, `python pipelines/<stage>.py key=value ...`: Hydra composes `conf/` with the overrides;
- under DVC, `python pipelines/<stage>.py --params params.yaml ...`: the already composed
  `params.yaml` (what `dvc exp run -S` writes) is the base and the overrides apply on top.

Either way the result is validated against RULES, so a bad value stops the stage with one line
naming the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from zfnet.errors import UserError

CONFIG_NAME = "config"
MISSING = object()


def repo_root() -> Path:
    """The checkout this package runs from (where conf/, dvc.yaml and params.yaml live)."""
    return Path(__file__).resolve().parents[3]


def conf_dir() -> Path:
    return repo_root() / "conf"


# ---------------------------------------------------------------- loading


def compose(overrides: Iterable[str] = (), config_dir: Path | None = None) -> DictConfig:
    """Compose conf/ the way `dvc exp run` does (no Hydra runtime, interpolations resolved)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    config_dir = Path(config_dir or conf_dir()).resolve()
    try:
        with initialize_config_dir(str(config_dir), version_base=None):
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(_one_line(err)) from err
    return cfg


def load_params(path: Path, overrides: Iterable[str] = ()) -> DictConfig:
    """Load a composed params file and apply Hydra-syntax overrides of plain keys on top."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: params file not found (run from the repository root)")
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if (conf_dir() / key).is_dir():
            raise UserError(f"{override}: a config group choice needs Hydra composition; drop --params, "
                            f"or recompose params.yaml with `dvc exp run -S {override}`")
    try:
        cfg = OmegaConf.load(path)
        OmegaConf.set_struct(cfg, True)
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"{path}: {_one_line(err)}") from err
    return cfg


def load(overrides: Iterable[str] = (), params_file: Path | None = None) -> DictConfig:
    cfg = load_params(params_file, overrides) if params_file else compose(overrides)
    validate(cfg)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def fingerprint(cfg: DictConfig, *keys: str) -> str:
    """Short stable hash of the config (or of the given sections), for grouping runs."""
    container = OmegaConf.to_container(cfg, resolve=True)
    if keys:
        container = {key: select(cfg, key) for key in keys}
    blob = json.dumps(container, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def select(cfg: DictConfig, key: str) -> Any:
    """Plain-Python value at a dotted key; a UserError naming the key when it is absent or '???'."""
    try:
        value = OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise UserError(f"{key}: missing value ('???'); set it on the command line, e.g. {key}=...") from err
    if value is MISSING:
        raise UserError(f"{key}: missing from the configuration")
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = lines[0] if lines else type(err).__name__
    key = getattr(err, "full_key", None)
    if key and key not in message:
        message = f"{key}: {message}"
    return message


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], bool]
    expected: str
    optional: bool = False  # null allowed

    def __call__(self, key: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if not self.check(value):
            raise UserError(f"{key}: got {value!r}, expected {self.expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(lo: int | None = None, hi: int | None = None, optional: bool = False) -> Rule:
    bounds = _bounds_text(lo, hi)
    return Rule(lambda v: _is_int(v) and _within(v, lo, hi), f"an integer{bounds}", optional)


def number(lo: float | None = None, hi: float | None = None, optional: bool = False) -> Rule:
    bounds = _bounds_text(lo, hi)
    return Rule(lambda v: _is_number(v) and _within(v, lo, hi), f"a number{bounds}", optional)


def choice(*allowed: Any, optional: bool = False) -> Rule:
    names = ", ".join(str(a) for a in allowed)
    return Rule(lambda v: v in allowed, f"one of: {names}", optional)


def string(optional: bool = False) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string", optional)


def boolean() -> Rule:
    return Rule(lambda v: isinstance(v, bool), "true or false")


def int_list(lo: int | None = None, hi: int | None = None) -> Rule:
    return Rule(
        lambda v: isinstance(v, list) and all(_is_int(x) and _within(x, lo, hi) for x in v),
        f"a list of integers{_bounds_text(lo, hi)}",
    )


def number_pair(lo: float, hi: float) -> Rule:
    return Rule(
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) and lo <= x <= hi for x in v)
        and v[0] <= v[1],
        f"[low, high] with {lo} <= low <= high <= {hi}",
    )


def _names(value: Any) -> bool:
    """A non-empty list of distinct non-empty strings."""
    return (isinstance(value, list) and len(value) > 0 and len(set(value)) == len(value)
            and all(isinstance(x, str) and x for x in value))


def _within(value, lo, hi) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _bounds_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


TRANSFER_DATASETS = ("caltech101", "caltech256", "pascal")

# Every key a stage reads. `*` matches any child (e.g. each entry of `models`).
RULES: dict[str, Rule] = {
    "seed": integer(0, 2**31 - 1),
    "model": string(),
    "workers": integer(1, optional=True),
    "paths.synthetic": string(),
    "paths.prepared": string(),
    "paths.manifest": string(),
    "paths.metrics": string(),
    "paths.evidence": string(),
    "paths.plots": string(),
    "paths.outputs": string(),
    "data.name": choice("synthetic", "imagenet", "imagefolder"),
    "data.root": string(),
    "data.train_dir": string(),
    "data.val_dir": string(),
    "synthetic.num_classes": integer(2, 40),
    "synthetic.train_per_class": integer(1),
    "synthetic.val_per_class": integer(1),
    "synthetic.caltech101_classes": integer(2),
    "synthetic.caltech256_classes": integer(2),
    "synthetic.transfer_per_class": integer(1),
    "synthetic.image_size": integer(32, 1024),
    "synthetic.max_rotation": number(0, 180),
    "synthetic.scale_range": number_pair(0.05, 1.0),
    "synthetic.distractors": integer(0, 20),
    "synthetic.jpeg_quality": integer(1, 100),
    "synthetic.voc_train": integer(0),
    "synthetic.voc_val": integer(0),
    "synthetic.voc_max_objects": integer(1, 10),
    "synthetic.voc_scale_range": number_pair(0.05, 1.0),
    "prepare.size": integer(16, 1024),
    "prepare.shard_size": integer(1),
    "prepare.codec": choice("raw", "jpeg"),
    "prepare.quality": integer(1, 100),
    "train.epochs": integer(0),      # 0: the network at its initialization (the negative control)
    "train.batch_size": integer(1),
    "train.lr": number(0),
    "train.momentum": number(0, 1),
    "train.weight_decay": number(0),
    "train.lr_factor": number(0, 1),
    "train.lr_patience": integer(0),
    "train.renorm_radius": number(1e-9, optional=True),
    "train.crop": integer(16, 1024),
    "train.flip": boolean(),
    "train.input_scale": number(1e-6),
    "train.snapshot_epochs": int_list(1),
    "train.restart": boolean(),
    "trainer.accelerator": choice("cpu", "gpu", "cuda", "mps", "auto"),
    "trainer.devices": Rule(lambda v: (_is_int(v) and v >= -1 and v != 0) or v == "auto",
                            "a positive device count, -1 (all) or auto"),
    "trainer.num_nodes": integer(1),
    "trainer.strategy": choice("auto", "ddp", "ddp_find_unused_parameters_true"),
    "trainer.precision": choice("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true"),
    "trainer.channels_last": boolean(),
    "trainer.deterministic": boolean(),
    "trainer.benchmark": boolean(),
    "trainer.num_workers": integer(0),
    "trainer.compile": boolean(),
    "trainer.finite_check_every": integer(1),
    "report.title": string(),
    "report.dir": string(),
    "report.entity": string(optional=True),
    "report.publish": choice("auto", "never"),
    "report.statistics.resamples": integer(100),
    "report.statistics.level": number(0.5, 0.999),
    "report.statistics.seed": integer(0),
    "report.margins.*": number(0),
    "logger.project": string(),
    "logger.entity": string(optional=True),
    "logger.mode": choice("offline", "online", "disabled"),
    "logger.group": string(optional=True),
    "logger.name": string(optional=True),
    "optimized_metric": string(optional=True),
    "logger.dir": string(),
    "models.*.name": choice("zfnet", "alexnet"),
    # Tables 2 and 3 (ablations/dvc.yaml; structure checked by zfnet.pipeline.ablations.validate)
    "ablation": string(optional=True),
    "ablations.runs.*.base": string(),
    "ablations.ensembles.*": Rule(_names, "a non-empty list of distinct entries of ablations.runs"),
    "ablations.checkpoint": choice("best", "last"),
    # visualize rules
    "visualize.models": Rule(lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
                             "a list of entries of `models`, e.g. [zfnet, alexnet]"),
    "visualize.layers": Rule(lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(x, str) and x for x in v),
                             "a non-empty list of layer names, e.g. [conv1, conv5]"),
    "visualize.checkpoint": choice("best", "last"),
    "visualize.batch_size": integer(1),
    "visualize.normalize_down": boolean(),
    "visualize.top9.k": integer(1, 100),
    "visualize.top9.images": integer(1, optional=True),
    "visualize.top9.maps": integer(1),
    "visualize.evolution.split": choice("train", "val"),
    "visualize.evolution.images": integer(1, optional=True),
    "visualize.evolution.maps": integer(1),
    "visualize.architecture.no_renorm_checkpoint": string(optional=True),
    "visualize.architecture.dead_rms_position": Rule(lambda v: _is_number(v) and 0 < v < 1,
                                                     "a number strictly between 0 and 1"),
    "visualize.architecture.dead_noise_quantile": Rule(lambda v: _is_number(v) and 0 < v < 0.5,
                                                       "a number strictly between 0 and 0.5"),
    "visualize.architecture.noise_samples": integer(100, 1_000_000),
    "visualize.architecture.spectrum_size": integer(16, 1024),
    "visualize.architecture.shift_layer": choice("conv2", "pool2"),
    "visualize.architecture.shifts": Rule(lambda v: isinstance(v, list) and len(v) > 0
                                          and all(_is_int(x) and 1 <= x <= 15 for x in v),
                                          "a non-empty list of shifts in pixels, each in [1, 15] and below the "
                                          "shift layer's grid step (8 for conv2, 16 for pool2)"),
    "visualize.architecture.shift_images": integer(1, optional=True),
    "visualize.architecture.conv2_maps": integer(1),
    "visualize.architecture.alias_period": integer(2, 64),
    "visualize.architecture.alias_window": integer(4, 1024, optional=True),
    # occlusion rules (stage occlusion@<model>, Fig. 7)
    "occlusion.patch": integer(1, 1024),
    "occlusion.stride": integer(1, 1024),
    "occlusion.fill": number(),
    "occlusion.mode": choice("exact", "naive", "approximate"),
    "occlusion.approximate.coarse": integer(1, 64),
    "occlusion.approximate.drill": number(0, 1),
    "occlusion.approximate.threshold": Rule(lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "occlusion.batch_size": integer(1),
    "occlusion.images": integer(1, optional=True),
    "occlusion.figure_per_class": integer(0, 100),
    "occlusion.pointing_tolerance": number(0),
    "occlusion.object_share": Rule(lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    # correspondence rules (stage correspondence@<model>, Table 1)
    "correspondence.root": string(optional=True),
    "correspondence.split": string(optional=True),
    "correspondence.classes": Rule(_names, "null (every class with all the parts) or a non-empty "
                                   "list of distinct class names", optional=True),
    "correspondence.max_rotation": number(0, 180, optional=True),
    "correspondence.parts": Rule(_names, "a non-empty list of distinct part-box names, e.g. "
                                 "[right_eye, left_eye, nose]"),
    "correspondence.random": boolean(),
    "correspondence.images_per_draw": integer(2, 1000),
    "correspondence.draws": integer(1, 100_000),
    "correspondence.fill": number(),
    "correspondence.layer5": choice("auto", "pool5", "relu5"),
    # invariance rules (stage invariance@<model>, Fig. 5)
    "invariance.translation.max": number(0, 1),
    "invariance.translation.steps": integer(1, 1000),
    "invariance.scale.max": number(1, 10),
    "invariance.scale.steps": integer(1, 1000),
    "invariance.rotation.step": Rule(lambda v: _is_number(v) and 0 < v <= 360, "a number of degrees in (0, 360]"),
    "invariance.layer1": choice("pool1", "relu1"),
    "invariance.images": integer(1, optional=True),
    "invariance.rerender_images": integer(0),
    "invariance.batch_size": integer(1),
    "invariance.examples": Rule(lambda v: v == [] or _names(v), "a list of distinct class names (may be empty)"),
    "invariance.classes_file": string(optional=True),
    "invariance.small_steps": integer(1, 1000),
    "invariance.symmetry_tolerance": number(0, 180),
    "invariance.symmetry_guard": number(0, 180),
    "invariance.control_angle": Rule(lambda v: _is_number(v) and 0 < v < 360, "a number of degrees in (0, 360)"),
    # transfer rules (stages transfer@<dataset>, Tables 4-7, Fig. 9)
    "transfer.dataset": choice(*TRANSFER_DATASETS),
    "transfer.models": Rule(_names, "a non-empty list of distinct entries of `models`, e.g. [zfnet, alexnet]"),
    "transfer.checkpoint": choice("best", "last"),
    **{f"transfer.roots.{name}": string() for name in TRANSFER_DATASETS},
    "transfer.layer": integer(1, 7),
    "transfer.folds": integer(1, 100),
    "transfer.seed": integer(0, 2**31 - 1),
    "transfer.C": number(1e-9),
    "transfer.solver": choice("torch", "sklearn"),
    "transfer.grid": integer(1, 64),
    "transfer.batch_size": integer(1),
    "transfer.layers": Rule(lambda v: isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v)
                            and all(_is_int(x) and 1 <= x <= 7 for x in v), "a non-empty list of distinct layers in [1, 7]"),
    "transfer.classifiers": Rule(lambda v: _names(v) and set(v) <= {"svm", "softmax"}, "a non-empty list of svm, softmax"),
    "transfer.scratch.epochs": integer(1),
    "transfer.scratch.folds": integer(0, 100),
    "transfer.scratch.num_workers": integer(0),
    "transfer.scratch.channels_last": boolean(),
    "transfer.caltech101.sizes": int_list(1),
    "transfer.caltech101.scratch_sizes": int_list(1),
    "transfer.caltech101.layers_size": integer(1),
    "transfer.caltech101.test_per_class": integer(1),
    "transfer.caltech101.background": boolean(),
    "transfer.caltech256.sizes": int_list(1),
    "transfer.caltech256.scratch_sizes": int_list(1),
    "transfer.caltech256.layers_size": integer(1),
    "transfer.caltech256.test_per_class": integer(1),
    "transfer.caltech256.clutter": boolean(),
    "transfer.pascal.train_set": choice("train", "val", "trainval"),
    "transfer.pascal.test_set": choice("train", "val", "trainval"),
}


def validate(cfg: DictConfig) -> None:
    """Raise UserError with one line for the first value that breaks a rule."""
    for pattern, rule in RULES.items():
        for key in _expand(cfg, pattern):
            rule(key, select(cfg, key))
    if cfg.train.crop > cfg.prepare.size:
        raise UserError(f"train.crop: {cfg.train.crop} is larger than prepare.size={cfg.prepare.size}")
    for key in cfg.models:
        _validate_recipe(cfg, key)
        crop = recipe(cfg, key)["crop"]
        if crop > cfg.prepare.size:
            raise UserError(f"models.{key}.train.crop: {crop} is larger than prepare.size={cfg.prepare.size}")
        if cfg.models[key].input_size != crop:
            raise UserError(f"models.{key}.input_size: {cfg.models[key].input_size} differs from its train.crop={crop} "
                            "(the network's input is the crop)")
    if cfg.occlusion.patch > min(recipe(cfg, key)["crop"] for key in cfg.visualize.models or cfg.models):
        raise UserError(f"occlusion.patch: {cfg.occlusion.patch} px is larger than a model's input (train.crop)")
    for group in ("visualize", "transfer"):
        for key in cfg[group].models:
            if key not in cfg.models:
                raise UserError(f"{group}.models: {key!r} is not an entry of models ({', '.join(cfg.models)})")
    _validate_models(cfg)


def architecture(cfg: DictConfig, key: str) -> dict[str, Any]:
    """`models.<key>` as build options for `build_model` (its `train` overrides left out)."""
    options = select(cfg, f"models.{key}")
    options.pop("train", None)
    return options


def recipe(cfg: DictConfig, key: str) -> dict[str, Any]:
    """The training recipe of model `key`: `train`, with `models.<key>.train` merged over it."""
    overrides = OmegaConf.select(cfg, f"models.{key}.train")
    return {**select(cfg, "train"), **(select(cfg, f"models.{key}.train") if overrides is not None else {})}


def _validate_recipe(cfg: DictConfig, key: str) -> None:
    overrides = OmegaConf.select(cfg, f"models.{key}.train")
    if overrides is None:
        return
    if not isinstance(overrides, DictConfig):
        raise UserError(f"models.{key}.train: expected a mapping of train settings, e.g. {{renorm_radius: null}}")
    for setting, value in select(cfg, f"models.{key}.train").items():
        if setting not in cfg.train:
            raise UserError(f"models.{key}.train.{setting}: not a train setting; allowed: {', '.join(cfg.train)}")
        RULES[f"train.{setting}"](f"models.{key}.train.{setting}", value)


def _expand(cfg: DictConfig, pattern: str) -> list[str]:
    if "*" not in pattern:
        return [pattern]
    head, _, tail = pattern.removesuffix(".*").partition(".*.")
    node = OmegaConf.select(cfg, head)
    if not isinstance(node, DictConfig):
        raise UserError(f"{head}: expected a mapping")
    return [f"{head}.{child}.{tail}" if tail else f"{head}.{child}" for child in node.keys()]


def _validate_models(cfg: DictConfig) -> None:
    """The model to run must be configured, and each model's options must build (on 'meta', for free)."""
    names = list(cfg.models.keys())
    if cfg.model not in names:
        raise UserError(f"model: {cfg.model!r} is not configured; expected one of: {', '.join(names)}")
    for key in names:
        check_model(architecture(cfg, key), f"models.{key}")


def check_model(options: dict[str, Any], key: str) -> None:
    """Build the model `options` describe on 'meta' (no memory, no time); a UserError naming `key` if it fails."""
    import torch

    from zfnet.nets.models import build_model

    options = {k: v for k, v in options.items() if k != "train"}
    name = options.pop("name")
    try:
        with torch.device("meta"):
            build_model(name, num_classes=2, **options)
    except UserError as err:
        message = str(err)
        prefix = "model."
        raise UserError(f"{key}.{message[len(prefix):]}" if message.startswith(prefix) else f"{key}: {message}") from err


def write_params(path: Path | None = None, overrides: Iterable[str] = ()) -> Path:
    """Write params.yaml exactly as `dvc exp run` composes it (DVC's own function)."""
    from dvc.utils.hydra import compose_and_dump

    path = Path(path or repo_root() / "params.yaml")
    compose_and_dump(path, str(conf_dir()), None, CONFIG_NAME, str(repo_root()), list(overrides))
    return path


if __name__ == "__main__":
    # python -m zfnet.pipeline.config [overrides]: refresh params.yaml after editing conf/
    import sys

    print(write_params(overrides=sys.argv[1:]))
