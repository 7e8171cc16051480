"""Benchmark of the streaming top-9 pass (zfnet.probes.top9.top_activations), run by hand.

    python benchmarks/top9.py                                   # the default pipeline's zfnet (half width, 112 px)
    python benchmarks/top9.py --arch alexnet --width 1 --size 224 --images 512 --device cuda
    python benchmarks/top9.py --checkpoint outputs/train/zfnet/checkpoints/best.ckpt
    python benchmarks/top9.py --width 0.05 --size 64 --images 8 --batch-size 4 --repeats 1   # tiny: a smoke run

1. Throughput, in one run on the same images: plain inference (the whole model, and its conv part
   alone) against the top-9 pass over all five conv layers, each timed `--repeats` times in turn;
   the best of each is reported, with the ratios top-9 / inference.
2. Peak memory of the top-9 pass at two dataset sizes (`--images` and 4x that), each in a fresh
   process: the growth of peak RSS (CPU) or the peak allocated CUDA memory during the pass, over a
   baseline taken after a warm-up pass. Streaming keeps it flat; for scale the script prints what
   holding every rectified conv map of the whole dataset would take.

A fresh model is initialized as the pipeline does (init "fan_in", seed 0). Images are random, drawn
batch by batch from a seeded generator (only the current batch exists), so the figures measure the
pass, not a data loader. Prints ratios, never asserts a time; `--json PATH` also writes a summary.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from zfnet.nets.models import build_model, feature_shapes
from zfnet.probes.top9 import top_activations

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a train checkpoint (default: a freshly initialized model; "
                                             "--arch, --width and --size then come from the checkpoint)")
    parser.add_argument("--arch", default="zfnet", choices=["zfnet", "alexnet"])
    parser.add_argument("--width", type=float, default=0.5, help="conv maps and fc units multiplier (default 0.5)")
    parser.add_argument("--size", type=int, default=112, help="input side in pixels (default 112)")
    parser.add_argument("--images", type=int, default=256,
                        help="images per timed pass; memory also at 4x (default 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each kind; best kept (default 3)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    parser.add_argument("--memory-only", type=int, default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    for name in ("width", "size", "images", "batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def make_model(args) -> torch.nn.Module:
    if args.checkpoint:
        from zfnet.nets.training import load_trained  # imports Lightning: only when needed

        model, _ = load_trained(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = build_model(args.arch, 1000, input_size=args.size, width=args.width, init="fan_in")
    return model.to(args.device).eval()


def batches(count: int, batch_size: int, size: int, device: str):
    generator = torch.Generator().manual_seed(0)
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        yield (torch.randn(n, 3, size, size, generator=generator) * 50).to(device)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def time_once(run, args) -> float:
    synchronize(args.device)
    start = time.perf_counter()
    run()
    synchronize(args.device)
    return args.images / (time.perf_counter() - start)


def throughput(model, args) -> dict:
    size = model.input_size
    runs = {
        "inference_full": lambda: [model(x) for x in batches(args.images, args.batch_size, size, args.device)],
        "inference_features": lambda: [model.features(x) for x in batches(args.images, args.batch_size, size,
                                                                        args.device)],
        "top9": lambda: top_activations(model, batches(args.images, args.batch_size, size, args.device), LAYERS, k=9),
    }
    for run in runs.values():  # warm-up (allocator, kernels)
        time_once(run, args)
    best = dict.fromkeys(runs, 0.0)
    for _ in range(args.repeats):  # interleaved, so a busy machine hurts all three alike
        for name, run in runs.items():
            best[name] = max(best[name], time_once(run, args))
    return {
        "images_per_s": {name: round(v, 1) for name, v in best.items()},
        "ratio_top9_to_inference_full": round(best["top9"] / best["inference_full"], 3),
        "ratio_top9_to_inference_features": round(best["top9"] / best["inference_features"], 3),
    }


@torch.no_grad()
def peak_memory(args) -> dict:
    """In this (fresh) process: memory the top-9 pass over args.memory_only images adds to a warm baseline."""
    model = make_model(args)
    size, device = model.input_size, args.device
    top_activations(model, batches(4 * args.batch_size, args.batch_size, size, device), LAYERS, k=9)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        top_activations(model, batches(args.memory_only, args.batch_size, size, device), LAYERS, k=9)
        torch.cuda.synchronize()
        return {"images": args.memory_only, "kind": "cuda_peak_allocated_above_baseline_MiB",
                "MiB": round((torch.cuda.max_memory_allocated() - baseline) / 2**20, 2),
                "baseline_MiB": round(baseline / 2**20, 2)}
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    top_activations(model, batches(args.memory_only, args.batch_size, size, device), LAYERS, k=9)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": args.memory_only, "kind": "cpu_peak_rss_growth_MiB", "MiB": round((peak - baseline) / 1024, 2),
            "baseline_MiB": round(baseline / 1024, 2)}


def memory_in_child(args, count: int) -> dict:
    command = [sys.executable, __file__, "--memory-only", str(count), "--arch", args.arch, "--width", str(args.width),
               "--size", str(args.size), "--batch-size", str(args.batch_size), "--device", args.device]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the memory child process ({' '.join(command)}) failed:\n{result.stderr}")
    return json.loads(result.stdout)


def all_maps_bytes(model, count: int) -> int:
    """What keeping every rectified conv map of `count` images (float32) would take."""
    shapes = feature_shapes(model)
    return count * sum(math.prod(shapes[layer]) for layer in LAYERS) * 4


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only is not None:
        print(json.dumps(peak_memory(args)))
        return
    model = make_model(args)
    counts = (args.images, 4 * args.images)
    report = {
        "model": args.checkpoint or f"{args.arch} width {args.width}",
        "input": f"{model.input_size}x{model.input_size}", "device": args.device,
        "threads": torch.get_num_threads(), "batch_size": args.batch_size, "images_per_pass": args.images,
        "repeats": args.repeats,
        "throughput": throughput(model, args),
        "memory": [memory_in_child(args, n) for n in counts],
        "all_maps_MiB": {n: round(all_maps_bytes(model, n) / 2**20, 1) for n in counts},
    }
    speed = report["throughput"]
    print(f"{report['model']}, {report['input']} px, {args.device}, {report['threads']} threads, "
          f"batch {args.batch_size}, {args.images} images per pass, best of {args.repeats}")
    for name, label in (("inference_full", "inference (full model)"), ("inference_features", "inference (conv part)"),
                        ("top9", f"top-9 pass ({LAYERS[0]}-{LAYERS[-1]})")):
        print(f"{label + ':':40s}{speed['images_per_s'][name]:10.1f} images/s")
    print(f"{'top-9 / inference (full model):':40s}{speed['ratio_top9_to_inference_full']:10.3g}")
    print(f"{'top-9 / inference (conv part):':40s}{speed['ratio_top9_to_inference_features']:10.3g}")
    for memory in report["memory"]:
        kind = "peak CUDA memory allocated" if memory["kind"].startswith("cuda") else "peak RSS growth"
        print(f"{'memory, top-9 pass over %d images:' % memory['images']:40s}{memory['MiB']:10.1f} MiB "
              f"({kind} over a {memory['baseline_MiB']:.1f} MiB baseline)")
    for count, mib in report["all_maps_MiB"].items():
        print(f"{'memory, all conv maps of %d images:' % count:40s}{mib:10.1f} MiB (what not streaming would hold)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
