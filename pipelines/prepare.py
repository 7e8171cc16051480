"""Stage `prepare`: paper Sec. 3 preprocessing of an ImageFolder tree into raw or JPEG shards.

    python pipelines/prepare.py [data=imagenet data.root=/datasets/imagenet] [prepare.size=256]
    python pipelines/prepare.py prepare.codec=jpeg prepare.quality=90   # ~1/10 the disk of raw
"""

from pathlib import Path

import numpy as np

from zfnet.data.prepare import PreparedSplit, prepare_split
from zfnet.errors import UserError
from zfnet.io import save_figure
from zfnet.pipeline import stage
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.figures import image_grid


def main(cfg) -> None:
    root = Path(cfg.data.root)
    if not root.is_dir():
        raise UserError(f"data.root: {root} is not a folder (expected {cfg.data.train_dir}/ and {cfg.data.val_dir}/ inside)")
    out_dir = Path(cfg.paths.prepared)
    options = dict(size=cfg.prepare.size, shard_size=cfg.prepare.shard_size, codec=cfg.prepare.codec,
                   quality=cfg.prepare.quality, workers=cfg.workers)
    with Tracker(cfg, "prepare") as tracker:
        train = prepare_split(root / cfg.data.train_dir, out_dir / "train", compute_mean=True, **options)
        classes = PreparedSplit(out_dir / "train").classes
        val = prepare_split(root / cfg.data.val_dir, out_dir / "val", classes=classes, compute_mean=False, **options)
        summaries = {"train": train, "val": val}
        for split, summary in summaries.items():
            stage.log.info("%s: %d images in %.1f s (%.0f images/s), %d skipped", split, summary["num_images"],
                           summary["seconds"], summary["images_per_s"], len(summary["skipped"]))
        skipped = [[split, path, reason] for split, s in summaries.items() for path, reason in s["skipped"]]
        if skipped:
            tracker.table("prepare/skipped", ["split", "file", "reason"], skipped)
        figures = draw_figures(cfg, out_dir)
        tracker.images({f"prepare/{name}": path for name, path in figures.items()})
        metrics = {split: {"images": s["num_images"], "skipped": len(s["skipped"]), "bytes": s["bytes"]}
                   for split, s in summaries.items()}
        metrics.update(classes=len(classes), size=cfg.prepare.size)
        tracker.summary({f"prepare/{split}_images_per_s": s["images_per_s"] for split, s in summaries.items()})
        tracker.summary({"prepare/codec": cfg.prepare.codec, "prepare/quality": cfg.prepare.quality,
                         **{f"prepare/{split}_bytes_per_image": s["bytes"] / max(s["num_images"], 1)
                            for split, s in summaries.items()}})
        tracker.summary(metrics)
        stage.write_metrics(cfg, "prepare", metrics)


def draw_figures(cfg, out_dir: Path) -> dict[str, Path]:
    plots = stage.plot_dir(cfg, "prepare")
    train = PreparedSplit(out_dir / "train")
    mean = np.load(out_dir / "train" / "mean.npy")
    save_figure(image_grid([mean / 255.0], ["per-pixel mean"], ncols=1, cell=3.0), plots / "mean.png")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), size=min(16, len(train)), replace=False)
    images = [train[int(i)][0] for i in picks]
    titles = [train.classes[int(train[int(i)][1])] for i in picks]
    save_figure(image_grid(images, titles, ncols=8, title="Prepared training crops"), plots / "samples.png")
    return {"mean": plots / "mean.png", "samples": plots / "samples.png"}


if __name__ == "__main__":
    stage.run("prepare", main)
