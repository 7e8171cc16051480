"""The visualize, evolution and architecture stages end to end on tiny data and checkpoints."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from zfnet.data.prepare import PreparedSplit, prepare_split
from zfnet.nets.models import build_model, get_layer
from zfnet.nets.training import load_trained
from zfnet.pipeline import config

from conftest import REPO

SIZE, CROP = 72, 64
CLASSES = ("a", "b", "c")


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw_split(root, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = np.full((SIZE, SIZE, 3), rng.integers(40, 200, 3), dtype=np.uint8)
            y, x = rng.integers(0, SIZE - 24, 2)
            image[y:y + 24, x:x + 24, c] = 255  # a bright square in the class's colour
            Image.fromarray(image).save(folder / f"{i}.png")


def save_checkpoint(path, name: str, seed: int, mean: torch.Tensor, renorm_radius=0.1, dead: int = 0) -> None:
    torch.manual_seed(seed)
    model = build_model(name, len(CLASSES), input_size=CROP, width=0.25, init="fan_in")
    with torch.no_grad():
        get_layer(model, "conv1").weight[:dead] = 0
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["mean"] = mean
    hparams = {"arch": {"name": name, **model.options}, "num_classes": len(CLASSES), "crop": CROP,
               "renorm_radius": renorm_radius, "input_scale": 0.02}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": hparams}, path)


def prepare_tiny(root, train_per_class: int, val_per_class: int):
    """Draw a tiny train/val tree under `root`/raw and prepare it into `root`/prepared (returned)."""
    draw_split(root / "raw" / "train", train_per_class, seed=0)
    draw_split(root / "raw" / "val", val_per_class, seed=1)
    prepared = root / "prepared"
    prepare_split(root / "raw" / "train", prepared / "train", SIZE, compute_mean=True, workers=1, progress=False)
    prepare_split(root / "raw" / "val", prepared / "val", SIZE, classes=list(CLASSES), compute_mean=False,
                  workers=1, progress=False)
    return prepared


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("vis")
    prepared = prepare_tiny(root, train_per_class=6, val_per_class=5)
    mean = torch.from_numpy(np.load(prepared / "train" / "mean.npy")).permute(2, 0, 1).contiguous()
    for name in ("zfnet", "alexnet"):
        folder = root / "outputs" / "train" / name / "checkpoints"
        dead = 3 if name == "alexnet" else 0
        for file, seed in (("epoch_001", 1), ("epoch_002", 2), ("best", 2), ("last", 2)):
            save_checkpoint(folder / f"{file}.ckpt", name, seed, mean, dead=dead)
    save_checkpoint(root / "norenorm.ckpt", "zfnet", 5, mean, renorm_radius=None)
    return root


def load_config(root, *overrides):
    return config.load([
        "data=imagefolder", f"data.root={root}/raw", f"paths.prepared={root}/prepared",
        f"paths.outputs={root}/outputs", f"paths.metrics={root}/metrics", f"paths.plots={root}/plots",
        f"paths.evidence={root}/evidence", "logger.mode=disabled", f"prepare.size={SIZE}", f"train.crop={CROP}", "models.zfnet.width=0.25",
        "models.alexnet.width=0.25", "visualize.batch_size=7", "visualize.top9.maps=4",
        "visualize.evolution.maps=2", "visualize.architecture.conv2_maps=4", *overrides,
    ])


def metrics(root, name):
    return json.loads((root / "metrics" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["zfnet", "alexnet"])
def test_visualize_stage(workspace, name):
    load_stage("visualize").main(load_config(workspace, f"model={name}", "visualize.top9.images=12"))
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    plots = workspace / "plots" / f"visualize_{name}"
    assert sorted(p.name for p in plots.iterdir()) == [f"top9_{layer}.png" for layer in layers]
    result = metrics(workspace, f"visualize_{name}")
    assert result["images"] == 12 and set(layers) <= set(result)
    # the saved top 9 point at real activations of the validation images they name
    top = torch.load(workspace / "outputs" / "visualize" / name / "top9.pt", weights_only=True)
    model, hparams = load_trained(workspace / "outputs" / "train" / name / "checkpoints" / "best.ckpt")
    split = PreparedSplit(workspace / "prepared" / "val")
    from zfnet.data.images import image_set
    from zfnet.probes.deconv import forward_with_switches

    images = image_set(split, hparams)
    conv3 = top["conv3"]
    assert conv3["values"].shape[1] == 9
    for channel in (0, 5):
        i, y, x = (int(conv3[f][channel, 0]) for f in ("image_index", "y", "x"))
        activation, _ = forward_with_switches(model, images.inputs([i]), "conv3")
        torch.testing.assert_close(activation[0, channel, y, x], conv3["values"][channel, 0])
        assert activation[0, channel, y, x] == activation[0, channel].max()


def test_evolution_stage(workspace):
    load_stage("evolution").main(load_config(workspace, "model=alexnet", "visualize.evolution.split=val"))
    plots = workspace / "plots" / "evolution_alexnet"
    assert {p.name for p in plots.iterdir()} == {"convergence.png"} | {f"evolution_conv{i}.png" for i in range(1, 6)}
    result = metrics(workspace, "evolution_alexnet")
    assert result["epochs"] == [1, 2] and result["images"] == 15
    for layer in ("conv1", "conv5"):
        distance = result[layer]["distance_to_last"]
        assert distance["epoch_002"] == 0 and distance["epoch_001"] > 0.5  # two independent inits
        assert len(result[layer]["maps"]) == 2


def test_evolution_stage_of_an_untrained_model_says_not_run(workspace, tmp_path):
    """train.epochs=0 (the negative control) keeps no snapshots: the stage writes {"ran": false} with the reason,
    never an error, even though this workspace holds snapshots of another run."""
    load_stage("evolution").main(load_config(workspace, "model=zfnet", "train.epochs=0", f"paths.metrics={tmp_path}/m",
                                             f"paths.plots={tmp_path}/p"))
    result = json.loads((tmp_path / "m" / "evolution_zfnet.json").read_text())
    assert result["ran"] is False and "train.epochs=0" in result["reason"]
    assert [p.name for p in (tmp_path / "p" / "evolution_zfnet").iterdir()] == ["NOT_RUN.txt"]


def test_worker_processes_leave_every_number_unchanged(workspace, tmp_path):
    """trainer.num_workers=2 reads the images in two DataLoader processes: the same top-9 and evolution
    metrics, and the same saved activations, as reading them in the stage's own process."""
    results = {}
    for workers in (0, 2):
        out = tmp_path / f"workers{workers}"
        paths = [f"paths.metrics={out}/metrics", f"paths.plots={out}/plots", f"trainer.num_workers={workers}"]
        load_stage("visualize").main(load_config(workspace, "model=zfnet", *paths))
        load_stage("evolution").main(load_config(workspace, "model=zfnet", "visualize.evolution.images=11", *paths))
        top = torch.load(workspace / "outputs" / "visualize" / "zfnet" / "top9.pt", weights_only=True)
        results[workers] = (metrics(out, "visualize_zfnet"), metrics(out, "evolution_zfnet"), top)
    (top9_alone, evolution_alone, saved_alone), (top9_workers, evolution_workers, saved_workers) = results.values()
    assert evolution_alone["images"] == 11 and top9_alone["images"] == 15
    assert top9_alone == top9_workers and evolution_alone == evolution_workers
    for layer, fields in saved_alone.items():
        assert all(torch.equal(fields[f], saved_workers[layer][f]) for f in fields)


def test_architecture_stage(workspace, tmp_path):
    """The stage on copies of the fixture checkpoints whose conv1 banks are planted with known make-up.

    Width 0.25 gives 24 conv1 filters. ZF: 12 Gabors at mid frequencies (0.2-0.3 cycles/px) at the
    0.1 radius, the other 12 left at their N(0, 0.01^2) init. AlexNet: 3 low (0.04) and 3 high (0.42)
    Gabors at the radius, 3 zeroed filters (the fixture's) and 15 at init. Init noise passes each
    spectral dead-filter test with probability 0.99, so at most a couple of noise filters may count as
    live; everything else is fixed by construction.
    """
    import math

    def gabor(size: int, frequency: float, theta: float, phase: float) -> torch.Tensor:
        r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        y, x = r[:, None], r[None, :]
        u = x * math.cos(theta) + y * math.sin(theta)
        plane = torch.exp(-(x**2 + y**2) / (2 * (size / 4) ** 2)) * torch.cos(2 * math.pi * frequency * u + phase)
        bank = torch.stack([plane, 0.6 * plane, -0.8 * plane])
        return bank / bank.pow(2).mean().sqrt() * 0.1  # at the RMS radius: a learned filter

    planted = {"zfnet": {i: 0.2 + 0.05 * (i % 3) for i in range(12)},
               "alexnet": {3 + i: (0.04 if i < 3 else 0.42) for i in range(6)}}
    for name, plants in planted.items():
        state = torch.load(workspace / "outputs" / "train" / name / "checkpoints" / "best.ckpt", weights_only=True)
        weight = state["state_dict"]["model.features.conv1.weight"]
        for i, frequency in plants.items():
            weight[i] = gabor(weight.shape[-1], frequency, theta=0.4 * i, phase=0.3 * i)
        path = tmp_path / "outputs" / "train" / name / "checkpoints" / "best.ckpt"
        path.parent.mkdir(parents=True)
        torch.save(state, path)

    stage_module = load_stage("architecture")
    # the equal window is cut from the centre of the receptive field: AlexNet's conv2 field at y = x = 3
    # starts at -18 + 3 * 8 = 6 and is 51 wide, so its centred 24-px square starts at 6 + (51 - 24) // 2 = 19
    from zfnet.experiments.architecture import centred_cut
    from zfnet.probes.projections import Window

    image = torch.arange(3 * 64 * 64, dtype=torch.float32).reshape(3, 64, 64)
    np.testing.assert_array_equal(centred_cut(image, Window(51, 8, -18), 3, 3, 24),
                                  image[:, 19:43, 19:43].numpy())
    stage_module.main(load_config(
        workspace, f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}/metrics",
        f"paths.plots={tmp_path}/plots", f"paths.evidence={tmp_path}/evidence",
        f"visualize.architecture.no_renorm_checkpoint={workspace}/norenorm.ckpt"))
    plots = tmp_path / "plots" / "architecture"
    assert {p.name for p in plots.iterdir()} == {"conv1_filters.png", "conv2_projections.png", "measures.png"}
    result = metrics(tmp_path, "architecture")
    assert list(result) == ["alexnet", "zfnet", "zfnet_no_renorm_checkpoint"]
    alexnet, zfnet, no_renorm = result["alexnet"], result["zfnet"], result["zfnet_no_renorm_checkpoint"]
    assert alexnet["conv1_stride"] == 4 and zfnet["conv1_stride"] == 2

    def band_count(measures, band):
        return round(measures["conv1_peak_frequency"]["band_shares"][band] * measures["conv1_live_filters"])

    for measures, live in ((zfnet, 12), (alexnet, 6)):
        assert measures["conv1_filters"] == 24
        assert live <= measures["conv1_live_filters"] <= live + 2  # the planted Gabors, and at most 2 noise
        assert measures["conv1_dead"]["share"] == pytest.approx(1 - measures["conv1_live_filters"] / 24)
        assert measures["conv1_dead"]["thresholds"]["rms"] == pytest.approx(math.sqrt(0.01 * 0.1))
        assert sum(measures["conv1_peak_frequency"]["histogram"]) == measures["conv1_live_filters"]
    assert alexnet["conv1_dead"]["near_init_share"] == pytest.approx(18 / 24)  # all but the 6 Gabors
    assert band_count(zfnet, "mid") >= 12  # the planted mid-frequency bank
    assert band_count(alexnet, "low") >= 3 and band_count(alexnet, "high") >= 3
    assert band_count(alexnet, "mid") <= alexnet["conv1_live_filters"] - 6  # none of the planted ones
    assert alexnet["conv1_above_nyquist"]["white_noise"] == 1 - 1 / 16
    assert zfnet["conv1_above_nyquist"]["white_noise"] == 1 - 1 / 4
    assert alexnet["conv1_above_nyquist"]["spread"]["max"] > 0.9  # the 0.42 gratings, far above 1/8
    assert alexnet["conv1_above_nyquist"]["spread"]["min"] < 0.1  # the 0.04 gratings, far below it
    assert no_renorm["conv1_dead"]["radius"] == 0.1 and no_renorm["conv1_dead"]["share"] >= 22 / 24  # untrained
    for measures in result.values():
        shift = measures["shift"]
        assert shift["step"] == 8 and shift["images"] == 15 and list(shift["model"]) == ["1", "2", "3"]
        assert all(0 < shift[key][d]["median"] < 3 for key in ("model", "noise_conv1") for d in "123")
        lattice = measures["conv2_lattice"]  # equal windows: ZF's 27-px conv2 field, floored to 4s
        assert lattice["window"] == 24 and lattice["white_noise"] == pytest.approx(15 / (24 * 24 - 1))
        assert lattice["projections"]["n"] == 4 == measures["conv2_maps_projected"]

    # the per-unit evidence the report resamples: one entry per filter / live filter / projection, agreeing
    # with the spreads and shares of the metrics (medians by numpy, shares by counting here)
    evidence = json.loads((tmp_path / "evidence" / "architecture.json").read_text())
    assert set(evidence) == {"mid_band", *result} and evidence["mid_band"] == pytest.approx([1 / 6, 1 / 3])
    for label, measures in result.items():
        units = evidence[label]
        live = measures["conv1_live_filters"]
        assert len(units["dead"]) == 24 and sum(units["dead"]) == 24 - live and set(units["dead"]) <= {0, 1}
        assert len(units["centroid_frequency"]) == len(units["above_nyquist"]) == live
        assert len(units["lattice"]) == 4
        for key, spread in (("rms", measures["conv1_rms"]), ("above_nyquist", measures["conv1_above_nyquist"]["spread"]),
                            ("lattice", measures["conv2_lattice"]["projections"])):
            assert len(units[key]) == spread["n"]       # (the untrained no-renorm fixture has no live filter)
            assert not units[key] or np.median(units[key]) == pytest.approx(spread["median"], abs=1e-6)
        mid = sum(1 / 6 <= f < 1 / 3 for f in units["centroid_frequency"])
        assert mid == round((measures["conv1_centroid_frequency"]["band_shares"]["mid"] or 0) * live)
