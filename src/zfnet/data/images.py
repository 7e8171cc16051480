"""Images of a prepared split as a trained network sees them, and the seeded subsets the probes search.

    images = ImageSet(PreparedSplit(root / "val"), mean, crop, subset(len(split), 500, seed=0))
    top = top_activations(model, images.batches(64), ["conv2"], k=9)

The network sees the centre `crop` x `crop` window of each mean-subtracted prepared image (the validation
view of the training code); patches are cut from the same window of the uint8 image.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from zfnet.data.loading import center_crop, collate_images, normalize


def subset(total: int, count: int | None, seed: int = 0) -> list[int]:
    """`count` indices of range(total), drawn at random (seeded) and sorted; all of them if count is None
    or not smaller. Prepared splits are stored class by class, so the first `count` would be one class."""
    if count is None or count >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(total, size=count, replace=False).tolist())


class ImageSet:
    """Images of a prepared split as the network sees them, numbered 0..len-1 in `indices` order.

    `dataset[i]` gives (uint8 CHW tensor, label) (a `zfnet.data.prepare.PreparedSplit`); `mean` is the
    (3,S,S) training mean; the network input is the centre `crop` of the mean-subtracted image,
    times `scale` (the checkpoint's `input_scale`, when training used one).
    """

    def __init__(self, dataset, mean: Tensor, crop: int, indices: Sequence[int] | None = None, scale: float = 1.0):
        self.dataset = dataset
        self.mean = mean.float()
        self.crop = crop
        self.scale = scale
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, i: int) -> Tensor:
        """Image i (position in this set) as uint8 (3, crop, crop): what patches are cut from."""
        return center_crop(self.dataset[self.indices[i]][0], self.crop)

    def inputs(self, positions: Sequence[int] | Tensor) -> Tensor:
        """Network inputs (n, 3, crop, crop), float32, for the images at these positions."""
        images = torch.stack([self.dataset[self.indices[int(i)]][0] for i in positions])
        return center_crop(normalize(images, self.mean, self.scale), self.crop)

    def batches(self, batch_size: int, workers: int = 0, device: torch.device | str = "cpu") -> Iterator[Tensor]:
        """The whole set in order, `batch_size` images at a time (nothing else is held), on `device`.

        `workers` DataLoader processes read the uint8 images (pinned for CUDA); the crop and the mean
        subtraction run on `device`, the subtraction on the crop only. The same numbers as `inputs`: the same
        elementwise operations on the same pixels, in the same order.
        """
        device = torch.device(device)
        mean = center_crop(self.mean, self.crop).to(device)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.dataset, self.indices), batch_size,
                                             num_workers=workers, collate_fn=collate_images,
                                             pin_memory=device.type == "cuda",
                                             generator=torch.Generator())  # leaves the global RNG untouched
        for images, _ in loader:
            yield normalize(center_crop(images.to(device, non_blocking=True), self.crop), mean, self.scale)


def image_set(dataset, hparams: dict, indices: Sequence[int] | None = None) -> ImageSet:
    """The images of `dataset` as the checkpoint's network saw them in validation."""
    return ImageSet(dataset, hparams["mean"], hparams["crop"], indices, scale=float(hparams.get("input_scale", 1.0)))

