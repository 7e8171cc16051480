"""The train stage's figures: the learning curves and the first layer's filters of one run."""

from __future__ import annotations

import torch

from zfnet.tiles import filter_mosaic
from zfnet.viz.figures import curves_figure, image_grid


def run_figures(history: list[dict], conv1_weight: torch.Tensor, key: str) -> dict:
    """{"curves": loss and error per epoch (`history`: `Classifier.history`), "conv1_filters": the filters of
    `conv1_weight` as a mosaic}: matplotlib figures of model `key`, by the name their PNG gets."""
    return {"curves": curves_figure(history, key),
            "conv1_filters": image_grid([filter_mosaic(conv1_weight)], [f"{key} conv1 filters"], ncols=1, cell=4.0)}
