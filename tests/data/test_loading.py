import torch
import torchvision.transforms.functional as TF

from zfnet.data.loading import batch_generator, center_crop, normalize, random_crops, ten_crop_probabilities, ten_crops


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
