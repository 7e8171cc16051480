"""Table 2's ensembles: the softmax of several independently trained convnets, averaged.

"5 convnets as per Fig. 3" is 5 ZF models trained from different seeds; each scores an image with
the paper's 10-crop test (the softmax averaged over 4 corner and the centre crops and their mirror
images), and the ensemble averages those scores over its members. One member is the model alone.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch.utils.data import Dataset

from zfnet.data.loading import normalize, ten_crop_probabilities
from zfnet.nets.evaluation import ordered_loader


@torch.no_grad()
def ten_crop_softmax(model: torch.nn.Module, mean: torch.Tensor, input_scale: float, dataset: Dataset, crop: int,
                     batch_size: int = 64, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, classes) 10-crop softmax of `model` (eval mode) over the uint8 images of `dataset`, and its (N,) labels.

    `num_workers` DataLoader processes read the images (pinned for CUDA); the scores do not depend on it."""
    device = next(model.parameters()).device
    mean = mean.to(device)
    scores, labels = [], []
    for images, targets in ordered_loader(dataset, batch_size, num_workers, device):
        inputs = normalize(images.to(device, non_blocking=True), mean, input_scale)
        scores.append(ten_crop_probabilities(model, inputs, crop).cpu())
        labels.append(targets)
    return torch.cat(scores), torch.cat(labels)


def average(scores: Iterable[torch.Tensor]) -> torch.Tensor:
    """The ensemble's scores: the members' (N, classes) softmax outputs, averaged."""
    scores = list(scores)
    if not scores:
        raise ValueError("an ensemble needs at least one member")
    if any(s.shape != scores[0].shape for s in scores):
        raise ValueError(f"members disagree on the shape of their scores: {[tuple(s.shape) for s in scores]}")
    return torch.stack(scores).mean(dim=0)


def topk_hits(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: (top-1 hit, top-5 hit), two (N,) bool tensors: is the label the best (among the 5 best) scores?"""
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices
    return top[:, 0] == labels, (top == labels[:, None]).any(dim=1)


def topk_errors(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(top-1, top-5) error: the share of images whose label is not the best (not among the 5 best) scores."""
    top1, top5 = topk_hits(scores, labels)
    return (~top1).float().mean().item(), (~top5).float().mean().item()
