"""Stage `invariance@<model>`: translation, scale and rotation invariance (paper Fig. 5), over every class.

    python pipelines/invariance.py model=alexnet [invariance.images=null invariance.layer1=relu1]

What is measured and how: `zfnet.experiments.invariance`. Outputs: plots/invariance_<model>/ (fig5.png,
classes_<transform>.png, rerendered.png); metrics/ and evidence/invariance_<model>.json; W&B: figures, class table.
"""

from __future__ import annotations

import json
from pathlib import Path

from zfnet.data.annotations import read_metadata
from zfnet.data.images import subset
from zfnet.errors import UserError
from zfnet.experiments import invariance as E
from zfnet.pipeline import inputs, stage
from zfnet.pipeline.tracking import Tracker
from zfnet.viz.invariance import figures


def main(cfg) -> None:
    key, inv = cfg.model, cfg.invariance
    net, split = inputs.trained(cfg), inputs.split(cfg, "val")
    result = E.run(net.model, split, subset(len(split), inv.images, cfg.seed), net.hparams, inv, seed=cfg.seed,
                   untrained=inputs.untrained(cfg, net), class_info=class_info(cfg), scenes=scenes(cfg),
                   device=net.device)
    saved = stage.save_figures(cfg, f"invariance_{key}", figures(result, key), f"invariance/{key}")
    with Tracker(cfg, "invariance", name=f"invariance-{key}") as tracker:
        tracker.images(saved)
        tracker.table(f"invariance/{key}/classes", E.TABLE_COLUMNS, E.table_rows(result))
        tracker.summary({f"invariance/{key}/{name}": value
                         for name, value in stage.flat_numbers({**result.metrics, **result.speed}).items()})
        stage.write_evidence(cfg, f"invariance_{key}", result.evidence)
        stage.write_metrics(cfg, f"invariance_{key}", result.metrics)


def class_info(cfg) -> dict[str, dict] | None:
    """{class: {family, rot_symmetric, symmetry_angle}} from `invariance.classes_file` (null: the built-in
    data's classes.json), or None (with a warning) when there is none."""
    path = cfg.invariance.classes_file
    if path is None and cfg.data.name == "synthetic":
        path = Path(cfg.paths.synthetic) / "classes.json"
    if path is None or not Path(path).is_file():
        stage.log.warning("no classes file (%s): no class families or symmetries, so claim (iii) is null", path)
        return None
    try:
        return dict(json.loads(Path(path).read_text())["classes"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"invariance.classes_file: {path} is not a classes.json with a 'classes' mapping") from err


def scenes(cfg) -> E.Scenes | None:
    """What re-rendering the built-in data's scenes needs, or None when `rerender_images` is 0 or the data is not
    the built-in set."""
    spec_file = Path(cfg.paths.synthetic) / "classes.json"
    if not cfg.invariance.rerender_images or cfg.data.name != "synthetic" or not spec_file.is_file():
        return None
    return E.Scenes.from_json(json.loads(spec_file.read_text())["spec"],
                              read_metadata(Path(cfg.data.root) / "metadata.jsonl"), cfg.data.val_dir)


if __name__ == "__main__":
    stage.run("invariance", main)
