"""The non-pretrained baseline: the train stage's LightningModule on in-memory target images."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from zfnet.nets.models import build_model
from zfnet.transfer import scratch

SIZE, CROP = 72, 64
ARCH = {"name": "zfnet", "input_size": CROP, "width": 0.25, "init": "fan_in"}
RECIPE = {"crop": CROP, "batch_size": 8, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "lr_factor": 0.1,
          "lr_patience": 2, "renorm_radius": 0.1, "flip": True, "input_scale": 0.02}


def coloured_squares(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright square in colour channel c on a grey background, anywhere in the image."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(3):
        for _ in range(per_class):
            image = np.full((SIZE, SIZE, 3), rng.integers(60, 140), np.uint8)
            y, x = rng.integers(0, SIZE - 28, 2)
            image[y:y + 28, x:x + 28, c] = 255
            images.append(image)
            labels.append(c)
    return np.stack(images), np.asarray(labels)


def test_training_from_scratch_learns_and_is_deterministic():
    images, labels = coloured_squares(6, seed=0)
    first = scratch.train_from_scratch(ARCH, images, labels, 3, RECIPE, epochs=6, seed=3)
    second = scratch.train_from_scratch(ARCH, images, labels, 3, RECIPE, epochs=6, seed=3)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)

    torch.manual_seed(3)
    untrained = build_model("zfnet", 3, **{k: v for k, v in ARCH.items() if k != "name"})
    assert not torch.equal(untrained.features.conv1.weight, first.model.features.conv1.weight)
    assert len(first.history) == 6  # one row per epoch: the recipe's validation ran (on the training images)
    assert torch.allclose(first.mean, torch.from_numpy(images.mean(axis=0, dtype=np.float64)).permute(2, 0, 1).float())

    test_images, test_labels = coloured_squares(6, seed=1)
    accuracy = (scratch.predict(first, test_images) == test_labels).mean()
    assert accuracy > 0.6  # chance is 1/3; the colour alone gives the class away


class TensorDatasetData(pl.LightningDataModule):
    """The plain reference: per-image items of a TensorDataset, collated by the DataLoader's default."""

    def __init__(self, images, labels, batch_size, seed=0, num_workers=0, pin_memory=False):
        super().__init__()
        self.dataset = TensorDataset(torch.from_numpy(images).permute(0, 3, 1, 2), torch.as_tensor(labels))
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self):
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self):
        return DataLoader(self.dataset, batch_size=self.batch_size)


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "train/images_per_s"} for row in history]


def test_batched_loading_with_or_without_workers_trains_the_same_net(monkeypatch):
    """Whole-batch gathers, with 0 or 2 worker processes, give the very weights of per-image loading:
    the same images in the same order and memory layout, and the same draws from every generator."""
    images, labels = coloured_squares(5, seed=4)  # 15 images, batches of 8: a short last batch
    runs = {workers: scratch.train_from_scratch(ARCH, images, labels, 3, RECIPE, epochs=3, seed=1, num_workers=workers)
            for workers in (0, 2)}
    monkeypatch.setattr(scratch, "ArrayData", TensorDatasetData)
    reference = scratch.train_from_scratch(ARCH, images, labels, 3, RECIPE, epochs=3, seed=1)
    for run in runs.values():
        assert untimed(run.history) == untimed(reference.history)
        for a, b in zip(run.state_dict().values(), reference.state_dict().values()):
            assert torch.equal(a, b)
