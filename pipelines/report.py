"""Stage `report`: the paper's figures and tables beside ours, as one HTML page and a W&B report.

    dvc repro                              # the whole pipeline, this stage last
    python pipelines/report.py             # the report from whatever has run
    WANDB_MODE=online python pipelines/report.py report.entity=<you>   # also publishes the W&B report

Reads every stage's `metrics/<stage>.json` (and Tables 2 and 3 from the ablations pipeline when they
exist), the figures under `plots/`, and the pipeline's W&B runs from their local files. Writes
`reports/index.html` (self-contained: images embedded, no scripts, no network), `reports/wandb_report.json`
(the W&B report's spec, validated offline), `reports/wandb_runs.json` (the group's runs, and any panel key
they did not log) and `metrics/report.json` (every claim's verdict). A stage
that has not run shows as "not run"; a number that is missing or NaN makes its verdict "cannot decide".
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.io import write_json, write_text
from zfnet.pipeline import not_run, stage
from zfnet.pipeline.tracking import Tracker, pipeline_group, wandb_mode
from zfnet.pipeline.wandb_runs import find_runs
from zfnet.report import claims, html, wandb_report
from zfnet.report.sections import Results, build_sections, scale
from zfnet.report.spec import VERDICTS


def metric_stems(cfg) -> list[str]:
    """Every metrics file the report reads, by stem."""
    models = list(cfg.visualize.models)
    per_model = [f"{kind}_{m}" for kind in ("visualize", "evolution", "occlusion", "correspondence", "invariance")
                 for m in models]
    return ["generate", "prepare", *(f"train_{m}" for m in cfg.models), *per_model, "architecture",
            *(f"transfer_{d}" for d in cfg.transfer.roots), "table2", "table3"]


def load_metrics(folder: Path, stems: list[str], evidence: Path | None = None) -> dict[str, dict | None]:
    """Parsed metrics files; None for a file that does not exist or says {"ran": false} (its stage has not
    run: `zfnet.pipeline.not_run`). A stage's per-unit evidence (`<evidence>/<stem>.json`), where it wrote
    one, is under the key "evidence" of its metrics."""
    loaded = {}
    for name in stems:
        path = folder / f"{name}.json"
        if not path.is_file():
            loaded[name] = None
            continue
        loaded[name] = _read_json(path, "metrics")
        if not_run.reason_of(loaded[name]) is not None:
            loaded[name] = None
        elif evidence is not None and (evidence / f"{name}.json").is_file():
            loaded[name]["evidence"] = _read_json(evidence / f"{name}.json", "evidence")
    return loaded


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a JSON {what} file ({err})") from None


def not_run_reasons(folder: Path, stems: list[str]) -> dict[str, str]:
    """{stem: reason} of the stages whose metrics file says they did not run."""
    reasons = {}
    for name in stems:
        path = folder / f"{name}.json"
        reason = not_run.reason_of(json.loads(path.read_text())) if path.is_file() else None
        if reason is not None:
            reasons[name] = reason
    return reasons


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes" if dirty else "")


def main(cfg) -> None:
    entity = cfg.report.entity or cfg.logger.entity
    publish = cfg.report.publish == "auto" and wandb_mode(cfg) == "online"
    if publish and not entity:  # the library would look the entity up online: never guess where to publish
        stage.log.warning("report: not publishing the W&B report: set report.entity (or logger.entity) to your "
                          "W&B user or team; its spec is still written")
        publish = False
    results = Results(load_metrics(Path(cfg.paths.metrics), metric_stems(cfg), Path(cfg.paths.evidence)), Path(cfg.paths.plots),
                      OmegaConf.to_container(cfg, resolve=True), claims.paper_size_parameters())
    reasons = not_run_reasons(Path(cfg.paths.metrics), metric_stems(cfg))
    sections = build_sections(results)

    group = pipeline_group(cfg)
    runs = find_runs(Path(cfg.logger.dir) / "wandb", group)
    logged: dict[str, set[str]] = {}
    for run in runs:
        logged.setdefault(run.job_type, set()).update(run.logged())
    for section in sections:  # panels over stages with no run in this group, or with no key, would stay empty
        section.panels = [p for p in section.panels if p.job_type in logged and p.keys]
    missing = wandb_report.missing_keys(sections, logged)
    if missing:
        stage.log.warning("report: %d panel keys were not logged by their stage's runs: %s", len(missing), ", ".join(missing))

    urls = [run_url(r) for r in runs]
    header = html.Header(
        title=cfg.report.title, scale=scale(results), commit=git_commit(),
        experiment=os.environ.get("DVC_EXP_NAME", ""), group=group,
        runs=[(r.job_type, r.name, r.id, url) for r, url in zip(runs, urls)],
        notes=([f"No W&B run of group {group} under {cfg.logger.dir}/wandb."] if not runs else
               [] if all(urls) else
               ["Offline runs have no page yet: `wandb sync wandb/offline-run-*` uploads them (see the README)."])
        + [f"Not run: {stem}: {reason}" for stem, reason in reasons.items()])
    page = html.render(sections, header)
    report = wandb_report.build(sections, entity=entity or "offline", project=cfg.logger.project, group=group,
                                title=cfg.report.title, description=f"{header.scale}. Commit {header.commit}.")
    spec = wandb_report.spec(report)
    wandb_report.validate(spec)

    out = Path(cfg.report.dir)  # written once everything is built: a failure above leaves no report
    write_text(out / "index.html", page)
    write_json(out / "wandb_report.json", spec)
    write_json(out / "wandb_runs.json", {  # what this machine's W&B folder holds: not a (deterministic) metric
        "group": group, "missing_keys": missing,
        "runs": [{"job_type": r.job_type, "name": r.name, "id": r.id, "url": url} for r, url in zip(runs, urls)]})

    verdicts = [{"section": s.id, **asdict(v)} for s in sections for v in s.verdicts]
    counts = Counter(v["verdict"] for v in verdicts)
    summary = {"counts": {k: counts.get(k, 0) for k in VERDICTS}, "claims": verdicts,
               "not_run_sections": [s.id for s in sections if s.status != "ran"]}
    if reasons:  # stages that said why they did not run (zfnet.pipeline.not_run)
        summary["not_run_stages"] = reasons
    stage.log.info("report: %s; %s", ", ".join(f"{k} {n}" for k, n in summary["counts"].items()), out / "index.html")

    with Tracker(cfg, "report", name="report") as tracker:
        tracker.table("report/claims", ["section", "claim", "subject", "verdict", "evidence", "rule"],
                      [[v["section"], v["claim"], v["subject"], v["verdict"], v["evidence"], v["rule"]] for v in verdicts])
        tracker.summary({f"report/{k.replace(' ', '_')}": n for k, n in summary["counts"].items()})
    if publish:
        print(f"W&B report: {wandb_report.save(report)}")
    stage.write_metrics(cfg, "report", summary)


def run_url(run) -> str:
    """The run's page when it was logged online (offline runs have no entity until `wandb sync`)."""
    if not run.entity:
        return ""
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").replace("://api.", "://")
    return f"{base}/{run.entity}/{run.project}/runs/{run.id}"


if __name__ == "__main__":
    stage.run("report", main)
