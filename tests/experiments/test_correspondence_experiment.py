"""`zfnet.experiments.correspondence.run` called directly on a tiny network and a handful of made-up annotated
inputs: no stage, no files. Expected values are recomputed here with numpy from the network's own layer outputs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from zfnet.data.annotations import Annotation
from zfnet.errors import UserError
from zfnet.experiments import correspondence as experiment
from zfnet.experiments.correspondence_images import keep_usable
from zfnet.nets.models import build_model, get_layer

from conftest import random_model

CROP = 64
PARTS = ["right_eye", "left_eye", "nose"]
CLASSES = {"cats": 5, "dogs": 4}


def settings(**changes):
    return SimpleNamespace(**{"parts": PARTS, "random": True, "layer5": "relu5", "fill": 0.0, "draws": 6,
                              "images_per_draw": 3, **changes})


def face_notes() -> list[Annotation]:
    """Per class a few faces whose eyes and nose sit at slightly different (fractional) places."""
    notes = []
    for name, count in CLASSES.items():
        for i in range(count):
            dx, dy = 1.3 * i - 2, 0.7 * i - 1
            parts = {"right_eye": [18 + dx, 20 + dy, 27.5 + dx, 28 + dy], "left_eye": [36 + dx, 20 + dy, 45 + dx, 28.2 + dy],
                     "nose": [28.4 + dx, 32 + dy, 35 + dx, 41 + dy]}
            notes.append(Annotation(f"{name}/{i}.png", None, name, [12 + dx, 10 + dy, 52 + dx, 54 + dy], parts))
    return notes


@pytest.fixture(scope="module")
def tiny():
    model = random_model("zfnet", CROP)
    inputs = torch.randn(sum(CLASSES.values()), 3, CROP, CROP, generator=torch.Generator().manual_seed(1)) * 50
    control = build_model("zfnet", 10, input_size=CROP, width=0.25).eval()  # default init, never trained
    notes = face_notes()
    return model, control, notes, inputs, experiment.run(model, notes, inputs, settings(), seed=3, untrained=control,
                                                           batch_size=8, mean=torch.full((3, 72, 72), 100.0))


def outputs(model, layer: str, images: torch.Tensor) -> np.ndarray:
    """The layer's output for each image, flattened, read with a plain forward hook (float64)."""
    seen = []
    hook = get_layer(model, layer).register_forward_hook(lambda m, i, o: seen.append(o.flatten(1)))
    with torch.no_grad():
        model(images)
    hook.remove()
    return torch.cat(seen).double().numpy()


def test_part_and_random_boxes_round_outward_and_stay_on_the_object(tiny):
    *_, notes, _, result = tiny
    assert list(result.boxes) == [*PARTS, "random"]
    for part in PARTS:
        assert result.boxes[part] == [(math.floor(n.parts[part][0]), math.floor(n.parts[part][1]),
                                       math.ceil(n.parts[part][2]), math.ceil(n.parts[part][3])) for n in notes]
    for i, (x0, y0, x1, y1) in enumerate(result.boxes["random"]):
        heights = [math.ceil(n[3]) - math.floor(n[1]) for n in notes[i].parts.values()]
        widths = [math.ceil(n[2]) - math.floor(n[0]) for n in notes[i].parts.values()]
        assert (y1 - y0, x1 - x0) == (round(np.mean(heights)), round(np.mean(widths)))
        ox0, oy0, ox1, oy1 = notes[i].box
        assert math.floor(ox0) <= x0 and x1 <= math.ceil(ox1) and math.floor(oy0) <= y0 and y1 <= math.ceil(oy1)


def test_features_are_the_unoccluded_then_each_occluded_view(tiny):
    model, _, _, inputs, result = tiny
    assert result.layers == {"layer5": "relu5", "layer7": "relu7"}
    occluded = inputs.clone()
    for i, (x0, y0, x1, y1) in enumerate(result.boxes["nose"]):
        occluded[i, :, y0:y1, x0:x1] = 0.0
    for key, layer in result.layers.items():
        x = result.features[key]
        assert x.shape[:2] == (1 + len(result.boxes), len(inputs))
        np.testing.assert_allclose(x[0].double().numpy(), outputs(model, layer, inputs), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(x[1 + PARTS.index("nose")].double().numpy(), outputs(model, layer, occluded),
                                   rtol=1e-4, atol=1e-4)


def delta_by_hand(e: np.ndarray, draw: list[int]) -> tuple[float, float]:
    """Mean over the ordered pairs of the draw of the share of coordinates whose signs differ: all coordinates,
    then leaving out those zero in both."""
    strict, ignore = [], []
    for i in draw:
        for j in draw:
            if i != j:
                a, b = np.sign(e[i]), np.sign(e[j])
                strict.append(np.mean(a != b))
                kept = (a != 0) | (b != 0)
                ignore.append(np.mean(a[kept] != b[kept]))
    return float(np.mean(strict)), float(np.mean(ignore))


@pytest.mark.parametrize("occlusion, layer", [("nose", "layer5"), ("random", "layer7"), ("left_eye", "layer7")])
def test_the_table_is_delta_over_the_draws_recomputed_by_hand(tiny, occlusion, layer):
    model, _, notes, inputs, result = tiny
    o = list(result.boxes).index(occlusion)
    x = result.features[layer].double().numpy()
    e = x[0] - x[o + 1]
    for name, count in CLASSES.items():
        members = [i for i, n in enumerate(notes) if n.class_name == name]
        entry = result.evidence["classes"][name]
        assert entry["paths"] == [notes[i].path for i in members]
        draws = np.asarray(entry["per_draw"]["images"]).tolist()
        assert len(draws) == 6 and all(len(set(d)) == 3 and max(d) < count for d in draws)
        by_hand = np.array([delta_by_hand(e, [members[i] for i in d]) for d in draws])
        row = result.metrics["classes"][name]["table"][occlusion][layer]
        assert row["mean"] == pytest.approx(by_hand[:, 0].mean(), abs=1e-6)
        assert row["std"] == pytest.approx(by_hand[:, 0].std(), abs=1e-6)
        assert row["mean_ignore_zeros"] == pytest.approx(by_hand[:, 1].mean(), abs=1e-6)
        np.testing.assert_allclose(entry["per_draw"]["delta"][occlusion][layer], by_hand[:, 0], atol=1e-6)
        assert row["zero_share"] == pytest.approx(np.mean(e[members] == 0))
    average = result.metrics["average"]["table"][occlusion][layer]["mean"]
    assert average == pytest.approx(np.mean([result.metrics["classes"][c]["table"][occlusion][layer]["mean"]
                                             for c in CLASSES]))


def test_random_minus_parts_and_the_metric_settings(tiny):
    *_, result = tiny
    metrics = result.metrics
    assert list(metrics) == ["layers", "layer5_setting", "images", "images_per_draw", "draws", "fill",
                             "occluder_mean_hw", "classes", "average", "layer_shapes", "untrained"]
    assert metrics["images"] == 9 and metrics["average"]["classes"] == list(CLASSES)
    table = metrics["average"]["table"]
    for layer in ("layer5", "layer7"):
        parts = np.mean([table[p][layer]["mean"] for p in PARTS])
        assert metrics["average"]["random_minus_parts"][layer] == pytest.approx(table["random"][layer]["mean"] - parts)
    heights = [b[3] - b[1] for b in result.boxes["nose"]]
    assert metrics["occluder_mean_hw"]["nose"][0] == pytest.approx(np.mean(heights))


def test_the_untrained_control_has_the_same_draws_and_other_deltas(tiny):
    model, control, notes, inputs, result = tiny
    assert result.metrics["untrained"]["seed"] == 3 and result.metrics["untrained"]["init"] == control.options["init"]
    for name, entry in result.evidence["untrained"]["classes"].items():
        trained = result.evidence["classes"][name]
        assert entry["paths"] == trained["paths"]
        assert torch.equal(entry["per_pair"]["images"], trained["per_pair"]["images"])
        assert entry["per_pair"]["delta"]["nose"]["layer7"] != trained["per_pair"]["delta"]["nose"]["layer7"]
    alone = experiment.run(model, notes, inputs, settings(), seed=3, batch_size=8)
    assert "untrained" not in alone.metrics and "untrained" not in alone.evidence
    assert alone.metrics["average"] == result.metrics["average"]  # the control changes nothing of the trained run


def test_a_class_draws_the_same_images_whoever_else_runs(tiny):
    model, _, notes, inputs, result = tiny
    dogs = [n for n in notes if n.class_name == "dogs"]
    alone = experiment.run(model, dogs, inputs[-len(dogs):], settings(random=False), seed=3, batch_size=8)
    assert torch.equal(alone.evidence["classes"]["dogs"]["per_draw"]["images"],
                       result.evidence["classes"]["dogs"]["per_draw"]["images"])
    assert alone.metrics["classes"]["dogs"]["table"]["nose"] == result.metrics["classes"]["dogs"]["table"]["nose"]
    assert alone.metrics["average"]["random_minus_parts"] is None


def test_the_fill_reaches_the_occluded_views_and_fig8_pixels(tiny):
    model, _, notes, inputs, result = tiny
    bright = experiment.run(model, notes, inputs, settings(fill=40.0), seed=3, batch_size=8,
                            mean=torch.full((3, 72, 72), 100.0), input_scale=0.5)
    assert bright.metrics["fill"] == 40.0
    assert bright.metrics["classes"]["cats"]["table"]["nose"] != result.metrics["classes"]["cats"]["table"]["nose"]
    rows, boxes, columns, names = bright.examples
    assert columns == ["original", *PARTS, "random"] and len(rows) == 4  # 2 per class
    assert names[0] == "cats\n0" and names[2] == "dogs\n0"
    x0, y0, x1, y1 = boxes[0][1 + PARTS.index("nose")]
    nose = rows[0][1 + PARTS.index("nose")]
    assert nose.dtype == np.uint8 and nose.shape == (CROP, CROP, 3)
    assert (nose[y0:y1, x0:x1] == 40.0 / 0.5 + 100).all()  # the fill, back in pixels
    expected = np.clip(np.round(inputs[0].permute(1, 2, 0).numpy() / 0.5 + 100), 0, 255)
    np.testing.assert_array_equal(rows[0][0], expected)


def test_table_rows_sit_beside_the_paper(tiny):
    *_, result = tiny
    rows = result.table_rows()
    assert len(rows) == (len(CLASSES) + 1) * 4 * 2 and all(len(r) == len(experiment.TABLE_COLUMNS) for r in rows)
    nose5 = next(r for r in rows if r[:3] == ["average", "nose", "layer5"])
    assert nose5[3] == result.metrics["average"]["table"]["nose"]["layer5"]["mean"] and nose5[-2:] == [0.079, 0.017]


def test_auto_layer5_is_the_map_nearest_6x6(tiny):
    model, *_ = tiny
    shapes = {}
    hooks = [get_layer(model, layer).register_forward_hook(lambda m, i, o, layer=layer: shapes.__setitem__(layer, o.shape))
             for layer in ("pool5", "relu5")]
    with torch.no_grad():
        model(torch.zeros(1, 3, CROP, CROP))
    for hook in hooks:
        hook.remove()
    nearest = min(("pool5", "relu5"), key=lambda n: abs(shapes[n][2] - 6) + abs(shapes[n][3] - 6))
    assert experiment.choose_layer5(model, "auto", CROP) == nearest
    assert experiment.choose_layer5(model, "pool5", CROP) == "pool5"


def test_keep_usable_drops_parts_outside_the_crop_then_small_classes():
    notes = face_notes()
    for i in (0, 5):  # cats/0 and dogs/0: the nose wholly outside the 64 px crop
        notes[i].parts["nose"] = [70.0, 70.0, 80.0, 80.0]
    assert [n.path for n in keep_usable(notes, PARTS, 3, CROP)] == [n.path for i, n in enumerate(notes) if i not in (0, 5)]
    assert [n.path for n in keep_usable(notes, PARTS, 4, CROP)] == ["cats/1.png", "cats/2.png", "cats/3.png", "cats/4.png"]
    with pytest.raises(UserError, match=r"^correspondence\.images_per_draw: no class has 5"):
        keep_usable(notes, PARTS, 5, CROP)
