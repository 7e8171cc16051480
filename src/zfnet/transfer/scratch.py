"""The "non-pretrained" baseline of Tables 4 and 5: the same architecture trained from scratch on the
target training images, by the train stage's own LightningModule (`zfnet.nets.training.Classifier`).

The recipe is the pretraining one (SGD, momentum, weight decay, dropout, filter renormalization,
random crops and flips, lr divided when the monitored error plateaus), with one change the target data
forces (ours): the plateau is watched on the training images themselves (centre crops), since the
test images must not steer training and a few images per class leave none to hold out. The mean
image is the training images' own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from zfnet.data.loading import center_crop
from zfnet.nets.training import Classifier


class ArrayData(pl.LightningDataModule):
    """Training images (uint8, N x S x S x 3) and labels held in memory; validation = the same images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0):
        super().__init__()
        self.dataset = TensorDataset(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2),
                                     torch.as_tensor(labels, dtype=torch.int64))
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size)


def train_from_scratch(arch: dict[str, Any], images: np.ndarray, labels: np.ndarray, num_classes: int,
                       recipe: dict[str, Any], epochs: int, seed: int = 0, accelerator: str = "cpu",
                       precision: str = "32-true") -> Classifier:
    """A freshly initialized `arch` trained for `epochs` on (images, labels) with `recipe` (train settings)."""
    pl.seed_everything(seed, workers=True, verbose=False)
    mean = torch.from_numpy(images.astype(np.float32).mean(axis=0)).permute(2, 0, 1).contiguous()
    module = Classifier(
        arch=arch, num_classes=num_classes, mean=mean, crop=recipe["crop"], lr=recipe["lr"],
        momentum=recipe["momentum"], weight_decay=recipe["weight_decay"], lr_factor=recipe["lr_factor"],
        lr_patience=recipe["lr_patience"], renorm_radius=recipe["renorm_radius"], flip=recipe["flip"],
        input_scale=recipe["input_scale"], seed=seed,
    )
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, deterministic=True,
                         max_epochs=epochs, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(module, datamodule=ArrayData(images, labels, min(recipe["batch_size"], len(labels)), seed))
    return module.eval()


@torch.no_grad()
def predict(module: Classifier, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Predicted class of each uint8 image (N, S, S, 3), from its centre crop."""
    device = next(module.parameters()).device
    predictions = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).permute(0, 3, 1, 2)
        inputs = center_crop(module.normalize(batch.to(device)), module.hparams.crop)
        predictions.append(module(inputs).argmax(dim=1).cpu().numpy())
    return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
