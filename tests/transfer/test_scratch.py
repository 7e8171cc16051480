"""The non-pretrained baseline: the train stage's LightningModule on in-memory target images."""

from __future__ import annotations

import numpy as np
import torch

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
