"""Stage `correspondence@<model>`: is an object part encoded the same way across images? (paper Sec. 4.3,
Table 1, Fig. 8; the images: `zfnet.experiments.correspondence_images`, the measure: `zfnet.experiments.correspondence`)

    python pipelines/correspondence.py model=zfnet [correspondence.layer5=pool5] [correspondence.draws=1000]
    python pipelines/correspondence.py model=zfnet correspondence.root=/data/faces correspondence.split=null \\
        correspondence.max_rotation=null        # a folder of images + metadata.jsonl in the same format

Outputs: metrics/correspondence_<model>.json; evidence/correspondence_<model>.json (per class, draw and pair of
images); plots/correspondence_<model>/{table1,fig8}.png; W&B: both figures and a table of every number beside the
paper's. With `data.name` other than synthetic (experiment=paper) and `root` null, the built-in faces are not
generated: the stage writes {"ran": false, "reason"} as its metrics and a NOT_RUN.txt in its plot folder
(`zfnet.pipeline.not_run`), and the report shows Table 1 as not run.
"""

from __future__ import annotations

import time
from pathlib import Path

from zfnet.experiments.correspondence import TABLE_COLUMNS, log_summary, run
from zfnet.experiments.correspondence_images import load_faces
from zfnet.pipeline import inputs, not_run, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.correspondence import fig8_figure, table1_figure


def main(cfg) -> None:
    key, corr = cfg.model, cfg.correspondence
    started = time.perf_counter()
    root = Path(corr.root or Path(cfg.paths.synthetic) / "imagenet")
    reason = not_run.builtin_reason(cfg, root, "correspondence.root",
                                    "a folder of images with part boxes in a metadata.jsonl")
    if reason:
        not_run.write(cfg, f"correspondence_{key}", reason, plots=[f"correspondence_{key}"], evidence=True)
        return
    net = inputs.trained(cfg, key)
    notes, images = load_faces(root, corr, net.hparams)
    result = run(net.model, notes, images, corr, seed=cfg.seed, untrained=inputs.untrained(cfg, net),
                 batch_size=cfg.visualize.batch_size, mean=net.hparams["mean"],
                 input_scale=float(net.hparams["input_scale"]))
    seconds = time.perf_counter() - started
    log_summary(key, result.metrics, seconds)

    paths = stage.save_figures(cfg, f"correspondence_{key}",
                               {"table1": table1_figure(result, key), "fig8": fig8_figure(result, key)},
                               f"correspondence/{key}")
    with Tracker(cfg, "correspondence", name=f"correspondence-{key}") as tracker:
        tracker.images(paths)
        tracker.table(f"correspondence/{key}/table1", TABLE_COLUMNS, result.table_rows())
        tracker.summary({f"correspondence/{key}/seconds": seconds,
                         **{f"correspondence/{key}/average/{o}/{layer}": v["mean"]
                            for o, row in result.metrics["average"]["table"].items() for layer, v in row.items()}})
        stage.write_evidence(cfg, f"correspondence_{key}", result.evidence)
        stage.write_metrics(cfg, f"correspondence_{key}", result.metrics)


if __name__ == "__main__":
    stage.run("correspondence", main)
