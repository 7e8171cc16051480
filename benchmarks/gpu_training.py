"""End-to-end training throughput on a GPU: every arm against a plain PyTorch loop on GPU-resident batches,
measured in the same run, at the paper's batch of 128 and at 512. One command, under 6 minutes on one H100/H200:

    python benchmarks/gpu_training.py --json gpu_training.json          # ZFNet, batches 128 and 512
    python benchmarks/gpu_training.py --models zfnet,alexnet --codec raw
    python benchmarks/gpu_training.py --device cpu --width 0.05 --size 64 --batches 4 --images 96 \\
        --steps 4 --warmup 1 --workers 1 --classes 4 --no-compile      # tiny: a smoke run, not a measurement

Data: an ImageNet-shaped prepared split written first into --data (default: a temp folder): --images
synthetic smooth-noise images of --classes classes (not ImageNet's content: the bytes per JPEG are printed
and stored), as <class>/<n>.JPEG, then through the prepare stage's own `prepare_split` (--codec, 256 px
shards for a 224 crop), read by the train stage's own `PreparedData`.

Arms, per model and batch size (bf16 autocast and channels_last on CUDA, float32 on CPU; the same model,
recipe and memory format everywhere; the pipeline's filter renormalization after each step):
  plain/resident      baseline: a plain loop on float batches already cropped and on the device
  plain/loader        the same loop fed by PreparedData's loader (--workers processes): the H2D copy and
                      `train_inputs` (crop, flip, mean, scale on the device) added: the input path alone
  loader/only         the loader and the H2D copy with no compute: how many images/s the input path can give
  lightning/resident  the train stage's Classifier under pl.Trainer on uint8 batches already on the device
  lightning/loader-0, lightning/loader-N   the same with PreparedData and 0 / --workers workers: end to end
  switches (each on lightning/resident, one change): crop=loop (the per-image crop loop on the normalized
  full image, as before), finite-check=every-step (the loss flag read every step), renorm=sync (the
  renormalization's count read every step), metrics=off, strategy=ddp (vs auto), compile (torch.compile)
Each arm is timed by CUDA events over the steps after --warmup (one wait, at the end), or by the clock on
CPU. A sync check runs --sync-steps train steps of lightning/resident under torch.cuda.set_sync_debug_mode
("warn") and counts the host syncs it reports (0 is the goal), with where they came from.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import multiprocessing
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from zfnet.nets.models import build_model, clip_filter_rms_

RECIPE = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "renorm_radius": 0.1, "input_scale": 1.0}
SWITCHES = ("crop=loop", "finite-check=every-step", "renorm=sync", "metrics=off", "strategy=ddp", "compile")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="zfnet")
    parser.add_argument("--batches", default="128,512", help="batch sizes (default 128,512)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224, help="crop size; images are stored at size * 8 / 7")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per arm, after --warmup (default 60)")
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--images", type=int, default=40_000, help="prepared training images (default 40,000)")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--codec", choices=("raw", "jpeg"), default="jpeg")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2),
                        help="DataLoader workers of the loader arms (default: all cores but 2)")
    parser.add_argument("--switches", default=",".join(SWITCHES), help="switch arms to run ('' for none)")
    parser.add_argument("--no-compile", action="store_true", help="drop the compile switch (slow to build)")
    parser.add_argument("--sync-steps", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None, help="where the prepared data goes (reused if there)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    args.batches = [int(b) for b in args.batches.split(",")]
    args.switches = [s for s in args.switches.split(",") if s and not (args.no_compile and s == "compile")]
    unknown = sorted(set(args.switches) - set(SWITCHES))
    if unknown:
        parser.error(f"--switches: unknown {unknown}; choose from {list(SWITCHES)}")
    needed = max(args.batches) * (args.warmup + args.steps)
    if args.images < needed:
        parser.error(f"--images {args.images} is below (warmup + steps) x largest batch = {needed}")
    return args


# ----------------------------------------------------------------------------- timing


class Clock:
    """Elapsed time between `start()` and `stop()`: CUDA events (no wait until `seconds()`) or the host clock."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.begin = self.end = None

    def _now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self.begin = self._now()

    def stop(self) -> None:
        self.end = self._now()

    def seconds(self) -> float:
        if self.begin is None or self.end is None:
            raise RuntimeError("the clock was not started and stopped")
        if not self.cuda:
            return self.end - self.begin
        self.end.synchronize()
        return self.begin.elapsed_time(self.end) / 1000.0


def autocast(device: str):
    if device.startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------- data


def _write_source_chunk(job) -> int:
    """Smooth random images (low-resolution noise, upsampled, with a little texture) as JPEG files."""
    from PIL import Image

    root, start, stop, classes, stored, seed = job
    torch.set_num_threads(1)  # one process per core: torch's own threads would oversubscribe them
    rng = np.random.default_rng([seed, start])
    for i in range(start, stop):
        coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, 8, 8)).astype(np.float32))
        image = F.interpolate(coarse, size=(stored, stored), mode="bicubic", align_corners=False)[0]
        image = image + torch.from_numpy(rng.normal(0, 12, (3, stored, stored)).astype(np.float32))
        pixels = image.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        folder = Path(root) / f"c{i % classes:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:07d}.JPEG", quality=95)
    return stop - start


def make_prepared(args, root: Path) -> dict:
    """An ImageNet-shaped prepared dataset at `root` (train: --images, val: one batch), via prepare_split."""
    from zfnet.data.prepare import prepare_split

    stored = args.size * 8 // 7
    index = root / "prepared" / "train" / "index.json"
    if index.is_file():
        held = json.loads(index.read_text())
        if (held["num_images"] >= args.images and held["size"] == stored
                and held.get("codec", "raw") == args.codec):
            return {"reused": str(root / "prepared"), "images": held["num_images"]}
        raise SystemExit(f"--data {root}: holds {held['num_images']} {held.get('codec', 'raw')} images at "
                         f"{held['size']} px; expected {args.images} {args.codec} at {stored}: use another folder")
    started = time.perf_counter()
    for split, count in (("train", args.images), ("val", max(args.batches))):
        source = root / "source" / split
        chunk = 256
        jobs = [(str(source), s, min(s + chunk, count), args.classes, stored, len(split))
                for s in range(0, count, chunk)]
        with multiprocessing.get_context("spawn").Pool(max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            pool.map(_write_source_chunk, jobs)
    options = dict(size=stored, shard_size=1024, codec=args.codec, quality=args.quality, progress=False)
    train = prepare_split(root / "source" / "train", root / "prepared" / "train", compute_mean=True, **options)
    from zfnet.data.prepare import PreparedSplit
    classes = PreparedSplit(root / "prepared" / "train").classes
    prepare_split(root / "source" / "val", root / "prepared" / "val", classes=classes, compute_mean=False, **options)
    return {"images": train["num_images"], "bytes_per_image": train["bytes"] / train["num_images"],
            "prepare_images_per_s": train["images_per_s"], "seconds": time.perf_counter() - started}


def resident_batches(args, batch: int, stored: int, distinct: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`distinct` uint8 NHWC batches on the device, made once per batch size (at 512 each is 100 MB)."""
    generator = torch.Generator().manual_seed(batch)
    made = []
    for _ in range(distinct):
        images = torch.randint(0, 256, (batch, stored, stored, 3), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, args.classes, (batch,), generator=generator)
        made.append((images.to(args.device), labels.to(args.device)))
    return made


# ----------------------------------------------------------------------------- plain loops


def _plain_model(name: str, args):
    torch.manual_seed(0)
    model = build_model(name, args.classes, input_size=args.size, width=args.width, init="fan_in").to(args.device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"],
                                weight_decay=RECIPE["weight_decay"])
    return model, optimizer


def _plain_step(model, optimizer, inputs, labels, device) -> None:
    with autocast(device):
        loss = F.cross_entropy(model(inputs), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    clip_filter_rms_(model, RECIPE["renorm_radius"])  # returns a device tensor: no wait


def plain_resident(name: str, args, batch: int) -> float:
    model, optimizer = _plain_model(name, args)
    generator = torch.Generator(device=args.device).manual_seed(0)
    inputs = torch.randn(batch, 3, args.size, args.size, device=args.device, generator=generator) * 50
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, args.classes, (batch,), device=args.device, generator=generator)
    clock = Clock(args.device)
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            clock.start()
        _plain_step(model, optimizer, inputs, labels, args.device)
    clock.stop()
    return args.steps * batch / clock.seconds()


def plain_loader(name: str, args, batch: int, data_root: Path, compute: bool = True) -> float:
    """The plain loop fed by PreparedData's train loader; compute=False: the loader and the copy alone."""
    from zfnet.data.loading import PreparedData, batch_generator, train_inputs

    data = PreparedData(data_root, batch_size=batch, num_workers=args.workers, seed=0)
    mean = data.mean.to(args.device)
    model, optimizer = _plain_model(name, args)
    clock = Clock(args.device)
    step = -1
    for step, (images, labels) in enumerate(data.train_dataloader()):
        if step == args.warmup:
            clock.start()
        if step == args.warmup + args.steps:
            break
        images = images.to(args.device, non_blocking=True)
        labels = labels.to(args.device, non_blocking=True)
        if compute:
            inputs = train_inputs(images, mean, args.size, batch_generator(0, 0, step), True, RECIPE["input_scale"])
            _plain_step(model, optimizer, inputs, labels, args.device)
    clock.stop()
    if step < args.warmup + args.steps:
        raise RuntimeError(f"the loader gave only {step + 1} batches of {batch}; raise --images")
    return args.steps * batch / clock.seconds()


# ----------------------------------------------------------------------------- Lightning


def _quiet_lightning() -> None:
    for logger in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    for message in (".*does not have many workers.*", ".*LeafSpec.*", ".*sync_dist=True.*", ".*num_workers.*"):
        warnings.filterwarnings("ignore", message=message)


@contextlib.contextmanager
def switched(switch: str | None):
    """The train stage's code with one switch applied (the earlier behaviour it stands for)."""
    from zfnet.data import loading
    from zfnet.nets import training

    saved = {"train_inputs": training.train_inputs, "clip": training.clip_filter_rms_,
             "update": training.TopKError.update}
    if switch == "crop=loop":
        def loop_crops(images, mean, crop, generator, flip=True, scale=1.0):
            nchw = loading.pixels_last(images).permute(0, 3, 1, 2)
            return loading.random_crops(loading.normalize(nchw, mean, scale), crop, generator, flip)
        training.train_inputs = loop_crops
    elif switch == "renorm=sync":
        training.clip_filter_rms_ = lambda model, radius: int(saved["clip"](model, radius))
    elif switch == "metrics=off":
        training.TopKError.update = lambda self, logits, labels: None
    try:
        yield
    finally:
        training.train_inputs, training.clip_filter_rms_ = saved["train_inputs"], saved["clip"]
        training.TopKError.update = saved["update"]


class Timing:
    """A pl.Callback factory: starts the clock at batch --warmup, stops it after the last timed batch, and
    optionally records the host syncs of a few steps (CUDA only)."""

    @staticmethod
    def make(args, sync_steps: int = 0):
        import pytorch_lightning as pl

        class _Timing(pl.Callback):
            def __init__(self):
                self.clock, self.batches, self.syncs = Clock(args.device), 0, []
                self._catch = None

            def on_train_batch_start(self, trainer, module, batch, batch_index):
                if batch_index == args.warmup:
                    self.clock.start()
                if sync_steps and batch_index == args.warmup and args.device.startswith("cuda"):
                    self._catch = warnings.catch_warnings(record=True)
                    self.syncs = self._catch.__enter__()
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode("warn")

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
                self.batches = batch_index + 1
                if self._catch is not None and batch_index + 1 == args.warmup + sync_steps:
                    torch.cuda.set_sync_debug_mode("default")
                    self._catch.__exit__(None, None, None)
                    self._catch = None
                if batch_index + 1 == args.warmup + args.steps:
                    self.clock.stop()

        return _Timing()


def lightning_arm(name: str, args, batch: int, data_root: Path | None, workers: int = 0,
                  switch: str | None = None, sync_steps: int = 0, resident=None) -> tuple[float, list[str]]:
    """The train stage's Classifier under pl.Trainer; data_root None: the device-resident uint8 batches
    `resident` (from `resident_batches`), cycled."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from zfnet.data.loading import PreparedData
    from zfnet.nets.training import Classifier

    _quiet_lightning()
    stored = args.size * 8 // 7
    cuda = args.device.startswith("cuda")
    steps = args.warmup + args.steps
    if data_root is None:
        train = DataLoader([resident[i % len(resident)] for i in range(steps)], batch_size=None)
        val = DataLoader(resident[:1], batch_size=None)
        mean, loaders = torch.full((3, stored, stored), 120.0), {"train_dataloaders": train, "val_dataloaders": val}
    else:
        data = PreparedData(data_root, batch_size=batch, num_workers=workers, seed=0)
        mean, loaders = data.mean, {"datamodule": data}
    if switch == "compile":
        torch._dynamo.reset()  # compile afresh for this batch size, not on top of another's graphs
    with switched(switch):  # before the module is built: torchmetrics binds `update` per instance
        torch.manual_seed(0)
        module = Classifier({"name": name, "input_size": args.size, "width": args.width, "init": "fan_in"},
                            num_classes=args.classes, mean=mean, crop=args.size, channels_last=True,
                            compile=switch == "compile",
                            finite_check_every=1 if switch == "finite-check=every-step" else 100, **RECIPE)
        timing = Timing.make(args, sync_steps)
        trainer = pl.Trainer(accelerator="gpu" if cuda else "cpu", devices=1,
                             strategy="ddp" if switch == "strategy=ddp" else "auto",
                             precision="bf16-mixed" if cuda else "32-true", max_epochs=1, limit_train_batches=steps,
                             limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[timing], num_sanity_val_steps=0)
        trainer.fit(module, **loaders)
    del trainer, module, loaders
    release(args.device)
    if timing.batches != steps:
        raise RuntimeError(f"the Lightning loop ran {timing.batches} of {steps} steps")
    syncs = [f"{Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]}" for w in timing.syncs]
    return args.steps * batch / timing.clock.seconds(), syncs


def release(device: str) -> None:
    """Free a finished arm's memory (its Trainer and module hold each other) before the next one."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- main


def forward_flops(name: str, args) -> int:
    """FLOPs of one image's forward pass (torch's counter: convs and matrix products)."""
    model = build_model(name, args.classes, input_size=args.size, width=args.width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, args.size, args.size))
    return counter.get_total_flops()


def measure(name: str, args, batch: int, data_root: Path, save) -> dict:
    """Every arm at one batch size; `save(partial)` is called after each, so a cut-off run keeps what ran."""
    rates, syncs = {}, []
    resident = resident_batches(args, batch, args.size * 8 // 7)

    def record(key: str, rate: float) -> None:
        rates[key] = rate
        print(f"{name} batch {batch}, {key}: {rate:.0f} images/s", flush=True)
        save({"images_per_s": rates})

    record("plain/resident", plain_resident(name, args, batch))
    record("plain/loader", plain_loader(name, args, batch, data_root))
    record("loader/only", plain_loader(name, args, batch, data_root, compute=False))
    rate, syncs = lightning_arm(name, args, batch, None, sync_steps=args.sync_steps, resident=resident)
    record("lightning/resident", rate)
    record("lightning/loader-0", lightning_arm(name, args, batch, data_root, workers=0)[0])
    record(f"lightning/loader-{args.workers}", lightning_arm(name, args, batch, data_root, workers=args.workers)[0])
    for switch in args.switches:
        record(f"lightning/resident {switch}", lightning_arm(name, args, batch, None, switch=switch,
                                                             resident=resident)[0])
    del resident
    release(args.device)
    baseline = rates["plain/resident"]
    ratios = {key: rate / baseline for key, rate in rates.items() if key != "plain/resident"}
    for key, ratio in ratios.items():
        print(f"{name} batch {batch} {key} / plain resident: {ratio:.2f}")
    end_to_end = ratios[f"lightning/loader-{args.workers}"]
    print(f"{name} batch {batch} end to end / plain resident: {end_to_end:.2f}")
    if args.device.startswith("cuda"):
        print(f"{name} batch {batch}: {len(syncs)} host syncs in {args.sync_steps} Lightning train steps"
              + "".join(f"\n    {s}" for s in sorted(set(syncs))))
    return {"images_per_s": rates, "ratio_to_plain_resident": ratios, "end_to_end_ratio": end_to_end,
            "host_syncs": syncs if args.device.startswith("cuda") else None}


def write_summary(args, summary: dict) -> None:
    if args.json:
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, args.json)


def main(argv=None) -> None:
    args = parse_args(argv)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{device_name}, torch {torch.__version__}; {args.size} px crops, width {args.width}, "
          f"batches {args.batches}, {args.workers} loader workers, codec {args.codec}", flush=True)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    summary = {"device": device_name, "torch": torch.__version__, "size": args.size, "width": args.width,
               "workers": args.workers, "codec": args.codec, "cpu_count": os.cpu_count(), "models": {}}
    with contextlib.ExitStack() as stack:
        root = args.data or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zfnet-gpu-bench-")))
        summary["data"] = make_prepared(args, root)
        print(f"data: {summary['data']}", flush=True)
        for name in args.models:
            tflop_per_image = 3 * forward_flops(name, args) / 1e12
            result = {"tflop_per_image": tflop_per_image, "batches": {}}
            summary["models"][name] = result
            for batch in args.batches:
                def save(partial, batch=batch):
                    result["batches"][str(batch)] = partial
                    write_summary(args, summary)
                result["batches"][str(batch)] = measured = measure(name, args, batch, root / "prepared", save)
                rate = measured["images_per_s"][f"lightning/loader-{args.workers}"]
                hours = 70 * 1_281_167 / rate / 3600
                measured["projected_hours_70_epochs"] = hours
                print(f"{name} batch {batch}: 70 ImageNet epochs at the end-to-end rate: {hours:.1f} h "
                      f"({rate * tflop_per_image:.3g} TFLOP/s)")
            write_summary(args, summary)
    if not all(math.isfinite(b["end_to_end_ratio"]) for m in summary["models"].values() for b in m["batches"].values()):
        raise SystemExit("a ratio is not finite")


if __name__ == "__main__":
    main()
