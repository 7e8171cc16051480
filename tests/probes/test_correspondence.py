"""The correspondence measure (Table 1) on tensors small enough to check by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from zfnet.probes.correspondence import (
    draw_statistics,
    draw_subsets,
    layer_features,
    layer_shapes,
    mean_and_std,
    nearest_map,
    occlude,
    pairwise_changed_in_both,
    pairwise_sign_disagreement,
    pixel_box,
    random_box,
    sign_disagreement,
    subset_means,
    zero_share,
)

from conftest import random_model

# Three images, four coordinates. Signs: e1 (+ - 0 +), e2 (+ 0 0 -), e3 (- 0 0 0).
E = torch.tensor([[1.0, -1.0, 0.0, 2.0],
                  [3.0, 0.0, 0.0, -1.0],
                  [-2.0, 0.0, 0.0, 0.0]])
# Coordinates whose signs differ: (1,2): 2nd (- vs 0), 4th (+ vs -) -> 2 of 4; (1,3): 1st, 2nd, 4th -> 3 of 4;
# (2,3): 1st, 4th -> 2 of 4. Both zero: (1,2): the 3rd; (1,3): the 3rd; (2,3): the 2nd and 3rd.
STRICT = np.array([[0, 2 / 4, 3 / 4], [2 / 4, 0, 2 / 4], [3 / 4, 2 / 4, 0]])
IGNORE = np.array([[0, 2 / 3, 3 / 3], [2 / 3, 0, 2 / 2], [3 / 3, 2 / 2, 0]])


def test_pairwise_sign_disagreement_by_hand():
    strict, ignore_zeros = pairwise_sign_disagreement(E)
    np.testing.assert_allclose(strict.numpy(), STRICT)
    np.testing.assert_allclose(ignore_zeros.numpy(), IGNORE)


def test_delta_is_the_mean_over_ordered_pairs():
    strict, ignore_zeros = sign_disagreement(E)
    assert strict == pytest.approx((2 / 4 + 3 / 4 + 2 / 4) / 3)  # 7/12: zeros agree with zeros
    assert ignore_zeros == pytest.approx((2 / 3 + 1 + 1) / 3)  # 8/9


def test_zeros_agree_with_zeros_and_differ_from_signs():
    zeros = torch.zeros(2, 5)
    strict, ignore_zeros = pairwise_sign_disagreement(zeros)
    assert strict[0, 1] == 0 and torch.isnan(ignore_zeros[0, 1])  # nothing left to compare
    one_sign = torch.tensor([[0.0, 0.0, 1.0], [0.0, -3.0, 1.0]])
    strict, ignore_zeros = pairwise_sign_disagreement(one_sign)
    assert strict[0, 1] == pytest.approx(1 / 3) and ignore_zeros[0, 1] == pytest.approx(1 / 2)
    assert zero_share(one_sign) == pytest.approx(3 / 6)


# Changed in both (nonzero in e_i and in e_j): (1,2): the 1st (+ +) and 4th (+ -), one opposite -> 1/2, 2 of 4
# coordinates; (1,3): the 1st (+ -) -> 1/1, 1 of 4; (2,3): the 1st (+ -) -> 1/1, 1 of 4.
BOTH = np.array([[0, 1 / 2, 1], [1 / 2, 0, 1], [1, 1, 0]])
BOTH_SHARE = np.array([[3 / 4, 2 / 4, 1 / 4], [2 / 4, 2 / 4, 1 / 4], [1 / 4, 1 / 4, 1 / 4]])


def test_changed_in_both_by_hand():
    disagreement, share = pairwise_changed_in_both(E)
    np.testing.assert_allclose(disagreement.numpy(), BOTH)
    np.testing.assert_allclose(share.numpy(), BOTH_SHARE)
    # a unit that fired in one image only is a sign change for the strict Delta, not here
    disagreement, share = pairwise_changed_in_both(torch.tensor([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))
    assert torch.isnan(disagreement[0, 1]) and share[0, 1] == 0
    assert pairwise_sign_disagreement(torch.tensor([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))[0][0, 1] == pytest.approx(2 / 3)


def test_strict_delta_splits_into_one_zero_and_changed_in_both():
    """strict = share zero in exactly one of e_i, e_j + share changed in both * their disagreement, per pair,
    against loops over the coordinates."""
    rng = np.random.default_rng(1)
    e = np.maximum(rng.normal(size=(5, 200)), 0) - np.maximum(rng.normal(size=(5, 200)), 0)
    strict = pairwise_sign_disagreement(torch.from_numpy(e))[0].numpy()
    disagreement, share = (m.numpy() for m in pairwise_changed_in_both(torch.from_numpy(e)))
    for i, j in itertools.permutations(range(5), 2):
        both = (e[i] != 0) & (e[j] != 0)
        one = (e[i] == 0) != (e[j] == 0)
        assert share[i, j] == pytest.approx(both.mean())
        assert disagreement[i, j] == pytest.approx(np.mean(np.sign(e[i][both]) != np.sign(e[j][both])))
        assert strict[i, j] == pytest.approx(one.mean() + share[i, j] * disagreement[i, j])


def test_mean_and_std_leave_out_nan():
    assert mean_and_std(torch.tensor([0.1, torch.nan, 0.3], dtype=torch.float64)) == pytest.approx((0.2, 0.1))
    assert all(np.isnan(mean_and_std(torch.tensor([torch.nan]))))


def test_nearest_map_prefers_6x6_and_the_first_on_a_tie():
    assert nearest_map({"pool5": (128, 2, 2), "relu5": (128, 6, 6)}) == "relu5"       # our 112 px input
    assert nearest_map({"pool5": (256, 6, 6), "relu5": (256, 13, 13)}) == "pool5"     # the paper's 224 px
    assert nearest_map({"pool5": (8, 4, 4), "relu5": (8, 8, 8)}) == "pool5"           # 4 from 6 either way
    with pytest.raises(ValueError):
        nearest_map({"relu7": (2048,)})


def test_layer_shapes_of_zfnet_at_112_and_224_px():
    """ZFNet's conv5 map: 6x6 at 112 px with pool5 2x2 (our default), 13x13 at 224 px with pool5 6x6 (the
    paper's Fig. 3)."""
    for size, relu5, pool5 in ((112, 6, 2), (224, 13, 6)):
        shapes = layer_shapes(random_model("zfnet", size), {"relu5": "relu5", "pool5": "pool5"}, size)
        assert shapes["relu5"][1:] == (relu5, relu5) and shapes["pool5"][1:] == (pool5, pool5)


def numpy_delta(e: np.ndarray, ignore_zeros: bool) -> float:
    """The definition, written out with loops."""
    values = []
    for i, j in itertools.permutations(range(len(e)), 2):
        si, sj = np.sign(e[i]), np.sign(e[j])
        keep = ~((e[i] == 0) & (e[j] == 0)) if ignore_zeros else np.ones(e.shape[1], dtype=bool)
        values.append(np.sum(si[keep] != sj[keep]) / keep.sum())
    return float(np.mean(values))


def test_matches_the_definition_on_random_rectified_differences():
    rng = np.random.default_rng(0)
    e = np.maximum(rng.normal(size=(6, 300)), 0) - np.maximum(rng.normal(size=(6, 300)), 0)
    strict, ignore_zeros = sign_disagreement(torch.from_numpy(e).float())
    assert strict == pytest.approx(numpy_delta(e, False))
    assert ignore_zeros == pytest.approx(numpy_delta(e, True))


def test_subset_means_and_draw_statistics():
    pairwise = torch.tensor([[0.0, 0.1, 0.2, 0.3],
                             [0.1, 0.0, 0.4, 0.5],
                             [0.2, 0.4, 0.0, 0.6],
                             [0.3, 0.5, 0.6, 0.0]], dtype=torch.float64)
    subsets = torch.tensor([[0, 1, 2], [3, 1, 0]])
    means = subset_means(pairwise, subsets)
    np.testing.assert_allclose(means.numpy(), [(0.1 + 0.2 + 0.4) / 3, (0.5 + 0.3 + 0.1) / 3])
    stats = draw_statistics(pairwise, pairwise.clone().fill_diagonal_(torch.nan), subsets)
    assert stats["mean"] == pytest.approx(means.mean().item())
    assert stats["std"] == pytest.approx(abs(means[0] - means[1]).item() / 2)  # ddof 0 over two draws
    assert stats["mean_ignore_zeros"] == stats["mean"]


def test_subset_means_leave_out_nan_pairs():
    pairwise = torch.tensor([[0.0, torch.nan, 0.2], [torch.nan, 0.0, 0.4], [0.2, 0.4, 0.0]], dtype=torch.float64)
    assert subset_means(pairwise, torch.tensor([[0, 1, 2]]))[0] == pytest.approx(0.3)


def test_draw_subsets_are_seeded_sets_of_distinct_images():
    subsets = draw_subsets(7, 5, 50, torch.Generator().manual_seed(3))
    assert subsets.shape == (50, 5)
    assert all(len(set(row.tolist())) == 5 and max(row) < 7 for row in subsets)
    assert torch.equal(subsets, draw_subsets(7, 5, 50, torch.Generator().manual_seed(3)))
    assert len({tuple(sorted(row.tolist())) for row in subsets}) > 5
    with pytest.raises(ValueError):
        draw_subsets(4, 5, 1, torch.Generator())


def test_pixel_box_rounds_outward_and_clips():
    assert pixel_box([2.5, 1.0, 4.2, 3.0], 6, 6) == (2, 1, 5, 3)
    assert pixel_box([-3.0, 4.5, 2.0, 10.0], 6, 6) == (0, 4, 2, 6)
    assert pixel_box([7.0, 7.0, 9.0, 9.0], 6, 6) == (6, 6, 6, 6)  # outside: empty


def test_occlude_sets_exactly_the_box_pixels():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1
    occluded = occlude(images, [[2.5, 1.0, 4.2, 3.0], [-3.0, 4.5, 2.0, 10.0]], fill=-7.0)
    expected = np.zeros((2, 6, 6), dtype=bool)
    expected[0, 1:3, 2:5] = True  # rows 1-2, columns 2-4
    expected[1, 4:6, 0:2] = True  # rows 4-5, columns 0-1
    changed = (occluded != images).numpy()
    assert (changed == expected[:, None]).all()
    assert (occluded.numpy()[changed] == -7.0).all()
    assert images[0, 0, 0, 0] == 1  # the input is left alone


@pytest.mark.parametrize("seed", range(20))
def test_random_box_has_the_size_and_lies_inside_the_object(seed):
    generator = torch.Generator().manual_seed(seed)
    x0, y0, x1, y1 = random_box([10.4, 20.0, 40.0, 33.7], height=7, width=9, size=64, generator=generator)
    assert (x1 - x0, y1 - y0) == (9, 7)
    assert 10 <= x0 and x1 <= 40 and 20 <= y0 and y1 <= 34


def test_random_box_is_centred_on_a_mask_pixel():
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[30:33, 12:14] = True  # a small object inside a large box
    boxes = {random_box([0, 0, 64, 64], 5, 4, 64, torch.Generator().manual_seed(s), mask) for s in range(30)}
    for x0, y0, x1, y1 in boxes:
        assert mask[y0 + 5 // 2, x0 + 4 // 2]
    assert len(boxes) > 1  # still random among the object's pixels


def test_random_box_wider_than_the_object_is_centred_on_it():
    x0, y0, x1, y1 = random_box([20, 20, 24, 40], 6, 10, 64, torch.Generator().manual_seed(0))
    assert (x0, x1) == (17, 27) and 20 <= y0 and y1 <= 40
    x0, _, x1, _ = random_box([0, 0, 3, 64], 6, 10, 64, torch.Generator().manual_seed(0))
    assert (x0, x1) == (0, 10)  # clipped to the image


def test_layer_features_are_pool5_and_rectified_fc7_in_eval_mode():
    model = random_model("zfnet", 64).train()
    images = torch.randn(3, 3, 64, 64)
    features = layer_features(model, images, {"layer5": "pool5", "layer7": "relu7"}, batch_size=2)
    assert model.training  # its mode is restored
    with torch.no_grad():
        model.eval()
        pool5 = model.features(images).flatten(1)
        c = model.classifier
        relu7 = c.relu7(c.fc7(c.relu6(c.fc6(pool5))))
    torch.testing.assert_close(features["layer5"], pool5)
    torch.testing.assert_close(features["layer7"], relu7)
    assert (features["layer7"] >= 0).all() and (features["layer7"] == 0).any()
