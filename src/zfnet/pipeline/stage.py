"""The shared entry point of every pipeline stage: arguments, config, logging, clean errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from zfnet.errors import UserError
from zfnet.pipeline import config as zconfig

log = logging.getLogger("zfnet")


def run(stage: str, body: Callable[[DictConfig], None], argv: list[str] | None = None) -> None:
    """Parse `[--params FILE] [--print-config] key=value ...`, load and validate, run `body`.

    A UserError (bad config, bad input) ends the process with one line on stderr and exit code 2;
    set ZFNET_DEBUG=1 to see the traceback instead.
    """
    parser = argparse.ArgumentParser(
        prog=f"python pipelines/{stage}.py",
        description=f"zfnet pipeline stage '{stage}'. Overrides use Hydra syntax, e.g. prepare.size=128.",
    )
    parser.add_argument("--params", type=Path, default=None,
                        help="start from this composed params file (what DVC uses) instead of conf/")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: key=value, group=option")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = zconfig.load(args.overrides, params_file=args.params)
        if args.print_config:
            print(zconfig.to_yaml(cfg), end="")
            return
        body(cfg)
    except UserError as err:
        if os.environ.get("ZFNET_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: stage '{stage}' interrupted", file=sys.stderr)
        sys.exit(130)


def setup_logging() -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def write_metrics(cfg: DictConfig, name: str, metrics: dict) -> Path:
    """The stage's DVC metrics file (`<paths.metrics>/<name>.json`), written atomically."""
    from zfnet.io import write_json

    path = Path(cfg.paths.metrics) / f"{name}.json"
    write_json(path, metrics)
    return path


def plot_dir(cfg: DictConfig, name: str) -> Path:
    """A fresh folder for the stage's figures (`<paths.plots>/<name>/`)."""
    import shutil

    path = Path(cfg.paths.plots) / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
