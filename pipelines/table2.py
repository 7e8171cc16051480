"""Stage `table2` (ablations/dvc.yaml): Table 2's single models and ensembles on the validation split.

    dvc repro ablations/dvc.yaml          # trains every run, then this
    python pipelines/table2.py [ablations.checkpoint=last]

Each run of `ablations.ensembles` scores every validation image with the 10-crop test; an ensemble
averages its members' softmax outputs. Writes `metrics/table2.json` (each entry's errors, each
member's alone, and each ensemble's gain over its best and its average member), `evidence/table2.json`
(per image: right or wrong, each run and each entry; each run's seed replicates among them), `plots/table2/`
and one W&B run.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from tqdm.auto import tqdm

from zfnet.data.prepare import PreparedSplit
from zfnet.errors import UserError
from zfnet.io import save_figure, write_text
from zfnet.nets.training import load_trained
from zfnet.pipeline import ablations, stage
from zfnet.pipeline.inputs import device_for
from zfnet.pipeline.tracking import Tracker
from zfnet.studies.ensemble import average, ten_crop_softmax, topk_errors, topk_hits
from zfnet.studies.figures import table2_figure
from zfnet.studies.tables import TABLE2_COLUMNS, markdown, seed_replicates, table2


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
    val = PreparedSplit(Path(cfg.paths.prepared) / "val")

    scores, labels = {}, None
    for run in tqdm(runs, desc="10-crop scores", unit="model"):
        model, hparams = load_trained(checkpoints[run], device_for(cfg.trainer.accelerator))
        scores[run], run_labels = ten_crop_softmax(model, hparams["mean"], hparams["input_scale"], val, hparams["crop"],
                                                    num_workers=cfg.trainer.num_workers)
        if labels is not None and not (run_labels == labels).all():
            raise UserError(f"{checkpoints[run]}: scored the validation split in another order than the others")
        labels = run_labels
    alone = {run: topk_errors(scores[run], labels) for run in runs}
    ensembled = {name: average(scores[m] for m in members) for name, members in ensembles.items()}
    errors = {name: topk_errors(ensembled[name], labels) for name in ensembles}
    gains = {name: {"over_best_member": min(alone[m][0] for m in members) - errors[name][0],
                    "over_mean_member": sum(alone[m][0] for m in members) / len(members) - errors[name][0]}
             for name, members in ensembles.items() if len(members) > 1}

    rows = table2(errors, ensembles)
    text = markdown(rows, TABLE2_COLUMNS)
    stage.log.info("Table 2 (error %%, ours at built-in scale beside the paper's ImageNet):\n%s", text)
    for name, gain in gains.items():
        stage.log.info("%s: top-1 error %.2f%% lower than its best member, %.2f%% lower than its average member",
                       name, 100 * gain["over_best_member"], 100 * gain["over_mean_member"])

    result = {
        "entries": {name: {"members": len(ensembles[name]), "val_top1_error": errors[name][0],
                           "val_top5_error": errors[name][1]} for name in ensembles},
        "runs": {run: {"val_top1_error": top1, "val_top5_error": top5} for run, (top1, top5) in alone.items()},
        "gain_top1": gains,
        "images": len(labels),
    }
    with Tracker(cfg, "table2", name="table2") as tracker:
        plots = stage.plot_dir(cfg, "table2")
        write_text(plots / "table2.md", text)
        save_figure(table2_figure(rows), plots / "table2.png")
        tracker.images({"table2/figure": plots / "table2.png"})
        columns = ["entry", "model", "members", *(f"{c} ours" for c in TABLE2_COLUMNS),
                   *(f"{c} paper" for c in TABLE2_COLUMNS)]
        tracker.table("table2/rows", columns, [[r["entry"], r["label"], len(r["members"]),
                                                *(r["ours"][c] for c in TABLE2_COLUMNS),
                                                *(r["paper"][c] for c in TABLE2_COLUMNS)] for r in rows])
        tracker.summary(stage.flat_numbers(result, "table2/"))
        specs = {run: OmegaConf.to_container(cfg.ablations.runs[run], resolve=True) for run in runs}
        stage.write_evidence(cfg, "table2", {**per_image_evidence(scores, ensembled, ensembles, labels),
                                             "seeds": seed_replicates(specs, cfg.seed)})
        stage.write_metrics(cfg, "table2", result)


def per_image_evidence(scores: dict, ensembled: dict, ensembles: dict[str, list[str]], labels) -> dict:
    """Per validation image (in the split's order), 1 where the 10-crop test got it right: each run alone and each
    entry (its members named), so that the report can pair the entries image by image and resample the seeds."""
    def hits(entry_scores) -> dict:
        top1, top5 = topk_hits(entry_scores, labels)
        return {"top1_correct": top1.int(), "top5_correct": top5.int()}

    return {"images": len(labels), "runs": {run: hits(run_scores) for run, run_scores in scores.items()},
            "entries": {name: {"members": ensembles[name], **hits(ensembled[name])} for name in ensembles}}


if __name__ == "__main__":
    stage.run("table2", main)
