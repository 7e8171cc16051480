"""zfnet.experiments.transfer.run called directly on tiny inputs: hand-made features and labels, no stage, no files."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from zfnet.errors import UserError
from zfnet.experiments import transfer
from zfnet.nets.models import build_model
from zfnet.transfer.datasets import TargetSet
from zfnet.viz.transfer import figures

SIZE, CROP, PER_CLASS = 72, 64, 6
CLASSES = ["ant", "bee", "cow"]
TRAINER = SimpleNamespace(accelerator="cpu", precision="32-true", deterministic=True, benchmark=False)
ARCH, RECIPE = {"name": "zfnet", "width": 0.25}, {"lr": 0.01}  # passed through to the from-scratch runs


def settings(**changes):
    base = {"layer": 7, "layers": [1, 7], "classifiers": ["svm", "softmax"], "folds": 2, "seed": 0, "C": 1.0,
            "solver": "torch", "grid": 2, "batch_size": 4,
            "scratch": {"epochs": 1, "folds": 0, "num_workers": 0, "channels_last": False},
            "caltech101": {"sizes": [1, 3], "scratch_sizes": [3], "layers_size": 3, "test_per_class": 4},
            "pascal": {"train_set": "train", "test_set": "val"}}
    return OmegaConf.merge(base, OmegaConf.create(changes))


def caltech_data(image_size: int = 4) -> dict[str, TargetSet]:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(CLASSES)), PER_CLASS)
    images = rng.integers(0, 256, (len(labels), image_size, image_size, 3), dtype=np.uint8)
    for k, label in enumerate(labels):  # a bright square in colour channel `label`: the class is learnable
        images[k, 8:40, 8:40, label] = 255
    return {"all": TargetSet(images, labels, CLASSES, [f"{k}.jpg" for k in range(len(labels))], [])}


def caltech_features(labels: np.ndarray, seed: int) -> dict[str, dict[int, np.ndarray]]:
    """Layer 7: the class one-hot, far above the noise (separable); layer 1: noise alone."""
    rng = np.random.default_rng(seed)
    signal = 5.0 * np.eye(len(CLASSES))[labels] + 0.1 * rng.standard_normal((len(labels), len(CLASSES)))
    return {"all": {7: signal, 1: rng.standard_normal((len(labels), 20))}}


def caltech_models(data, keys=("zfnet", "alexnet"), **scratch):
    for seed, key in enumerate(keys):
        yield transfer.ModelInputs(key, data, caltech_features(data["all"].labels, seed), **scratch)


def nested_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in nested_keys(v)}
    return set()


def test_caltech_metrics_agree_with_their_evidence():
    data = caltech_data()
    result = transfer.run(caltech_models(data), settings(), dataset="caltech101")   # a generator: consumed once
    metrics, evidence = result.metrics, result.evidence
    assert set(metrics) == {"zfnet", "alexnet", "data"}
    assert not nested_keys({m: metrics[m] for m in ("zfnet", "alexnet")}) & {"folds", "per_class"}  # evidence only
    assert evidence["protocol"] == {"folds": 2, "scratch_folds": 0, "std_ddof": 1, "test_per_class": 4}
    # 3 classes of 6 images; per fold up to 4 test images per class: 5 left at 1/class, 3 left at 3/class
    assert metrics["data"]["test_images"] == {"1": 12, "3": 9}
    assert metrics["data"]["all"] == {"images": 18, "classes": 3, "skipped": 0}
    for model in ("zfnet", "alexnet"):
        tables, found = metrics[model], evidence[model]
        assert "claims" not in found and tables["scratch"] == {}
        cells = [(tables["pretrained"][n], found["pretrained"][n]) for n in ("1", "3")]
        cells += [(tables["layers"][k][layer], found["layers"][k][layer]) for k in ("svm", "softmax") for layer in "17"]
        for score, cell in cells:
            assert len(cell["folds"]) == 2 and all(len(fold) == 3 for fold in cell["per_class"])
            assert cell["folds"] == pytest.approx([statistics.mean(fold) for fold in cell["per_class"]], abs=1e-6)
            assert score["mean"] == pytest.approx(statistics.mean(cell["folds"]), abs=1e-6)
            assert score["std"] == pytest.approx(statistics.stdev(cell["folds"]), abs=1e-6)
        # layer 7 separates the classes: every test image right; noise does not
        assert all(tables["pretrained"][n] == {"mean": 1.0, "std": 0.0} for n in ("1", "3"))
        depth = tables["claims"]["depth"]
        for kind in ("svm", "softmax"):
            assert tables["layers"][kind]["7"]["mean"] == 1.0 > tables["layers"][kind]["1"]["mean"]
            assert depth[kind]["best_layer"] == 7 and depth[kind]["spearman"] == pytest.approx(1.0)
            assert depth[kind]["deepest_minus_shallowest"] == pytest.approx(1.0 - tables["layers"][kind]["1"]["mean"])
    assert result.csv.splitlines() == ["train_per_class,zfnet,alexnet", "1,1.000000,1.000000", "3,1.000000,1.000000"]
    assert {name: len(rows) for name, (_, rows) in result.tables.items()} == {"accuracy": 4, "table7": 8}
    drawn = figures(result)
    assert set(drawn) == {"table4", "table7_layers"} and all(len(f.axes) == 2 for f in drawn.values())
    for figure in drawn.values():
        plt.close(figure)


def test_the_scratch_baseline_pairs_with_the_pretrained_folds(monkeypatch):
    """The from-scratch runs (recorded, not trained: tests/transfer/test_scratch.py trains) see fold f's training
    images, the recipe and the trainer's options, and are scored on fold f's test images."""
    data = caltech_data()
    data["all"].images[:, 0, 0, 0] = np.arange(len(data["all"].labels))   # each image carries its index
    runs = []

    def train(arch, images, labels, num_classes, recipe, epochs, seed, **options):
        runs.append({"train": images[:, 0, 0, 0].tolist(), "seed": seed, "options": options,
                     "given": (arch, recipe, epochs, num_classes)})
        return runs[-1]

    def predict(run, images):   # right on the odd-numbered images only
        run["test"] = index = images[:, 0, 0, 0].astype(int)
        labels = data["all"].labels[index]
        return np.where(index % 2 == 1, labels, (labels + 1) % 3)

    monkeypatch.setattr(transfer.scratch, "train_from_scratch", train)
    monkeypatch.setattr(transfer.scratch, "predict", predict)
    options = settings(scratch={"folds": 2, "epochs": 3}, seed=5, layers=[7], classifiers=["softmax"])
    result = transfer.run(caltech_models(data, ("zfnet",), arch=ARCH, recipe=RECIPE), options, dataset="caltech101",
                          trainer=TRAINER)
    assert [run["seed"] for run in runs] == [5, 6]   # transfer.seed + fold
    assert all(run["given"] == (ARCH, RECIPE, 3, 3) for run in runs)
    assert runs[0]["options"] == {"accelerator": "cpu", "precision": "32-true", "deterministic": True,
                                  "benchmark": False, "num_workers": 0, "channels_last": False}
    labels = data["all"].labels
    for f, run in enumerate(runs):
        fold = transfer.protocol.sample_fold(labels, 3, 4, 5, f)   # the pretrained curve's fold f at 3/class
        assert run["train"] == fold.train.tolist() and run["test"].tolist() == fold.test.tolist()
        assert np.bincount(labels[run["train"]]).tolist() == [3, 3, 3] and not set(run["train"]) & set(run["test"])
    found = result.evidence["zfnet"]["scratch"]["3"]["per_class"]
    by_hand = [[np.mean(run["test"][labels[run["test"]] == c] % 2 == 1) for c in range(3)] for run in runs]
    assert np.allclose(found, by_hand, atol=1e-6)
    tables = result.metrics["zfnet"]
    assert tables["scratch"]["3"]["mean"] == pytest.approx(np.mean(by_hand), abs=1e-9)
    assert tables["claims"]["pretrained_minus_scratch"] == {
        "3": pytest.approx(tables["pretrained"]["3"]["mean"] - tables["scratch"]["3"]["mean"])}
    assert result.evidence["protocol"]["scratch_folds"] == 2 and result.metrics["data"]["scratch_folds"] == 2


PASCAL = ["car", "cat", "dog"]
TEST_TARGETS = np.array([[-1, 1, -1], [-1, 1, 1], [-1, -1, 1], [-1, -1, 1], [-1, 0, -1], [-1, -1, -1]], np.int8)
TRAIN_TARGETS = np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1], [-1, -1, 1], [1, -1, 1]], np.int8)


def pascal_inputs(key: str = "zfnet", seed: int = 0) -> transfer.ModelInputs:
    rng = np.random.default_rng(seed)

    def target(targets):
        return TargetSet(np.zeros((len(targets), 4, 4, 3), np.uint8), targets, PASCAL, [], [])

    def present(targets):  # the present classes, far above the noise
        return 5.0 * (targets == 1) + 0.1 * rng.standard_normal(targets.shape)

    data = {"train": target(TRAIN_TARGETS), "test": target(TEST_TARGETS)}
    return transfer.ModelInputs(key, data, {"train": {7: present(TRAIN_TARGETS)}, "test": {7: present(TEST_TARGETS)}})


def test_pascal_average_precision_and_chance():
    result = transfer.run([pascal_inputs("zfnet", 0), pascal_inputs("alexnet", 1)], settings(), dataset="pascal")
    metrics = result.metrics
    for model in ("zfnet", "alexnet"):
        # no car among the test images: no AP, left out of the mean; the present classes rank first
        assert metrics[model] == {"ap": {"car": None, "cat": 1.0, "dog": 1.0}, "map": 1.0}
        assert result.evidence[model] == {"ap": metrics[model]["ap"]}
    assert result.evidence["split"] == metrics["data"]["split"] == {"train": "train", "test": "val"}
    # chance, by hand from TEST_TARGETS: car 0/6, cat 2/5 (one difficult-only image not scored), dog 3/6
    assert result.chance == pytest.approx({"car": 0.0, "cat": 0.4, "dog": 0.5})
    assert metrics["data"]["chance_map"] == pytest.approx(0.3)
    assert metrics["data"]["positives"] == {"train": 8, "test": 5}
    assert metrics["data"]["train"] == {"images": 6, "classes": 3, "skipped": 0}
    assert result.csv.splitlines() == ["class,zfnet,alexnet", "car,0.000000,0.000000", "cat,1.000000,1.000000",
                                       "dog,1.000000,1.000000"]
    assert result.tables["table6"] == (["model", *PASCAL, "mAP"], [["zfnet", None, 1.0, 1.0, 1.0],
                                                                  ["alexnet", None, 1.0, 1.0, 1.0]])
    drawn = figures(result)
    assert set(drawn) == {"table6_ap"}
    plt.close(drawn["table6_ap"])


def test_features_and_their_cache_key():
    torch.manual_seed(0)
    model = build_model("zfnet", 3, input_size=CROP, width=0.25, init="fan_in").eval()
    hparams = {"mean": torch.full((3, SIZE, SIZE), 120.0), "crop": CROP, "input_scale": 0.02}
    target = caltech_data(SIZE)["all"]
    assert transfer.feature_layers(settings(), "pascal") == [7]
    assert transfer.feature_layers(settings(layers=[3, 1]), "caltech101") == [1, 3, 7]
    found = transfer.extract_features(model, hparams, target, settings(layers=[1]), "caltech101")
    assert sorted(found) == [1, 7] and found[7].shape == (18, 1024)
    assert found[1].shape == (18, 24 * 2 * 2)   # zfnet's 96 * 0.25 maps, max-pooled to the 2 x 2 grid
    key = transfer.cache_key("w", target, hparams, settings(), "caltech101")
    assert key == transfer.cache_key("w", target, hparams, settings(), "caltech101")
    other_pixels = target._replace(images=target.images[::-1].copy())
    assert len({key, transfer.cache_key("v", target, hparams, settings(), "caltech101"),
                transfer.cache_key("w", other_pixels, hparams, settings(), "caltech101"),
                transfer.cache_key("w", target, hparams, settings(grid=4), "caltech101"),
                transfer.cache_key("w", target, hparams, settings(), "pascal")}) == 5


def test_bad_sizes_and_no_model_are_refused():
    labels = caltech_data()["all"].labels
    transfer.check_sizes(settings(), "caltech101", labels)
    with pytest.raises(UserError, match=r"transfer\.caltech101\.layers_size: \[6\]"):
        transfer.check_sizes(settings(caltech101={"layers_size": 6}), "caltech101", labels)
    with pytest.raises(UserError, match="transfer.models"):
        transfer.run([], settings(), dataset="caltech101")
