"""The invariance transforms against images built by hand (slicing, torch.rot90, hand-computed bilinear
values), the distances against a hand computation, and the claim functions on hand-made inputs."""

import pytest
import torch

from zfnet.errors import UserError
from zfnet.nets.models import build_model
from zfnet.probes.invariance import (
    Curves,
    affine_matrices,
    mean_over_steps,
    measure,
    output_stability,
    per_image,
    per_image_recovery,
    per_image_small_change,
    recovery_score,
    rotated_p_true,
    rotated_steps,
    rotation_claim,
    small_change,
    small_steps,
    step_values,
    symmetry_masks,
    transformed_inputs,
    transformed_steps,
    warp,
)


def image(size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.mark.parametrize("kind, identity", [("translation", 0.0), ("scale", 1.0), ("rotation", 0.0)])
def test_the_identity_step_gives_the_image_back(kind, identity):
    x = image()
    warped, coverage = warp(x, affine_matrices(kind, torch.tensor([identity]), 8))
    torch.testing.assert_close(warped[0], x, atol=1e-3, rtol=1e-5)
    assert torch.allclose(coverage, torch.ones_like(coverage), atol=1e-6)


def test_a_90_degree_rotation_is_rot90_counter_clockwise():
    x = image(10)
    theta = affine_matrices("rotation", torch.tensor([90.0, 180.0, 270.0]), 10)
    warped, _ = warp(x, theta)
    for k in range(3):
        torch.testing.assert_close(warped[k], torch.rot90(x, k + 1, dims=(-2, -1)), atol=1e-3, rtol=1e-5)


def test_a_whole_pixel_translation_shifts_down_and_shows_the_mean():
    x, mean = image(8), torch.full((3, 8, 8), 100.0)
    inputs = transformed_inputs(x.round().to(torch.uint8), mean, affine_matrices("translation", torch.tensor([2.0, -3.0]), 8),
                                crop=8, scale=0.5)
    expected = torch.zeros(2, 3, 8, 8)  # 0 = the mean, after mean subtraction
    pixels = x.round() - mean
    expected[0, :, 2:] = pixels[:, :-2]  # down by 2: rows 0-1 uncovered
    expected[1, :, :-3] = pixels[:, 3:]  # up by 3
    torch.testing.assert_close(inputs, expected * 0.5, atol=1e-3, rtol=1e-5)


def test_scale_2_of_a_ramp_is_the_hand_computed_zoom():
    # a ramp 0, 1, 2, 3 along x; output pixel centre i + 0.5 samples 2 + (i + 0.5 - 2) / 2 (pixel-edge
    # coordinates), i.e. the pixel coordinates 0.75, 1.25, 1.75, 2.25 of the ramp: exactly those values
    ramp = torch.arange(4.0).expand(3, 4, 4).clone()
    warped, coverage = warp(ramp, affine_matrices("scale", torch.tensor([2.0]), 4))
    torch.testing.assert_close(warped[0, 0], torch.tensor([0.75, 1.25, 1.75, 2.25]).expand(4, 4), atol=1e-5, rtol=0)
    assert torch.allclose(coverage, torch.ones_like(coverage))


def test_a_zoom_out_is_not_allowed_and_unknown_kinds_are_named():
    with pytest.raises(UserError, match="invariance.scale"):
        affine_matrices("scale", torch.tensor([0.0]), 4)
    with pytest.raises(UserError, match="shear"):
        affine_matrices("shear", torch.tensor([1.0]), 4)


def test_step_values_follow_the_config():
    assert step_values("translation", {"max": 0.25, "steps": 5}, 112).tolist() == [-28, -14, 0, 14, 28]
    assert step_values("scale", {"max": 1.8, "steps": 9}, 112).tolist() == pytest.approx([1 + i / 10 for i in range(9)])
    assert step_values("rotation", {"step": 10}, 112).tolist() == [10.0 * i for i in range(36)]


@torch.no_grad()
def test_measure_matches_hook_free_forward_passes():
    torch.manual_seed(0)
    model = build_model("zfnet", 4, input_size=64, width=0.125, fc_units=16, init="fan_in").eval()
    images = (torch.rand(2, 3, 68, 68) * 255).to(torch.uint8)
    mean, labels = torch.full((3, 68, 68), 120.0), torch.tensor([1, 3])
    theta = affine_matrices("rotation", torch.tensor([90.0, 0.0, 30.0]), 68)
    curves = measure(model, images, labels, mean, theta, crop=64, scale=0.02, layer1="relu1", batch_size=5)
    relu1, relu7 = [], []
    for n in range(2):
        views = torch.cat([((images[n:n + 1].float() - mean) * 0.02)[..., 2:66, 2:66],
                           transformed_inputs(images[n], mean, theta, 64, 0.02)])
        one = model.features[:2](views).flatten(1)  # conv1, relu1
        seven = model.classifier[:5](model.features(views).flatten(1))  # fc6 relu6 drop6 fc7 relu7
        relu1.append(torch.linalg.vector_norm(one[1:] - one[0], dim=1))
        relu7.append(((seven[1:] - seven[0]) ** 2).sum(1).sqrt())
        p = model(views).softmax(1)[:, labels[n]]
        torch.testing.assert_close(curves.p_true[n], p[1:].double(), atol=1e-6, rtol=1e-5)
        assert float(curves.base_p_true[n]) == pytest.approx(float(p[0]), abs=1e-6)
        assert float(curves.layer1_norm[n]) == pytest.approx(float(one[0].norm()), rel=1e-5)
    torch.testing.assert_close(curves.layer1, torch.stack(relu1).double(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(curves.layer7, torch.stack(relu7).double(), atol=1e-4, rtol=1e-4)
    assert curves.layer1[:, 1].abs().max() < 1e-3 * curves.layer1_norm.min()  # the identity step
    with pytest.raises(UserError, match="invariance.layer1"):
        measure(model, images, labels, mean, theta, crop=64, layer1="conv2")


def test_relative_divides_by_the_original_norm():
    ones = torch.ones(1, 2, dtype=torch.float64)
    curves = Curves(torch.tensor([[3.0, 6.0]]), ones, torch.tensor([3.0]), torch.tensor([0.0]), ones, ones, ones[0],
                    ones[0])
    assert curves.relative("layer1").tolist() == [[1.0, 2.0]]
    assert curves.relative("layer7").tolist() == [pytest.approx([1e12, 1e12])]  # a zero norm: clamped, not a division by 0


def test_small_steps_are_the_nearest_on_each_side():
    values = torch.tensor([-30.0, -20, -10, 0, 10, 20, 30])
    assert small_steps(values, 0.0, 2).tolist() == [1, 2, 4, 5]
    assert small_steps(torch.linspace(-30, 30, 7, dtype=torch.float64) - 1e-12, 0.0, 1).tolist() == [2, 4]  # rounding near 0
    assert small_steps(torch.tensor([1.0, 1.1, 1.2, 1.3]), 1.0, 2).tolist() == [1, 2]


def test_small_change_compares_relative_changes_over_the_small_steps():
    values = torch.tensor([-2.0, -1, 0, 1, 2])
    relative1 = torch.tensor([[9.0, 0.4, 0.0, 0.2, 9.0], [9.0, 0.1, 0.0, 0.1, 9.0]])
    relative7 = torch.tensor([[0.0, 0.1, 0.0, 0.1, 0.0], [0.0, 0.2, 0.0, 0.2, 0.0]])
    one, seven = per_image_small_change(relative1, relative7, values, 0.0, k=1)
    assert one.tolist() == pytest.approx([0.3, 0.1]) and seven.tolist() == pytest.approx([0.1, 0.2])  # steps -1, +1
    result = small_change(relative1, relative7, values, 0.0, k=1)
    assert result["steps"] == [-1.0, 1.0]
    assert result["layer1"] == pytest.approx(0.2) and result["layer7"] == pytest.approx(0.15)
    assert result["ratio"] == pytest.approx(0.75) and result["share_of_images"] == 0.5
    assert per_image_small_change(relative1[:, :1], relative7[:, :1], values[:1] * 0, 0.0, k=1) is None  # no small steps
    assert small_change(relative1[:, :1], relative7[:, :1], values[:1] * 0, 0.0, k=1)["layer1"] is None


def test_output_stability():
    p_true = torch.tensor([[0.9, 0.7], [0.3, 0.1]], dtype=torch.float64)
    top = torch.tensor([[1, 1], [0, 2]])
    result = output_stability(p_true, top, torch.tensor([1, 2]))
    assert result["mean_p_true"] == pytest.approx(0.5)
    assert result["worst_step_p_true"] == pytest.approx(0.4) and result["top_label_true"] == 0.75


def test_the_transformed_and_rotated_steps_leave_the_identity_out():
    assert transformed_steps(torch.tensor([-10.0, 0.0, 10.0]), 0.0).tolist() == [True, False, True]
    assert transformed_steps(torch.linspace(1.0, 1.8, 9), 1.0).tolist() == [False] + [True] * 8
    assert rotated_steps(torch.tensor([0.0, 10, 20, 30, 180, 340, 350]), guard=20).tolist() == \
        [False, False, False, True, True, False, False]  # 340 is 20 from upright: not beyond the guard
    p_true = torch.tensor([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], dtype=torch.float64)
    assert mean_over_steps(p_true, torch.tensor([True, False, True])).tolist() == pytest.approx([0.55, 0.75])
    assert mean_over_steps(p_true, torch.zeros(3, dtype=torch.bool)).isnan().all()


def test_symmetry_masks_and_recovery_score():
    angles = torch.arange(0.0, 360.0, 10.0)
    at, between = symmetry_masks(angles, 72.0, tolerance=5)
    assert angles[at].tolist() == [70, 140, 220, 290]
    assert angles[between].tolist() == [110, 180, 250]  # 108, 180, 252; not 36 or 324, next to 0
    at, between = symmetry_masks(angles, 90.0, tolerance=5)
    assert angles[at].tolist() == [90, 180, 270] and angles[between].tolist() == [130, 140, 220, 230]
    at, between = symmetry_masks(angles, 180.0, tolerance=5)
    assert angles[at].tolist() == [180] and not between.any()
    at90, between90 = symmetry_masks(angles, 90.0, tolerance=5)
    p_true = torch.where(at90, 0.9, torch.where(between90, 0.1, 0.5)).double().expand(2, -1)
    score = recovery_score(p_true, angles, 90.0, 5)
    assert score["at"] == pytest.approx(0.9) and score["between"] == pytest.approx(0.1)
    assert score["score"] == pytest.approx(0.8)
    assert recovery_score(p_true[:0], angles, 90.0, 5)["score"] is None
    assert recovery_score(p_true, angles, 180.0, 5)["score"] is None


def test_rotation_claim():
    scores = {"wheel": {"score": 0.5}, "star": {"score": 0.3}, "house": {"score": 0.1}, "car": {"score": -0.1}}
    result = rotation_claim(scores, ["wheel", "star"])
    assert result["symmetric_mean"] == pytest.approx(0.4) and result["other_mean"] == pytest.approx(0.0)
    assert result["difference"] == pytest.approx(0.4) and result["separated"]
    scores["car"]["score"] = 0.35
    result = rotation_claim(scores, ["wheel", "star"])
    assert not result["separated"] and result["difference"] == pytest.approx(0.175)
    assert rotation_claim(scores, [])["difference"] is None
    rotated = {"wheel": {"rotated": 0.9}, "house": {"rotated": 0.2}}
    assert rotation_claim(rotated, ["wheel"], key="rotated")["difference"] == pytest.approx(0.7)


def test_per_image_recovery_scores_each_image_at_its_own_period():
    angles = torch.arange(0.0, 360.0, 30.0)  # 0, 30, ..., 330
    # image 0 (period 120): at 120, 240; between (m + 1/2) 120 for m = 1: 180
    # image 1 (period 90): at 90, 180, 270; between 135, 225 (none within 5 degrees of a 30-degree step): NaN
    p_true = torch.arange(24, dtype=torch.float64).view(2, 12) / 100
    at, between = per_image_recovery(p_true, angles, [120.0, 90.0], tolerance=5)
    assert at[0] == pytest.approx((0.04 + 0.08) / 2) and between[0] == pytest.approx(0.06)
    assert at[1] == pytest.approx((0.15 + 0.18 + 0.21) / 3) and between[1].isnan()
    with pytest.raises(ValueError, match="periods"):
        per_image_recovery(p_true, angles, [120.0], tolerance=5)


def test_per_image_gathers_each_claims_measure():
    values = {"translation": torch.tensor([-1.0, 0.0, 1.0]), "scale": torch.tensor([1.0, 1.5, 2.0]),
              "rotation": torch.tensor([0.0, 10.0, 90.0, 180.0, 270.0])}
    ones = torch.ones(2, dtype=torch.float64)

    def curves(p_true, layer1, layer7, base=(0.9, 0.8)):
        k = p_true.shape[1]
        return Curves(layer1, layer7, 2 * ones, 4 * ones, p_true, torch.zeros(2, k, dtype=torch.long),
                      torch.tensor(base, dtype=torch.float64), torch.zeros(2, dtype=torch.long))

    t = torch.tensor([[0.7, 0.9, 0.5], [0.6, 0.8, 0.2]], dtype=torch.float64)
    s = torch.tensor([[0.9, 0.3, 0.1], [0.8, 0.4, 0.0]], dtype=torch.float64)
    r = torch.tensor([[0.9, 0.95, 0.2, 0.6, 0.4], [0.8, 0.85, 0.1, 0.1, 0.1]], dtype=torch.float64)
    layer1 = torch.tensor([[2.0, 0.0, 4.0], [1.0, 0.0, 1.0]], dtype=torch.float64)   # relative: / 2
    layer7 = torch.tensor([[4.0, 0.0, 0.0], [2.0, 0.0, 2.0]], dtype=torch.float64)   # relative: / 4
    zoom1 = torch.tensor([[0.0, 3.0, 9.0], [0.0, 1.0, 9.0]], dtype=torch.float64)     # the step 1.5 is index 1
    result = per_image({"translation": curves(t, layer1, layer7), "scale": curves(s, zoom1, layer7),
                        "rotation": curves(r, layer1[:, :1].expand(2, 5), layer7[:, :1].expand(2, 5))},
                       values, k=1, guard=20, tolerance=5, periods=[180.0, 90.0])
    assert result["base_p_true"].tolist() == pytest.approx([0.9, 0.8])
    # translation's small steps -1 and +1: layer 1 (2 + 4) / 2 / 2, (1 + 1) / 2 / 2; layer 7 (4 + 0) / 2 / 4, (2 + 2) / 2 / 4
    assert result["small_change"]["translation"]["layer1"].tolist() == pytest.approx([1.5, 0.5])
    assert result["small_change"]["translation"]["layer7"].tolist() == pytest.approx([0.5, 0.5])
    assert result["small_change"]["scale"]["layer1"].tolist() == pytest.approx([1.5, 0.5])  # the step 1.5 only: 3 / 2, 1 / 2
    assert result["p_true"]["translation"].tolist() == pytest.approx([0.6, 0.4])  # steps -1 and +1
    assert result["p_true"]["scale"].tolist() == pytest.approx([0.2, 0.2])        # steps 1.5 and 2
    assert result["p_true"]["rotated"].tolist() == pytest.approx([0.4, 0.1])      # 90, 180, 270; not 10 (the guard)
    # image 0 (period 180): at 180, no midpoint between two nonzero multiples; image 1 (period 90): at 90, 180, 270
    assert result["symmetry"]["at"].tolist() == pytest.approx([0.6, 0.1])
    assert result["symmetry"]["between"].isnan().all()
    assert per_image({"translation": curves(t, layer1, layer7), "scale": curves(s, layer1, layer7),
                      "rotation": curves(r, layer1[:, :1].expand(2, 5), layer7[:, :1].expand(2, 5))},
                     values, k=1, guard=20, tolerance=5, periods=None)["symmetry"] is None


def test_rotated_p_true_leaves_out_the_angles_near_zero():
    angles = torch.tensor([0.0, 10, 30, 180, 340, 350])
    p_true = torch.tensor([[1.0, 1.0, 0.2, 0.4, 0.3, 1.0]], dtype=torch.float64)
    assert rotated_p_true(p_true, angles, guard=20) == pytest.approx(0.3)  # 30, 180, 340
    assert rotated_p_true(p_true, torch.tensor([0.0, 10, 0, 0, 0, 5]), guard=20) is None
