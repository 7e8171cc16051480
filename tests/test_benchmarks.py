"""Smoke tests of the hand-run benchmarks (benchmarks/*.py), so no refactor breaks one unnoticed.

Each benchmark must answer --help (a usage line and its description) and finish a tiny run that prints
its ratios. Nothing here times anything: the ratios only have to parse as finite positive numbers.
A new benchmark fails `test_every_benchmark_has_a_smoke_entry` until it gets an entry in SMOKE.
"""

import ast
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "benchmarks").glob("*.py"))

# Per benchmark: tiny arguments; the printed "label: number" ratio lines; other lines the run must print;
# and the ratios in the --json summary (key paths), each of which must be a finite positive number.
SMOKE = {
    "benchmarks/train_throughput.py": {
        "args": ["--width", "0.05", "--size", "64", "--batch", "4", "--steps", "3", "--warmup", "1",
                 "--repeats", "1", "--gemm-size", "128"],
        "ratios": ["Lightning / plain", "GEMM share (plain)", "GEMM share (Lightning)"],
        "lines": ["plain PyTorch loop:", "Lightning loop:", "float32 GEMM (128^2):"],
        "json": [("ratio_lightning_to_plain",), ("gemm_share", "plain"), ("gemm_share", "lightning")],
    },
    "benchmarks/dvc_status.py": {  # 200 empty files: DVC's start-up dominates, so the ratios are near 1
        "args": ["--files", "200", "--per-folder", "50", "--repeats", "1"],
        "ratios": ["dvc status, directory / manifest", "no-op dvc repro, directory / manifest",
                   "first dvc repro, directory / manifest"],
        "lines": ["tree: 200 files in 4 folders", "manifest walk alone: 200 files", "dvc status: directory"],
        "json": [("ratios", "status"), ("ratios", "repro"), ("ratios", "first_repro")],
    },
    "benchmarks/gpu_training.py": {  # on the CPU here: exercises every arm but compile, measures nothing
        "args": ["--device", "cpu", "--width", "0.05", "--size", "64", "--batches", "4", "--images", "48",
                 "--steps", "3", "--warmup", "1", "--workers", "1", "--classes", "4", "--no-compile"],
        "ratios": ["zfnet batch 4 end to end / plain resident", "zfnet batch 4 lightning/resident / plain resident",
                   "zfnet batch 4 lightning/resident crop=loop / plain resident",
                   "zfnet batch 4 lightning/resident strategy=ddp / plain resident"],
        "lines": ["zfnet batch 4, plain/resident:", "zfnet batch 4, lightning/loader-0:",
                  "zfnet batch 4: 70 ImageNet epochs at the end-to-end rate:"],
        "json": [("models", "zfnet", "batches", "4", "end_to_end_ratio"),
                 ("models", "zfnet", "batches", "4", "ratio_to_plain_resident", "loader/only")],
    },
    "benchmarks/occlusion.py": {
        "args": ["--width", "0.1", "--size", "64", "--patch", "16", "--stride", "8", "--extra-patches", "8",
                 "--batch-size", "32", "--captum-ppe", "8", "--approximations", "2:0.25", "--repeats", "1"],
        "ratios": ["naive / exact", "FLOP ceiling (changed outputs)", "FLOP ceiling (engine windows)",
                   "Captum (best, ppe=8) / exact", "naive / approximate (coarse 2, drill 0.25)"],
        "lines": ["patch 16 px, 49 positions:", "patch 8 px, 64 positions:", "Captum Occlusion, perturbations_per_eval=8:"],
        "json": [("patches", "16", "ratio_naive_to_exact"), ("patches", "8", "flop_ceiling_changed"),
                 ("captum", "ratio_captum_to_exact"),
                 ("approximate", "coarse 2, drill 0.25", "ratio_naive_to_approximate")],
    },
    "benchmarks/transfer_classifiers.py": {
        "args": ["--dims", "16", "--classes", "3", "--per-class", "6", "--repeats", "1", "--sklearn-max-iter", "200"],
        "ratios": ["scikit-learn / torch (softmax, 16 features)", "scikit-learn / torch (svm, 16 features)"],
        "lines": ["softmax, 16 features: torch", "svm, 16 features: torch"],
        "json": [("sets", "16 features", "softmax", "ratio_sklearn_to_torch"),
                 ("sets", "16 features", "svm", "ratio_sklearn_to_torch")],
    },
    "benchmarks/top9.py": {  # the memory figures come from two child processes (8 and 32 images): exercised, not judged
        "args": ["--width", "0.05", "--size", "64", "--images", "8", "--batch-size", "4", "--repeats", "1",
                 "--device", "cpu"],
        "ratios": ["top-9 / inference (full model)", "top-9 / inference (conv part)"],
        "lines": ["memory, top-9 pass over 8 images:", "memory, top-9 pass over 32 images:",
                  "memory, all conv maps of 32 images:"],
        "json": [("throughput", "ratio_top9_to_inference_full"), ("throughput", "ratio_top9_to_inference_features")],
    },
    "benchmarks/stage_rates.py": {  # every stage kernel once, at a tiny size; the projection from the paper config
        "args": ["--width", "0.05", "--size", "64", "--prepared-size", "72", "--batch", "2", "--batches", "1",
                 "--repeats", "1", "--gemm-size", "128"],
        "ratios": [f"GEMM share ({kernel})" for kernel in ("train", "ten_crop", "top9", "evolution", "occlusion",
                                                            "invariance", "correspondence", "transfer_features",
                                                            "scratch")],
        "lines": ["float32 GEMM (128^2):", "experiment=paper (", "  evolution@<model>: evolution ",
                  "  transfer@caltech256: transfer_features "],
        "json": [("gemm_gflops",), ("kernels", "occlusion", "images_per_s"), ("kernels", "train", "gflop_per_image"),
                 ("projected", "evolution@<model>", "gpu_seconds"), ("projected", "transfer@caltech256", "gpu_seconds")],
    },
    "benchmarks/jpeg_codec.py": {  # photographs only (no --data), 64 px
        "args": ["--photo-crops", "8", "--size", "64", "--decode-images", "16", "--repeats", "1",
                 "--loader-images", "16", "--batch", "8", "--qualities", "90"],
        "ratios": ["raw / jpeg size, photos, quality 90", "simplejpeg / Pillow", "torchvision CPU / Pillow",
                   "loader jpeg / raw"],
        "lines": ["1. size and fidelity at 64 px", "ImageNet-2012 train at quality 90:", "2. decode rate, one thread",
                  "3. PreparedSplit.get_batch"],
        "json": [("sources", "photos", "qualities", "90", "ratio_raw_to_jpeg"), ("projection", "imagenet_train_gb"),
                 ("decode", "per_core", "simplejpeg"), ("loader", "ratio_jpeg_to_raw")],
    },
}


def run(name: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(REPO / name), *args], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


def positive_number(text: str) -> float:
    value = float(text)
    assert math.isfinite(value) and value > 0, f"{text!r} is not a finite positive number"
    return value


def test_every_benchmark_has_a_smoke_entry():
    assert BENCHMARKS, "no benchmarks found"
    missing = sorted(set(BENCHMARKS) - set(SMOKE))
    assert not missing, f"benchmarks without a smoke entry in tests/test_benchmarks.py SMOKE: {missing}"
    stale = sorted(set(SMOKE) - set(BENCHMARKS))
    assert not stale, f"SMOKE entries for benchmarks that no longer exist: {stale}"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_help(name):
    out = run(name, "--help").stdout
    assert out.startswith(f"usage: {Path(name).name}"), out[:200]
    docstring = ast.get_docstring(ast.parse((REPO / name).read_text()))
    assert docstring, f"{name} has no module docstring to describe it"
    assert docstring.splitlines()[0] in out, f"--help of {name} lacks its description"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_tiny_run(name, tmp_path):
    if name not in SMOKE:
        pytest.fail(f"{name} has no smoke entry in tests/test_benchmarks.py SMOKE")
    entry = SMOKE[name]
    summary = tmp_path / "summary.json"
    out = run(name, *entry["args"], "--json", str(summary)).stdout
    for label in entry["ratios"]:
        found = re.findall(rf"^{re.escape(label)}:\s+(\S+)\s*$", out, flags=re.MULTILINE)
        assert len(found) == 1, f"{name} printed no (or several) '{label}: <number>' line:\n{out}"
        positive_number(found[0])
    for line in entry["lines"]:
        assert any(printed.startswith(line) for printed in out.splitlines()), f"{name} printed no {line!r}:\n{out}"
    data = json.loads(summary.read_text())
    for path in entry["json"]:
        value = data
        for key in path:
            value = value[key]
        positive_number(str(value))


def test_stage_rates_loading_on_a_tiny_prepared_split(tmp_path):
    """benchmarks/stage_rates.py --prepared: the loading side on a real (tiny) prepared split, each rate and
    ratio a finite positive number."""
    import numpy as np
    from PIL import Image

    from zfnet.data.prepare import prepare_split

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "raw" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "raw" / label / f"{i}.png")
    prepare_split(tmp_path / "raw", tmp_path / "prepared", 36, compute_mean=True, workers=1, progress=False)
    summary = tmp_path / "loading.json"
    out = run("benchmarks/stage_rates.py", "--loading-only", "--prepared", str(tmp_path / "prepared"), "--size", "32",
              "--batch", "2", "--batches", "1", "--repeats", "1", "--workers", "2", "--json", str(summary)).stdout
    for label in ("inputs batched, in process", "reads, 1 worker", "reads, 2 workers"):
        found = re.findall(rf"^loading, {re.escape(label)} / before:\s+(\S+)\s*$", out, flags=re.MULTILINE)
        assert len(found) == 1, out
        positive_number(found[0])
    rates = json.loads(summary.read_text())["loading"]
    assert len(rates) == 4 and all(positive_number(str(rate)) for rate in rates.values())
