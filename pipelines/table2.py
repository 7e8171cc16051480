"""Stage `table2` (ablations/dvc.yaml): Table 2's single models and ensembles on the validation split.

    dvc repro ablations/dvc.yaml          # trains every run, then this
    python pipelines/table2.py [ablations.checkpoint=last]

Each run of `ablations.ensembles` scores every validation image with the 10-crop test; an ensemble
averages its members' softmax outputs. Writes `metrics/table2.json` (each entry's errors, each
member's alone, and each ensemble's gain over its best and its average member), `evidence/table2.json`
(per image: right or wrong, each run and each entry; each run's seed replicates among them), `plots/table2/`
and one W&B run. The numbers: `zfnet.studies.ensemble`.
"""

from pathlib import Path

from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.inputs import device_for, split
from zfnet.pipeline.tracking import Tracker
from zfnet.studies import ensemble
from zfnet.studies.tables import TABLE2_COLUMNS, markdown, seed_replicates, table2, table2_cells
from zfnet.viz.tables import table2_figure


def main(cfg) -> None:
    ablations.validate(cfg)
    ensembles = {name: list(members) for name, members in cfg.ablations.ensembles.items()}
    runs = list(dict.fromkeys(run for members in ensembles.values() for run in members))
    checkpoints = {run: Path(cfg.paths.outputs) / ablations.SUBDIR / "train" / run / "checkpoints" /
                   f"{cfg.ablations.checkpoint}.ckpt" for run in runs}
    missing = [str(path) for path in checkpoints.values() if not path.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: checkpoint not found ({len(missing)} of {len(runs)} runs of "
                        "ablations.ensembles missing; run `dvc repro ablations/dvc.yaml` first)")
    scores, labels = ensemble.score_runs(checkpoints, split(cfg, "val"), device_for(cfg.trainer.accelerator),
                                         num_workers=cfg.trainer.num_workers)
    result = ensemble.evaluate(scores, labels, ensembles)

    rows = table2(result.errors, ensembles)
    text = markdown(rows, TABLE2_COLUMNS)
    stage.log.info("Table 2 (error %%, ours at built-in scale beside the paper's ImageNet):\n%s", text)
    for name, gain in result.gains.items():
        stage.log.info("%s: top-1 error %.2f%% lower than its best member, %.2f%% lower than its average member",
                       name, 100 * gain["over_best_member"], 100 * gain["over_mean_member"])
    with Tracker(cfg, "table2", name="table2") as tracker:
        plots = stage.plot_dir(cfg, "table2")
        write_text(plots / "table2.md", text)
        save_figure(table2_figure(rows), plots / "table2.png")
        tracker.images({"table2/figure": plots / "table2.png"})
        tracker.table("table2/rows", *table2_cells(rows))
        tracker.summary(stage.flat_numbers(result.metrics, "table2/"))
        specs = {run: OmegaConf.to_container(cfg.ablations.runs[run], resolve=True) for run in runs}
        stage.write_evidence(cfg, "table2", {**result.evidence, "seeds": seed_replicates(specs, cfg.seed)})
        stage.write_metrics(cfg, "table2", result.metrics)


if __name__ == "__main__":
    stage.run("table2", main)
