"""Training throughput: the Lightning loop against a plain PyTorch loop, and against the machine's GEMM rate.

    python benchmarks/train_throughput.py [--model zfnet] [--width 0.5] [--size 112] [--batch 64] [--steps 20]

Both loops train the same model on the same in-memory batches (mean-subtracted uint8 images, the
paper's crops and flips, SGD with momentum, filter RMS renormalization after each step), so the
ratio isolates what Lightning adds. Achieved GFLOP/s counts the multiply-adds of every conv and
fc layer (x2 for FLOPs, x3 for forward + backward) and is set against a float32 4096x4096 matmul
measured in the same run. Prints ratios, never asserts a time.
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from zfnet.data.loading import batch_generator, random_crops
from zfnet.nets.models import clip_filter_rms_
from zfnet.nets.training import Classifier


def gemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops_per_image(model: torch.nn.Module, size: int) -> float:
    """Forward multiply-adds of conv and fc layers, x2 (FLOPs) x3 (forward + backward)."""
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs.append(output.numel() * per_output)
        elif isinstance(module, torch.nn.Linear):
            macs.append(module.in_features * module.out_features)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return 2 * 3 * sum(macs)


def make_module(args) -> Classifier:
    torch.manual_seed(0)
    arch = {"name": args.model, "input_size": args.size, "width": args.width, "init": "fan_in"}
    mean = torch.full((3, args.stored, args.stored), 120.0)
    return Classifier(arch, num_classes=10, mean=mean, crop=args.size, lr=0.01, input_scale=0.02,
                      channels_last=args.channels_last)


def plain_loop(module: Classifier, batches: list, args) -> float:
    model = module.model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    start = None
    for step, (images, labels) in enumerate(batches):
        if step == args.warmup:
            start = time.perf_counter()
        generator = batch_generator(0, 0, step)
        x = random_crops(module.normalize(images), args.size, generator)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clip_filter_rms_(model, 0.1)
    return (len(batches) - args.warmup) * args.batch / (time.perf_counter() - start)


class Timer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        if batch_index == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        self.steps = batch_index + 1
        self.end = time.perf_counter()


def lightning_loop(module: Classifier, batches: list, args) -> float:
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch, shuffle=False)
    timer = Timer(args.warmup)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[timer], num_sanity_val_steps=0)
    module.on_train_epoch_end = lambda: None  # no validation in this benchmark: skip the epoch-end row
    trainer.fit(module, train_dataloaders=loader)
    return (timer.steps - args.warmup) * args.batch / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zfnet", choices=["zfnet", "alexnet"])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=112, help="crop side (the model's input)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    args.stored = args.size * 8 // 7  # the paper's 256/224 ratio
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, 256, (args.batch, 3, args.stored, args.stored), dtype=torch.uint8, generator=generator),
                torch.randint(0, 10, (args.batch,), generator=generator)) for _ in range(args.steps)]

    gemm = gemm_gflops()
    plain = plain_loop(make_module(args), batches, args)
    lightning = lightning_loop(make_module(args), batches, args)
    flops = training_flops_per_image(make_module(args).model, args.size)
    achieved = lightning * flops / 1e9
    print(f"{args.model} width {args.width} at {args.size}px, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"float32 GEMM (4096^2):      {gemm:8.1f} GFLOP/s")
    print(f"plain PyTorch loop:         {plain:8.1f} images/s")
    print(f"Lightning loop:             {lightning:8.1f} images/s")
    print(f"Lightning / plain:          {lightning / plain:8.3f}")
    print(f"training GFLOP per image:   {flops / 1e9:8.3f}")
    print(f"achieved (Lightning):       {achieved:8.1f} GFLOP/s = {achieved / gemm:.3f} of the GEMM rate")


if __name__ == "__main__":
    main()
