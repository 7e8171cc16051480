"""Stage `table3` (ablations/dvc.yaml): Table 3 from the finished runs of `ablations.runs`.

    dvc repro ablations/dvc.yaml          # trains every run, then this
    python pipelines/table3.py            # the table from whichever runs have finished

Writes `metrics/table3.json` (ours and the paper's errors per row, in percent), `evidence/table3.json`
(the per-image evidence of the runs that wrote one, and each run's seed replicates), `plots/table3/`
(the figure and the table as Markdown) and one W&B run with both. A row whose run has not
finished shows as "-" (not run).
"""

import json
from pathlib import Path

from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.report.inputs import read_json
from zfnet.studies.tables import TABLE3_COLUMNS, gathered_evidence, markdown, table3, table3_cells
from zfnet.viz.tables import table3_figure


def main(cfg) -> None:
    ablations.validate(cfg)
    metrics_dir, evidence_dir = Path(cfg.paths.metrics) / ablations.SUBDIR, Path(cfg.paths.evidence) / ablations.SUBDIR
    finished = {run: json.loads(path.read_text()) for run in ablations.run_names(cfg)
                if (path := metrics_dir / f"train_{run}.json").is_file()}
    if not finished:
        raise UserError(f"{metrics_dir}: no finished run of ablations.runs (run `dvc repro ablations/dvc.yaml`, "
                        "or `python pipelines/train.py ablation=<run>`)")
    evidence = {run: read_json(path, "evidence") for run in finished
                if (path := evidence_dir / f"train_{run}.json").is_file()}
    rows = table3(finished)
    missing = [row["run"] for row in rows if row["ours"]["val_top1"] is None]
    if missing:
        stage.log.info("table3: not run yet: %s", ", ".join(missing))
    text = markdown(rows, TABLE3_COLUMNS)
    stage.log.info("Table 3 (error %%, ours at built-in scale beside the paper's ImageNet):\n%s", text)

    with Tracker(cfg, "table3", name="table3") as tracker:
        plots = stage.plot_dir(cfg, "table3")
        write_text(plots / "table3.md", text)
        save_figure(table3_figure(rows), plots / "table3.png")
        tracker.images({"table3/figure": plots / "table3.png"})
        tracker.table("table3/rows", *table3_cells(rows))
        result = {row["run"]: {"ours": row["ours"], "paper": row["paper"]} for row in rows}
        tracker.summary(stage.flat_numbers(result, "table3/"))
        specs = {run: OmegaConf.to_container(cfg.ablations.runs[run], resolve=True) for run in evidence}
        stage.write_evidence(cfg, "table3", gathered_evidence(evidence, specs, cfg.seed))
        stage.write_metrics(cfg, "table3", {"rows": result, "not_run": missing})


if __name__ == "__main__":
    stage.run("table3", main)
