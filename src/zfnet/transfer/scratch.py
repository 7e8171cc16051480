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
from torch.utils.data import DataLoader, Dataset

from zfnet.data.loading import center_crop
from zfnet.nets.training import Classifier


class ImageArray(Dataset):
    """uint8 images (N x S x S x 3) and labels held in memory, read a whole batch at a time: one gather
    per batch, an (n, S, S, 3) batch as PreparedData gives the train step (no permute on the CPU). The
    step crops on the device and trains the very weights per-image channels-first items would
    (tests/transfer/test_scratch.py)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.as_tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.int64)
        return self.images[rows], self.labels[rows]


def _whole_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch  # ImageArray.__getitems__ already returns the batch


class ArrayData(pl.LightningDataModule):
    """Training images (uint8, N x S x S x 3) and labels held in memory; validation = the same images.

    `num_workers` processes gather the batches (pinned for CUDA). Workers start anew each epoch, as
    without them: the shuffling generator, and the global RNG the validation loader draws its base
    seed from, then advance exactly as they do with `num_workers=0`, so the run is the same. For images
    already in memory a batch is one gather, and workers rarely pay for their start and for sending
    each batch back (`transfer.scratch.num_workers` defaults to 0).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0, num_workers: int = 0,
                 pin_memory: bool = False):
        super().__init__()
        self.dataset = ImageArray(images, labels)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def _loader(self, **options) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                          collate_fn=_whole_batch, pin_memory=self.pin_memory, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(shuffle=True, generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader()


def train_from_scratch(arch: dict[str, Any], images: np.ndarray, labels: np.ndarray, num_classes: int,
                       recipe: dict[str, Any], epochs: int, seed: int = 0, accelerator: str = "cpu",
                       precision: str = "32-true", *, num_workers: int = 0, deterministic: bool = True,
                       benchmark: bool = False, channels_last: bool = False) -> Classifier:
    """A freshly initialized `arch` trained for `epochs` on (images, labels) with `recipe` (train settings).

    The Trainer options are the train stage's (`trainer.*`): `deterministic=True` where the numbers must
    repeat exactly (the CPU default), off on a GPU, where it forces slower kernels.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    mean = torch.from_numpy(images.astype(np.float32).mean(axis=0)).permute(2, 0, 1).contiguous()
    module = Classifier(
        arch=arch, num_classes=num_classes, mean=mean, crop=recipe["crop"], lr=recipe["lr"],
        momentum=recipe["momentum"], weight_decay=recipe["weight_decay"], lr_factor=recipe["lr_factor"],
        lr_patience=recipe["lr_patience"], renorm_radius=recipe["renorm_radius"], flip=recipe["flip"],
        input_scale=recipe["input_scale"], seed=seed, channels_last=channels_last,
    )
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, deterministic=deterministic,
                         benchmark=benchmark, max_epochs=epochs, num_sanity_val_steps=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False)
    data = ArrayData(images, labels, min(recipe["batch_size"], len(labels)), seed, num_workers,
                     pin_memory=accelerator != "cpu" and torch.cuda.is_available())
    trainer.fit(module, datamodule=data)
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
