"""Training throughput: the Lightning loop against a plain PyTorch loop, and against the machine's GEMM rate.

    python benchmarks/train_throughput.py                       # the default pipeline's zfnet (half width, 112 px)
    python benchmarks/train_throughput.py --model alexnet --width 1 --size 224 --batch 128 --channels-last
    python benchmarks/train_throughput.py --compile             # also both loops with torch.compile'd networks
    python benchmarks/train_throughput.py --width 0.05 --size 64 --batch 4 --steps 3 --warmup 1 \\
        --repeats 1 --gemm-size 128                               # tiny: a smoke run, not a measurement

Both loops train the same model on the same in-memory batches (uint8 NHWC, as the pipeline's loader
hands them over, cropped, flipped and mean-subtracted on the device by `train_inputs`; SGD with
momentum and weight decay, filter RMS renormalization after each step; the pipeline's recipe from
params.yaml), so the ratio Lightning / plain isolates what the Lightning side
(zfnet.nets.training.Classifier and the Trainer) adds. The Lightning loop gets the batches whole
(`batch_size=None`), as `PreparedData` gives them. With `--compile` each round also runs both loops
with the network under torch.compile (its compilation falls in the untimed warm-up steps: keep
`--warmup` at 1 or more) and reports compiled / eager. Achieved GFLOP/s counts the
multiply-adds of every conv and fc layer (x2 for FLOPs, x3 for forward + backward); its share of a
float32 square matmul measured in the same run is the GEMM share. Each round times the GEMM, the
plain loop and the Lightning loop in turn (fresh models, same seed); the best of `--repeats` rounds
is reported, so a busy machine hurts all three alike. The first `--warmup` steps of each loop are
not timed. CPU only. Prints ratios, never asserts a time; `--json PATH` also writes a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

# The pipeline's training recipe (params.yaml, train:), shared by both loops.
RECIPE = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "renorm_radius": 0.1, "input_scale": 0.02}
NUM_CLASSES = 10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="zfnet", choices=["zfnet", "alexnet"])
    parser.add_argument("--width", type=float, default=0.5, help="conv maps and fc units multiplier (default 0.5)")
    parser.add_argument("--size", type=int, default=112, help="crop side, the model's input, in pixels (default 112)")
    parser.add_argument("--batch", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--steps", type=int, default=20, help="steps per loop, warm-up included (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each loop (default 3)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds of GEMM, plain loop, Lightning loop; the best of each is kept (default 2)")
    parser.add_argument("--gemm-size", type=int, default=4096,
                        help="side of the float32 square matmul baseline (default 4096)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format in both loops")
    parser.add_argument("--compile", action="store_true", help="also time both loops with torch.compile'd networks")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    args = parser.parse_args(argv)
    for name in ("width", "size", "batch", "steps", "repeats", "gemm_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= args.warmup < args.steps:
        parser.error("--warmup must be at least 0 and less than --steps (some steps must be timed)")
    if args.compile and args.warmup < 1:
        parser.error("--compile needs --warmup of 1 or more (the first step compiles)")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    args.stored = args.size * 8 // 7  # the paper's 256/224 ratio
    return args


def gemm_gflops(n: int, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def arch(args) -> dict:
    return {"name": args.model, "input_size": args.size, "width": args.width, "init": "fan_in"}


def training_flops_per_image(args) -> float:
    """Forward multiply-adds of conv and fc layers, x2 (FLOPs) x3 (forward + backward)."""
    from zfnet.nets.models import build_model

    options = {k: v for k, v in arch(args).items() if k != "name"}
    model = build_model(args.model, NUM_CLASSES, **options).eval()
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs.append(output.numel() * per_output)
        else:
            macs.append(module.in_features * module.out_features)

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, 3, args.size, args.size))
    for hook in hooks:
        hook.remove()
    return 2 * 3 * sum(macs)


def plain_loop(batches: list, mean: torch.Tensor, args, compile: bool = False) -> float:
    """The recipe written out with the library's functions; images/s over the timed steps."""
    from zfnet.data.loading import batch_generator, train_inputs
    from zfnet.nets.models import build_model, clip_filter_rms_

    torch.manual_seed(0)
    options = {k: v for k, v in arch(args).items() if k != "name"}
    model = build_model(args.model, NUM_CLASSES, **options).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"],
                                weight_decay=RECIPE["weight_decay"])
    start = None
    for step, (images, labels) in enumerate(batches):
        if step == args.warmup:
            start = time.perf_counter()
        generator = batch_generator(0, 0, step)
        x = train_inputs(images, mean, args.size, generator, scale=RECIPE["input_scale"])  # channels_last strides
        if not args.channels_last:
            x = x.contiguous()
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clip_filter_rms_(model, RECIPE["renorm_radius"])
    return (len(batches) - args.warmup) * args.batch / (time.perf_counter() - start)


def lightning_loop(batches: list, mean: torch.Tensor, args, compile: bool = False) -> float:
    """zfnet.nets.training.Classifier under a pl.Trainer, as the train stage runs it; images/s over the timed steps.

    One short validation batch follows the epoch (the Classifier's epoch-end bookkeeping needs it); it
    falls outside the timed steps.
    """
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from zfnet.nets.training import Classifier

    quiet_lightning()  # after the import, which sets Lightning's log levels

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.start = self.end = None
            self.steps = 0

        def on_train_batch_start(self, trainer, module, batch, batch_index):
            if batch_index == args.warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            self.steps = batch_index + 1
            self.end = time.perf_counter()

    torch.manual_seed(0)
    module = Classifier(arch(args), num_classes=NUM_CLASSES, mean=mean, crop=args.size,
                        channels_last=args.channels_last, compile=compile, **RECIPE)
    train = DataLoader(batches, batch_size=None, shuffle=False)  # whole batches, as PreparedData yields them
    val = DataLoader(batches[:1], batch_size=None)
    timer = Timer()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[timer], num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    if timer.steps != len(batches) or timer.start is None:
        raise RuntimeError(f"the Lightning loop ran {timer.steps} of {len(batches)} steps")
    return (timer.steps - args.warmup) * args.batch / (timer.end - timer.start)


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, args.stored, args.stored, 3)
    batches = [(torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator),
                torch.randint(0, NUM_CLASSES, (args.batch,), generator=generator)) for _ in range(args.steps)]
    mean = torch.full((3, args.stored, args.stored), 120.0)

    gemm = plain = lightning = plain_compiled = lightning_compiled = 0.0
    for _ in range(args.repeats):
        gemm = max(gemm, gemm_gflops(args.gemm_size))
        plain = max(plain, plain_loop(batches, mean, args))
        lightning = max(lightning, lightning_loop(batches, mean, args))
        if args.compile:
            plain_compiled = max(plain_compiled, plain_loop(batches, mean, args, compile=True))
            lightning_compiled = max(lightning_compiled, lightning_loop(batches, mean, args, compile=True))
    gflop = training_flops_per_image(args) / 1e9
    summary = {
        "model": f"{args.model} width {args.width}", "size": args.size, "batch": args.batch, "steps": args.steps,
        "warmup": args.warmup, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "channels_last": args.channels_last, "gemm_size": args.gemm_size, "gemm_gflops": gemm,
        "training_gflop_per_image": gflop,
        "images_per_s": {"plain": plain, "lightning": lightning},
        "gflops": {"plain": plain * gflop, "lightning": lightning * gflop},
        "ratio_lightning_to_plain": lightning / plain,
        "gemm_share": {"plain": plain * gflop / gemm, "lightning": lightning * gflop / gemm},
    }
    lines = [(f"float32 GEMM ({args.gemm_size}^2)", f"{gemm:10.1f} GFLOP/s"),
             ("training GFLOP per image", f"{gflop:10.3f}"),
             ("plain PyTorch loop", f"{plain:10.1f} images/s = {plain * gflop:.1f} GFLOP/s"),
             ("Lightning loop", f"{lightning:10.1f} images/s = {lightning * gflop:.1f} GFLOP/s"),
             ("Lightning / plain", f"{lightning / plain:10.3g}"),
             ("GEMM share (plain)", f"{plain * gflop / gemm:10.3g}"),
             ("GEMM share (Lightning)", f"{lightning * gflop / gemm:10.3g}")]
    if args.compile:
        summary["compiled"] = {"images_per_s": {"plain": plain_compiled, "lightning": lightning_compiled},
                               "ratio_to_eager": {"plain": plain_compiled / plain,
                                                  "lightning": lightning_compiled / lightning}}
        lines += [("plain loop, compiled", f"{plain_compiled:10.1f} images/s"),
                  ("Lightning loop, compiled", f"{lightning_compiled:10.1f} images/s"),
                  ("compiled / eager (plain)", f"{plain_compiled / plain:10.3g}"),
                  ("compiled / eager (Lightning)", f"{lightning_compiled / lightning:10.3g}")]
    print(f"{args.model} width {args.width} at {args.size}px, batch {args.batch}, {args.steps} steps "
          f"({args.warmup} untimed), best of {args.repeats}, {torch.get_num_threads()} threads"
          + (", channels_last" if args.channels_last else ""))
    for label, text in lines:
        print(f"{label + ':':30s}{text}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
