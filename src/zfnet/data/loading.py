"""Training data: the prepared uint8 splits, the paper's crops and flips, the 10-crop test scheme.

Augmentation runs on whole batches after they reach the device (cheap on GPU, and the data loader
stays a plain memmap read). Every random choice comes from a generator seeded by (seed, epoch,
batch), so a run resumed from a checkpoint sees exactly the crops the uninterrupted run saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler

from zfnet.data.prepare import PreparedSplit


def normalize(images: torch.Tensor, mean: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """uint8 (N,3,S,S) -> float32 minus the per-pixel mean image (3,S,S), times `scale`.

    The paper subtracts the mean before cropping and feeds pixels in about [-128, 128] (scale 1).
    """
    images = images.float() - mean
    return images * scale if scale != 1.0 else images


def random_crops(images: torch.Tensor, crop: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """One random crop x crop window per image, each mirrored with probability 1/2."""
    count, _, height, width = images.shape
    ys = torch.randint(0, height - crop + 1, (count,), generator=generator).tolist()
    xs = torch.randint(0, width - crop + 1, (count,), generator=generator).tolist()
    flips = (torch.rand(count, generator=generator) < 0.5).tolist() if flip else [False] * count
    crops = [images[i, :, y:y + crop, x:x + crop] for i, (y, x) in enumerate(zip(ys, xs))]
    crops = [c.flip(-1) if f else c for c, f in zip(crops, flips)]
    return torch.stack(crops)


def center_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    top, left = int(round((height - crop) / 2)), int(round((width - crop) / 2))  # torchvision's rounding
    return images[..., top:top + crop, left:left + crop]


def ten_crops(images: torch.Tensor, crop: int) -> torch.Tensor:
    """The standard test scheme: 4 corners + centre, each with and without a horizontal flip -> (10,N,3,c,c)."""
    height, width = images.shape[-2:]
    corners = [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop)]
    views = [images[..., y:y + crop, x:x + crop] for y, x in corners] + [center_crop(images, crop)]
    return torch.stack(views + [v.flip(-1) for v in views])


@torch.no_grad()
def ten_crop_probabilities(model: torch.nn.Module, images: torch.Tensor, crop: int) -> torch.Tensor:
    """Softmax probabilities averaged over the 10 crops of each (mean-subtracted) image."""
    views = ten_crops(images, crop)
    probabilities = [model(view).float().softmax(dim=1) for view in views]
    return torch.stack(probabilities).mean(dim=0)


def batch_generator(seed: int, epoch: int, batch_index: int, rank: int = 0) -> torch.Generator:
    """A generator that depends only on where we are in training, never on what ran before."""
    sequence = np.random.SeedSequence([seed, epoch, batch_index, rank])
    return torch.Generator().manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0] >> 1))


class PreparedData(pl.LightningDataModule):
    """The `prepare` stage's output: `<root>/train`, `<root>/val` and the training mean image."""

    def __init__(self, root: str | Path, batch_size: int, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.train_split = PreparedSplit(self.root / "train")
        self.val_split = PreparedSplit(self.root / "val")
        self.mean = torch.from_numpy(np.load(self.root / "train" / "mean.npy")).permute(2, 0, 1).contiguous()

    @property
    def num_classes(self) -> int:
        return len(self.train_split.classes)

    @property
    def classes(self) -> list[str]:
        return list(self.train_split.classes)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader(self, split, shuffle: bool) -> DataLoader:
        world_size, rank = self._world()
        # DistributedSampler with one replica is a plain seeded shuffle whose order depends only on
        # (seed, epoch): Lightning calls set_epoch, so resumed runs replay the same order. With several
        # replicas it pads the split by repeating a few images, so per-epoch validation errors under
        # DDP are slightly off; the final 10-crop test runs on rank 0 over the exact split.
        sampler = DistributedSampler(split, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                     seed=self.seed, drop_last=False)
        return DataLoader(split, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available(),
                          generator=torch.Generator().manual_seed(self.seed))  # keeps the global RNG untouched

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, shuffle=False)
