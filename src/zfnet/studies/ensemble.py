"""Table 2's ensembles: the softmax of several independently trained convnets, averaged.

"5 convnets as per Fig. 3" is 5 ZF models trained from different seeds; each scores an image with
the paper's 10-crop test (the softmax averaged over 4 corner and the centre crops and their mirror
images), and the ensemble averages those scores over its members. One member is the model alone.

`score_runs` scores the validation split with each run's checkpoint, `evaluate` turns the scores into Table 2's
numbers (each entry's and each run's errors, each ensemble's gain) and the per-image evidence the report pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from zfnet.data.loading import normalize, ten_crop_probabilities
from zfnet.errors import UserError
from zfnet.nets.evaluation import ordered_loader
from zfnet.nets.training import load_trained


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


def score_runs(checkpoints: dict[str, Path], dataset: Dataset, device: torch.device | str = "cpu",
               num_workers: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({run: its (N, classes) 10-crop softmax}, the (N,) labels) of each run's checkpoint over `dataset`, at the
    checkpoint's crop, mean and input scale; a UserError when a run saw the images in another order."""
    scores, labels = {}, None
    for run in tqdm(checkpoints, desc="10-crop scores", unit="model"):
        model, hparams = load_trained(checkpoints[run], device)
        scores[run], run_labels = ten_crop_softmax(model, hparams["mean"], hparams["input_scale"], dataset,
                                                   hparams["crop"], num_workers=num_workers)
        if labels is not None and not (run_labels == labels).all():
            raise UserError(f"{checkpoints[run]}: scored the validation split in another order than the others")
        labels = run_labels
    return scores, labels


@dataclass
class Table2Result:
    errors: dict[str, tuple[float, float]]   # each entry's (top-1, top-5) error
    gains: dict[str, dict[str, float]]       # each ensemble's top-1 error below its best and its average member's
    metrics: dict                            # the table2 stage's metrics file
    evidence: dict                           # per image: each run and each entry right or wrong (`per_image_evidence`)


def evaluate(scores: dict[str, torch.Tensor], labels: torch.Tensor, ensembles: dict[str, list[str]]) -> Table2Result:
    """Table 2 from each run's scores (`score_runs`): every run alone, every entry of `ensembles` ({name: its
    runs}; one run is a single model) with its members' scores averaged, and each ensemble's gain in top-1 error
    over its best member and over its average member."""
    alone = {run: topk_errors(run_scores, labels) for run, run_scores in scores.items()}
    ensembled = {name: average(scores[m] for m in members) for name, members in ensembles.items()}
    errors = {name: topk_errors(ensembled[name], labels) for name in ensembles}
    gains = {name: {"over_best_member": min(alone[m][0] for m in members) - errors[name][0],
                    "over_mean_member": sum(alone[m][0] for m in members) / len(members) - errors[name][0]}
             for name, members in ensembles.items() if len(members) > 1}
    metrics = {
        "entries": {name: {"members": len(ensembles[name]), "val_top1_error": errors[name][0],
                           "val_top5_error": errors[name][1]} for name in ensembles},
        "runs": {run: {"val_top1_error": top1, "val_top5_error": top5} for run, (top1, top5) in alone.items()},
        "gain_top1": gains,
        "images": len(labels),
    }
    return Table2Result(errors, gains, metrics, per_image_evidence(scores, ensembled, ensembles, labels))


def per_image_evidence(scores: dict, ensembled: dict, ensembles: dict[str, list[str]], labels) -> dict:
    """Per validation image (in the split's order), 1 where the 10-crop test got it right: each run alone and each
    entry (its members named), so that the report can pair the entries image by image and resample the seeds."""
    def hits(entry_scores) -> dict:
        top1, top5 = topk_hits(entry_scores, labels)
        return {"top1_correct": top1.int(), "top5_correct": top5.int()}

    return {"images": len(labels), "runs": {run: hits(run_scores) for run, run_scores in scores.items()},
            "entries": {name: {"members": ensembles[name], **hits(ensembled[name])} for name in ensembles}}
