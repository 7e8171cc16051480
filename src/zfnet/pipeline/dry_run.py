"""The paper's shapes on CPU: write an ImageNet-shaped tree, run every stage of `dvc exp run` on it.

    python -m zfnet.pipeline.dry_run                                  # 1000 classes x (2 train + 1 val)
    python -m zfnet.pipeline.dry_run --classes 12 --per-class 2 --val-per-class 1 --workdir /tmp/dry

What a new user does with ImageNet, on a small stand-in: the tree has ImageNet-2012's layout
(`train/<wnid>/<wnid>_<n>.JPEG`, `val/<wnid>/...`, 1000 WordNet-style class folders by default, JPEGs whose
smallest side is 256 px, landscape and portrait), written outside the repository; a copy of the repository
(its tracked and new files, as they are in the working tree; no metrics, no dvc.lock) becomes a fresh git
repository, and in it

    dvc exp run -S experiment=paper -S data.root=<tree> -S trainer=cpu -S train.epochs=1 [-S <--set> ...]

runs every stage, timed per stage from DVC's own "Running stage" lines. The run passes when DVC exits 0,
every stage of dvc.yaml is in dvc.lock and the report (reports/index.html, metrics/report.json) exists;
then it prints one line per stage (seconds), the stages that wrote "not run" (`zfnet.pipeline.not_run`),
the report's verdict counts, and writes all of it as JSON (`--json`). The copy runs its own source
(PYTHONPATH=<copy>/src). Nothing in the original repository is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from zfnet.errors import UserError
from zfnet.pipeline.config import repo_root

PAPER_SETTINGS = ("experiment=paper", "trainer=cpu", "train.epochs=1")
STAGE_LINE = re.compile(r"Running stage '([^']+)'")


# ----------------------------------------------------------------------------- the tree


def wnids(count: int) -> list[str]:
    """`count` distinct WordNet-style folder names (n + 8 digits), sorted, as ImageNet's."""
    return [f"n{1440764 + 7919 * i:08d}" for i in range(count)]


def write_tree(root: Path, classes: int, train_per_class: int, val_per_class: int, size: int = 256,
               seed: int = 0) -> dict[str, int]:
    """ImageNet-2012's layout under `root` with smooth random JPEGs (smallest side `size`); the counts."""
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    for wnid in wnids(classes):
        tint = rng.uniform(40, 215, 3)
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                _random_image(rng, tint, size).save(folder / f"{wnid}_{n}.JPEG", quality=90)
                counts[split] += 1
    return counts


def _random_image(rng: np.random.Generator, tint: np.ndarray, size: int) -> Image.Image:
    long_side = int(size * rng.uniform(1.0, 1.5))
    shape = (size, long_side) if rng.random() < 0.5 else (long_side, size)  # (height, width)
    coarse = np.clip(tint + rng.normal(0, 40, (6, 6, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(coarse).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)


# ----------------------------------------------------------------------------- the repository copy


def copy_repository(source: Path, dest: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files, without metrics/ and dvc.lock files,
    as a fresh git repository with one commit at `dest`."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=source,
                            capture_output=True, check=True).stdout.decode()
    for name in sorted(set(filter(None, listed.split("\0")))):
        if name.startswith("metrics/") or name.endswith("dvc.lock") or not (source / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, dest / name)
    identity = ["-c", "user.name=dry-run", "-c", "user.email=dry-run@localhost"]
    for command in (["init", "-q"], [*identity, "add", "-A"], [*identity, "commit", "-qm", "dry run"]):
        subprocess.run(["git", *command], cwd=dest, check=True, capture_output=True)
    return dest


# ----------------------------------------------------------------------------- the run


def stage_times(timed_lines: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds per stage from (time, line) pairs of DVC's output: from its "Running stage 'x'" line to
    the next one (or `end`), so each stage's time includes DVC's hashing and saving of its outputs."""
    starts = [(t, m.group(1)) for t, line in timed_lines if (m := STAGE_LINE.search(line))]
    return {name: round(following - start, 1)
            for (start, name), following in zip(starts, [t for t, _ in starts[1:]] + [end])}


def run_streaming(command: list[str], cwd: Path, env: dict,
                  log_path: Path) -> tuple[int, list[tuple[float, str]], float]:
    """Run `command`, echoing and logging its merged output; (exit code, [(seconds since start, line)], seconds)."""
    started = time.monotonic()
    timed = []
    with open(log_path, "w") as log, subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            timed.append((time.monotonic() - started, line.rstrip("\n")))
            log.write(line)
            log.flush()
            sys.stdout.write(line)
    return proc.returncode, timed, time.monotonic() - started


def dvc_command(tree: Path, settings: list[str]) -> list[str]:
    command = ["dvc", "exp", "run", "-S", PAPER_SETTINGS[0], "-S", f"data.root={tree}"]
    for setting in [*PAPER_SETTINGS[1:], *settings]:
        command += ["-S", setting]
    return command


def check_outcome(repo: Path, env: dict) -> dict:
    """What the run left: the stages DVC locked against those dvc.yaml defines, the report's summary and
    the stages that wrote "not run". A UserError naming what is missing."""
    defined = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=repo, env=env, capture_output=True,
                             text=True, check=True).stdout.split()
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"] if (repo / "dvc.lock").is_file() else {}
    missing = [name for name in defined if name not in locked]
    if missing:
        raise UserError(f"{repo / 'dvc.lock'}: stages that did not run: {', '.join(missing)}")
    report = repo / "metrics" / "report.json"
    if not report.is_file() or not (repo / "reports" / "index.html").is_file():
        raise UserError(f"{report}: the report stage left no report")
    summary = json.loads(report.read_text())
    return {"stages": defined, "verdicts": summary["counts"], "not_run_stages": summary.get("not_run_stages", {})}


def dry_run(workdir: Path, classes: int, train_per_class: int, val_per_class: int, size: int,
            settings: list[str], source: Path | None = None) -> dict:
    """The whole dry run (see the module docstring); its figures as a dict."""
    workdir.mkdir(parents=True, exist_ok=True)
    tree, repo = workdir / "imagenet", workdir / "repo"
    for path in (tree, repo):
        if path.exists():
            raise UserError(f"--workdir: {path} exists; give an empty or new folder")
    started = time.monotonic()
    counts = write_tree(tree, classes, train_per_class, val_per_class, size)
    tree_seconds = time.monotonic() - started
    copy_repository(source or repo_root(), repo)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = dvc_command(tree.resolve(), settings)
    code, timed, seconds = run_streaming(command, repo, env, workdir / "dvc_exp_run.log")
    result = {"command": " ".join(command), "classes": classes, "images": counts, "image_size": size,
              "tree_seconds": round(tree_seconds, 1), "seconds": round(seconds, 1),
              "stage_seconds": stage_times(timed, seconds), "exit_code": code, "workdir": str(workdir)}
    if code != 0:
        raise UserError(f"dry run: `{result['command']}` failed (exit {code}); log: {workdir / 'dvc_exp_run.log'}")
    return {**result, **check_outcome(repo, env)}


def print_summary(result: dict) -> None:
    print(f"\ndry run: {result['classes']} classes, {result['images']['train']} train + {result['images']['val']} val "
          f"JPEGs at {result['image_size']} px; tree written in {result['tree_seconds']} s")
    print(f"command: {result['command']}")
    for name, seconds in result["stage_seconds"].items():
        print(f"  {name:28s} {seconds:9.1f} s")
    print(f"  {'total (dvc exp run)':28s} {result['seconds']:9.1f} s")
    for stem, reason in result["not_run_stages"].items():
        print(f"not run: {stem}: {reason}")
    print("report verdicts: " + ", ".join(f"{k} {v}" for k, v in result["verdicts"].items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zfnet.pipeline.dry_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=1000, help="class folders (ImageNet: 1000)")
    parser.add_argument("--per-class", type=int, default=2, help="training JPEGs per class")
    parser.add_argument("--val-per-class", type=int, default=1, help="validation JPEGs per class")
    parser.add_argument("--size", type=int, default=256, help="the JPEGs' smallest side in pixels")
    parser.add_argument("--workdir", type=Path, default=None, help="where the tree and the repository copy go "
                        "(default: a new temporary folder, kept)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="one more `dvc exp run -S` setting (repeatable), e.g. occlusion.images=20")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--repo", type=Path, default=repo_root(),
                        help="the repository to copy (default: this checkout)")
    args = parser.parse_args(argv)
    for name in ("classes", "per_class", "val_per_class"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive count")
    if args.size < 32:
        parser.error("--size: expected at least 32 px")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zfnet-dry-run-"))
    try:
        result = dry_run(workdir, args.classes, args.per_class, args.val_per_class, args.size, args.settings,
                         args.repo)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
