"""Training data: the prepared uint8 splits, the paper's crops and flips, the 10-crop test scheme.

The training loader hands over whole batches as they lie on disk (uint8, N x S x S x 3, pinned on a
GPU machine); crop, flip, mean subtraction and scaling then run as one batched gather on the device
(`train_inputs`, `center_inputs`), on uint8 until the crop, so the float work is only the crop's.
Every random choice comes from a generator seeded by (seed, epoch, batch), so a run resumed from a
checkpoint sees exactly the crops the uninterrupted run saw.

`normalize`, `random_crops`, `center_crop` and `ten_crops` are the same operations on channels-first
(N, 3, S, S) tensors, for the stages that read single images; `train_inputs` gives bit for bit what
`random_crops(normalize(images), ...)` gives on the same images with the same generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, default_collate

from zfnet.data.shards import PreparedSplit


def normalize(images: torch.Tensor, mean: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """uint8 (N,3,S,S) -> float32 minus the per-pixel mean image (3,S,S), times `scale`.

    The paper subtracts the mean before cropping and feeds pixels in about [-128, 128] (scale 1).
    """
    images = images.float() - mean
    return images * scale if scale != 1.0 else images


def draw_crops(count: int, height: int, width: int, crop: int, generator: torch.Generator,
               flip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each image's crop window (top, left) and whether it is mirrored: int64, int64, bool, all (count,).

    The draws, in this order, are the crops' whole random state: changing them changes every run.
    """
    tops = torch.randint(0, height - crop + 1, (count,), generator=generator)
    lefts = torch.randint(0, width - crop + 1, (count,), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5 if flip else torch.zeros(count, dtype=torch.bool)
    return tops, lefts, flips


def random_crops(images: torch.Tensor, crop: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """One random crop x crop window per image of (N,C,H,W) `images`, each mirrored with probability 1/2."""
    count, _, height, width = images.shape
    tops, lefts, flips = (t.tolist() for t in draw_crops(count, height, width, crop, generator, flip))
    crops = [images[i, :, y:y + crop, x:x + crop] for i, (y, x) in enumerate(zip(tops, lefts))]
    crops = [c.flip(-1) if f else c for c, f in zip(crops, flips)]
    return torch.stack(crops)


def pixels_last(images: torch.Tensor) -> torch.Tensor:
    """A uint8 batch as (N,H,W,3): as the loader gives it, or a channels-first (N,3,H,W) batch as a view.

    Both are accepted so that any loader feeds the train step; an image 3 pixels wide would make the
    two look alike, and is refused (crops are at least 16 pixels).
    """
    if images.dim() != 4 or 3 not in (images.shape[1], images.shape[-1]) or images.shape[1] == images.shape[-1] == 3:
        raise ValueError(f"expected a batch of RGB images (N,H,W,3) or (N,3,H,W), got shape {tuple(images.shape)}")
    return images if images.shape[-1] == 3 else images.permute(0, 2, 3, 1)


def train_inputs(images: torch.Tensor, mean: torch.Tensor, crop: int, generator: torch.Generator,
                 flip: bool = True, scale: float = 1.0) -> torch.Tensor:
    """uint8 (N,S,S,3) (or (N,3,S,S): `pixels_last`) on any device -> the network's float32 input
    (N,3,crop,crop), with channels_last strides.

    One random window per image (mirrored with probability 1/2) minus the same window of the
    (3,S,S) mean image, times `scale`: `random_crops(normalize(nchw, mean, scale), crop, generator,
    flip)` without the per-image loop or the float copy of the whole image. The draws are made on
    the CPU (from `generator`, as `random_crops` makes them) and reach the device without a wait.
    """
    images = pixels_last(images)
    count, height, width, _ = images.shape
    tops, lefts, flips = draw_crops(count, height, width, crop, generator, flip)
    where = torch.stack([tops, lefts, flips.long()])
    if images.device.type == "cuda":
        where = where.pin_memory()  # a copy from pinned memory is truly asynchronous
    tops, lefts, flips = where.to(images.device, non_blocking=True).unbind()
    return _windows(images, mean, tops, lefts, flips.bool(), crop, scale)


def center_inputs(images: torch.Tensor, mean: torch.Tensor, crop: int, scale: float = 1.0) -> torch.Tensor:
    """uint8 (N,S,S,3) (or (N,3,S,S)) -> float32 (N,3,crop,crop), channels_last strides:
    `center_crop(normalize(...))` of the same images, bit for bit."""
    images = pixels_last(images)
    top, left = _center_offsets(images.shape[1], images.shape[2], crop)
    pixels = images[:, top:top + crop, left:left + crop]
    means = mean.permute(1, 2, 0)[top:top + crop, left:left + crop]
    return _scaled(torch.sub(pixels, means), scale).permute(0, 3, 1, 2)


def _windows(images: torch.Tensor, mean: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
             flips: torch.Tensor, crop: int, scale: float) -> torch.Tensor:
    """The crops as runs of pixels: each crop row is `crop` pixels in a row of its image, one contiguous run of
    bytes, so one `index_select` copies them all (measured 5-10x cheaper on the CPU than a per-pixel gather). A mirrored
    crop is a plain crop of the mirrored image, so the batch and its mirror are stacked and each crop reads
    from the one it needs; the mean image likewise. The result is `normalize`'s arithmetic on the same values."""
    count, height, width, _ = images.shape
    sources = torch.cat([images, images.flip(2)])                    # image i, then its mirror at count + i
    mean = mean.permute(1, 2, 0)
    means = torch.stack([mean, mean.flip(1)])                         # the mean image and its mirror
    lefts = torch.where(flips, width - crop - lefts, lefts)           # where the window lies in the mirror
    rows = tops[:, None] + torch.arange(crop, device=images.device)   # (N, crop)
    mirrored = flips.long()[:, None]
    image = mirrored * count + torch.arange(count, device=images.device)[:, None]
    pixels = _pixel_runs(sources, ((image * height + rows) * width + lefts[:, None]).flatten(), crop)
    means = _pixel_runs(means, ((mirrored * height + rows) * width + lefts[:, None]).flatten(), crop)
    shape = (count, crop, crop, 3)
    return _scaled(torch.sub(pixels.view(shape), means.view(shape)), scale).permute(0, 3, 1, 2)


def _pixel_runs(pixels: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """The `length` pixels from each pixel index in `starts` of a contiguous (..., 3) tensor: (len(starts), 3 * length).

    An overlapping view has one row per starting pixel (row j = pixels j .. j + length - 1, in bounds for every
    j that starts a run inside the last row), so the copy is a plain row selection.
    """
    flat = pixels.contiguous().view(-1)
    runs = flat.as_strided((flat.numel() // 3 - length + 1, 3 * length), (3, 1))
    return runs.index_select(0, starts)


def _scaled(images: torch.Tensor, scale: float) -> torch.Tensor:
    """`normalize`'s scaling, in place on a fresh tensor (the same rounding as `images * scale`)."""
    return images.mul_(scale) if scale != 1.0 else images


def _center_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    return int(round((height - crop) / 2)), int(round((width - crop) / 2))  # torchvision's rounding


def center_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    top, left = _center_offsets(*images.shape[-2:], crop)
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


class WholeBatches(Dataset):
    """A prepared split read a batch at a time: the data loader hands `__getitems__` a batch's indices and
    gets back (uint8 (n,S,S,3), int64 (n,)) from `PreparedSplit.get_batch`, with no per-image work."""

    def __init__(self, split: PreparedSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split.get_batch(indices)


def as_batch(batch):
    """The loader's collate step: a batch read whole is already the batch (module level: workers pickle it)."""
    return batch


class PreparedData(pl.LightningDataModule):
    """The `prepare` stage's output: `<root>/train`, `<root>/val` and the training mean image.

    Both loaders yield (uint8 images (n,S,S,3), int64 labels (n,)) batches: the layout on disk, which
    `train_inputs` and `center_inputs` crop on the device. `prefetch` batches per worker are read ahead.
    """

    def __init__(self, root: str | Path, batch_size: int, num_workers: int = 0, seed: int = 0, prefetch: int = 2):
        super().__init__()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.prefetch = prefetch
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

    def _pin_memory(self) -> bool:
        trainer = self.trainer
        if trainer is not None:
            return trainer.strategy.root_device.type == "cuda"
        return torch.cuda.is_available()

    def _loader(self, split, shuffle: bool) -> DataLoader:
        world_size, rank = self._world()
        # DistributedSampler with one replica is a plain seeded shuffle whose order depends only on
        # (seed, epoch): Lightning calls set_epoch on it (it finds it as batch_sampler.sampler), so
        # resumed runs replay the same order. With several replicas it pads the split by repeating a
        # few images, so per-epoch validation errors under DDP are slightly off; the final 10-crop
        # test runs on rank 0 over the exact split.
        sampler = DistributedSampler(split, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                     seed=self.seed, drop_last=False)
        workers = self.num_workers
        return DataLoader(WholeBatches(split), batch_sampler=BatchSampler(sampler, self.batch_size, drop_last=False),
                          collate_fn=as_batch, num_workers=workers, persistent_workers=workers > 0,
                          prefetch_factor=self.prefetch if workers > 0 else None, pin_memory=self._pin_memory(),
                          generator=torch.Generator().manual_seed(self.seed))  # keeps the global RNG untouched

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, shuffle=False)


def collate_images(items) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 (3,S,S) image, label) items -> a contiguous (N,3,S,S) batch and the labels: the tensors the
    DataLoader's default collation gives, made faster for prepared images (CHW views of HWC arrays):
    stacking those views copies pixel by pixel; stacking them as HWC, then one batch transpose, does not."""
    images = torch.stack([image.permute(1, 2, 0) for image, _ in items]).permute(0, 3, 1, 2).contiguous()
    return images, default_collate([label for _, label in items])
