"""Stage `generate`: write the built-in procedurally generated dataset.

    python pipelines/generate.py [synthetic.num_classes=20 ...]
"""

from pathlib import Path

import numpy as np

from zfnet.data import synthetic
from zfnet.data.synthetic.samples import first_per_class, voc_scenes
from zfnet.io import atomic_path, save_figure
from zfnet.pipeline import stage
from zfnet.pipeline.config import select
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.samples import sample_sheet, voc_sample_sheet


def main(cfg) -> None:
    out_dir = Path(cfg.paths.synthetic)
    if cfg.data.name != "synthetic":
        write_placeholder(out_dir, cfg.data.name)
        stage.plot_dir(cfg, "generate")
        stage.write_metrics(cfg, "generate", {"generated": False})
        return
    options = select(cfg, "synthetic")
    spec = synthetic.SyntheticSpec(**{**options, "scale_range": tuple(options["scale_range"]),
                                      "voc_scale_range": tuple(options["voc_scale_range"])})
    with Tracker(cfg, "generate") as tracker:
        summary = synthetic.generate(spec, out_dir, workers=cfg.workers)
        stage.log.info("generated %s images in %.1f s (%.0f images/s), %.1f MB",
                       summary["images"], summary["seconds"], summary["images_per_s"], summary["bytes"] / 1e6)
        sheet = stage.plot_dir(cfg, "generate") / "samples.png"
        save_figure(sample_sheet(*first_per_class(out_dir / "imagenet" / "train")), sheet)
        tracker.images({"generate/samples": sheet})
        if summary["counts"].get("voc2012/train"):
            voc_sheet = sheet.with_name("voc_samples.png")
            save_figure(voc_sample_sheet(voc_scenes(out_dir)), voc_sheet)
            tracker.images({"generate/voc_samples": voc_sheet})
        tracker.summary({f"generate/{k}": v for k, v in summary.items() if np.isscalar(v)})
        stage.write_metrics(cfg, "generate", deterministic_part(summary))


def deterministic_part(summary: dict) -> dict:
    """What DVC tracks as metrics: counts and sizes, not timings (those go to the log and W&B)."""
    return {k: v for k, v in summary.items() if k not in ("seconds", "images_per_s")}


def write_placeholder(out_dir: Path, data_name: str) -> None:
    """A valid, tiny output so the pipeline's shape does not depend on the dataset."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        (tmp / "NOT_GENERATED.txt").write_text(
            f"data.name={data_name}: the built-in dataset is not used. Stages still pointed at it (correspondence.root "
            "null, transfer.roots.<dataset> left at their defaults) write \"not run\" (README: Paper scale).\n")


if __name__ == "__main__":
    stage.run("generate", main)
