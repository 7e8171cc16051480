"""The paper's test protocol and what a finished training run reports.

`ten_crop_errors` is Sec. 3's test scheme: the softmax averaged over the 4 corner and the centre crops
and their mirror images, then top-1 and top-5 error over the whole split. `run_metrics` turns the
per-epoch history that `Classifier` keeps into the numbers of Tables 2 and 3 (train top-1, val top-1,
val top-5).
"""

from __future__ import annotations

import csv
import io

import torch
from torch.utils.data import DataLoader, Dataset

from zfnet.data.loading import ten_crop_probabilities

MONITOR = "val/top1_error"  # what picks the best epoch and drives the learning-rate drops


@torch.no_grad()
def ten_crop_errors(module, dataset: Dataset, crop: int, device: torch.device | str = "cpu",
                    batch_size: int = 64) -> tuple[float, float]:
    """(top-1, top-5) error of `module` (a Classifier: it normalizes uint8 images) over `dataset`."""
    module = module.to(device).eval()
    wrong1 = wrong5 = total = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        probabilities = ten_crop_probabilities(module, module.normalize(images.to(device)), crop).cpu()
        top = probabilities.topk(min(5, probabilities.shape[1]), dim=1).indices
        wrong1 += int((top[:, 0] != labels).sum())
        wrong5 += int((top != labels[:, None]).all(dim=1).sum())
        total += len(labels)
    return wrong1 / total, wrong5 / total


def run_metrics(history: list[dict[str, float]], ten_crop: tuple[float, float]) -> dict[str, float | int]:
    """Table 2/3 numbers: 10-crop and centre-crop val errors of the best epoch, train error of the last."""
    best = min(history, key=lambda row: row[MONITOR])
    last = history[-1]
    return {
        "val_top1_error_10crop": ten_crop[0], "val_top5_error_10crop": ten_crop[1],
        "val_top1_error": best[MONITOR], "val_top5_error": best["val/top5_error"],
        "train_top1_error": last["train/top1_error"], "best_epoch": best["epoch"], "epochs": last["epoch"],
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
