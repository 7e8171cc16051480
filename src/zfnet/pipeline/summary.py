"""One model's headline numbers in one small file (`metrics/summary_<model>.json`), so that the
experiments table can be narrowed to them:

    dvc exp show --drop '.*' --keep 'Experiment|headline'

The file holds {"headline": {<model>: {name: value}}}: keys that no other metrics file has, so DVC
names the columns `headline.<model>.<name>` without a file prefix, short enough for a terminal.

Each stage writes its full metrics file; this picks the values the paper's tables and claims are
about. A metric named here that a stage did not write is an error: the summary never silently drops
a column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zfnet.errors import UserError

# metrics file stem (`{model}` filled in) -> {short name in the summary: dotted key in that file}
HEADLINE: dict[str, dict[str, str]] = {
    "train_{model}": {"top1": "val_top1_error_10crop", "top5": "val_top5_error_10crop",
                      "train_top1": "train_top1_error"},
}


def headline(metrics_dir: Path, model: str) -> dict[str, Any]:
    """{name: value} for `model`, read from the stages' metrics files under `metrics_dir`."""
    row: dict[str, Any] = {}
    for stem, keys in HEADLINE.items():
        path = metrics_dir / f"{stem.format(model=model)}.json"
        if not path.is_file():
            raise UserError(f"{path}: metrics file not found (run the stage that writes it first)")
        values = json.loads(path.read_text())
        for name, key in keys.items():
            row[name] = _lookup(values, key, path)
    return row


def _lookup(values: dict, key: str, path: Path) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"{path}: has no {key!r} (zfnet.pipeline.summary.HEADLINE expects it)")
        node = node[part]
    return node
