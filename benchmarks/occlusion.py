"""Benchmark of the occlusion engines (zfnet.probes.occlusion), run by hand.

    python benchmarks/occlusion.py                       # full ZFNet, 224 px, 24 px patch, stride 8 (676 positions)
    python benchmarks/occlusion.py --threads 2 --json occlusion.json --curve occlusion_curve.png
    python benchmarks/occlusion.py --checkpoint outputs/train/zfnet/checkpoints/best.ckpt --val-images 100
    python benchmarks/occlusion.py --width 0.1 --size 64 --patch 16 --stride 8 --extra-patches 8 \\
        --captum-ppe 8 --approximations 2:0.25 --repeats 1         # tiny: a smoke run

1. Exact against naive, on one image with a fresh model (init "fan_in", seed 0; random pixels): the
   same occluder positions and the same batching (`--batch-size` positions per call), for `--patch`
   and each of `--extra-patches`. Reported with the FLOP ceilings from `multiply_adds`: full / changed
   (only the outputs the occluder can change, averaged over positions) and full / engine (what the
   engine computes: one window size per layer for all positions), the GFLOP/s each achieves on the
   multiply-adds it does, and the largest |exact - naive|.
2. Captum's `Occlusion` on the same image and occluder at each `--captum-ppe` perturbations per
   eval; its best time against exact.
3. The approximate mode (adaptive drill-down, `--approximations coarse:drill[:threshold]`) against
   naive on the same image: speed only (a random model's map says nothing about accuracy).
4. With `--checkpoint`: the accuracy side of the approximate mode, on `--val-images` validation
   images (`--prepared`/val) at the stage's occluder (`--val-patch`, `--val-stride`): per setting,
   its speed-up over naive and the mean Pearson correlation of its p(true) maps with exact ones
   (over images whose exact map varies by at least 0.01; the rest are flat). `--curve` draws
   correlation against speed-up.

Times are the best of `--repeats` runs, taken in turn; ratios only, no timed assertion.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from zfnet.nets.models import build_model
from zfnet.probes.occlusion import Approximation, multiply_adds, occlusion_sweep


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="zfnet", choices=["zfnet", "alexnet"])
    parser.add_argument("--width", type=float, default=1.0, help="conv maps and fc units multiplier (default 1)")
    parser.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    parser.add_argument("--patch", type=int, default=24, help="occluder side (default 24)")
    parser.add_argument("--stride", type=int, default=8, help="occluder step (default 8)")
    parser.add_argument("--extra-patches", default="8,16,48", help="more patch sides, exact vs naive only")
    parser.add_argument("--batch-size", type=int, default=128, help="positions per call, every engine (default 128)")
    parser.add_argument("--captum-ppe", default="16,32,64,128", help="Captum perturbations_per_eval values; '' skips")
    parser.add_argument("--approximations", default="2:0.1,2:0.25,2:0.4,3:0.25,2:0.25:0.5",
                        help="approximate settings coarse:drill[:threshold], comma separated")
    parser.add_argument("--checkpoint", default=None, help="a train checkpoint for the accuracy of approximations")
    parser.add_argument("--prepared", default="data/prepared", help="prepared data root (with val/)")
    parser.add_argument("--val-images", type=int, default=60, help="validation images for the accuracy (default 60)")
    parser.add_argument("--val-patch", type=int, default=16)
    parser.add_argument("--val-stride", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each; best kept (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary")
    parser.add_argument("--curve", type=Path, default=None, metavar="PATH", help="draw the accuracy curve (PNG)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        args.extra = [int(p) for p in args.extra_patches.split(",") if p]
        args.ppe = [int(p) for p in args.captum_ppe.split(",") if p]
        args.settings = [_setting(text) for text in args.approximations.split(",") if text]
    except ValueError as err:
        parser.error(str(err))
    return args


def _setting(text: str) -> Approximation:
    values = text.split(":")
    return Approximation(int(values[0]), float(values[1]), float(values[2]) if len(values) > 2 else 1.0)


def best_time(run, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def label(setting: Approximation) -> str:
    return f"coarse {setting.coarse}, drill {setting.drill:g}" + (
        f", threshold {setting.threshold:g}" if setting.threshold < 1 else "")


def engines(args, model, image, label_) -> dict:
    summary = {"patches": {}}
    for patch in [args.patch] + args.extra:
        sweep = lambda mode, **kw: occlusion_sweep(model, image, label_, patch, args.stride, mode=mode,  # noqa: E731
                                                   batch_size=args.batch_size, **kw)
        naive_s, naive = best_time(lambda: sweep("naive"), args.repeats)
        exact_s, exact = best_time(lambda: sweep("exact"), args.repeats)
        full, changed, engine = multiply_adds(model, args.size, patch, args.stride)
        positions = exact.p_true[0].numel()
        entry = {"positions": positions, "naive_s": naive_s, "exact_s": exact_s, "ratio_naive_to_exact": naive_s / exact_s,
                 "naive_gflops": 2 * full * positions / naive_s / 1e9, "exact_gflops": 2 * engine * positions / exact_s / 1e9,
                 "flop_ceiling_changed": full / changed, "flop_ceiling_engine": full / engine,
                 "max_abs_difference": float((exact.p_true - naive.p_true).abs().max())}
        summary["patches"][str(patch)] = entry
        print(f"patch {patch} px, {positions} positions: naive {naive_s:.2f} s, exact {exact_s:.2f} s, naive / exact "
              f"{entry['ratio_naive_to_exact']:.2f}; FLOP ceilings {entry['flop_ceiling_changed']:.2f} (changed outputs), "
              f"{entry['flop_ceiling_engine']:.2f} (engine windows); achieved {entry['naive_gflops']:.0f} and "
              f"{entry['exact_gflops']:.0f} GFLOP/s; max |exact - naive| {entry['max_abs_difference']:.1e}")
    return summary


def captum(args, model, image, label_, exact_s: float) -> dict | None:
    if not args.ppe:
        return None
    from captum.attr import Occlusion

    forward = lambda x: model(x).softmax(dim=1)  # noqa: E731
    times = {}
    for ppe in args.ppe:
        def run(ppe=ppe):
            with torch.no_grad():
                return Occlusion(forward).attribute(
                    image, sliding_window_shapes=(3, args.patch, args.patch), strides=(3, args.stride, args.stride),
                    baselines=0.0, target=int(label_[0]), perturbations_per_eval=ppe)
        times[ppe], _ = best_time(run, args.repeats)
        print(f"Captum Occlusion, perturbations_per_eval={ppe}: {times[ppe]:.2f} s")
    best = min(times, key=times.get)
    print(f"Captum (best, ppe={best}) / exact: {times[best] / exact_s:.2f}")
    return {"seconds": {str(k): v for k, v in times.items()}, "best_ppe": best,
            "ratio_captum_to_exact": times[best] / exact_s}


def approximate_speed(args, model, image, label_, naive_s: float) -> dict:
    result = {}
    for setting in args.settings:
        seconds, _ = best_time(lambda: occlusion_sweep(model, image, label_, args.patch, args.stride, mode="approximate",
                                                       batch_size=args.batch_size, approximation=setting), args.repeats)
        result[label(setting)] = {"seconds": seconds, "ratio_naive_to_approximate": naive_s / seconds}
        print(f"approximate ({label(setting)}): {seconds:.2f} s")
        print(f"naive / approximate ({label(setting)}): {naive_s / seconds:.2f}")
    return result


def approximate_accuracy(args) -> dict:
    """Speed-up over naive and map correlation with exact, per setting, on validation images."""
    from zfnet.data.images import image_set, subset
    from zfnet.data.prepare import PreparedSplit
    from zfnet.nets.training import load_trained

    model, hparams = load_trained(args.checkpoint, args.device)
    split = PreparedSplit(Path(args.prepared) / "val")
    indices = subset(len(split), args.val_images, 0)
    images = image_set(split, hparams, indices).inputs(range(len(indices))).to(args.device)
    labels = torch.as_tensor(split.labels[indices], dtype=torch.long, device=args.device)
    run = lambda mode, **kw: occlusion_sweep(model, images, labels, args.val_patch, args.val_stride,  # noqa: E731
                                             mode=mode, batch_size=args.batch_size, **kw)
    naive_s, _ = best_time(lambda: run("naive"), 1)
    exact_s, exact = best_time(lambda: run("exact"), 1)
    e = exact.p_true.flatten(1).double()
    varies = (e.amax(1) - e.amin(1)) >= 0.01
    result = {"images": len(indices), "varying_maps": int(varies.sum()), "naive_s": naive_s,
              "exact": {"ratio_naive_to": naive_s / exact_s, "correlation": 1.0}, "settings": {}}
    print(f"validation images: {len(indices)} ({int(varies.sum())} with varying maps); naive {naive_s:.2f} s, "
          f"exact {exact_s:.2f} s")
    for setting in args.settings:
        seconds, approx = best_time(lambda: run("approximate", approximation=setting), 1)
        a = approx.p_true.flatten(1).double()
        correlation = float(_pearson(a[varies], e[varies]).mean()) if varies.any() else float("nan")
        result["settings"][label(setting)] = {"ratio_naive_to": naive_s / seconds, "correlation": correlation}
        print(f"  {label(setting)}: naive / approximate {naive_s / seconds:.2f}, map correlation {correlation:.3f}")
    return result


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-12)


def draw_curve(accuracy: dict, path: Path) -> None:
    from zfnet.io import save_figure
    from zfnet.viz.figures import plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, point in [("exact", accuracy["exact"]), *accuracy["settings"].items()]:
        ax.scatter(point["ratio_naive_to"], point["correlation"])
        ax.annotate(name, (point["ratio_naive_to"], point["correlation"]), fontsize=7, xytext=(4, -3),
                    textcoords="offset points")
    ax.axhline(0.95, ls="--", c="grey", lw=0.8)
    ax.set_xlabel("speed-up over naive (same batching)")
    ax.set_ylabel("mean correlation of p(true) maps with exact")
    ax.set_title(f"approximate occlusion on {accuracy['images']} validation images", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(0)
    model = build_model(args.arch, 1000, input_size=args.size, width=args.width, init="fan_in").eval().to(args.device)
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, args.size, args.size, generator=generator).to(args.device)
    label_ = torch.tensor([5], device=args.device)
    print(f"{args.arch} width {args.width} at {args.size} px on {args.device} ({torch.get_num_threads()} threads); "
          f"batch {args.batch_size} positions per call")
    summary = {"arch": args.arch, "width": args.width, "size": args.size, "stride": args.stride,
               "batch_size": args.batch_size, "threads": torch.get_num_threads(), "device": args.device}
    summary.update(engines(args, model, image, label_))
    main_patch = summary["patches"][str(args.patch)]
    print(f"naive / exact: {main_patch['ratio_naive_to_exact']:.2f}")
    print(f"FLOP ceiling (changed outputs): {main_patch['flop_ceiling_changed']:.2f}")
    print(f"FLOP ceiling (engine windows): {main_patch['flop_ceiling_engine']:.2f}")
    summary["captum"] = captum(args, model, image, label_, main_patch["exact_s"])
    summary["approximate"] = approximate_speed(args, model, image, label_, main_patch["naive_s"])
    if args.checkpoint:
        summary["approximate_accuracy"] = approximate_accuracy(args)
        if args.curve:
            draw_curve(summary["approximate_accuracy"], args.curve)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
