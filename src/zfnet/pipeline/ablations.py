"""Tables 2 and 3 as configuration: which runs to train, and which of them make each ensemble.

`ablations.runs.<run>` names a base entry of `models` and the options that change it (`remove`,
`fc_units`, `conv_maps`, `grouped`, ...; `seed` replaces the pipeline's seed). `run_config` turns
one run into the config that `pipelines/train.py` trains: the base model (with its scale and its
`train` recipe overrides) under `models.<run>`, outputs under `<paths>/ablations/`, and the W&B
group of the pipeline it belongs to.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from zfnet.errors import UserError
from zfnet.pipeline import config as zconfig
from zfnet.pipeline.tracking import pipeline_group

SUBDIR = "ablations"  # under paths.outputs, paths.metrics, paths.evidence and paths.plots


def run_names(cfg: DictConfig) -> list[str]:
    return list(cfg.ablations.runs.keys())


def model_options(cfg: DictConfig, run: str) -> dict:
    """`models.<base>` with the run's options over it (its `seed` and `base` left out)."""
    spec = zconfig.select(cfg, f"ablations.runs.{run}")
    base = spec.pop("base")
    spec.pop("seed", None)
    if base not in cfg.models:
        raise UserError(f"ablations.runs.{run}.base: {base!r} is not an entry of models ({', '.join(cfg.models)})")
    options = zconfig.select(cfg, f"models.{base}")
    unknown = sorted(set(spec) - set(options))
    if unknown:
        raise UserError(f"ablations.runs.{run}.{unknown[0]}: not a model option; allowed: base, seed, "
                        f"{', '.join(k for k in options if k != 'train')}")
    return {**options, **spec}


def run_config(cfg: DictConfig, run: str) -> DictConfig:
    """The config that trains ablation run `run` (validated, a new object: `cfg` is left as it was)."""
    validate(cfg)
    if run not in cfg.ablations.runs:
        raise UserError(f"ablation: {run!r} is not an entry of ablations.runs ({', '.join(run_names(cfg))})")
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.set_struct(out, False)
    out.models[run] = model_options(cfg, run)
    out.model = run
    out.ablation = None
    seed = cfg.ablations.runs[run].get("seed")
    if seed is not None:
        out.seed = seed
    # Every run of the study shares the W&B group of the pipeline whose params it was launched with.
    out.logger.group = pipeline_group(cfg)
    out.train.snapshot_epochs = []  # Fig. 4's snapshots: not needed here, and 50 MB each
    for key in ("outputs", "metrics", "evidence", "plots"):
        out.paths[key] = f"{cfg.paths[key]}/{SUBDIR}"
    OmegaConf.set_struct(out, True)
    zconfig.validate(out)
    return out


def validate(cfg: DictConfig) -> None:
    """Each run builds, each ensemble names known runs (one line naming the key otherwise)."""
    for run in run_names(cfg):
        seed = cfg.ablations.runs[run].get("seed")
        if seed is not None:
            zconfig.RULES["seed"](f"ablations.runs.{run}.seed", seed)
        zconfig.check_model(model_options(cfg, run), f"ablations.runs.{run}")
    for name, members in cfg.ablations.ensembles.items():
        for member in members:
            if member not in cfg.ablations.runs:
                raise UserError(f"ablations.ensembles.{name}: {member!r} is not an entry of ablations.runs")
