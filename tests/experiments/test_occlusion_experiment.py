"""zfnet.experiments.occlusion.run called directly on a tiny network and six in-memory images (no stage, no files).

Each image is a flat colour with a bright square; its annotation (box and mask, in the 64 px input) is that
square, except image 1 (box only) and image 2 (no annotation). The expected numbers below are worked out here
from the model's outputs on hand-occluded inputs and from the boxes and masks, not from the measures module.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zfnet.data.annotations import Annotation
from zfnet.data.images import ImageSet
from zfnet.experiments.occlusion import TABLE_COLUMNS, run, table_rows
from zfnet.nets.models import build_model
from zfnet.probes.top9 import top_activations

from conftest import random_model

SIZE, CROP, PATCH, STRIDE, CLASSES, SQUARE = 72, 64, 16, 8, 10, 24
SIDE = (CROP - PATCH) // STRIDE + 1
INDICES = [4, 0, 7, 2, 9, 5]  # dataset positions, deliberately unsorted
LABELS = [3, 3, 1, 5, 1, 5]
TOLERANCE = 15 * CROP / 224


def settings(**changes):
    values = dict(patch=PATCH, stride=STRIDE, fill=0.0, mode="exact", batch_size=64, figure_per_class=1,
                  approximate={"coarse": 2, "drill": 0.4, "threshold": 1.0}, pointing_tolerance=15,
                  object_share=0.5)
    return SimpleNamespace(**{**values, **changes})


def dataset() -> tuple[list, list[list[int]]]:
    """Ten (uint8 image, label) pairs and, per pair, its square's box [x0, y0, x1, y1] in the centre crop."""
    rng = np.random.default_rng(0)
    pairs, boxes = [], []
    offset = (SIZE - CROP) // 2
    for k in range(10):
        image = np.full((3, SIZE, SIZE), rng.integers(40, 200, (3, 1, 1)), dtype=np.uint8)
        y, x = (int(v) for v in rng.integers(offset, offset + CROP - SQUARE, 2))
        image[:, y:y + SQUARE, x:x + SQUARE] = 255
        pairs.append((torch.from_numpy(image), k % CLASSES))
        boxes.append([x - offset, y - offset, x - offset + SQUARE, y - offset + SQUARE])
    return pairs, boxes


def annotations(boxes) -> list:
    notes = []
    for n, index in enumerate(INDICES):
        x0, y0, x1, y1 = boxes[index]
        mask = np.zeros((CROP, CROP), dtype=bool)
        mask[y0:y1, x0:x1] = True
        notes.append(None if n == 2 else Annotation(f"{index}.png", LABELS[n], None, [float(v) for v in boxes[index]],
                                                    mask=None if n == 1 else mask))
    return notes


def sensitive_model():
    """random_model with He-initialized fully connected layers too: p(true) moves when the occluder does."""
    model = random_model("zfnet", CROP)
    torch.manual_seed(1)
    for module in model.classifier:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(module.weight)
    return model


@pytest.fixture(scope="module")
def inputs():
    pairs, boxes = dataset()
    images = ImageSet(pairs, torch.full((3, SIZE, SIZE), 128.0), CROP, INDICES, scale=1 / 64)
    torch.manual_seed(7)
    control = build_model("zfnet", CLASSES, input_size=CROP, width=0.25, init="fan_in").eval()
    model, every_image = sensitive_model(), ImageSet(pairs, torch.full((3, SIZE, SIZE), 128.0), CROP, scale=1 / 64)
    top = top_activations(model, every_image.batches(4), ["conv5"], k=4)["conv5"]  # what visualize's top9.pt holds
    return SimpleNamespace(model=model, images=images, labels=torch.tensor(LABELS), boxes=[boxes[i] for i in INDICES],
                           notes=annotations(boxes), control=control, every_image=every_image, top=top)


@pytest.fixture(scope="module")
def result(inputs):
    return run(inputs.model, inputs.images, inputs.labels, settings(), notes=inputs.notes, untrained=inputs.control,
               seed=7, normalize_down=False, others=(inputs.top, inputs.every_image))


@pytest.fixture(scope="module")
def bare(inputs):
    """No annotations, no control, no other images; two figure rows per class."""
    return run(inputs.model, inputs.images, inputs.labels, settings(figure_per_class=2), seed=7, normalize_down=False)


def p_true(model, images: torch.Tensor, labels, i: int | None = None, j: int | None = None, fill: float = 0.0):
    """p(true class) with the occluder's top-left corner at (i * STRIDE, j * STRIDE), or unoccluded."""
    images = images.clone()
    if i is not None:
        images[:, :, i * STRIDE:i * STRIDE + PATCH, j * STRIDE:j * STRIDE + PATCH] = fill
    with torch.no_grad():
        return model(images).softmax(dim=1)[torch.arange(len(images)), labels].double()


def test_the_maps_are_the_model_on_occluded_inputs(inputs, result):
    images = inputs.images.inputs(range(len(INDICES)))
    assert result.sweep.p_true.shape == (len(INDICES), SIDE, SIDE) and result.metrics["grid"] == SIDE
    for i, j in ((0, 0), (2, 5), (SIDE - 1, SIDE - 1)):
        torch.testing.assert_close(result.sweep.p_true[:, i, j].double(), p_true(inputs.model, images, inputs.labels,
                                                                                 i, j), atol=2e-6, rtol=1e-4)
    with torch.no_grad():
        predicted = inputs.model(images).argmax(dim=1)
    assert result.metrics["base_top1_error"] == pytest.approx(float((predicted != inputs.labels).double().mean()))
    assert result.metrics["images"] == len(INDICES) and result.indices == INDICES
    assert result.maps()["image_index"].tolist() == INDICES


def test_the_fill_setting_reaches_the_sweep(inputs):
    filled = run(inputs.model, inputs.images, inputs.labels, settings(fill=0.7), seed=7, normalize_down=False)
    images = inputs.images.inputs(range(len(INDICES)))
    expected = p_true(inputs.model, images, inputs.labels, 3, 2, fill=0.7)
    torch.testing.assert_close(filled.sweep.p_true[:, 3, 2].double(), expected, atol=2e-6, rtol=1e-4)
    assert (expected - p_true(inputs.model, images, inputs.labels, 3, 2)).abs().max() > 1e-3
    assert filled.metrics["fill"] == 0.7 and "untrained" not in filled.metrics and "untrained" not in filled.evidence


def largest_drop_centre(drop: np.ndarray) -> tuple[float, float]:
    i, j = divmod(int(drop.argmax()), SIDE)
    return j * STRIDE + PATCH / 2, i * STRIDE + PATCH / 2


def test_the_pointing_games_worked_out_by_hand(inputs, result):
    drops = (result.sweep.base_p_true[:, None, None] - result.sweep.p_true).double().numpy()
    box_hits, mask_hits = [], []
    for n, (x0, y0, x1, y1) in enumerate(inputs.boxes):
        x, y = largest_drop_centre(drops[n])
        if n != 2:
            box_hits.append(math.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1)) <= TOLERANCE)
        if n not in (1, 2):  # the mask's pixels are unit squares: the same square as the box
            mask_hits.append(math.hypot(max(x0 - x, 0, x - x1), max(y0 - y, 0, y - y1)) <= TOLERANCE)
    game, masked = result.metrics["pointing_game"], result.metrics["pointing_game_mask"]
    assert game["images"] == 5 and masked["images"] == 4
    assert game["accuracy"] == pytest.approx(np.mean(box_hits))
    assert masked["accuracy"] == pytest.approx(np.mean(mask_hits))
    assert game["tolerance_px"] == pytest.approx(TOLERANCE)
    centre_hits = [math.hypot(max(x0 - 32, 0, 32 - x1), max(y0 - 32, 0, 32 - y1)) <= TOLERANCE
                   for n, (x0, y0, x1, y1) in enumerate(inputs.boxes) if n != 2]
    assert game["centre_baseline"] == pytest.approx(np.mean(centre_hits))
    evident = [drops[n].max() >= 0.01 for n in range(len(INDICES)) if n != 2]
    assert game["evident_images"] == sum(evident)


def test_object_and_background_means_worked_out_by_hand(inputs, result):
    p = result.sweep.p_true.double().numpy()
    base = result.sweep.base_p_true.double().numpy()
    changed = (result.sweep.top_label != result.sweep.base_label[:, None, None]).numpy()
    object_drops, background_drops = [], []
    for n, (x0, y0, x1, y1) in enumerate(inputs.boxes):
        if n in (1, 2):  # no mask
            assert result.evidence["object_p_true"][n] is None and result.evidence["background_log_odds"][n] is None
            continue
        share = np.array([[max(0, min(i * STRIDE + PATCH, y1) - max(i * STRIDE, y0))
                           * max(0, min(j * STRIDE + PATCH, x1) - max(j * STRIDE, x0)) / PATCH ** 2
                           for j in range(SIDE)] for i in range(SIDE)])
        on_object, background = share >= 0.5, share == 0
        assert on_object.any() and background.any()
        assert result.evidence["object_p_true"][n] == pytest.approx(p[n][on_object].mean(), abs=1e-6)
        assert result.evidence["background_p_true"][n] == pytest.approx(p[n][background].mean(), abs=1e-6)
        object_drops.append(base[n] - p[n][on_object].mean())
        background_drops.append(base[n] - p[n][background].mean())
    drop = result.metrics["p_true_drop"]
    assert drop["images"] == 4
    assert drop["object"] == pytest.approx(np.mean(object_drops))
    assert drop["background"] == pytest.approx(np.mean(background_drops))
    assert result.metrics["top_label_change"]["positions"] == pytest.approx(changed.mean())
    assert result.metrics["top_label_change"]["images"] == pytest.approx(changed.any(axis=(1, 2)).mean())


def test_the_evidence_columns_are_per_image_and_sum_up_to_the_metrics(inputs, result):
    columns = {name: column for name, column in result.evidence.items() if name != "untrained"}
    assert {len(column) for column in columns.values()} == {len(INDICES)}
    assert columns["image"] == INDICES and columns["label"] == LABELS
    np.testing.assert_allclose(columns["p_true"], p_true(inputs.model, inputs.images.inputs(range(len(INDICES))),
                                                         inputs.labels).numpy(), atol=2e-6)
    covering, elsewhere = np.array(columns["layer5_covering_drop"]), np.array(columns["layer5_elsewhere_drop"])
    drop = result.metrics["layer5_map_drop"]
    assert drop["images_covered"] == len(INDICES)
    assert drop["covering_projection"] == pytest.approx(covering.mean(), abs=1e-6)
    assert drop["share_of_images_where_covering_drops_more"] == pytest.approx(np.mean(covering > elsewhere))
    rows = table_rows(result, [f"class{k}" for k in range(CLASSES)])
    assert [len(row) for row in rows] == [len(TABLE_COLUMNS)] * len(INDICES)
    assert [row[0] for row in rows] == INDICES and rows[2][1] == "class1" and rows[2][5] is None


def test_the_untrained_control_is_the_control_net_swept_on_the_same_images(inputs, result):
    block, columns = result.metrics["untrained"], result.evidence["untrained"]
    assert block["seed"] == columns["seed"] == 7 and block["init"] == "fan_in"
    assert list(result.metrics)[-1] == "untrained" and list(result.evidence)[-1] == "untrained"
    assert "image" not in columns and len(columns["p_true"]) == len(INDICES)
    expected = p_true(inputs.control, inputs.images.inputs(range(len(INDICES))), inputs.labels).numpy()
    np.testing.assert_allclose(columns["p_true"], expected, atol=2e-6)
    assert np.abs(np.array(result.evidence["p_true"]) - expected).max() > 1e-3  # the trained net's differ
    assert result.untrained_sweep.p_true.shape == result.sweep.p_true.shape
    assert block["p_true_drop"]["images"] == 4 and block["layer5_map_drop"]["images_covered"] == len(INDICES)


def test_without_annotations_only_the_maps_are_measured(bare):
    assert bare.metrics["pointing_game"] is None and bare.metrics["p_true_drop"] is None
    assert set(bare.metrics["top_label_change"]) == {"positions", "images"}
    assert all(v is None for v in bare.evidence["object_p_true"])
    assert {label: len(rows) for label, rows in bare.rows.items()} == {1: 2, 3: 2, 5: 2}


def test_figure_rows_take_the_first_images_of_each_class_and_the_others_tiles(inputs, result, bare):
    assert sorted(result.rows) == [1, 3, 5]
    first = {label: LABELS.index(label) for label in (1, 3, 5)}
    for label, (row,) in result.rows.items():
        n = first[label]
        assert row.caption == f"val image {INDICES[n]}" and row.channel == int(result.sweep.channel[n])
        np.testing.assert_array_equal(row.p_true, result.sweep.p_true[n].numpy())
        assert row.image.shape == (CROP, CROP, 3) and row.image.max() <= 1
        assert [r.caption for r in bare.rows[label]] == [f"val image {INDICES[m]}" for m in range(6)
                                                         if LABELS[m] == label]
    alone = bare.rows[1][0].projection  # this image's tile only, in a 3-column mosaic with 1 px gaps
    side = alone.shape[0] - 2
    assert alone.shape[1] == 3 * (side + 1) + 1
    np.testing.assert_array_equal(alone[1, 1:side + 1], [[1.0, 0.0, 0.0]] * side)  # outlined in red
    # with `others`: this image's tile, then the map's positive top activations in other images (never this one)
    row, top = result.rows[1][0], inputs.top
    others = sum(1 for rank in range(4) if top.values[row.channel, rank] > 0
                 and int(top.image_index[row.channel, rank]) != INDICES[first[1]])
    assert others > 0
    assert row.projection.shape == ((side + 1) * math.ceil((1 + others) / 3) + 1, alone.shape[1], 3)
    np.testing.assert_array_equal(row.projection[:side + 2, :side + 2], alone[:, :side + 2])
