"""Fig. 4: the strongest projection of each chosen map at each training snapshot, and how far each layer's
weights still are from the last snapshot's (stage `evolution`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zfnet.experiments.evolution import EvolutionResult
from zfnet.viz.figures import plt


def evolution_figure(tiles: Sequence[Sequence[np.ndarray]], epochs: Sequence[int], maps: Sequence[int],
                     title: str) -> plt.Figure:
    """Fig. 4 style: one row per feature map, one column per training snapshot."""
    nrows, ncols = len(tiles), len(epochs)
    cell = 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell + 0.6, nrows * cell + 0.6), squeeze=False)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            ax = axes[r, c]
            ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {epochs[c]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"map {maps[r]}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def layer_figure(result: EvolutionResult, layer: str, key: str) -> plt.Figure:
    """The Fig. 4 panel of one layer of `result` (a layer with maps shown) of model `key`."""
    title = (f"{key} {layer}: strongest activation over {result.metrics['images']} {result.metrics['split']} "
             "images, projected, per training epoch")
    return evolution_figure(result.tiles[layer], result.epochs, result.maps[layer], title)


def convergence_figure(result: EvolutionResult, key: str) -> plt.Figure:
    """Each layer's distance to its last-snapshot weights, per epoch: a layer that has converged sits near 0."""
    epochs = result.epochs
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for layer in result.layers:
        ax.plot(epochs, result.distances(layer), marker=".", label=layer)
    ax.set(xlabel="epoch", ylabel=f"||w - w_{epochs[-1]}|| / ||w_{epochs[-1]}||", ylim=(0, None),
           title=f"{key}: distance of each layer's weights to the last snapshot")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
