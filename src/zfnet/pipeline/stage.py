"""The shared entry point of every pipeline stage: arguments, config, logging, clean errors."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from zfnet.errors import UserError
from zfnet.pipeline import config as zconfig
from zfnet.pipeline import multirun

log = logging.getLogger("zfnet")


def run(stage: str, body: Callable[[DictConfig], None], argv: list[str] | None = None) -> None:
    """Parse `[--params FILE] [--print-config] key=value ...`, load and validate, run `body`.

    A UserError (bad config, bad input) ends the process with one line on stderr and exit code 2;
    set ZFNET_DEBUG=1 to see the traceback instead. `-m`/`--multirun` (or an `hparams_search=` choice)
    runs the stage as a Hydra multirun instead (see zfnet.pipeline.multirun).
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog=f"python pipelines/{stage}.py",
        description=f"zfnet pipeline stage '{stage}'. Overrides use Hydra syntax, e.g. prepare.size=128.",
    )
    parser.add_argument("--params", type=Path, default=None,
                        help="start from this composed params file (what DVC uses) instead of conf/")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="a Hydra multirun: sweeps (train.lr=0.005,0.01) or hparams_search=<conf/hparams_search/ name>")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: key=value, group=option")
    setup_logging()
    quiet_third_party()
    try:
        if multirun.requested(argv):
            multirun.run(stage, body, argv)
            return
        args = parser.parse_args(argv)
        cfg = zconfig.load(args.overrides, params_file=args.params)
        if args.print_config:
            print(zconfig.to_yaml(cfg), end="")
            return
        body(cfg)
    except UserError as err:
        if os.environ.get("ZFNET_DEBUG"):
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: stage '{stage}' interrupted", file=sys.stderr)
        sys.exit(130)


def one_line(err: UserError) -> str:
    """The error's own line, also when a DataLoader worker raised it: torch re-raises it in the main process
    with "Caught ... in DataLoader worker process N" and the worker's traceback around the message."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", last, count=1)  # "zfnet.errors.UserError: <message>"


def setup_logging() -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


# Third-party lines every stage would print and nobody can act on; each is matched exactly, so that
# every other warning and log line still shows.
# torch.utils._pytree marks LeafSpec deprecated (a FutureWarning on each `LeafSpec()`), and
# pytorch_lightning/utilities/_pytree.py still builds one whenever Lightning flattens a batch.
LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# Lightning warns whenever a module overrides transfer_batch_to_device and a DataModule is passed: the
# train stage's Classifier does so on purpose (the batch copy on a CUDA stream of its own).
TRANSFER_HOOK_WARNING = r"You have overridden `transfer_batch_to_device` in `LightningModule` but have passed in a"
# Lightning's logger connector logs an advertisement whenever a Trainer has no LitLogger.
LITLOGGER_TIP = "try installing [litlogger]"
LIGHTNING_RANK_ZERO_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                               "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return LITLOGGER_TIP not in record.getMessage()


_drop_litlogger_tip = _DropLitLoggerTip()


def quiet_third_party() -> None:
    """Silence Lightning's litlogger tip and transfer-hook warning and torch's LeafSpec deprecation warning
    (and nothing else)."""
    warnings.filterwarnings("ignore", message=LEAFSPEC_WARNING, category=FutureWarning)
    warnings.filterwarnings("ignore", message=TRANSFER_HOOK_WARNING)
    # rank_zero_info logs through whichever of these Lightning imported last (a logger's filters only see
    # records logged on that very logger, not those propagated from its children).
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logging.getLogger(name).addFilter(_drop_litlogger_tip)


def write_metrics(cfg: DictConfig, name: str, metrics: dict) -> Path:
    """The stage's DVC metrics file (`<paths.metrics>/<name>.json`), written atomically."""
    from zfnet.io import write_json

    path = Path(cfg.paths.metrics) / f"{name}.json"
    write_json(path, metrics)
    return path


def write_evidence(cfg: DictConfig, name: str, evidence: dict) -> Path:
    """The per-unit evidence behind the stage's metrics (`<paths.evidence>/<name>.json`: per image, per draw,
    per fold), written atomically; arrays become lists. The report's intervals resample it."""
    import json

    from zfnet.io import write_text

    path = Path(cfg.paths.evidence) / f"{name}.json"
    # one line per top-level key: lists of thousands of numbers, indented one per line, would be 5x the size
    body = ",\n".join(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True, separators=(',', ':'))}"
                       for key, value in sorted(_plain(evidence).items()))
    write_text(path, "{\n" + body + "\n}\n")
    return path


def _plain(value):
    """Numpy arrays and scalars (and tensors) as JSON-ready lists and numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def plot_dir(cfg: DictConfig, name: str) -> Path:
    """A fresh folder for the stage's figures (`<paths.plots>/<name>/`)."""
    import shutil

    path = Path(cfg.paths.plots) / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def save_figures(cfg: DictConfig, folder: str, figures, prefix: str) -> dict[str, Path]:
    """A fresh `<paths.plots>/<folder>/` holding each of `figures` ({stem: figure}, or (stem, figure) pairs: a
    generator keeps one figure open at a time) as `<stem>.png`; returns {"<prefix>/<stem>": path}, the W&B keys."""
    from zfnet.io import save_figure

    plots, saved = plot_dir(cfg, folder), {}
    for stem, figure in figures.items() if isinstance(figures, dict) else figures:
        save_figure(figure, path := plots / f"{stem}.png")
        saved[f"{prefix}/{stem}"] = path
    return saved


def checkpoint_path(cfg: DictConfig, key: str, name: str | None = None) -> Path:
    """Model `key`'s train checkpoint `name` (default `visualize.checkpoint`: best or last)."""
    return Path(cfg.paths.outputs) / "train" / key / "checkpoints" / f"{name or cfg.visualize.checkpoint}.ckpt"


def flat_numbers(metrics: dict, prefix: str = "") -> dict:
    """The numbers in nested `metrics` as {"a/b/c": value} (booleans as 0/1), for a W&B summary."""
    flat = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flat_numbers(value, f"{prefix}{name}/"))
        elif isinstance(value, (int, float)):
            flat[f"{prefix}{name}"] = int(value) if isinstance(value, bool) else value
    return flat

