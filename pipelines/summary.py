"""Stage `summary@<model>`: one model's headline metrics in `metrics/summary_<model>.json`.

    python pipelines/summary.py model=zfnet
    dvc exp show --drop '.*' --keep 'Experiment|headline'    # the experiments table, narrowed to them

No W&B run: every value here was logged by the stage that measured it.
"""

from __future__ import annotations

from pathlib import Path

from zfnet.pipeline import stage
from zfnet.pipeline.summary import headline


def main(cfg) -> None:
    row = headline(Path(cfg.paths.metrics), cfg.model)
    stage.write_metrics(cfg, f"summary_{cfg.model}", {"headline": {cfg.model: row}})
    stage.log.info("%s headline: %s", cfg.model, ", ".join(f"{k} {_shown(v)}" for k, v in row.items()))


def _shown(value) -> str:
    """A headline value for the log: null (an untrained run's train error: no epoch trained) as n/a."""
    return "n/a" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    stage.run("summary", main)
