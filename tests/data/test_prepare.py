"""Preprocessing: bad files, crop geometry, mean, shards, resume, reading back."""

from __future__ import annotations

import io
import json
import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from zfnet.data import prepare, sources
from zfnet.data.prepare import BadImage, PreparedSplit, list_images, load_rgb, prepare_split
from zfnet.errors import UserError

S = 16


def save_image(path, array_or_image, fmt=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    img.save(path, format=fmt, **kwargs)
    return path


def noise(h=30, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def uniform(colour, h=30, w=40):
    return np.full((h, w, len(colour)), colour, dtype=np.uint8)


def jpeg_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_clean_tree(root, per_class=(3, 2), sizes=((30, 40), (40, 30), (24, 24))):
    for c, count in enumerate(per_class):
        for i in range(count):
            h, w = sizes[(c + i) % len(sizes)]
            save_image(root / f"class{c}" / f"img{i}.png", noise(h, w, seed=10 * c + i))
    return root


def read_all(out):
    split = PreparedSplit(out, as_tensor=False)
    return np.stack([split[i][0] for i in range(len(split))]), split.labels.copy()


def read_index(out):
    return json.loads((out / "index.json").read_text())


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- bad input


def make_salted_tree(root):
    a, b = root / "a", root / "b"
    save_image(a / "good.jpg", noise())
    save_image(a / "upper.PNG", noise(seed=1))
    (a / "zero.JPEG").write_bytes(b"")
    (a / "trunc.JPEG").write_bytes(jpeg_bytes(noise(seed=2))[:-300])
    (a / "text.JPEG").write_text("this is not an image\n")
    save_image(a / "gray.jpg", uniform((77,))[..., 0])
    save_image(a / "cmyk.jpg", Image.new("CMYK", (40, 30), (0, 255, 255, 0)))
    palette = Image.new("P", (40, 30), 0)
    palette.putpalette([10, 20, 30] * 256)
    save_image(a / "palette.png", palette)
    save_image(a / "palette_transparent.png", palette, transparency=0)
    save_image(a / "rgba.png", uniform((200, 100, 50, 128)))
    save_image(a / "la.png", Image.new("LA", (40, 30), (200, 0)))
    save_image(a / "png_named.JPEG", uniform((1, 2, 3)), fmt="PNG")
    save_image(a / "sixteen.png", np.full((30, 40), 25700, dtype=np.uint16))
    save_image(a / "large.jpg", uniform((10, 200, 30), h=4000, w=6000), quality=50)
    save_image(a / ".hidden.jpg", noise())
    (a / "notes.txt").write_text("ignored")
    save_image(b / "good.bmp", noise(seed=3))
    save_image(b / "good.ppm", noise(seed=4))
    save_image(b / "good.webp", noise(seed=5), lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    left_dark = np.concatenate([uniform((0, 0, 0), w=20), uniform((255, 255, 255), w=20)], axis=1)
    save_image(b / "rotated.jpg", left_dark, exif=exif)
    return root


def test_salted_tree_skips_bad_files_and_converts_the_rest(tmp_path, caplog):
    root = make_salted_tree(tmp_path / "train")
    out = tmp_path / "prepared"
    with caplog.at_level(logging.WARNING, logger="zfnet.prepare"):
        summary = prepare_split(root, out, S, compute_mean=True, workers=2, progress=False)

    expected_skips = {"a/zero.JPEG": "empty file", "a/trunc.JPEG": "truncated", "a/text.JPEG": "not a decodable image"}
    assert dict(summary["skipped"]) == expected_skips
    report = dict(line.split("\t") for line in (out / "skipped.tsv").read_text().splitlines())
    assert report == expected_skips
    for path in expected_skips:
        assert path in caplog.text

    split = PreparedSplit(out, as_tensor=False)
    assert split.classes == ["a", "b"]
    assert ".hidden.jpg" not in " ".join(split.files) and "notes.txt" not in " ".join(split.files)
    assert len(split) == summary["num_images"] == 18 - 3
    pixel = {name: split[split.files.index(name)][0] for name in split.files}

    def close(name, colour, tol):
        assert np.abs(pixel[name].astype(int) - colour).max() <= tol, (name, pixel[name][S // 2, S // 2])

    close("a/gray.jpg", (77, 77, 77), 2)
    close("a/cmyk.jpg", (255, 0, 0), 2)
    close("a/palette.png", (10, 20, 30), 0)
    close("a/palette_transparent.png", (0, 0, 0), 0)  # transparency onto black
    close("a/rgba.png", (100, 50, 25), 1)
    close("a/la.png", (0, 0, 0), 0)
    close("a/png_named.JPEG", (1, 2, 3), 0)
    close("a/sixteen.png", (100, 100, 100), 0)  # 25700 / 257, not clipped at 255
    close("a/large.jpg", (10, 200, 30), 3)
    rotated = pixel["b/rotated.jpg"].astype(int)
    assert rotated[: S // 2 - 2].mean() < 30 and rotated[S // 2 + 2:].mean() > 225  # left half is now on top


def test_load_rgb_reasons(tmp_path, monkeypatch):
    path = save_image(tmp_path / "big.png", uniform((5, 5, 5), h=300, w=400))
    assert load_rgb(path, S).shape == (S, S, 3)
    monkeypatch.setattr(sources, "MAX_PIXELS", 100_000)
    with pytest.raises(BadImage, match="too large"):
        load_rgb(path, S)
    with pytest.raises(BadImage, match="unreadable"):
        load_rgb(tmp_path / "gone.jpg", S)


@pytest.mark.parametrize("case", ["missing", "file", "empty", "no_images", "only_bad"])
def test_bad_roots_raise_user_error_naming_the_path(tmp_path, case):
    root = tmp_path / "split"
    named = root
    if case == "file":
        root.write_text("not a folder")
    elif case == "empty":
        root.mkdir()
    elif case == "no_images":
        make_clean_tree(root)
        (root / "class9").mkdir()
        (root / "class9" / "readme.txt").write_text("x")
        named = root / "class9"
    elif case == "only_bad":
        make_clean_tree(root)
        (root / "class9").mkdir()
        (root / "class9" / "zero.jpg").write_bytes(b"")
        named = root / "class9"
    with pytest.raises(UserError, match=str(named)):
        prepare_split(root, tmp_path / "out", S, compute_mean=False, workers=0, progress=False)
    assert not (tmp_path / "out").exists()


def test_val_class_not_in_train_is_an_error(tmp_path):
    root = make_clean_tree(tmp_path / "val")
    classes, entries = list_images(root, classes=["class0", "class1", "class2"])
    assert classes == ["class0", "class1", "class2"] and {label for _, label in entries} == {0, 1}
    with pytest.raises(UserError, match=str(root / "class1")):
        list_images(root, classes=["class0"])


# ----------------------------------------------------------------------------- geometry, mean, shards


def test_centre_crop_of_a_gradient_lands_where_expected(tmp_path):
    h, w = 30, 40
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = 5 * np.arange(w)[None, :]
    image[..., 1] = 6 * np.arange(h)[:, None]
    save_image(tmp_path / "g" / "c" / "gradient.png", image)
    out = tmp_path / "out"
    prepare_split(tmp_path / "g", out, S, compute_mean=False, workers=0, progress=False)
    crop = np.load(out / "images_00000.npy")[0].astype(float)

    # Output pixel j samples the source at the centre of the centred 30x30 square scaled by 30/S;
    # bicubic reproduces a linear ramp exactly away from the image border.
    j = np.arange(S)
    x = (w - h) / 2 + (j + 0.5) * h / S - 0.5
    y = (j + 0.5) * h / S - 0.5
    assert np.abs(crop[S // 2, :, 0] - 5 * x).max() <= 1.0
    inner = slice(3, S - 3)
    assert np.abs(crop[inner, S // 2, 1] - 6 * y[inner]).max() <= 1.0


def test_shapes_labels_and_mean_match_numpy(tmp_path):
    root = make_clean_tree(tmp_path / "train", per_class=(3, 4))
    out = tmp_path / "out"
    summary = prepare_split(root, out, S, compute_mean=True, workers=0, progress=False)
    images, labels = read_all(out)
    assert images.shape == (7, S, S, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    mean = np.load(out / "mean.npy")
    assert mean.dtype == np.float32 and mean.shape == (S, S, 3)
    np.testing.assert_allclose(mean, images.astype(np.float64).mean(axis=0), rtol=1e-6)
    for i, rel in enumerate(PreparedSplit(out).files):
        np.testing.assert_array_equal(images[i], load_rgb(root / rel, S))
    data_files = [p for p in out.iterdir() if p.name != prepare.PLAN_FILE]
    assert summary["bytes"] == sum(p.stat().st_size for p in data_files)
    assert sorted(p.name for p in data_files) == [
        "images_00000.npy", "index.json", "labels_00000.npy", "mean.npy", "skipped.tsv"]
    assert not (tmp_path / "out.partial").exists()


def test_shards_split_at_shard_size(tmp_path):
    root = make_clean_tree(tmp_path / "train", per_class=(4, 4))
    (root / "class0" / "img3.png").write_bytes(b"")  # input index 3 is skipped
    whole, small, single = tmp_path / "whole", tmp_path / "small", tmp_path / "single"
    prepare_split(root, whole, S, compute_mean=True, shard_size=100, workers=0, progress=False)
    prepare_split(root, small, S, compute_mean=True, shard_size=3, workers=0, progress=False)
    prepare_split(root, single, S, compute_mean=True, shard_size=1, workers=0, progress=False)

    shards = read_index(small)["shards"]
    assert [s["count"] for s in shards] == [3, 2, 2]
    assert [np.load(small / s["images"], mmap_mode="r").shape[0] for s in shards] == [3, 2, 2]
    single_shards = read_index(single)["shards"]
    assert len(single_shards) == 7 and "images_00003.npy" not in {s["images"] for s in single_shards}  # all skipped
    assert PreparedSplit(small).files == PreparedSplit(whole).files
    for other in (small, single):
        for got, expected in zip(read_all(other), read_all(whole)):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.load(other / "mean.npy"), np.load(whole / "mean.npy"))


# ----------------------------------------------------------------------------- crash and resume


class Crash(RuntimeError):
    pass


def test_resume_after_crash_reuses_finished_shards(tmp_path, monkeypatch):
    root = make_clean_tree(tmp_path / "train", per_class=(5, 5))
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    prepare_split(root, fresh, S, compute_mean=True, shard_size=4, workers=0, progress=False)

    monkeypatch.setattr(prepare, "_CHUNK_SIZE", 2)  # small enough that 10 files go through the pool
    crash_before_shard(1, monkeypatch, root, out, S, compute_mean=True, shard_size=4, workers=2, progress=False)
    assert not out.exists()
    assert (tmp_path / "out.partial" / "images_00000.npy").exists()

    decoded = []
    real_load = prepare.load_rgb
    monkeypatch.setattr(prepare, "load_rgb", lambda path, size: decoded.append(path) or real_load(path, size))
    summary = prepare_split(root, out, S, compute_mean=True, shard_size=4, workers=0, progress=False)
    assert summary["reused_shards"] == 1 and len(decoded) == 10 - 4
    assert folder_bytes(out) == folder_bytes(fresh)
    assert not (tmp_path / "out.partial").exists()


def crash_before_shard(shard: int, monkeypatch, *args, run=prepare_split, **kwargs) -> None:
    """Run `run(*args, **kwargs)` (prepare_split, or a test's wrapper of it) until it is about to write `shard`,
    where it crashes (as a kill would)."""
    write_shard = prepare._write_shard

    def crashing(work, record, *rest):
        if record.shard >= shard:
            raise Crash("simulated crash")
        write_shard(work, record, *rest)

    monkeypatch.setattr(prepare, "_write_shard", crashing)
    with pytest.raises(Crash):
        run(*args, **kwargs)
    monkeypatch.setattr(prepare, "_write_shard", write_shard)


def test_partial_work_from_another_plan_is_discarded(tmp_path, monkeypatch):
    root = make_clean_tree(tmp_path / "train", per_class=(3, 3))
    out = tmp_path / "out"
    crash_before_shard(1, monkeypatch, root, out, S, compute_mean=False, shard_size=2, workers=0, progress=False)
    summary = prepare_split(root, out, S + 2, compute_mean=False, shard_size=2, workers=0, progress=False)
    assert summary["reused_shards"] == 0
    assert np.load(out / "images_00000.npy").shape == (2, S + 2, S + 2, 3)


@pytest.mark.parametrize("damage", ["images missing", "images cut short", "images of one image", "labels missing",
                                    "labels of one image", "labels of three images", "labels as floats"])
def test_resume_redoes_a_committed_shard_whose_files_do_not_hold_it(tmp_path, monkeypatch, damage):
    """A marker is only as good as the files it commits: damaged shard files are decoded again."""
    root = make_clean_tree(tmp_path / "train", per_class=(3, 3))
    out, fresh, work = tmp_path / "out", tmp_path / "fresh", tmp_path / "out.partial"
    prepare_split(root, fresh, S, compute_mean=True, shard_size=2, workers=0, progress=False)
    crash_before_shard(2, monkeypatch, root, out, S, compute_mean=True, shard_size=2, workers=0, progress=False)
    images, labels = work / "images_00000.npy", work / "labels_00000.npy"
    assert (work / "_resume" / "shard_00000.json").exists() and (work / "_resume" / "shard_00001.json").exists()
    if damage == "images missing":
        images.unlink()
    elif damage == "images cut short":
        images.write_bytes(images.read_bytes()[:200])
    elif damage == "images of one image":
        np.save(images, np.load(images)[:1])
    elif damage == "labels missing":
        labels.unlink()
    elif damage == "labels of one image":  # a labels file of the wrong length: the shard's count is 2
        np.save(labels, np.load(labels)[:1])
    elif damage == "labels of three images":
        np.save(labels, np.load(labels)[[0, 1, 1]])
    else:  # the right length, but not class indices
        np.save(labels, np.load(labels).astype(np.float32))

    decoded = []
    real_load = prepare.load_rgb
    monkeypatch.setattr(prepare, "load_rgb", lambda path, size: decoded.append(path) or real_load(path, size))
    summary = prepare_split(root, out, S, compute_mean=True, shard_size=2, workers=0, progress=False)
    assert summary["reused_shards"] == 1 and len(decoded) == 4  # shard 1 kept; shards 0 and 2 decoded
    assert folder_bytes(out) == folder_bytes(fresh)


# ----------------------------------------------------------------------------- reading back


def test_prepared_split_in_a_dataloader(tmp_path):
    root = make_clean_tree(tmp_path / "train", per_class=(5, 4))
    out = tmp_path / "out"
    prepare_split(root, out, S, compute_mean=True, shard_size=3, workers=0, progress=False)
    split = PreparedSplit(out, max_open_shards=1)
    image, label = split[-1]
    assert image.dtype == torch.uint8 and image.shape == (3, S, S) and label == 1
    assert len(split._open) == 1
    clone = pickle.loads(pickle.dumps(split))
    assert not clone._open and torch.equal(clone[4][0], split[4][0])
    for i in range(len(split)):
        split[i]
    assert len(split._open) <= 1

    loader = torch.utils.data.DataLoader(split, batch_size=4, num_workers=2)
    batches = list(loader)
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    expected, expected_labels = read_all(out)
    assert torch.equal(images, torch.from_numpy(expected).permute(0, 3, 1, 2))
    assert labels.tolist() == expected_labels.tolist()

    val = PreparedSplit(out, mean=out / "mean.npy")
    np.testing.assert_array_equal(val.mean, split.mean)
    with pytest.raises(UserError, match="mean has shape"):
        PreparedSplit(out, mean=np.zeros((S + 1, S + 1, 3)))


def test_a_published_split_of_the_same_plan_is_kept_without_decoding(tmp_path, monkeypatch):
    """A run killed after train was published (in val, or later) must not prepare train again."""
    root = make_clean_tree(tmp_path / "train", per_class=(3, 3))
    out = tmp_path / "out"
    first = prepare_split(root, out, S, compute_mean=True, shard_size=4, workers=0, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    decoded = []
    real_load = prepare.load_rgb
    monkeypatch.setattr(prepare, "load_rgb", lambda path, size: decoded.append(path) or real_load(path, size))
    again = prepare_split(root, out, S, compute_mean=True, shard_size=4, workers=0, progress=False)
    assert decoded == [] and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert (again["num_images"], again["bytes"], again["skipped"]) == (first["num_images"], first["bytes"], [])
    assert first["bytes"] == sum(p.stat().st_size for p in out.iterdir() if not p.name.startswith("."))

    other = prepare_split(root, out, S + 2, compute_mean=True, shard_size=4, workers=0, progress=False)
    assert len(decoded) == 6 and other["reused_shards"] == 0  # another plan: prepared again
    (out / "images_00000.npy").write_bytes(b"damaged")
    prepare_split(root, out, S + 2, compute_mean=True, shard_size=4, workers=0, progress=False)
    assert len(decoded) == 12  # a damaged split of the same plan: prepared again
