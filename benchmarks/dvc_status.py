"""Benchmark of DVC on a large dataset tree: a directory dependency against the manifest stage, run by hand.

    python benchmarks/dvc_status.py                         # 200,000 files (ImageNet has 1.33M)
    python benchmarks/dvc_status.py --files 200 --repeats 1  # tiny: a smoke run

Writes a tree of `--files` empty files (`train/<class>/<n>.JPEG`, `--per-folder` per class folder) in a
temporary folder outside two fresh DVC repositories, each holding one `prepare`-like stage:
  * "directory": the stage depends on the tree itself (what dvc.yaml did before: `${data.root}`);
  * "manifest": an always-changed `manifest` stage lists the tree (`zfnet.data.manifest`: path, size and
    mtime per file) into a small file, and the stage depends on that file (what dvc.yaml does now).
After one `dvc repro` in each (timed: the directory arm hashes every file), it times, alternating the arms,
`--repeats` times each: `dvc status`, and a no-op `dvc repro` (the manifest arm runs its walk there).
Prints the best time of each and the ratios directory / manifest; `--json PATH` writes them. Times
include DVC's own start-up (about a second), which both arms pay.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zfnet.data import manifest

MANIFEST_SCRIPT = """import sys
from pathlib import Path
from zfnet.data import manifest
Path("manifest").mkdir(exist_ok=True)
Path("manifest/train.tsv").write_text(manifest.render(manifest.scan(sys.argv[1])))
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000, help="files in the tree (default 200,000)")
    parser.add_argument("--per-folder", type=int, default=1000, help="files per class folder (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command per arm; best kept")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    args = parser.parse_args(argv)
    for name in ("files", "per_folder", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def write_tree(root: Path, files: int, per_folder: int) -> None:
    for n in range(files):
        folder = root / "train" / f"n{n // per_folder:08d}"
        if n % per_folder == 0:
            folder.mkdir(parents=True)
        (folder / f"{n}.JPEG").touch()


def dvc_env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def make_repo(path: Path, stages: dict) -> Path:
    path.mkdir(parents=True)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(command, cwd=path, check=True, capture_output=True, env=dvc_env())
    (path / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=1))  # JSON is YAML
    (path / "write_manifest.py").write_text(MANIFEST_SCRIPT)
    return path


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=dvc_env())
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows while a long run goes on
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dvc_status_"))
    tree = work / "tree"
    started = time.perf_counter()
    write_tree(tree, args.files, args.per_folder)
    print(f"tree: {args.files} files in {-(-args.files // args.per_folder)} folders, written in "
          f"{time.perf_counter() - started:.1f} s ({tree})")
    started = time.perf_counter()
    listed = manifest.scan(tree / "train")
    scan_seconds = time.perf_counter() - started
    print(f"manifest walk alone: {len(listed)} files in {scan_seconds:.2f} s")

    out = {"cmd": "echo done > out.txt", "outs": ["out.txt"]}
    arms = {
        "directory": make_repo(work / "directory", {"prepare": {**out, "deps": [str(tree / "train")]}}),
        "manifest": make_repo(work / "manifest", {
            "manifest": {"cmd": f"{sys.executable} write_manifest.py {tree / 'train'}", "always_changed": True,
                         "deps": ["write_manifest.py"], "outs": [{"manifest": {"cache": False}}]},
            "prepare": {**out, "deps": ["manifest/train.tsv"]}}),
    }
    first = {name: timed(["dvc", "repro"], repo) for name, repo in arms.items()}
    for name, seconds in first.items():
        print(f"first dvc repro, {name} dependency: {seconds:.2f} s")
    best = {command: {name: float("inf") for name in arms} for command in ("status", "repro")}
    for _ in range(args.repeats):
        for command in best:
            for name, repo in arms.items():
                best[command][name] = min(best[command][name], timed(["dvc", command], repo))
    for command, times in best.items():
        print(f"dvc {command}: directory {times['directory']:.2f} s, manifest {times['manifest']:.2f} s")
    ratios = {"status": best["status"]["directory"] / best["status"]["manifest"],
              "repro": best["repro"]["directory"] / best["repro"]["manifest"],
              "first_repro": first["directory"] / first["manifest"]}
    print(f"dvc status, directory / manifest: {ratios['status']:.2f}")
    print(f"no-op dvc repro, directory / manifest: {ratios['repro']:.2f}")
    print(f"first dvc repro, directory / manifest: {ratios['first_repro']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"files": args.files, "per_folder": args.per_folder, "repeats": args.repeats,
                                         "scan_seconds": scan_seconds, "first_repro_seconds": first,
                                         "best_seconds": best, "ratios": ratios}, indent=2) + "\n")


if __name__ == "__main__":
    main()
