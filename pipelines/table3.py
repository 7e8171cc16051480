"""Stage `table3` (ablations/dvc.yaml): Table 3 from the finished runs of `ablations.runs`.

    dvc repro ablations/dvc.yaml          # trains every run, then this
    python pipelines/table3.py            # the table from whichever runs have finished

Writes `metrics/table3.json` (ours and the paper's errors per row, in percent), `evidence/table3.json`
(the per-image evidence of the runs that wrote one, and each run's seed replicates), `plots/table3/`
(the figure and the table as Markdown) and one W&B run with both. A row whose run has not
finished shows as "-" (not run).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.studies.figures import table3_figure
from zfnet.studies.tables import TABLE3_COLUMNS, markdown, seed_replicates, table3


def main(cfg) -> None:
    ablations.validate(cfg)
    metrics_dir = Path(cfg.paths.metrics) / ablations.SUBDIR
    finished = {run: json.loads(path.read_text()) for run in ablations.run_names(cfg)
                if (path := metrics_dir / f"train_{run}.json").is_file()}
    if not finished:
        raise UserError(f"{metrics_dir}: no finished run of ablations.runs (run `dvc repro ablations/dvc.yaml`, "
                        "or `python pipelines/train.py ablation=<run>`)")
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
        columns = ["run", "model", *(f"{c} ours" for c in TABLE3_COLUMNS), *(f"{c} paper" for c in TABLE3_COLUMNS)]
        tracker.table("table3/rows", columns, [[r["run"], r["label"], *(r["ours"][c] for c in TABLE3_COLUMNS),
                                                *(r["paper"][c] for c in TABLE3_COLUMNS)] for r in rows])
        result = {row["run"]: {"ours": row["ours"], "paper": row["paper"]} for row in rows}
        tracker.summary(stage.flat_numbers(result, "table3/"))
        stage.write_evidence(cfg, "table3", gathered_evidence(cfg, list(finished)))
        stage.write_metrics(cfg, "table3", {"rows": result, "not_run": missing})


def gathered_evidence(cfg, finished: list[str]) -> dict:
    """The per-image evidence (`evidence/ablations/train_<run>.json`) of the finished runs that wrote one, and each
    such run's seed replicates among them (the report resamples the seeds of a row: Table 2's 5 ZF nets)."""
    folder = Path(cfg.paths.evidence) / ablations.SUBDIR
    runs = {}
    for run in finished:
        path = folder / f"train_{run}.json"
        if path.is_file():
            try:
                runs[run] = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise UserError(f"{path}: not a JSON evidence file ({err})") from None
    specs = {run: OmegaConf.to_container(cfg.ablations.runs[run], resolve=True) for run in runs}
    return {"runs": runs, "seeds": seed_replicates(specs, cfg.seed)}


if __name__ == "__main__":
    stage.run("table3", main)
