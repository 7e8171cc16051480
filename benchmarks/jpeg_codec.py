"""Benchmark of the JPEG shard codec (prepare.codec=jpeg), run by hand: size, fidelity, decode rate, loader rate.

    python benchmarks/jpeg_codec.py --data <tree>/imagenet/train --images 5000 --json jpeg.json
    python benchmarks/jpeg_codec.py --photo-crops 8 --size 64 --decode-images 16 --repeats 1 \\
        --loader-images 16 --batch 8 --qualities 90          # tiny: a smoke run

1. Size and fidelity. Two sources of raw crops, each exactly what a raw shard stores: the prepare
   stage's own centre crops (zfnet.data.prepare.load_rgb) of `--images` files spread evenly over the
   ImageFolder split `--data` (the built-in data generated at a larger size is the stand-in for
   ImageNet), and `--photo-crops` random squares of scikit-learn's two bundled photographs resampled to
   `--size` as prepare resamples (natural texture, which the built-in data lacks). Each crop is encoded
   as prepare encodes it (zfnet.data.jpeg.encode) at every `--qualities`; printed per source and
   quality: bytes per image and PSNR against the raw crop (from the squared error summed over all
   images; also the 1st percentile of the per-image PSNR), and the default decoder's rate per core (one
   pass). ImageNet-2012 train (1,281,167 images) is
   projected at `--quality` from the larger bytes per image of the two sources, plus the offsets and
   labels (16 bytes per image); raw is 196,608 bytes per image at 256 px.
2. Decode rate per core: one thread decodes the photograph crops encoded at `--quality` (natural
   texture decodes slower than the built-in data: the conservative rate) into a preallocated
   (n, S, S, 3) array, with each decoder installed (Pillow, simplejpeg, PyTurboJPEG when libturbojpeg
   loads, torchvision.io.decode_jpeg on CPU), the decoders taking turns for `--repeats` rounds, best
   kept; ratios against Pillow in the same run, and the cores 12,500 images/s would take. When CUDA
   is available, torchvision's batched decode_jpeg(device="cuda") on batches of `--batch` (a GPU
   rate in wall time, not per core).
3. Loader: PreparedSplit.get_batch on a split of `--loader-images` photograph crops prepared raw and
   jpeg (one process, after a warm-up round, so the raw split reads from the page cache), batches of
   `--batch` random indices, the codecs taking turns; ratio jpeg / raw. Also prints prepare_split's own
   wall-time rate per codec (from PNGs of the crops, one process, mean included: what the JPEG encode
   and decode-back add at prepare time).

CPU rates are per CPU-second of this process (time.process_time), so they measure the work, not the
load other processes put on a shared machine.
Prints ratios, never asserts a time; `--json PATH` also writes every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zfnet.data import jpeg
from zfnet.data.prepare import PreparedSplit, list_images, load_rgb, prepare_split

IMAGENET_TRAIN = 1_281_167
INDEX_BYTES_PER_IMAGE = 16  # one int64 offset and one int64 label
TARGET_RATE = 12_500


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None,
                        help="an ImageFolder split (<split>/<class>/<files>) to crop; default: photographs only")
    parser.add_argument("--images", type=int, default=5000, help="files of --data to use (default 5000)")
    parser.add_argument("--photo-crops", type=int, default=1000,
                        help="random crops of the two sample photographs (default 1000)")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels, prepare.size (default 256)")
    parser.add_argument("--qualities", default="85,90,95", help="JPEG qualities to compare (default 85,90,95)")
    parser.add_argument("--quality", type=int, default=90, help="the quality decoded and projected (default 90)")
    parser.add_argument("--decode-images", type=int, default=2000, help="images per decode timing (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per decoder; best kept (default 3)")
    parser.add_argument("--loader-images", type=int, default=1024, help="images in the loader's split (default 1024)")
    parser.add_argument("--batch", type=int, default=128, help="loader and CUDA batch size (default 128)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write a JSON summary to PATH")
    args = parser.parse_args(argv)
    args.qualities = [int(q) for q in args.qualities.split(",")]
    for name in ("images", "photo_crops", "size", "decode_images", "repeats", "loader_images", "batch"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not all(1 <= q <= 100 for q in args.qualities + [args.quality]):
        parser.error("qualities must be in [1, 100]")
    if args.quality not in args.qualities:
        args.qualities.append(args.quality)
    return args


# ----------------------------------------------------------------------------- sources


def data_crops(split_dir: Path, count: int, size: int) -> np.ndarray:
    _, entries = list_images(split_dir)
    picks = np.unique(np.linspace(0, len(entries) - 1, min(count, len(entries))).round().astype(int))
    return np.stack([load_rgb(split_dir / entries[i][0], size) for i in picks])


def photo_crops(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Random squares of the two photographs, each resampled to size x size (a downscale where it can be)."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(p) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        short = min(photo.size)
        side = int(rng.integers(min(size, short), short + 1))
        left, top = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
        crops.append(np.asarray(photo.resize((size, size), Image.Resampling.BICUBIC,
                                             box=(left, top, left + side, top + side), reducing_gap=3.0)))
    return np.stack(crops)


# ----------------------------------------------------------------------------- size and fidelity


def psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def size_and_fidelity(crops: np.ndarray, quality: int, chunk: int = 256) -> dict:
    encoded = [jpeg.encode(crop, quality) for crop in crops]
    decoder, decode_seconds, errors = jpeg.default_decoder(), 0.0, []
    decoded = np.empty((min(chunk, len(crops)),) + crops.shape[1:], np.uint8)
    for first in range(0, len(crops), chunk):
        batch = encoded[first:first + chunk]
        start = time.process_time()
        for data, out in zip(batch, decoded):
            jpeg.decode_into(data, out, decoder)
        decode_seconds += time.process_time() - start
        for out, crop in zip(decoded, crops[first:first + chunk]):
            errors.append(float(np.mean((out.astype(np.float64) - crop) ** 2)))
    per_image = np.array([psnr(e) for e in errors])
    bytes_per_image = float(np.mean([len(data) for data in encoded]))
    return {"bytes_per_image": bytes_per_image, "psnr_db": psnr(float(np.mean(errors))),
            "psnr_p1_db": float(np.percentile(per_image, 1)),
            "ratio_raw_to_jpeg": crops[0].size / bytes_per_image,
            "decode_per_core": len(crops) / max(decode_seconds, 1e-9), "decoder": decoder}


def projection(bytes_per_image: float, size: int) -> dict:
    jpeg_bytes = (bytes_per_image + INDEX_BYTES_PER_IMAGE) * IMAGENET_TRAIN
    raw_bytes = (size * size * 3 + 8) * IMAGENET_TRAIN
    return {"bytes_per_image": bytes_per_image, "imagenet_train_gb": jpeg_bytes / 1e9,
            "raw_gb": raw_bytes / 1e9, "ratio_raw_to_jpeg": raw_bytes / jpeg_bytes}


# ----------------------------------------------------------------------------- decoding


def decoders() -> dict:
    """name -> (prepare(list of bytes) -> inputs, decode(input, out row))."""
    from torchvision.io import ImageReadMode, decode_jpeg

    found = {
        "Pillow": (list, lambda data, out: jpeg.decode_into(data, out, "pillow")),
    }
    if jpeg.simplejpeg is not None:
        found["simplejpeg"] = (list, lambda data, out: jpeg.decode_into(data, out, "simplejpeg"))
    try:
        import turbojpeg

        tj = turbojpeg.TurboJPEG()
        found["turbojpeg"] = (list, lambda data, out: tj.decode(data, pixel_format=turbojpeg.TJPF_RGB, dst=out))
    except Exception as e:  # the Python package, or the system libturbojpeg it loads, is missing
        print(f"(PyTurboJPEG not measured: {' '.join(str(e).split())[:120]})")

    def to_tensors(encoded):
        return [torch.from_numpy(np.frombuffer(data, np.uint8).copy()) for data in encoded]

    def torchvision_cpu(data, out):
        out[...] = decode_jpeg(data, mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()

    found["torchvision CPU"] = (to_tensors, torchvision_cpu)
    return found


def decode_rates(found: dict, encoded: list, size: int, repeats: int) -> dict:
    """images per CPU-second of each decoder, best of `repeats` rounds; the decoders take turns within a round
    so that load from other processes falls on all of them alike."""
    inputs = {name: prepare(encoded) for name, (prepare, _) in found.items()}
    out = np.empty((len(encoded), size, size, 3), np.uint8)
    best = {name: math.inf for name in found}
    for _ in range(repeats):
        for name, (_, decode) in found.items():
            start = time.process_time()
            for i, data in enumerate(inputs[name]):
                decode(data, out[i])
            best[name] = min(best[name], time.process_time() - start)
    return {name: len(encoded) / max(seconds, 1e-9) for name, seconds in best.items()}


def cuda_batched_rate(encoded: list, batch: int, repeats: int) -> dict | None:
    if not torch.cuda.is_available():
        return None
    from torchvision.io import ImageReadMode, decode_jpeg

    tensors = [torch.from_numpy(np.frombuffer(data, np.uint8).copy()) for data in encoded]
    batches = [tensors[i:i + batch] for i in range(0, len(tensors), batch)]
    decode_jpeg(batches[0], device="cuda", mode=ImageReadMode.RGB)  # warm-up: initializes nvjpeg
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in batches:
            decode_jpeg(chunk, device="cuda", mode=ImageReadMode.RGB)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return {"device": torch.cuda.get_device_name(), "batch": batch, "images_per_s": len(tensors) / best}


# ----------------------------------------------------------------------------- loader


def loader_rates(crops: np.ndarray, quality: int, batch: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree" / "c"
        tree.mkdir(parents=True)
        for i, crop in enumerate(crops):
            Image.fromarray(crop).save(tree / f"{i:06d}.png", compress_level=0)
        rng = np.random.default_rng(0)
        order = [rng.integers(0, len(crops), batch) for _ in range(max(1, len(crops) // batch))]
        splits, prepare_rates = {}, {}
        for codec in ("raw", "jpeg"):
            out = Path(tmp) / codec
            summary = prepare_split(tree.parent, out, crops.shape[1], compute_mean=True, codec=codec,
                                    quality=quality, workers=1, progress=False)
            prepare_rates[codec] = summary["images_per_s"]
            splits[codec] = PreparedSplit(out)
        best = {codec: math.inf for codec in splits}
        for _ in range(repeats + 1):  # the first round warms the page cache and opens the shards
            for codec, split in splits.items():
                start = time.process_time()
                for indices in order:
                    split.get_batch(indices)
                best[codec] = min(best[codec], time.process_time() - start)
        rates = {codec: len(order) * batch / max(seconds, 1e-9) for codec, seconds in best.items()}
    return {"images": len(crops), "batch": batch, "raw_images_per_s": rates["raw"],
            "jpeg_images_per_s": rates["jpeg"], "ratio_jpeg_to_raw": rates["jpeg"] / rates["raw"],
            "prepare_images_per_s": prepare_rates}


# ----------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    sources = {"photos": photo_crops(args.photo_crops, args.size)}
    if args.data is not None:
        sources = {"data": data_crops(args.data, args.images, args.size), **sources}
    summary = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "size": args.size,
               "sources": {}, "quality": args.quality}

    print(f"1. size and fidelity at {args.size} px (raw: {args.size * args.size * 3} bytes/image)")
    for name, crops in sources.items():
        figures = {q: size_and_fidelity(crops, q) for q in sorted(args.qualities)}
        summary["sources"][name] = {"images": len(crops), "qualities": {str(q): f for q, f in figures.items()}}
        for q, f in figures.items():
            print(f"  {name} ({len(crops)} images), quality {q}: {f['bytes_per_image']:.0f} bytes/image, "
                  f"PSNR {f['psnr_db']:.2f} dB (1st percentile {f['psnr_p1_db']:.2f} dB), "
                  f"{f['decoder']} {f['decode_per_core']:.0f} images/s per core")
        print(f"raw / jpeg size, {name}, quality {args.quality}: "
              f"{figures[args.quality]['ratio_raw_to_jpeg']:.2f}")
    largest = max(s["qualities"][str(args.quality)]["bytes_per_image"] for s in summary["sources"].values())
    summary["projection"] = projected = projection(largest, args.size)
    print(f"ImageNet-2012 train at quality {args.quality}: {projected['imagenet_train_gb']:.1f} GB "
          f"(raw {projected['raw_gb']:.1f} GB) from {largest:.0f} bytes/image")

    crops = sources["photos"]  # natural texture decodes slower than the built-in data's: the rate that binds
    encoded = [jpeg.encode(crops[i % len(crops)], args.quality) for i in range(args.decode_images)]
    print(f"2. decode rate, one thread, {len(encoded)} images at quality {args.quality}, {args.size} px")
    rates = decode_rates(decoders(), encoded, args.size, args.repeats)
    summary["decode"] = {"images": len(encoded), "per_core": rates,
                         "ratio_to_pillow": {n: r / rates["Pillow"] for n, r in rates.items()},
                         "cores_for_12500": {n: TARGET_RATE / r for n, r in rates.items()}}
    for name, rate in rates.items():
        print(f"  {name}: {rate:.0f} images/s per core, {TARGET_RATE / rate:.1f} cores for {TARGET_RATE} images/s")
    for name, rate in rates.items():
        if name != "Pillow":
            print(f"{name} / Pillow: {rate / rates['Pillow']:.2f}")
    summary["cuda"] = cuda = cuda_batched_rate(encoded, args.batch, args.repeats)
    if cuda:
        print(f"  torchvision CUDA batched ({cuda['device']}, batch {cuda['batch']}): {cuda['images_per_s']:.0f} images/s")
    else:
        print("  torchvision CUDA batched: no CUDA device here, not measured")

    summary["loader"] = loader = loader_rates(crops[:args.loader_images], args.quality, args.batch, args.repeats)
    print(f"3. PreparedSplit.get_batch, {loader['images']} images, batches of {args.batch}: raw "
          f"{loader['raw_images_per_s']:.0f} images/s, jpeg {loader['jpeg_images_per_s']:.0f} images/s "
          f"(decoder {jpeg.default_decoder()})")
    print(f"loader jpeg / raw: {loader['ratio_jpeg_to_raw']:.3f}")
    print(f"  prepare_split from PNG crops, one process, wall time: raw {loader['prepare_images_per_s']['raw']:.0f} "
          f"images/s, jpeg {loader['prepare_images_per_s']['jpeg']:.0f} images/s (with the mean)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
