import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from lightning_fabric.utilities.data import _set_sampler_epoch
from PIL import Image
from torch.utils.data import DistributedSampler

from zfnet.data.loading import (
    PreparedData,
    batch_generator,
    center_crop,
    center_inputs,
    normalize,
    pixels_last,
    random_crops,
    ten_crop_probabilities,
    ten_crops,
    train_inputs,
)
from zfnet.data.prepare import PreparedSplit, prepare_split


def test_ten_crops_match_torchvision():
    images = torch.randn(2, 3, 13, 11)  # even margins: the centre crop of the mirror is the mirrored centre
    ours = ten_crops(images, 7)
    for n, image in enumerate(images):
        theirs = TF.ten_crop(image, [7, 7])  # 5 crops, then the 5 crops of the mirrored image
        for view in range(5):
            assert torch.equal(ours[view, n], theirs[view])
        for view in range(5, 10):
            assert sum(torch.equal(ours[view, n], t) for t in theirs[5:]) == 1


def test_ten_crop_probabilities_average_the_views():
    """The softmax averaged over torchvision's ten crops (their order does not matter to a mean)."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 7 * 7, 4))
    images = torch.randn(3, 3, 13, 11)  # even margins: torchvision's mirrored crops are the mirrored crops
    expected = torch.stack([
        torch.stack([model(view[None]).softmax(1)[0] for view in TF.ten_crop(image, [7, 7])]).mean(0)
        for image in images])
    torch.testing.assert_close(ten_crop_probabilities(model, images, 7), expected)


def crop_kinds(images, crops, crop):
    """For each crop, 'plain' or 'mirrored' (a window of its image, or one mirrored); asserts it is one."""
    side = images.shape[-1]
    kinds = []
    for image, view in zip(images, crops):
        windows = [image[:, y:y + crop, x:x + crop] for y in range(side - crop + 1) for x in range(side - crop + 1)]
        plain = any(torch.equal(view, w) for w in windows)
        mirrored = any(torch.equal(view, w.flip(-1)) for w in windows)
        assert plain != mirrored  # distinct pixel values: a window never equals a mirrored window
        kinds.append("mirrored" if mirrored else "plain")
    return kinds


def test_random_crops_are_windows_mirrored_half_the_time_and_reproducible():
    n, side, crop = 200, 9, 5
    images = torch.arange(n * 3 * side * side, dtype=torch.float32).reshape(n, 3, side, side)
    crops = random_crops(images, crop, batch_generator(0, 1, 2), flip=True)
    assert crops.shape == (n, 3, crop, crop)
    assert torch.equal(crops, random_crops(images, crop, batch_generator(0, 1, 2), flip=True))
    mirrored = crop_kinds(images, crops, crop).count("mirrored")
    assert 70 <= mirrored <= 130, mirrored  # Binomial(200, 1/2): 100 +- 30 is over 4 standard deviations
    assert crop_kinds(images, random_crops(images, crop, batch_generator(0, 1, 2), flip=False), crop) == ["plain"] * n
    # every offset is drawn: the 25 possible windows all occur among 200 crops
    offsets = {(int(c[0, 0, 0]) % (side * side)) for c in random_crops(images, crop, batch_generator(0, 1, 2), False)}
    assert offsets == {y * side + x for y in range(side - crop + 1) for x in range(side - crop + 1)}
    assert not torch.equal(crops, random_crops(images, crop, batch_generator(0, 2, 2), flip=True))  # another epoch


def test_batch_generators_differ_by_rank_and_repeat_exactly():
    """DDP: each rank crops its own images with its own draws; a restart draws the same ones again."""
    images = torch.arange(16 * 3 * 12 * 12, dtype=torch.float32).reshape(16, 3, 12, 12)
    where = [(seed, epoch, batch) for seed in (0, 1) for epoch in (0, 3) for batch in (0, 5)]
    seen = {}
    with torch.random.fork_rng():
        for seed, epoch, batch in where:
            for rank in range(4):
                torch.manual_seed(rank)  # the global generator has no say
                first = random_crops(images, 8, batch_generator(seed, epoch, batch, rank))
                torch.manual_seed(99)
                assert torch.equal(first, random_crops(images, 8, batch_generator(seed, epoch, batch, rank)))
                seen[seed, epoch, batch, rank] = first
    keys = list(seen)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not torch.equal(seen[a], seen[b]), (a, b)
    assert batch_generator(0, 0, 0).initial_seed() == batch_generator(0, 0, 0, 0).initial_seed()  # rank 0 default


def test_normalize_subtracts_the_mean_before_scaling():
    images = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    mean = torch.full((3, 4, 4), 100.0)
    assert torch.all(normalize(images, mean) == 100.0)
    assert torch.all(normalize(images, mean, 0.5) == 50.0)
    assert center_crop(normalize(images, mean), 2).shape == (1, 3, 2, 2)


# --------------------------------------------------------------------------- batched crops on the device


def crops_by_hand(images, mean, crop, generator, flip, scale):
    """The per-image formula the batched crop replaces, written out: draws in random_crops' order (tops,
    lefts, then flips), then each channels-first image minus the mean image, times the scale, cut by slicing."""
    n, height, width, _ = images.shape
    tops = torch.randint(0, height - crop + 1, (n,), generator=generator)
    lefts = torch.randint(0, width - crop + 1, (n,), generator=generator)
    flips = (torch.rand(n, generator=generator) < 0.5).tolist() if flip else [False] * n
    views = []
    for image, top, left, mirrored in zip(images, tops.tolist(), lefts.tolist(), flips):
        x = image.permute(2, 0, 1).float() - mean
        x = x * scale if scale != 1.0 else x
        window = x[:, top:top + crop, left:left + crop]
        views.append(window.flip(-1) if mirrored else window)
    return torch.stack(views), flips


def nhwc_batch(n, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, height, width, 3), dtype=torch.uint8, generator=g)
    mean = torch.rand(3, height, width, generator=g) * 255  # fractional: the subtraction rounds
    return images, mean


@pytest.mark.parametrize("scale", [1.0, 0.02])
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_train_inputs_are_bit_for_bit_the_per_image_crops(scale, flip, layout):
    images, mean = nhwc_batch(64, 20, 23)  # not square: rows and columns cannot be swapped unnoticed
    expected, flips = crops_by_hand(images, mean, 16, batch_generator(4, 2, 7), flip, scale)
    assert not flip or 0 < sum(flips) < 64  # both kinds of crop occur
    batch = images if layout == "nhwc" else images.permute(0, 3, 1, 2)
    ours = train_inputs(batch, mean, 16, batch_generator(4, 2, 7), flip, scale)
    assert ours.shape == (64, 3, 16, 16) and ours.dtype == torch.float32
    assert ours.is_contiguous(memory_format=torch.channels_last)  # the network's memory format, for free
    assert torch.equal(ours, expected)
    old = random_crops(normalize(images.permute(0, 3, 1, 2), mean, scale), 16, batch_generator(4, 2, 7), flip)
    assert torch.equal(ours, old)  # the path the train step took before


@pytest.mark.parametrize("scale", [1.0, 0.02])
def test_center_inputs_are_bit_for_bit_the_centre_crop(scale):
    images, mean = nhwc_batch(5, 21, 22)
    top, left = 2, 3  # (21 - 16) / 2 = 2.5 rounds to even, (22 - 16) / 2 = 3
    x = images.permute(0, 3, 1, 2).float() - mean
    expected = (x * scale if scale != 1.0 else x)[:, :, top:top + 16, left:left + 16]
    ours = center_inputs(images, mean, 16, scale)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(ours, expected)
    assert torch.equal(center_inputs(images.permute(0, 3, 1, 2), mean, 16, scale), expected)


def test_pixels_last_refuses_a_batch_whose_layout_is_ambiguous():
    with pytest.raises(ValueError, match=r"\(4, 3, 9, 3\)"):
        pixels_last(torch.zeros(4, 3, 9, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="RGB"):
        pixels_last(torch.zeros(4, 5, 9, 9, dtype=torch.uint8))


# --------------------------------------------------------------------------- the training loader


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """2 classes x 7 train and 2 x 2 val images at 16 px, in shards of 3 (so batches span shards)."""
    root = tmp_path_factory.mktemp("prepared")
    for split, count in (("train", 7), ("val", 2)):
        for c in range(2):
            for i in range(count):
                pixels = np.random.default_rng(100 * c + i).integers(0, 256, (20, 18, 3), dtype=np.uint8)
                path = root / "images" / split / f"class{c}" / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
        prepare_split(root / "images" / split, root / "out" / split, 16, compute_mean=split == "train",
                      shard_size=3, workers=0, progress=False)
    return root / "out"


def batches(loader):
    return [(images.clone(), labels.clone()) for images, labels in loader]


def image_by_image(split, order):
    """The batch read one image at a time through the split's own item access (channels-first)."""
    return (torch.stack([split[i][0].permute(1, 2, 0) for i in order]),
            torch.tensor([split[i][1] for i in order], dtype=torch.int64))


@pytest.mark.parametrize("workers", [0, 1])
def test_the_loader_gives_whole_nhwc_batches_in_the_seeded_order_of_each_epoch(prepared, workers, monkeypatch):
    data = PreparedData(prepared, batch_size=4, num_workers=workers, seed=3)
    loader = data.train_dataloader()
    sampler = DistributedSampler(data.train_split, num_replicas=1, rank=0, shuffle=True, seed=3)
    orders, expected = {}, {}
    for epoch in (0, 2):
        sampler.set_epoch(epoch)
        orders[epoch] = order = list(sampler)
        expected[epoch] = [image_by_image(data.train_split, order[i:i + 4]) for i in range(0, len(order), 4)]
    assert orders[0] != orders[2] and [len(labels) for _, labels in expected[0]] == [4, 4, 4, 2]

    def per_image(self, i):
        raise AssertionError("an image read on its own")

    monkeypatch.setattr(PreparedSplit, "__getitem__", per_image)  # the loader must read whole batches
    for epoch in (0, 2):
        _set_sampler_epoch(loader, epoch)  # what Lightning calls at each epoch's start
        got = batches(loader)
        assert len(got) == len(expected[epoch])
        for (images, labels), (want_images, want_labels) in zip(got, expected[epoch]):
            assert images.dtype == torch.uint8 and images.shape[1:] == (16, 16, 3) and labels.dtype == torch.int64
            assert torch.equal(images, want_images) and torch.equal(labels, want_labels)
    val = batches(data.val_dataloader())
    monkeypatch.undo()
    assert [b[1].tolist() for b in val] == [[0, 0, 1, 1]]
    assert torch.equal(val[0][0], image_by_image(data.val_split, range(4))[0])
    assert loader.persistent_workers == (workers > 0) and loader.prefetch_factor == (2 if workers else None)
