"""The jpeg codec of prepared shards: fidelity, the mean, whole-batch reads, resume, bad shards, config.

Expected pixels come from the shard files read with numpy and decoded by Pillow or simplejpeg directly
(never through PreparedSplit), and from the crops zfnet.data.sources.load_rgb makes of the inputs.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import simplejpeg
import torch
from PIL import Image
from test_prepare import crash_before_shard as crash_in_prepare

from zfnet.data import jpeg, prepare
from zfnet.data.prepare import PreparedSplit, load_rgb, prepare_split
from zfnet.errors import UserError

S = 32
QUALITY = 90


def smooth_image(seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    """A photo-like test image: a colour gradient plus a soft disc and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(40, 200, 3) + 50 * np.stack([x, y, x * y], axis=-1) * rng.choice([-1, 1], 3)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
    disc = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(-60, 60, 3)
    return np.clip(base + disc + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)


def make_tree(root, per_class=(4, 3, 3)):
    for c, count in enumerate(per_class):
        for i in range(count):
            path = root / f"class{c}" / f"img{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(smooth_image(10 * c + i)).save(path)
    return root


def run_prepare(root, out, codec="jpeg", **kwargs):
    options = dict(compute_mean=True, shard_size=3, workers=0, progress=False, quality=QUALITY)
    return prepare_split(root, out, S, codec=codec, **{**options, **kwargs})


def read_index(out):
    return json.loads((out / "index.json").read_text())


def stored_jpegs(out) -> list[bytes]:
    """Every image's JPEG bytes in stored order, cut out of the shard files with the offsets (numpy only)."""
    found = []
    for shard in read_index(out)["shards"]:
        data, offsets = (out / shard["images"]).read_bytes(), np.load(out / shard["offsets"])
        found += [data[offsets[j]:offsets[j + 1]] for j in range(shard["count"])]
    return found


def pillow_decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def stored_raw(out) -> np.ndarray:
    return np.concatenate([np.load(out / s["images"]) for s in read_index(out)["shards"]])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("tree") / "train")


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The tree prepared both ways (shards of 3: 10 images in shards of 3, 3, 3, 1)."""
    out = tmp_path_factory.mktemp("prepared")
    run_prepare(tree, out / "jpeg", "jpeg")
    run_prepare(tree, out / "raw", "raw")
    return {"jpeg": out / "jpeg", "raw": out / "raw"}


# ----------------------------------------------------------------------------- fidelity and the mean


def test_jpeg_split_stores_the_raw_crops_reencoded(tree, prepared):
    index = read_index(prepared["jpeg"])
    assert index["codec"] == "jpeg" and index["quality"] == QUALITY
    assert "codec" not in read_index(prepared["raw"])  # a raw index is what it was before codecs
    assert sorted(p.name for p in prepared["jpeg"].iterdir()) == sorted(
        [f"images_{k:05d}.jpg.bin" for k in range(4)] + [f"offsets_{k:05d}.npy" for k in range(4)]
        + [f"labels_{k:05d}.npy" for k in range(4)] + [".plan.json", "index.json", "mean.npy", "skipped.tsv"])

    crops = np.stack([load_rgb(tree / rel, S) for rel in index["files"]])
    np.testing.assert_array_equal(stored_raw(prepared["raw"]), crops)
    decoded = np.stack([pillow_decode(data) for data in stored_jpegs(prepared["jpeg"])])
    assert decoded.shape == crops.shape
    # Bound from an independent encoder: simplejpeg's own libjpeg-turbo build at the same quality and 4:2:0
    # subsampling gives the fidelity that quality buys on each crop (its pixels differ a little from
    # Pillow's: on these crops the two encoders' PSNR differ by -0.09 to +0.31 dB). Prepare's JPEG must
    # come within 0.25 dB of it: quality 88 already falls up to 0.38 dB short, quality 85 up to 0.89 dB,
    # and a crop shifted by a pixel or with swapped channels far more.
    for crop, image in zip(crops, decoded):
        reference = simplejpeg.decode_jpeg(simplejpeg.encode_jpeg(crop, quality=QUALITY, colorsubsampling="420"))
        assert psnr(image, crop) >= psnr(reference, crop) - 0.25
        assert psnr(image, crop) < math.inf  # lossy: the test really went through JPEG
    labels = np.concatenate([np.load(prepared["jpeg"] / s["labels"]) for s in index["shards"]])
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_jpeg_mean_is_the_mean_of_the_decoded_pixels(prepared):
    decoded = np.stack([pillow_decode(data) for data in stored_jpegs(prepared["jpeg"])])
    mean = np.load(prepared["jpeg"] / "mean.npy")
    np.testing.assert_allclose(mean, decoded.astype(np.float64).mean(axis=0), rtol=1e-6)
    raw_mean = stored_raw(prepared["raw"]).astype(np.float64).mean(axis=0)
    assert np.abs(mean - raw_mean).max() > 0.01  # the decoded mean really differs from the raw crops' mean


def test_decoders_return_the_same_pixels(prepared):
    indices = list(range(10))
    fast = PreparedSplit(prepared["jpeg"], decoder="simplejpeg").get_batch(indices)[0]
    fallback = PreparedSplit(prepared["jpeg"], decoder="pillow").get_batch(indices)[0]
    assert torch.equal(fast, fallback)


# ----------------------------------------------------------------------------- reading whole batches


@pytest.mark.parametrize("codec", ["raw", "jpeg"])
def test_get_batch_returns_the_stored_images_in_the_order_given(prepared, codec):
    out = prepared[codec]
    split = PreparedSplit(out, max_open_shards=2)
    expected = stored_raw(out) if codec == "raw" else np.stack([pillow_decode(d) for d in stored_jpegs(out)])
    expected_labels = np.concatenate([np.load(out / s["labels"]) for s in read_index(out)["shards"]])
    # shards hold images 0-2, 3-5, 6-8, 9: out of order, across every boundary, repeats, one shard twice apart
    indices = [9, 0, 3, 2, 3, 3, 5, 1, 8, 6, 9, 2]
    images, labels = split.get_batch(indices)
    assert images.dtype == torch.uint8 and images.shape == (len(indices), S, S, 3) and images.is_contiguous()
    assert labels.dtype == torch.int64 and labels.tolist() == expected_labels[indices].tolist()
    np.testing.assert_array_equal(images.numpy(), expected[indices])
    stacked = torch.stack([split[i][0] for i in indices])  # CHW items
    assert torch.equal(images, stacked.permute(0, 2, 3, 1))
    assert len(split._open) <= 2
    empty_images, empty_labels = split.get_batch([])
    assert empty_images.shape == (0, S, S, 3) and empty_labels.shape == (0,)
    with pytest.raises(IndexError):
        split.get_batch([0, 10])


def test_jpeg_split_in_a_dataloader_with_workers(prepared):
    split = PreparedSplit(prepared["jpeg"])
    sampler = torch.utils.data.BatchSampler(range(len(split)), batch_size=4, drop_last=False)
    loader = torch.utils.data.DataLoader(list(sampler), batch_size=None, num_workers=2, collate_fn=split.get_batch)
    images = torch.cat([b[0] for b in loader])
    assert torch.equal(images, split.get_batch(range(len(split)))[0])


# ----------------------------------------------------------------------------- resume


def crash_before_shard(shard, monkeypatch, *args, **kwargs):
    """test_prepare's crash (before writing `shard`), through this file's JPEG-shard wrapper of prepare_split."""
    crash_in_prepare(shard, monkeypatch, *args, run=run_prepare, **kwargs)


def count_decodes(monkeypatch) -> list:
    decoded = []
    real_load = prepare.load_rgb
    monkeypatch.setattr(prepare, "load_rgb", lambda path, size: decoded.append(path) or real_load(path, size))
    return decoded


def test_jpeg_resume_reuses_finished_shards(tree, prepared, tmp_path, monkeypatch):
    out = tmp_path / "out"
    crash_before_shard(2, monkeypatch, tree, out, "jpeg", workers=2)
    assert not out.exists() and (tmp_path / "out.partial" / "images_00001.jpg.bin").exists()
    decoded = count_decodes(monkeypatch)
    summary = run_prepare(tree, out, "jpeg", workers=2)
    assert summary["reused_shards"] == 2 and len(decoded) == 10 - 6
    assert folder_bytes(out) == folder_bytes(prepared["jpeg"])  # mean included: reused shards decoded for it


@pytest.mark.parametrize("first, then", [("raw", "jpeg"), ("jpeg", "raw"), ("jpeg", "jpeg at 80")])
def test_a_codec_change_never_reuses_shards(tree, prepared, tmp_path, monkeypatch, first, then):
    out = tmp_path / "out"
    crash_before_shard(2, monkeypatch, tree, out, first)
    codec, _, quality = then.partition(" at ")
    summary = run_prepare(tree, out, codec, quality=int(quality or QUALITY))
    assert summary["reused_shards"] == 0
    if not quality:
        assert folder_bytes(out) == folder_bytes(prepared[codec])
    else:
        assert read_index(out)["quality"] == 80
        assert sum(len(d) for d in stored_jpegs(out)) < sum(len(d) for d in stored_jpegs(prepared["jpeg"]))


def damage_shard(folder, damage: str, k: int = 1) -> None:
    """Corrupt shard k of a prepared (or partial) split the way `damage` says."""
    images = folder / (f"images_{k:05d}.jpg.bin" if (folder / f"offsets_{k:05d}.npy").exists() else f"images_{k:05d}.npy")
    offsets, labels = folder / f"offsets_{k:05d}.npy", folder / f"labels_{k:05d}.npy"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == "grown":
        images.write_bytes(images.read_bytes() + b"\0" * 10)
    elif damage == "offsets of another shard":  # shard 2 also holds 3 images
        offsets.write_bytes((folder / "offsets_00002.npy").read_bytes())
    elif damage == "offsets too short":  # the offsets of a 1-image shard where 3 images belong
        np.save(offsets, np.load(offsets)[:2])
    elif damage == "offsets not rising":
        values = np.load(offsets)
        values[2] = values[1]
        np.save(offsets, values)
    elif damage == "offsets missing":
        offsets.unlink()
    elif damage == "labels short":
        np.save(labels, np.load(labels)[:-1])
    else:
        raise ValueError(damage)


@pytest.mark.parametrize("damage", ["truncated", "grown", "offsets of another shard", "offsets too short",
                                    "offsets not rising", "offsets missing", "labels short"])
def test_jpeg_resume_redoes_a_committed_shard_whose_files_do_not_hold_it(tree, prepared, tmp_path, monkeypatch,
                                                                          damage):
    out, work = tmp_path / "out", tmp_path / "out.partial"
    crash_before_shard(3, monkeypatch, tree, out, "jpeg")
    assert (work / "_resume" / "shard_00001.json").exists()
    damage_shard(work, damage, k=1)
    decoded = count_decodes(monkeypatch)
    summary = run_prepare(tree, out, "jpeg")
    assert summary["reused_shards"] == 2 and len(decoded) == 3 + 1  # shard 1 redone, shard 3 new
    assert folder_bytes(out) == folder_bytes(prepared["jpeg"])


# ----------------------------------------------------------------------------- bad shards


def copy_split(source, tmp_path):
    target = tmp_path / source.name
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def assert_one_line_naming(error, *parts):
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, (part, message)


def expected_blame(out, damage: str) -> tuple[str, int | None]:
    """(file, first unreadable image or None) for shard 1 (images 3-5) after `damage`, worked out with numpy."""
    entry = read_index(out)["shards"][1]
    if damage == "labels short":
        return entry["labels"], None
    if damage == "offsets not rising":
        return entry["offsets"], 3 + 1  # offsets[2] == offsets[1]: image 1 of the shard has no bytes
    if damage == "offsets too short":
        return entry["offsets"], None  # 2 entries where 4 belong
    file_bytes = (out / entry["images"]).stat().st_size
    if "offsets" not in entry:  # raw: the images that still fit whole after the .npy v1.0 header
        head = (out / entry["images"]).read_bytes()[:10]
        assert head[:8] == b"\x93NUMPY\x01\x00"
        data_start = 10 + int.from_bytes(head[8:10], "little")
        return entry["images"], 3 + (file_bytes - data_start) // (S * S * 3)
    offsets = np.load(out / entry["offsets"])
    if offsets[-1] > file_bytes:
        return entry["images"], 3 + int(np.flatnonzero(offsets[1:] > file_bytes)[0])
    return entry["images"], None


@pytest.mark.parametrize("codec, damage", [
    ("jpeg", "truncated"), ("raw", "truncated"), ("jpeg", "grown"), ("jpeg", "offsets of another shard"),
    ("jpeg", "offsets too short"), ("jpeg", "offsets not rising"), ("jpeg", "labels short"),
    ("raw", "labels short"),
])
def test_a_damaged_shard_is_refused_in_one_line_naming_it(prepared, tmp_path, codec, damage):
    out = copy_split(prepared[codec], tmp_path)
    files = read_index(out)["files"]
    damage_shard(out, damage, k=1)
    name, image = expected_blame(out, damage)
    with pytest.raises(UserError) as error:
        PreparedSplit(out)
    if image is None:
        assert_one_line_naming(error, out / name, "images 3-5")
    else:
        assert_one_line_naming(error, out / name, f"image {image} ({files[image]})")


@pytest.mark.parametrize("decoder", ["simplejpeg", "pillow"])
def test_a_jpeg_that_no_longer_decodes_is_refused_when_read(prepared, tmp_path, decoder):
    out = copy_split(prepared["jpeg"], tmp_path)
    files = read_index(out)["files"]
    shard = out / "images_00001.jpg.bin"
    data, offsets = bytearray(shard.read_bytes()), np.load(out / "offsets_00001.npy")
    start = offsets[1]  # image 4 = position 1 of shard 1; overwrite its markers and tables, keep its size
    data[start:start + 200] = bytes(200)
    shard.write_bytes(bytes(data))
    split = PreparedSplit(out, decoder=decoder)  # sizes still match: only decoding can tell
    assert split[3][0].shape == (3, S, S)
    for read in (lambda: split[4], lambda: split.get_batch([0, 4])):
        with pytest.raises(UserError) as error:
            read()
        assert_one_line_naming(error, shard, f"image 4 ({files[4]})", "does not decode")


def replace_image(out, k: int, position: int, data: bytes) -> None:
    """Swap one image's bytes in shard k and rewrite its offsets to match: a consistent shard."""
    images = stored_jpegs(out)
    entry = read_index(out)["shards"][k]
    first = sum(s["count"] for s in read_index(out)["shards"][:k])
    shard = images[first:first + entry["count"]]
    shard[position] = data
    (out / entry["images"]).write_bytes(b"".join(shard))
    np.save(out / entry["offsets"], np.cumsum([0] + [len(d) for d in shard]).astype(np.int64))


@pytest.mark.parametrize("decoder", ["simplejpeg", "pillow"])
@pytest.mark.parametrize("swap", ["a smaller JPEG", "a PNG"])
def test_an_image_of_another_size_or_format_is_refused_when_read(prepared, tmp_path, decoder, swap):
    out = copy_split(prepared["jpeg"], tmp_path)
    files = read_index(out)["files"]
    buffer = io.BytesIO()
    if swap == "a smaller JPEG":
        Image.fromarray(smooth_image(0, S // 2, S // 2)).save(buffer, format="JPEG", quality=QUALITY)
    else:
        Image.fromarray(smooth_image(0, S, S)).save(buffer, format="PNG")
    replace_image(out, 1, 1, buffer.getvalue())
    split = PreparedSplit(out, decoder=decoder)
    with pytest.raises(UserError) as error:
        split.get_batch([3, 4])
    assert_one_line_naming(error, out / "images_00001.jpg.bin", f"image 4 ({files[4]})", "does not decode")


def test_a_missing_or_foreign_index_is_one_line(prepared, tmp_path):
    out = copy_split(prepared["jpeg"], tmp_path)
    index = read_index(out)
    (out / "index.json").write_text(json.dumps({**index, "codec": "webp"}))
    with pytest.raises(UserError) as error:
        PreparedSplit(out)
    assert_one_line_naming(error, out / "index.json", "webp")
    (out / "index.json").unlink()
    with pytest.raises(UserError) as error:
        PreparedSplit(out)
    assert_one_line_naming(error, out / "index.json")


@pytest.mark.parametrize("options, key", [({"codec": "png"}, "prepare.codec"), ({"quality": 0}, "prepare.quality"),
                                          ({"quality": 101}, "prepare.quality")])
def test_prepare_split_rejects_a_bad_codec_or_quality(tree, tmp_path, options, key):
    with pytest.raises(UserError) as error:
        run_prepare(tree, tmp_path / "out", **{"codec": "jpeg", **options})
    assert_one_line_naming(error, key)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("override, expected", [
    ("prepare.codec=png", "prepare.codec: got 'png', expected one of: raw, jpeg"),
    ("prepare.quality=0", "prepare.quality: got 0, expected an integer in [1, 100]"),
    ("prepare.quality=101", "prepare.quality: got 101, expected an integer in [1, 100]"),
    ("prepare.quality=90.5", "prepare.quality: got 90.5, expected an integer in [1, 100]"),
])
def test_config_rejects_a_bad_codec_or_quality_in_one_line(override, expected):
    from zfnet.pipeline.config import load

    with pytest.raises(UserError) as error:
        load([override])
    assert str(error.value) == expected


def test_config_defaults_raw_and_the_paper_uses_jpeg():
    from zfnet.pipeline.config import compose

    default, paper = compose(), compose(["experiment=paper"])
    assert default.prepare.codec == "raw"
    assert paper.prepare.codec == "jpeg" and paper.prepare.quality == QUALITY


def test_unknown_decoder_is_refused():
    with pytest.raises(ValueError, match="unknown JPEG decoder"):
        jpeg.check_decoder("nvjpeg")


def test_without_simplejpeg_pillow_decodes(prepared, monkeypatch):
    expected = PreparedSplit(prepared["jpeg"]).get_batch(range(10))[0]
    monkeypatch.setattr(jpeg, "simplejpeg", None)
    assert jpeg.default_decoder() == "pillow"
    with pytest.raises(ValueError, match="not installed"):
        jpeg.check_decoder("simplejpeg")
    split = PreparedSplit(prepared["jpeg"])
    assert split.decoder == "pillow" and torch.equal(split.get_batch(range(10))[0], expected)
