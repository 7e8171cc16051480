"""`zfnet.experiments.invariance.run` called directly on a tiny prepared split and a tiny network (no stage, no
config files): every number checked against a forward pass done here by hand."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from zfnet.data.prepare import PreparedSplit, prepare_split
from zfnet.data.synthetic.catalogue import SyntheticSpec
from zfnet.experiments import invariance as E
from zfnet.nets.models import build_model
from zfnet.probes.invariance_scenes import rerendered

SIZE, CROP, SCALE = 72, 64, 0.02
CLASSES = ("dog_face", "house", "wheel")  # built-in class names, so the generator can re-render them
PER_CLASS = 2
INFO = {"wheel": {"family": "radial", "rot_symmetric": True, "symmetry_angle": 120.0},
        "dog_face": {"family": "object", "rot_symmetric": False, "symmetry_angle": None}}  # house: not listed
RECORD = {"rotation": 5.0, "scale": 0.5, "center": [32.0, 32.0]}  # every image's pose in the generator's metadata


def settings(**changes) -> SimpleNamespace:
    """translation -8, 0, 8 px (0.125 of the 64 px input); scale 1, 1.5; rotation 0, 60, ..., 300."""
    values = dict(translation={"max": 0.125, "steps": 3}, scale={"max": 1.5, "steps": 2}, rotation={"step": 60},
                  layer1="pool1", batch_size=64, examples=["wheel", "zebra"], small_steps=1, symmetry_tolerance=5.0,
                  symmetry_guard=20.0, control_angle=90.0, rerender_images=0)
    return SimpleNamespace(**{**values, **changes})


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("zfnet", len(CLASSES), input_size=CROP, width=0.25, init="fan_in").eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("invariance")
    rng = np.random.default_rng(3)
    for c, name in enumerate(CLASSES):
        (root / "raw" / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            image[10:40, 20:50, c] = 255
            Image.fromarray(image).save(root / "raw" / name / f"{name}_{i:05d}.png")
    prepare_split(root / "raw", root / "val", SIZE, classes=list(CLASSES), compute_mean=False, workers=1,
                  progress=False)
    split = PreparedSplit(root / "val")
    images = torch.stack([split[i][0] for i in range(len(split))]).float()
    hparams = {"mean": images.mean(0), "crop": CROP, "input_scale": SCALE}
    return SimpleNamespace(split=split, images=images, hparams=hparams, labels=torch.as_tensor(split.labels))


@pytest.fixture(scope="module")
def measured(data):
    return E.run(tiny_model(0), data.split, range(len(data.split)), data.hparams, settings(), seed=7,
                 untrained=tiny_model(1), class_info=INFO)


def by_hand(model, images, mean) -> torch.Tensor:
    """(n, classes) softmax of the centre views of uint8-valued `images` (n, 3, SIZE, SIZE)."""
    offset = (SIZE - CROP) // 2
    views = ((images - mean) * SCALE)[..., offset:offset + CROP, offset:offset + CROP]
    with torch.no_grad():
        return model(views).double().softmax(1)


def p_true_of(probabilities, labels) -> np.ndarray:
    return probabilities[torch.arange(len(labels)), labels].numpy()


def test_the_curves_are_the_networks_outputs_on_the_transformed_images(data, measured):
    n = len(data.split)
    assert measured.indices == list(range(n)) and measured.classes == list(CLASSES)
    assert [len(measured.values[k]) for k in ("translation", "scale", "rotation")] == [3, 2, 6]
    for net, model in ((measured.curves, tiny_model(0)), (measured.control, tiny_model(1))):
        upright = by_hand(model, data.images, data.hparams["mean"])
        turned = by_hand(model, data.images.flip(-2, -1), data.hparams["mean"])  # 180 degrees: both axes flipped
        np.testing.assert_allclose(net["translation"].p_true[:, 1], p_true_of(upright, data.labels), atol=1e-5)
        np.testing.assert_allclose(net["rotation"].base_p_true, p_true_of(upright, data.labels), atol=1e-5)
        np.testing.assert_allclose(net["rotation"].p_true[:, 3], p_true_of(turned, data.labels), atol=1e-4)
        assert all(c.p_true.shape == (n, len(measured.values[k])) for k, c in net.items())
    errors = (by_hand(tiny_model(0), data.images, data.hparams["mean"]).argmax(1) != data.labels).double().mean()
    assert measured.metrics["base_top1_error"] == pytest.approx(float(errors))
    assert not np.allclose(measured.curves["rotation"].p_true, measured.control["rotation"].p_true, atol=1e-3)


def test_the_metrics_are_the_means_of_the_per_image_evidence(measured):
    metrics, evidence = measured.metrics, measured.evidence
    assert metrics["images"] == evidence["images"] == 6 and metrics["steps"] == evidence["steps"]
    assert metrics["steps"]["translation"] == [-8.0, 0.0, 8.0] and metrics["steps"]["rotation"] == [0, 60, 120, 180,
                                                                                                    240, 300]
    for mine, net in ((metrics, evidence), (metrics["untrained"], evidence["untrained"])):
        for kind in ("translation", "scale", "rotation"):
            curves = {k: np.array(v) for k, v in net["curves"][kind].items()}
            assert mine[kind]["output"]["mean_p_true"] == pytest.approx(curves["p_true"].mean(), abs=1e-6)
            assert mine[kind]["layer7_relative_mean"] == pytest.approx(curves["layer7"].mean(), abs=1e-6)
        translation = np.array(net["curves"]["translation"]["layer7"])   # the small steps: -8 and 8
        np.testing.assert_allclose(net["small_change"]["translation"]["layer7"], translation[:, [0, 2]].mean(1),
                                   atol=2e-6)
    assert metrics["untrained"]["seed"] == 7 == evidence["untrained"]["seed"]
    assert metrics["untrained"]["init"] == "fan_in"


def test_each_class_is_scored_at_its_own_symmetry(data, measured):
    evidence, labels = measured.evidence, data.labels.numpy()
    wheel = labels == CLASSES.index("wheel")
    assert evidence["symmetric"] == wheel.astype(int).tolist()
    assert evidence["symmetry_order"] == np.where(wheel, 3, 1).tolist()     # 360 / 120
    assert evidence["period"] == np.where(wheel, 120.0, 90.0).tolist()      # the others at the control angle
    rotation = np.array(evidence["curves"]["rotation"]["p_true"])          # 0, 60, ..., 300
    # at 120 and 240; between them 180 (the midpoints next to upright, 60 and 300, are left out)
    at, between = rotation[wheel][:, [2, 4]].mean(1), rotation[wheel][:, 3]
    np.testing.assert_allclose(np.array(evidence["symmetry"]["at"])[wheel], at, atol=2e-6)
    score = measured.metrics["rotation"]["symmetry"]["classes"]["wheel"]
    assert score["at"] == pytest.approx(at.mean(), abs=1e-5) and score["between"] == pytest.approx(between.mean(),
                                                                                                   abs=1e-5)
    assert measured.marks == {"wheel": [120.0, 240.0]}
    rows = E.table_rows(measured)
    assert [row[:4] for row in rows] == [["dog_face", "object", False, 90.0], ["house", "all classes", False, 90.0],
                                         ["wheel", "radial", True, 120.0]]
    assert all(len(row) == len(E.TABLE_COLUMNS) for row in rows)
    curves = {c.name: c for c in measured.class_curves["rotation"]}
    np.testing.assert_allclose(curves["wheel"].mean["p_true"], rotation[wheel].mean(0), atol=2e-6)
    np.testing.assert_allclose(curves["wheel"].std["p_true"], rotation[wheel].std(0), atol=2e-6)


def test_fig5_shows_the_first_image_of_each_named_class(data, measured, caplog):
    first_wheel = CLASSES.index("wheel") * PER_CLASS
    assert measured.fig5_names == [f"wheel (val {first_wheel})"]      # "zebra" is no class here: skipped
    rotation = measured.fig5[2]
    assert [row.kind for row in measured.fig5] == ["translation", "scale", "rotation"]
    assert rotation.views.shape == (1, 5, CROP, CROP, 3) and list(rotation.shown) == [0, 60, 120, 240, 300]
    offset = (SIZE - CROP) // 2
    upright = data.images[first_wheel, :, offset:offset + CROP, offset:offset + CROP].permute(1, 2, 0) / 255
    np.testing.assert_allclose(rotation.views[0, 0], upright.numpy(), atol=1e-5)
    np.testing.assert_allclose(rotation.p_true[0], measured.curves["rotation"].p_true[first_wheel], atol=1e-6)
    with caplog.at_level(logging.WARNING, logger="zfnet"):
        assert E.example_indices(data.split, ["zebra", "house"]) == [CLASSES.index("house") * PER_CLASS]
    assert "zebra" in caplog.text


def test_without_a_control_or_class_info_those_parts_are_left_out(data, measured):
    alone = E.run(tiny_model(0), data.split, range(len(data.split)), data.hparams, settings(examples=[]), seed=7)
    assert "untrained" not in alone.metrics and "untrained" not in alone.evidence and alone.control is None
    assert alone.metrics["rotation"]["symmetry"] is None and alone.evidence["symmetric"] is None
    assert E.table_rows(alone) == [] and alone.marks == {} and alone.fig5 == []
    assert {c.family for c in alone.class_curves["scale"]} == {"all classes"}
    for kind in ("translation", "scale"):   # the same numbers as with them: nothing else depends on them
        assert alone.metrics[kind] == measured.metrics[kind]


def test_the_rerendered_scenes_are_measured_on_a_seeded_subset(data, measured):
    spec = SyntheticSpec(image_size=64, jpeg_quality=95)
    records = {f"val/{name}": RECORD for name in data.split.files}
    model = tiny_model(0)
    result = E.run(model, data.split, range(len(data.split)), data.hparams, settings(examples=[], rerender_images=2),
                   seed=7, class_info=INFO, scenes=E.Scenes(spec, records, "val"))
    rerender = result.metrics["rerendered"]
    assert rerender["images"] == 2 and rerender["distractors"] == 0
    assert set(rerender) == {"images", "distractors", "scenes", "image_space_same_images"}
    chosen = [int(name.split("(val ")[1].rstrip(")")) for name in result.rerendered_names]
    assert len(set(chosen)) == 2
    # the image-space metrics on the same images are the full run's curves on those rows
    same = measured.curves["translation"].p_true[chosen]
    assert rerender["image_space_same_images"]["translation"]["output"]["mean_p_true"] == pytest.approx(
        float(same.mean()), abs=1e-6)
    # the re-rendered reference scene, through the network by hand: the identity step (translation 0)
    references = torch.stack([torch.from_numpy(rerendered(spec, f"val/{data.split.files[i]}", RECORD, "translation",
                                                          [0.0], SIZE)[0]).permute(2, 0, 1) for i in chosen])
    expected = p_true_of(by_hand(model, references.float(), data.hparams["mean"]), data.labels[chosen])
    translation = result.rerendered[0]
    assert translation.kind == "translation" and translation.views.shape[:2] == (2, 3)
    np.testing.assert_allclose(translation.p_true[:, 1], expected, atol=1e-5)
    assert rerender["scenes"]["translation"]["output"]["mean_p_true"] != pytest.approx(float(same.mean()), abs=1e-4)


def test_the_figures_draw_what_the_result_holds(measured):
    from zfnet.viz.invariance import figures

    drawn = figures(measured, "tiny")
    try:
        assert list(drawn) == ["fig5", "classes_translation", "classes_scale", "classes_rotation"]
    finally:
        import matplotlib.pyplot as plt

        for figure in drawn.values():
            plt.close(figure)
