"""Stage `occlusion@<model>`: occlusion sensitivity over the validation set (paper Fig. 7).

    python pipelines/occlusion.py model=alexnet [occlusion.patch=24 occlusion.stride=4 occlusion.images=100]

What is measured, and the untrained control: `zfnet.experiments.occlusion`. Object boxes and masks come from
the dataset's metadata.jsonl (none: no pointing game or object/background drops); panel (c)'s other images
from the visualize stage's top9.pt (none: this image's projection only).

Outputs: plots/occlusion_<model>/fig7_<class>.png (the five panels for `figure_per_class` images of
each class) and measures.png; outputs/occlusion/<model>/maps.pt (every map); metrics/occlusion_<model>.json;
evidence/occlusion_<model>.json (per image; the control's under "untrained"); W&B: the figures and a per-image table.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zfnet.data.annotations import read_annotations
from zfnet.data.images import image_set
from zfnet.experiments import occlusion
from zfnet.io import atomic_path
from zfnet.pipeline import inputs, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.probes.top9 import TopK
from zfnet.viz.occlusion import stage_figures


def main(cfg) -> None:
    key = cfg.model
    net, split = inputs.trained(cfg), inputs.split(cfg, "val")
    data = inputs.images(cfg, split, net.hparams, cfg.occlusion.images)
    notes = annotations(cfg, split, data.indices, net.hparams["crop"])
    result = occlusion.run(net.model, data.images, data.labels, cfg.occlusion, notes=notes,
                           untrained=inputs.untrained(cfg, net), seed=cfg.seed,
                           normalize_down=cfg.visualize.normalize_down, others=top9_of_others(cfg, split, net.hparams))
    with atomic_path(Path(cfg.paths.outputs) / "occlusion" / key / "maps.pt") as tmp:
        torch.save(result.maps(), tmp)

    figures = stage.save_figures(cfg, f"occlusion_{key}", stage_figures(result, split.classes, key), f"occlusion/{key}")
    with Tracker(cfg, "occlusion", name=f"occlusion-{key}") as tracker:
        tracker.images(figures)
        tracker.table(f"occlusion/{key}/images", occlusion.TABLE_COLUMNS, occlusion.table_rows(result, split.classes))
        tracker.summary({f"occlusion/{key}/{name}": value
                         for name, value in stage.flat_numbers({**result.metrics, **result.speed()}).items()})
        stage.write_evidence(cfg, f"occlusion_{key}", result.evidence)
        stage.write_metrics(cfg, f"occlusion_{key}", result.metrics)


def annotations(cfg, split, indices: list[int], crop: int):
    """Per image its Annotation (boxes, mask) when the dataset has metadata.jsonl, else None."""
    root = Path(cfg.data.root)
    if not (root / "metadata.jsonl").is_file():
        stage.log.warning("%s has no metadata.jsonl: no object boxes or masks, so no pointing game or "
                          "object/background drops (the maps and figures are still made)", root)
        return None
    return read_annotations(root, [f"{cfg.data.val_dir}/{split.files[i]}" for i in indices], split.size, crop)


def top9_of_others(cfg, split, hparams):
    """(the visualize stage's conv5 top-9, every validation image), or None when that stage has not run."""
    path = Path(cfg.paths.outputs) / "visualize" / cfg.model / "top9.pt"
    if not path.is_file():
        stage.log.warning("%s not found (run visualize@%s): panel (c) shows this image's projection only",
                          path, cfg.model)
        return None
    conv5 = torch.load(path, weights_only=True)["conv5"]
    return TopK(conv5["values"], conv5["image_index"], conv5["y"], conv5["x"]), image_set(split, hparams)


if __name__ == "__main__":
    stage.run("occlusion", main)
