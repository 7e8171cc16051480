"""The paper's test protocol and what a finished training run reports.

`ten_crop_errors` is Sec. 3's test scheme: the softmax averaged over the 4 corner and the centre crops
and their mirror images, then top-1 and top-5 error over the whole split. `run_metrics` turns the
per-epoch history that `Classifier` keeps into the numbers of Tables 2 and 3 (train top-1, val top-1,
val top-5).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from zfnet.data.loading import collate_images, ten_crop_probabilities

MONITOR = "val/top1_error"  # what picks the best epoch and drives the learning-rate drops


@torch.no_grad()
def ten_crop_hits(module, dataset: Dataset, crop: int, device: torch.device | str = "cpu",
                  batch_size: int = 64, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of `dataset`, in its order: (top-1 hit, top-5 hit), two (N,) bool tensors, of `module` (a
    Classifier: it normalizes uint8 images) under the 10-crop test. The report's paired intervals resample them.

    `num_workers` DataLoader processes read the images (pinned for a CUDA device); the hits do not depend on
    it: the order and every operation on the images are the same.
    """
    module = module.to(device).eval()
    top1, top5 = [], []
    for images, labels in ordered_loader(dataset, batch_size, num_workers, device):
        images = images.to(device, non_blocking=True)
        probabilities = ten_crop_probabilities(module, module.normalize(images), crop).cpu()
        top = probabilities.topk(min(5, probabilities.shape[1]), dim=1).indices
        top1.append(top[:, 0] == labels)
        top5.append((top == labels[:, None]).any(dim=1))
    return torch.cat(top1), torch.cat(top5)


def ten_crop_evidence(hits: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Per image, in the split's order, whether the 10-crop test (`ten_crop_hits`) got it right (1) or not (0)."""
    top1, top5 = hits
    return {"images": len(top1), "top1_correct": top1.int(), "top5_correct": top5.int()}


def ten_crop_result(module, checkpoint: Path, dataset: Dataset, device: torch.device | str = "cpu",
               num_workers: int = 0) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """A finished run's result: `module` (a Classifier with its `history`) loaded with `checkpoint`'s weights,
    10-crop tested on `dataset` at its crop: (the run's metrics: `run_metrics`, its classes and parameter
    count; the per-image hits, `ten_crop_hits`)."""
    module.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    hits = ten_crop_hits(module, dataset, module.hparams.crop, device, num_workers=num_workers)
    metrics = {**run_metrics(module.history, errors_of(hits)),
               "classes": module.hparams.num_classes, "parameters": sum(p.numel() for p in module.model.parameters())}
    return metrics, hits


def errors_of(hits: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """(top-1, top-5) error from `ten_crop_hits`: the share of images missed."""
    return tuple(int((~hit).sum()) / len(hit) for hit in hits)


def ten_crop_errors(module, dataset: Dataset, crop: int, device: torch.device | str = "cpu",
                    batch_size: int = 64, num_workers: int = 0) -> tuple[float, float]:
    """(top-1, top-5) error of `module` (a Classifier: it normalizes uint8 images) over `dataset` (`ten_crop_hits`)."""
    return errors_of(ten_crop_hits(module, dataset, crop, device, batch_size, num_workers))


def ordered_loader(dataset: Dataset, batch_size: int, num_workers: int, device: torch.device | str) -> DataLoader:
    """The dataset in order, `batch_size` items at a time, read by `num_workers` processes, pinned for CUDA."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images,
                      pin_memory=torch.device(device).type == "cuda")


def run_metrics(history: list[dict[str, float]], ten_crop: tuple[float, float]) -> dict[str, float | int]:
    """Table 2/3 numbers: 10-crop and centre-crop val errors of the best epoch, train error of the last (None
    for a run of 0 epochs, whose only row, epoch 0, is the untrained network's validation)."""
    best = min(history, key=lambda row: row[MONITOR])
    last = history[-1]
    return {
        "val_top1_error_10crop": ten_crop[0], "val_top5_error_10crop": ten_crop[1],
        "val_top1_error": best[MONITOR], "val_top5_error": best["val/top5_error"],
        "train_top1_error": last.get("train/top1_error"), "best_epoch": best["epoch"], "epochs": last["epoch"],
    }


def images_per_s(history: list[dict[str, float]]) -> float:
    rates = [row["train/images_per_s"] for row in history if "train/images_per_s" in row]
    return sum(rates) / len(rates) if rates else float("nan")


def curves_csv(history: list[dict[str, float]], leave_out: tuple[str, ...] = ("train/images_per_s",)) -> str:
    """The history as CSV, one row per epoch ('/' in names becomes '_'); timings left out by default,
    so that the file is the same on every run of the same config (it is tracked by git for DVC plots)."""
    rows = [{k: v for k, v in row.items() if k not in leave_out} for row in history]
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k != "epoch", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c.replace("/", "_") for c in columns], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c.replace("/", "_"): row.get(c, "") for c in columns})
    return buffer.getvalue()
