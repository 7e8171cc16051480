"""Stage `report`: the paper's figures and tables beside ours, as one HTML page and a W&B report.

    dvc repro                              # the whole pipeline, this stage last
    python pipelines/report.py             # the report from whatever has run
    WANDB_MODE=online python pipelines/report.py report.entity=<you>   # also publishes the W&B report

Reads every stage's `metrics/<stage>.json` and evidence (`zfnet.report.inputs`; Tables 2 and 3 from the ablations
pipeline when they exist), the figures under `plots/`, and the pipeline's W&B runs from their local files. Writes
`reports/index.html` (self-contained: images embedded, no scripts, no network), `reports/wandb_report.json`
(the W&B report's spec, validated offline), `reports/wandb_runs.json` (the group's runs, and any panel key
they did not log) and `metrics/report.json` (every claim's verdict). A stage
that has not run shows as "not run"; a number that is missing or NaN makes its verdict "cannot decide".
"""

from pathlib import Path

from omegaconf import OmegaConf

from zfnet.io import write_json, write_text
from zfnet.pipeline import stage
from zfnet.pipeline.tracking import Tracker, pipeline_group, wandb_mode
from zfnet.pipeline.wandb_runs import find_runs
from zfnet.report import claims, html, inputs, wandb_report
from zfnet.report.sections import Results, build_sections, scale
from zfnet.report.spec import verdict_summary

CLAIM_COLUMNS = ["section", "claim", "subject", "verdict", "evidence", "rule"]  # the W&B table of the verdicts


def main(cfg) -> None:
    entity = cfg.report.entity or cfg.logger.entity
    publish = cfg.report.publish == "auto" and wandb_mode(cfg) == "online"
    if publish and not entity:  # the library would look the entity up online: never guess where to publish
        stage.log.warning("report: not publishing the W&B report: set report.entity (or logger.entity) to your "
                          "W&B user or team; its spec is still written")
        publish = False
    metrics, stems = Path(cfg.paths.metrics), inputs.metric_stems(cfg)
    results = Results(inputs.load_metrics(metrics, stems, Path(cfg.paths.evidence)), Path(cfg.paths.plots),
                      OmegaConf.to_container(cfg, resolve=True), claims.paper_size_parameters())
    reasons = inputs.not_run_reasons(metrics, stems)
    sections = build_sections(results)

    group = pipeline_group(cfg)
    runs = find_runs(Path(cfg.logger.dir) / "wandb", group)
    missing = wandb_report.keep_logged_panels(sections, runs)
    if missing:
        stage.log.warning("report: %d panel keys were not logged by their stage's runs: %s", len(missing),
                          ", ".join(missing))
    header = inputs.header(cfg.report.title, scale(results), group, runs, cfg.logger.dir, reasons)
    page = html.render(sections, header)
    report = wandb_report.build(sections, entity=entity or "offline", project=cfg.logger.project, group=group,
                                title=cfg.report.title, description=f"{header.scale}. Commit {header.commit}.")
    spec = wandb_report.spec(report)
    wandb_report.validate(spec)

    out = Path(cfg.report.dir)  # written once everything is built: a failure above leaves no report
    write_text(out / "index.html", page)
    write_json(out / "wandb_report.json", spec)
    write_json(out / "wandb_runs.json", {  # what this machine's W&B folder holds: not a (deterministic) metric
        "group": group, "missing_keys": missing, "runs": [dict(zip(inputs.RUN_FIELDS, run)) for run in header.runs]})

    summary = verdict_summary(sections, reasons)
    stage.log.info("report: %s; %s", ", ".join(f"{k} {n}" for k, n in summary["counts"].items()), out / "index.html")
    with Tracker(cfg, "report", name="report") as tracker:
        tracker.table("report/claims", CLAIM_COLUMNS, [[v[c] for c in CLAIM_COLUMNS] for v in summary["claims"]])
        tracker.summary({f"report/{k.replace(' ', '_')}": n for k, n in summary["counts"].items()})
    if publish:
        print(f"W&B report: {wandb_report.save(report)}")
    stage.write_metrics(cfg, "report", summary)


if __name__ == "__main__":
    stage.run("report", main)
