"""What the report reads: every stage's metrics file (and per-unit evidence), which stages said why they did not
run, the commit the numbers came from, and the W&B runs of the pipeline (their links and the page's header).

A stage that has not run has no metrics file, or one that says so, `{"ran": false, "reason": ...}`
(`zfnet.pipeline.not_run` writes it): `load_metrics` gives None for both, `not_run_reasons` the reasons.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

from zfnet.errors import UserError
from zfnet.report.html import Header

RUN_FIELDS = ("job_type", "name", "id", "url")  # a linked W&B run, as `Header.runs` holds it


def metric_stems(cfg) -> list[str]:
    """Every metrics file the report reads, by stem: `cfg` is the pipeline config (or any object with its
    `models`, `visualize.models` and `transfer.roots`)."""
    models = list(cfg.visualize.models)
    per_model = [f"{kind}_{m}" for kind in ("visualize", "evolution", "occlusion", "correspondence", "invariance")
                 for m in models]
    return ["generate", "prepare", *(f"train_{m}" for m in cfg.models), *per_model, "architecture",
            *(f"transfer_{d}" for d in cfg.transfer.roots), "table2", "table3"]


def reason_of(metrics: dict | None) -> str | None:
    """The reason a metrics file gives for its stage not running, or None if it ran (or is absent)."""
    if isinstance(metrics, dict) and metrics.get("ran") is False:
        return str(metrics.get("reason") or "no reason given")
    return None


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON file `path`; a UserError naming it when it is not JSON (`what`: "metrics", "evidence")."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a JSON {what} file ({err})") from None


def load_metrics(folder: Path, stems: list[str], evidence: Path | None = None) -> dict[str, dict | None]:
    """Parsed metrics files; None for a file that does not exist or says {"ran": false} (its stage has not
    run). A stage's per-unit evidence (`<evidence>/<stem>.json`), where it wrote one, is under the key
    "evidence" of its metrics."""
    loaded = {}
    for name in stems:
        path = folder / f"{name}.json"
        if not path.is_file():
            loaded[name] = None
            continue
        loaded[name] = read_json(path, "metrics")
        if reason_of(loaded[name]) is not None:
            loaded[name] = None
        elif evidence is not None and (evidence / f"{name}.json").is_file():
            loaded[name]["evidence"] = read_json(evidence / f"{name}.json", "evidence")
    return loaded


def not_run_reasons(folder: Path, stems: list[str]) -> dict[str, str]:
    """{stem: reason} of the stages whose metrics file says they did not run."""
    reasons = {}
    for name in stems:
        path = folder / f"{name}.json"
        reason = reason_of(json.loads(path.read_text())) if path.is_file() else None
        if reason is not None:
            reasons[name] = reason
    return reasons


def git_commit(cwd: Path | None = None) -> str:
    """The checkout's commit (12 hex digits), "+ uncommitted changes" when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes" if dirty else "")


def run_url(run) -> str:
    """The run's page when it was logged online (offline runs have no entity until `wandb sync`)."""
    if not run.entity:
        return ""
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").replace("://api.", "://")
    return f"{base}/{run.entity}/{run.project}/runs/{run.id}"


def header(title: str, scale: str, group: str, runs: Sequence, logger_dir: Path | str,
           reasons: dict[str, str]) -> Header:
    """The page's provenance: the commit, the DVC experiment, the W&B `runs` of `group` (found in
    `<logger_dir>/wandb`; each with `job_type`, `name`, `id`, `entity`, `project`) linked, and a note per stage
    that did not run (`reasons`: `not_run_reasons`)."""
    urls = [run_url(r) for r in runs]
    return Header(
        title=title, scale=scale, commit=git_commit(), experiment=os.environ.get("DVC_EXP_NAME", ""), group=group,
        runs=[(r.job_type, r.name, r.id, url) for r, url in zip(runs, urls)],
        notes=([f"No W&B run of group {group} under {logger_dir}/wandb."] if not runs else
               [] if all(urls) else
               ["Offline runs have no page yet: `wandb sync wandb/offline-run-*` uploads them (see the README)."])
        + [f"Not run: {stem}: {reason}" for stem, reason in reasons.items()])
