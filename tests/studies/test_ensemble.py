"""Table 2's ensembles against a hand-written 10-crop test and hand-counted errors."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from zfnet.studies.ensemble import average, evaluate, ten_crop_softmax, topk_errors

from conftest import random_model

SIZE, CROP = 72, 64


def hand_ten_crop(model, image: np.ndarray, mean: np.ndarray, scale: float) -> np.ndarray:
    """One image's softmax over 4 corners, the centre and their mirror images, each cut out by hand."""
    x = (image.astype(np.float64) - mean) * scale
    offsets = [(0, 0), (0, SIZE - CROP), (SIZE - CROP, 0), (SIZE - CROP, SIZE - CROP),
               ((SIZE - CROP) // 2, (SIZE - CROP) // 2)]
    views = [x[:, y:y + CROP, left:left + CROP] for y, left in offsets]
    views += [view[:, :, ::-1] for view in views]
    batch = torch.tensor(np.stack(views).copy(), dtype=torch.float32)
    with torch.no_grad():
        return model(batch).double().softmax(dim=1).mean(dim=0).numpy()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (5, 3, SIZE, SIZE), dtype=np.uint8))
    labels = torch.tensor([0, 3, 7, 3, 9])
    mean = torch.from_numpy(rng.uniform(90, 160, (3, SIZE, SIZE)).astype(np.float32))
    return images, labels, mean


def test_ensemble_scores_are_the_members_ten_crop_softmax_averaged(data):
    images, labels, mean = data
    members = [random_model("zfnet", CROP), random_model("alexnet", CROP)]
    torch.manual_seed(1)
    for p in members[0].parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    scores = []
    for model in members:
        member_scores, member_labels = ten_crop_softmax(model, mean, 0.02, TensorDataset(images, labels), CROP,
                                                        batch_size=2)
        assert torch.equal(member_labels, labels)
        scores.append(member_scores)
    expected = np.stack([np.mean([hand_ten_crop(m, img.numpy(), mean.numpy(), 0.02) for m in members], axis=0)
                         for img in images])
    np.testing.assert_allclose(average(scores).numpy(), expected, atol=1e-5)
    assert not np.allclose(scores[0].numpy(), scores[1].numpy(), atol=1e-3), "the members must differ for this test"


def test_errors_are_counted_from_the_ranked_scores():
    scores = torch.tensor([[0.6, 0.3, 0.1, 0.0, 0.0, 0.0],    # label 0: right
                           [0.5, 0.4, 0.1, 0.0, 0.0, 0.0],    # label 1: top-1 wrong, top-5 right
                           [0.3, 0.2, 0.19, 0.15, 0.1, 0.06],  # label 5: 6th of 6 -> both wrong
                           [0.1, 0.1, 0.1, 0.1, 0.1, 0.5]])   # label 5: right
    labels = torch.tensor([0, 1, 5, 5])
    top1, top5 = topk_errors(scores, labels)
    assert top1 == pytest.approx(2 / 4)
    assert top5 == pytest.approx(1 / 4)


def test_averaging_can_fix_what_each_member_gets_wrong():
    """Two members each wrong on a different image; their average is right on both (what ensembles buy)."""
    labels = torch.tensor([0, 1])
    first = torch.tensor([[0.45, 0.55], [0.0, 1.0]])
    second = torch.tensor([[1.0, 0.0], [0.55, 0.45]])
    assert topk_errors(first, labels)[0] == 0.5 and topk_errors(second, labels)[0] == 0.5
    assert topk_errors(average([first, second]), labels)[0] == 0.0


def test_members_must_score_the_same_images():
    with pytest.raises(ValueError, match="disagree"):
        average([torch.zeros(3, 4), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="at least one"):
        average([])


def test_worker_processes_give_the_same_scores_in_the_same_order(data):
    """Read by 2 DataLoader processes, the images reach the model in order: the very same scores and labels."""
    images, labels, mean = data
    model = random_model("zfnet", CROP)
    alone = ten_crop_softmax(model, mean, 0.02, TensorDataset(images, labels), CROP, batch_size=2)
    with_workers = ten_crop_softmax(model, mean, 0.02, TensorDataset(images, labels), CROP, batch_size=2,
                                    num_workers=2)
    assert torch.equal(alone[0], with_workers[0])
    assert torch.equal(alone[1], labels) and torch.equal(with_workers[1], labels)


def test_table2_from_scores_counts_each_entry_and_each_gain_by_hand():
    """Three images of 3 classes, labels 0, 1, 2. Run a ranks the classes 0>1>2 on every image, run b 2>1>0, run c
    puts each label second: a gets image 0 right, b image 2, c none."""
    labels = torch.tensor([0, 1, 2])
    a = torch.tensor([[0.6, 0.3, 0.1]] * 3)
    b = torch.tensor([[0.05, 0.3, 0.65]] * 3)
    c = torch.tensor([[0.2, 0.5, 0.3], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3]])
    result = evaluate({"a": a, "b": b, "c": c}, labels, {"one": ["a"], "ab": ["a", "b"], "abc": ["a", "b", "c"]})
    # ab = [0.325, 0.3, 0.375] on every image: class 2 first, image 2 right.
    # abc: images 0 and 2 sum to [0.85, 1.1, 1.05] -> class 1, image 1 to [1.15, 0.9, 0.95] -> class 0: none right.
    assert result.metrics["runs"] == {run: {"val_top1_error": pytest.approx(e), "val_top5_error": 0.0}
                                      for run, e in (("a", 2 / 3), ("b", 2 / 3), ("c", 1.0))}
    assert result.errors["one"] == pytest.approx((2 / 3, 0.0)) and result.errors["abc"] == pytest.approx((1.0, 0.0))
    assert result.metrics["entries"]["ab"] == {"members": 2, "val_top1_error": pytest.approx(2 / 3),
                                               "val_top5_error": 0.0}
    assert set(result.gains) == {"ab", "abc"}                                  # a single model gains nothing
    assert result.gains["abc"]["over_best_member"] == pytest.approx(2 / 3 - 1.0)
    assert result.gains["abc"]["over_mean_member"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3 - 1.0)
    assert result.metrics["gain_top1"] is result.gains and result.metrics["images"] == 3
    evidence = result.evidence
    assert evidence["images"] == 3 and evidence["runs"]["b"]["top1_correct"].tolist() == [0, 0, 1]
    assert evidence["entries"]["abc"]["members"] == ["a", "b", "c"]
    assert evidence["entries"]["abc"]["top1_correct"].tolist() == [0, 0, 0]
    assert evidence["entries"]["ab"]["top1_correct"].tolist() == [0, 0, 1]
    assert evidence["entries"]["one"]["top1_correct"].tolist() == [1, 0, 0]
