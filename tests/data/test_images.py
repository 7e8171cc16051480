"""Images of a prepared split as the network sees them (zfnet.data.images): seeded subsets, inputs, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zfnet.data.images import ImageSet, subset
from zfnet.data.loading import center_crop, normalize
from zfnet.probes.top9 import top_activations

from probe_inputs import CROP, SIZE, image_set, random_model


def test_subset_is_sorted_seeded_and_spread():
    picked = subset(1000, 50, seed=3)
    assert picked == sorted(set(picked)) and len(picked) == 50
    assert picked == subset(1000, 50, seed=3) != subset(1000, 50, seed=4)
    assert max(picked) > 500  # not just the first class of a class-sorted split
    assert subset(10, None) == subset(10, 20) == list(range(10))


def test_image_set_feeds_what_training_validates_on():
    images = image_set(indices=[5, 2, 9])
    dataset = images.dataset
    expected = center_crop(normalize(torch.stack([dataset[2][0], dataset[9][0]]), images.mean, 0.02), CROP)
    torch.testing.assert_close(images.inputs([1, 2]), expected)
    assert torch.equal(images.raw(0), center_crop(dataset[5][0], CROP))
    batches = list(images.batches(2))
    assert [len(b) for b in batches] == [2, 1]
    torch.testing.assert_close(torch.cat(batches), images.inputs(range(3)))


class StoredImages(torch.utils.data.Dataset):
    """As PreparedSplit stores them: HWC arrays, each item a CHW view of one (not a contiguous copy)."""

    def __init__(self, n: int, seed: int = 0):
        self.images = np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]).permute(2, 0, 1), 0


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_read_by_workers_are_the_inputs_bit_for_bit(workers):
    """The batched path (uint8 through a DataLoader, crop then mean subtraction) feeds the model exactly
    what `inputs` does (crop after the subtraction), in the set's order: the same activations, not close ones."""
    mean = torch.from_numpy(np.random.default_rng(1).uniform(60, 200, (3, SIZE, SIZE)).astype(np.float32))
    images = ImageSet(StoredImages(11), mean, CROP, indices=[7, 0, 3, 10, 5, 2, 9], scale=0.02)
    batches = list(images.batches(3, workers=workers))
    assert [len(b) for b in batches] == [3, 3, 1]
    expected = [images.inputs(range(start, min(start + 3, len(images)))) for start in range(0, len(images), 3)]
    assert all(torch.equal(got, want) for got, want in zip(batches, expected))
    model = random_model("zfnet")
    with torch.no_grad():
        assert all(torch.equal(model(got), model(want)) for got, want in zip(batches, expected))
    top = top_activations(model, images.batches(3, workers=workers), ["conv2"], k=2)["conv2"]
    reference = top_activations(model, expected, ["conv2"], k=2)["conv2"]
    assert all(torch.equal(a, b) for a, b in zip(top, reference))


