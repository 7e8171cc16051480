"""Training throughput on a GPU: float32 against bf16 autocast, contiguous against channels_last, and the
Lightning loop under DDP, run by hand on a machine with CUDA.

    python benchmarks/gpu_training.py                                  # full ZFNet and AlexNet, 224 px, batch 128
    python benchmarks/gpu_training.py --models zfnet --batch 256 --json gpu.json
    python benchmarks/gpu_training.py --device cpu --models zfnet --width 0.05 --size 64 --batch 4 \\
        --steps 3 --warmup 1 --lightning-steps 3                         # tiny: a smoke run, not a measurement

1. A plain PyTorch training loop (the pipeline's recipe: SGD with momentum and weight decay, filter RMS
   renormalization after each step) on in-memory batches already on the device, for each model, each
   precision (`--precisions`: 32, bf16) and memory format (`--formats`: contiguous, channels_last):
   images/s over the timed steps (after `--warmup`, with the device synchronized), and each setting's
   ratio to float32 contiguous, the baseline measured in the same run.
2. The train stage's Lightning module (zfnet.nets.training.Classifier) under a pl.Trainer with
   strategy "ddp" on one device (process group and DDP wrapper included), bf16-mixed and channels_last:
   images/s and its ratio to the plain loop with the same settings.

Achieved TFLOP/s: torch's FLOP count of one forward pass (convs and fc layers), x3 for forward and backward.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from zfnet.nets.models import build_model, clip_filter_rms_

RECIPE = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "renorm_radius": 0.1, "input_scale": 0.02}
NUM_CLASSES = 1000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="zfnet,alexnet")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="steps per loop, warm-up included (default 40)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precisions", default="32,bf16")
    parser.add_argument("--formats", default="contiguous,channels_last")
    parser.add_argument("--lightning-steps", type=int, default=40, help="Lightning DDP steps; 0 skips (default 40)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < min(args.steps, args.lightning_steps or args.steps):
        parser.error("--warmup must be below --steps and --lightning-steps")
    args.models = args.models.split(",")
    args.precisions = args.precisions.split(",")
    args.formats = args.formats.split(",")
    return args


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_loop(name: str, args, precision: str, memory_format: str) -> float:
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES, input_size=args.size, width=args.width, init="fan_in").to(args.device)
    channels_last = memory_format == "channels_last"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"],
                                weight_decay=RECIPE["weight_decay"])
    generator = torch.Generator(device=args.device).manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size, device=args.device, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (args.batch,), device=args.device, generator=generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = (torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    start = None
    for step in range(args.steps):
        if step == args.warmup:
            synchronize(args.device)
            start = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clip_filter_rms_(model, RECIPE["renorm_radius"])
    synchronize(args.device)
    return (args.steps - args.warmup) * args.batch / (time.perf_counter() - start)


def lightning_ddp(name: str, args) -> float:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from zfnet.nets.training import Classifier

    for logger in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    for message in (".*does not have many workers.*", ".*LeafSpec.*", ".*sync_dist=True.*"):
        warnings.filterwarnings("ignore", message=message)

    class Timer(pl.Callback):
        start = end = None
        steps = 0

        def on_train_batch_start(self, trainer, module, batch, batch_index):
            if batch_index == args.warmup:
                synchronize(args.device)
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            synchronize(args.device)
            self.steps, self.end = batch_index + 1, time.perf_counter()

    torch.manual_seed(0)
    stored = args.size * 8 // 7
    mean = torch.full((3, stored, stored), 120.0)
    module = Classifier({"name": name, "input_size": args.size, "width": args.width, "init": "fan_in"},
                        num_classes=NUM_CLASSES, mean=mean, crop=args.size, channels_last=True, **RECIPE)
    images = torch.randint(0, 256, (args.batch * args.lightning_steps, 3, stored, stored), dtype=torch.uint8)
    labels = torch.randint(0, NUM_CLASSES, (len(images),))
    train = DataLoader(TensorDataset(images, labels), batch_size=args.batch, pin_memory=args.device != "cpu")
    val = DataLoader(TensorDataset(images[:args.batch], labels[:args.batch]), batch_size=args.batch)
    timer = Timer()
    on_gpu = args.device.startswith("cuda")
    trainer = pl.Trainer(accelerator="gpu" if on_gpu else "cpu", devices=1, strategy="ddp",
                         precision="bf16-mixed" if on_gpu else "32-true", max_epochs=1, limit_val_batches=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer], num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    if timer.start is None or timer.steps != args.lightning_steps:
        raise RuntimeError(f"the Lightning loop ran {timer.steps} of {args.lightning_steps} steps")
    return (timer.steps - args.warmup) * args.batch / (timer.end - timer.start)


def forward_flops(name: str, args) -> int:
    """FLOPs of one image's forward pass (torch's counter: convs and matrix products)."""
    model = build_model(name, NUM_CLASSES, input_size=args.size, width=args.width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, args.size, args.size))
    return counter.get_total_flops()


def main(argv=None) -> None:
    args = parse_args(argv)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{device_name}, torch {torch.__version__}; batch {args.batch} at {args.size} px, width {args.width}")
    summary = {"device": device_name, "torch": torch.__version__, "batch": args.batch, "size": args.size,
               "width": args.width, "models": {}}
    for name in args.models:
        tflop_per_image = 3 * forward_flops(name, args) / 1e12
        result = {"images_per_s": {}, "ratio_to_fp32_contiguous": {}, "tflops": {}}
        for precision in args.precisions:
            for memory_format in args.formats:
                key = f"{precision} {memory_format}"
                rate = plain_loop(name, args, precision, memory_format)
                result["images_per_s"][key] = rate
                result["tflops"][key] = rate * tflop_per_image
                print(f"{name} plain loop, {key}: {rate:.0f} images/s ({rate * tflop_per_image:.3g} TFLOP/s)")
        baseline = result["images_per_s"].get("32 contiguous")
        for key, rate in result["images_per_s"].items():
            if baseline and key != "32 contiguous":
                result["ratio_to_fp32_contiguous"][key] = rate / baseline
                print(f"{name} {key} / 32 contiguous: {rate / baseline:.2f}")
        if args.lightning_steps:
            rate = lightning_ddp(name, args)
            plain_key = "bf16 channels_last" if args.device.startswith("cuda") else "32 channels_last"
            result["lightning_ddp_images_per_s"] = rate
            print(f"{name} Lightning DDP (1 device, {plain_key}): {rate:.0f} images/s")
            if plain_key in result["images_per_s"]:
                result["ratio_lightning_to_plain"] = rate / result["images_per_s"][plain_key]
                print(f"{name} Lightning DDP / plain: {result['ratio_lightning_to_plain']:.2f}")
        summary["models"][name] = result
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
