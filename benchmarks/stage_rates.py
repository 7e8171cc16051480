"""Benchmark of every stage's per-image work at the paper's sizes, and what it projects on one GPU, run by hand.

    python benchmarks/stage_rates.py                          # full-width ZFNet, 224 px crops of 256 px images
    python benchmarks/stage_rates.py --threads 2 --json stage_rates.json
    python benchmarks/stage_rates.py --width 0.05 --size 64 --prepared-size 72 --batch 2 --batches 1 \\
        --repeats 1 --gemm-size 128                           # tiny: a smoke run

1. Per stage, the library call that stage repeats per image (a fresh model, init "fan_in", seed 0;
   random pixels), timed in `--repeats` rounds (each kernel and the GEMM once per round), the best
   kept: the train step (SGD on a random crop per batch, mirrored; a plain loop), the 10-crop test,
   the top-9 pass (visualize@), the snapshot pass (evolution@, top-1), the occlusion sweep of one
   image (the experiment=paper occluder, exact engine), the invariance views of one image (every
   translation, scale and rotation step), correspondence (an image and its 4 occluded copies), the
   transfer features (layers 1-7), and a from-scratch run (`zfnet.transfer.scratch`: a Lightning fit
   of one epoch, setup included).
   Each is reported as images/s on this machine, its multiply-adds per image (convolutions and
   matrix products, forward and backward, counted by torch's FlopCounterMode, x2 = FLOPs) and the
   share of the float32 GEMM rate measured in the same run that it reaches.
2. The projection: the images each stage touches under `experiment=paper` (counted from the composed
   config and the datasets' sizes, printed), times its FLOPs per image, over a GPU rate: `--gpu-bf16`
   TFLOP/s for the work inside the Lightning fits, in bf16 (the train stage's epochs, with their
   validation, and the from-scratch runs) and `--gpu-fp32` for the float32 work (the 10-crop test and
   the stages after training). Defaults, from earlier measurements on one H200 (README): 76.5 TFLOP/s,
   ZFNet's plain training loop at batch 512, bf16 + channels_last, 11,464 images/s, times the 6.67 GFLOP
   per training image counted here (the README's "80 TFLOP/s" counted a few more); 25 TFLOP/s, below
   what the naive occlusion engine reached there in float32 (676 positions, 1.58 TFLOP, in 40-57 ms:
   28-39 TFLOP/s). A projection, not a measurement: input decoding, Python and per-epoch overheads are
   not in it.
3. With `--prepared DIR` (a prepared split, raw or JPEG shards): the loading side of the visualize and
   evolution stages over the whole split at `--size`, in images/s: the inputs as they were made before
   batched loading (`ImageSet.inputs`: image by image, the mean subtracted on the CPU, in the stage's
   process), `ImageSet.batches` in the stage's process, and what stays on the CPU when the mean is
   subtracted on a GPU (reading and collating) in 1 and in `--workers` DataLoader processes.

Prints ratios and rates, never asserts a time; `--json PATH` also writes a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from zfnet.data.loading import center_crop, normalize, ten_crop_probabilities
from zfnet.nets.models import build_model
from zfnet.probes import invariance
from zfnet.probes.correspondence import layer_features, occlude
from zfnet.probes.occlusion import grid_side, occlusion_sweep
from zfnet.probes.top9 import top_activations
from zfnet.transfer import features, scratch

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
# Dataset sizes (images): ImageNet-2012 train / val; Caltech-101 and -256 as torchvision lists them
# (BACKGROUND_Google left out; 257.clutter dropped by transfer.caltech256.clutter=false); VOC 2012 Main.
IMAGENET = {"train": 1_281_167, "val": 50_000}
CALTECH = {"caltech101": (8_677, 101), "caltech256": (29_780, 256)}
PASCAL = {"train": 5_717, "val": 5_823, "trainval": 11_540}
BF16 = {"train", "forward", "scratch"}  # kernels under the trainer's precision (bf16-mixed on the GPU): the fits


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="zfnet", choices=["zfnet", "alexnet"])
    parser.add_argument("--width", type=float, default=1.0, help="conv maps and fc units multiplier (default 1)")
    parser.add_argument("--size", type=int, default=224, help="network input side (default 224)")
    parser.add_argument("--prepared-size", type=int, default=256, help="prepared image side (default 256)")
    parser.add_argument("--classes", type=int, default=1000, help="output classes (default 1000)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch of the batched kernels (default 8)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per kernel (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each kernel; best kept (default 2)")
    parser.add_argument("--gemm-size", type=int, default=2048, help="side of the float32 GEMM baseline (default 2048)")
    parser.add_argument("--gpu-bf16", type=float, default=76.5, help="GPU TFLOP/s for bf16 training (default 76.5)")
    parser.add_argument("--gpu-fp32", type=float, default=25.0, help="GPU TFLOP/s for float32 inference (default 25)")
    parser.add_argument("--prepared", type=Path, default=None, help="a prepared split for the loading rates")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader processes for the loading rates (default 2)")
    parser.add_argument("--loading-only", action="store_true", help="with --prepared: only the loading rates")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    args = parser.parse_args(argv)
    for name in ("width", "size", "prepared_size", "classes", "batch", "batches", "repeats", "gemm_size",
                 "gpu_bf16", "gpu_fp32"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.prepared_size < args.size:
        parser.error("--prepared-size must be at least --size")
    if args.loading_only and args.prepared is None:
        parser.error("--loading-only needs --prepared")
    return args


def paper_config():
    """The composed experiment=paper config (data.root is only a placeholder: nothing is read)."""
    from zfnet.pipeline import config

    return config.load(["experiment=paper", "data.root=/datasets/imagenet"])


# ----------------------------------------------------------------------------- kernels


def fresh_model(args) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(args.arch, args.classes, input_size=args.size, width=args.width, init="fan_in")


def uint8_images(count: int, side: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, side, side), dtype=torch.uint8, generator=generator)


def kernels(args, cfg) -> dict[str, tuple[Callable[[], None], int]]:
    """{stage: (a call doing the stage's work on some images, how many images it covers)}."""
    model = fresh_model(args)
    n = args.batch * args.batches
    images = uint8_images(n, args.prepared_size)
    mean = images.float().mean(dim=0)
    inputs = center_crop(normalize(images, mean, 0.02), args.size).contiguous()
    labels = torch.randint(0, args.classes, (n,), generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    generator = torch.Generator().manual_seed(2)

    def train_step():
        model.train()
        for start in range(0, n, args.batch):
            batch = images[start:start + args.batch]
            y, x = torch.randint(0, args.prepared_size - args.size + 1, (2,), generator=generator).tolist()
            window = (..., slice(y, y + args.size), slice(x, x + args.size))
            crops = normalize(batch[window], mean[window], 0.02)
            loss = F.cross_entropy(model(crops.flip(-1)), labels[start:start + args.batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def ten_crop():
        model.eval()
        for start in range(0, n, args.batch):
            ten_crop_probabilities(model, normalize(images[start:start + args.batch], mean, 0.02), args.size)

    def top_pass(k: int):
        return lambda: top_activations(model.eval(), (inputs[s:s + args.batch] for s in range(0, n, args.batch)),
                                       LAYERS, k=k)

    occ = cfg.occlusion

    def occlusion():
        occlusion_sweep(model.eval(), inputs[:1], labels[:1], occ.patch * args.size // 224,
                        occ.stride * args.size // 224, occ.fill, occ.mode, occ.batch_size)

    inv = cfg.invariance
    thetas = [invariance.affine_matrices(kind, invariance.step_values(kind, inv[kind], args.size), args.prepared_size)
              for kind in invariance.KINDS]

    def invariance_views():
        for theta in thetas:
            invariance.measure(model.eval(), images[:1], labels[:1], mean, theta, args.size, 0.02, inv.layer1,
                               inv.batch_size)

    box = [0.3 * args.size, 0.3 * args.size, 0.55 * args.size, 0.55 * args.size]  # a quarter of the side

    def correspondence():  # each image and 4 occluded copies (3 parts and a random box)
        views = torch.cat([inputs] + [occlude(inputs, [box] * n) for _ in range(4)])
        layer_features(model, views, {"layer5": "pool5", "layer7": "relu7"}, batch_size=args.batch * 5)

    hwc = images.permute(0, 2, 3, 1).numpy()

    def transfer_features():
        features.extract(model, hwc, mean, args.size, [1, 2, 3, 4, 5, 7], batch_size=args.batch)

    arch = {"name": args.arch, "input_size": args.size, "width": args.width, "init": "fan_in"}
    recipe = {"crop": args.size, "batch_size": args.batch, "lr": 1e-4, "momentum": 0.9, "weight_decay": 5e-4,
              "lr_factor": 0.1, "lr_patience": 2, "renorm_radius": 0.1, "flip": True, "input_scale": 0.02}
    class_labels = np.arange(n) % 4

    def scratch_run():
        scratch.train_from_scratch(arch, hwc, class_labels, 4, recipe, epochs=1, seed=0)

    return {"train": (train_step, n), "ten_crop": (ten_crop, n), "top9": (top_pass(9), n),
            "evolution": (top_pass(1), n), "occlusion": (occlusion, 1), "invariance": (invariance_views, 1),
            "correspondence": (correspondence, n), "transfer_features": (transfer_features, n),
            "scratch": (scratch_run, n)}


def flops_of(call: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def best_seconds(call: Callable[[], None], repeats: int) -> float:
    call()  # warm-up: allocations, first-call dispatch
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


# ----------------------------------------------------------------------------- what experiment=paper touches


def paper_images(cfg) -> dict[str, dict]:
    """Per stage: {kernel: images it runs through that kernel} under experiment=paper, per model or dataset."""
    train, vis, occ = cfg.train, cfg.visualize, cfg.occlusion
    val = IMAGENET["val"]
    top9 = min(vis.top9.images or val, val)
    split = IMAGENET[vis.evolution.split]
    evolution = min(vis.evolution.images or split, split)
    side = grid_side(train.crop, occ.patch, occ.stride)
    invariance_views = 3 + sum(len(invariance.step_values(k, cfg.invariance[k], train.crop)) for k in invariance.KINDS)
    stages = {
        "train@<model>": {"train": IMAGENET["train"] * train.epochs, "forward": val * train.epochs,
                          "ten_crop": val},
        "visualize@<model>": {"top9": top9},
        "evolution@<model>": {"evolution": evolution * len(train.snapshot_epochs)},
        "architecture": {"evolution": top9 * len(cfg.models)},  # a conv pass over the top-9 images per model
        "occlusion@<model>": {"occlusion": min(occ.images or val, val)},
        "invariance@<model>": {"invariance": min(cfg.invariance.images or val, val)},
        "correspondence@<model>": {"correspondence": None},  # the built-in faces: not ImageNet-sized
    }
    tcfg = cfg.transfer
    for name, (total, classes) in CALTECH.items():
        runs = tcfg.scratch.folds * tcfg.scratch.epochs
        per_epoch = sum(size * classes for size in tcfg[name].scratch_sizes)
        stages[f"transfer@{name}"] = {"transfer_features": total * len(tcfg.models),
                                      "scratch": runs * per_epoch * len(tcfg.models)}
    pascal = PASCAL[tcfg.pascal.train_set] + PASCAL[tcfg.pascal.test_set]
    stages["transfer@pascal"] = {"transfer_features": pascal * len(tcfg.models)}
    notes = {"invariance_views_per_image": invariance_views, "occlusion_positions": side * side,
             "evolution_images": evolution, "snapshots": len(train.snapshot_epochs), "top9_images": top9}
    return {"stages": stages, "notes": notes}


def project(touched: dict[str, dict], flops: dict[str, float], args) -> dict[str, dict]:
    """Per stage: its FLOPs under experiment=paper and the projected GPU seconds."""
    out = {}
    for stage, work in touched.items():
        total = sum(count * flops[kernel] for kernel, count in work.items() if count is not None)
        seconds = sum(count * flops[kernel] / (1e12 * (args.gpu_bf16 if kernel in BF16 else args.gpu_fp32))
                      for kernel, count in work.items() if count is not None)
        out[stage] = {"images": {k: v for k, v in work.items()}, "pflop": total / 1e15, "gpu_seconds": seconds}
    return out


def loading_rates(args) -> dict[str, float]:
    """images/s of reading the prepared split: the stages' inputs as before this benchmark's issue (per image,
    mean subtracted on the CPU, all in the stage's process), batched in the stage's process, and the part
    that stays on the CPU when the mean subtraction runs on a GPU (reading and collating), in 1 and in
    `--workers` DataLoader processes."""
    from torch.utils.data import DataLoader, Subset

    from zfnet.data.images import ImageSet
    from zfnet.data.prepare import PreparedSplit
    from zfnet.nets.evaluation import collate_images

    split = PreparedSplit(args.prepared)
    mean = torch.from_numpy(np.asarray(split.mean, np.float32)).permute(2, 0, 1)
    images = ImageSet(split, mean, args.size, scale=0.02)
    batch = args.batch * args.batches

    def per_image():
        for start in range(0, len(images), batch):
            images.inputs(range(start, min(start + batch, len(images))))

    def reads(workers: int):
        loader = DataLoader(Subset(split, images.indices), batch, num_workers=workers, collate_fn=collate_images)
        return lambda: [None for _ in loader]

    calls = {"inputs per image, in process (before)": per_image,
             "inputs batched, in process": lambda: [None for _ in images.batches(batch, 0)],
             "reads, 1 worker": reads(1), f"reads, {args.workers} workers": reads(args.workers)}
    return {name: len(images) / best_seconds(call, args.repeats) for name, call in calls.items()}


# ----------------------------------------------------------------------------- main


def measure_kernels(args, cfg) -> tuple[float, dict[str, dict], dict[str, float]]:
    """The GEMM baseline, each kernel's rates, and its FLOPs per image (plus one plain forward's).

    Rounds: every kernel (and the GEMM) once per round, in turn, the best of `--repeats` rounds kept,
    so that a shared machine's load shifts every figure alike rather than one kernel's.
    """
    a, b = torch.randn(args.gemm_size, args.gemm_size), torch.randn(args.gemm_size, args.gemm_size)
    calls = {"gemm": (lambda: a @ b, 1), **kernels(args, cfg)}
    flops = {name: flops_of(call) / count for name, (call, count) in calls.items()}  # also the warm-up
    best = {name: float("inf") for name in calls}
    for _ in range(args.repeats):
        for name, (call, _) in calls.items():
            started = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - started)
    gemm = flops.pop("gemm") / best.pop("gemm") / 1e9
    print(f"{args.arch} width {args.width}, {args.size} px crops of {args.prepared_size} px images, "
          f"{torch.get_num_threads()} threads; batches of {args.batch}")
    print(f"float32 GEMM ({args.gemm_size}^2): {gemm:.1f} GFLOP/s")
    rates = {}
    for name, seconds in best.items():
        count = calls[name][1]
        rates[name] = {"images_per_s": count / seconds, "gflop_per_image": flops[name] / 1e9,
                       "gflops": flops[name] * count / seconds / 1e9}
        rates[name]["gemm_share"] = rates[name]["gflops"] / gemm
        print(f"{name}: {rates[name]['images_per_s']:.2f} images/s, {rates[name]['gflop_per_image']:.2f} GFLOP "
              f"per image, {rates[name]['gflops']:.1f} GFLOP/s")
    flops["forward"] = flops["ten_crop"] / 10  # one centre-crop forward: the per-epoch validation pass
    for name, rate in rates.items():
        print(f"GEMM share ({name}): {rate['gemm_share']:.3f}")
    return gemm, rates, flops


def print_projection(touched: dict, projected: dict, args) -> None:
    notes = ", ".join(f"{k} {v}" for k, v in touched["notes"].items())
    print(f"\nexperiment=paper ({notes}); projected on one GPU at {args.gpu_bf16:g} TFLOP/s (bf16 training) and "
          f"{args.gpu_fp32:g} TFLOP/s (float32 inference):")
    for stage, entry in projected.items():
        work = ", ".join(f"{kernel} {count:,}" for kernel, count in entry["images"].items() if count is not None)
        print(f"  {stage}: {work or 'a few hundred images'}; {entry['pflop']:.3f} PFLOP, "
              f"{entry['gpu_seconds'] / 60:.1f} min")


def print_loading(loading: dict[str, float], args) -> None:
    print(f"\nloading {args.prepared} ({args.size} px inputs, batches of {args.batch * args.batches}):")
    for name, rate in loading.items():
        print(f"  {name}: {rate:.0f} images/s")
    baseline = loading["inputs per image, in process (before)"]
    for name, rate in list(loading.items())[1:]:
        print(f"loading, {name} / before: {rate / baseline:.3g}")


def quiet() -> None:
    import logging
    import warnings

    for message in (".*does not have many workers.*", ".*LeafSpec.*", ".*transfer_batch_to_device.*"):
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()
    summary: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if not args.loading_only:
        cfg = paper_config()
        summary["gemm_gflops"], summary["kernels"], flops = measure_kernels(args, cfg)
        touched = paper_images(cfg)
        summary["paper"], summary["projected"] = touched["notes"], project(touched["stages"], flops, args)
        print_projection(touched, summary["projected"], args)
    if args.prepared:
        summary["loading"] = loading_rates(args)
        print_loading(summary["loading"], args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
