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
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 4))
    images = torch.randn(3, 3, 8, 8)
    expected = torch.stack([model(v).softmax(1) for v in ten_crops(images, 5)]).mean(0)
    assert torch.allclose(ten_crop_probabilities(model, images, 5), expected)


def test_random_crops_are_windows_of_the_image_and_reproducible():
    images = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).reshape(2, 3, 9, 9)
    crops = random_crops(images, 5, batch_generator(0, 1, 2), flip=True)
    again = random_crops(images, 5, batch_generator(0, 1, 2), flip=True)
    assert crops.shape == (2, 3, 5, 5) and torch.equal(crops, again)
    for n in range(2):
        windows = [images[n, :, y:y + 5, x:x + 5] for y in range(5) for x in range(5)]
        assert any(torch.equal(crops[n], w) or torch.equal(crops[n], w.flip(-1)) for w in windows)
    assert not torch.equal(crops, random_crops(images, 5, batch_generator(0, 2, 2), flip=True))  # another epoch


def test_normalize_subtracts_the_mean_before_scaling():
    images = torch.full((1, 3, 4, 4), 200, dtype=torch.uint8)
    mean = torch.full((3, 4, 4), 100.0)
    assert torch.all(normalize(images, mean) == 100.0)
    assert torch.all(normalize(images, mean, 0.5) == 50.0)
    assert center_crop(normalize(images, mean), 2).shape == (1, 3, 2, 2)
