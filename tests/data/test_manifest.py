"""Manifests (zfnet.data.manifest) and the manifest stage: what DVC depends on instead of the dataset trees."""

from __future__ import annotations

import builtins
import hashlib
import io
import os

import pytest

from zfnet.data import manifest
from zfnet.errors import UserError
from zfnet.pipeline import config, stage

from conftest import assert_one_line_error
from test_visualize_stages import load_stage


def make_tree(root):
    """Two class folders (one nested deeper), a hidden file and a hidden folder; {relative path: bytes}."""
    files = {"b_class/x.JPEG": b"x" * 7, "a_class/y.JPEG": b"", "a_class/sub/z.png": b"zz",
             "a_class/with\ttab.JPEG": b"t"}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / ".hidden_file").write_bytes(b"h")
    (root / "a_class" / ".cache").mkdir()
    (root / "a_class" / ".cache" / "w.JPEG").write_bytes(b"w")
    return files


def test_scan_lists_every_visible_file_sorted_with_its_size_and_mtime(tmp_path):
    files = make_tree(tmp_path)
    entries = manifest.scan(tmp_path)
    assert [e.path for e in entries] == sorted(files)  # hidden files and folders left out, at every level
    for entry in entries:
        stat = os.stat(tmp_path / entry.path)
        assert (entry.size, entry.mtime_ns) == (len(files[entry.path]), stat.st_mtime_ns)


def test_the_text_is_deterministic_and_parses_back(tmp_path):
    make_tree(tmp_path)
    text = manifest.render(manifest.scan(tmp_path))
    assert text == manifest.render(manifest.scan(tmp_path))
    assert text.startswith(f"# {manifest.FORMAT}: 4 files, 10 bytes\n")
    assert len(text.splitlines()) == 5, "a tab in a name must not split its line"
    assert manifest.parse(text) == manifest.scan(tmp_path)


@pytest.mark.parametrize("change", ["touch", "resize", "add", "remove", "rename"])
def test_any_change_of_a_file_changes_the_manifest(tmp_path, change):
    make_tree(tmp_path)
    before = manifest.render(manifest.scan(tmp_path))
    target = tmp_path / "b_class" / "x.JPEG"
    if change == "touch":  # same bytes, a new modification time (a rewritten file)
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    elif change == "resize":
        target.write_bytes(b"y" * 8)
        os.utime(target, ns=(target.stat().st_atime_ns, os.stat(tmp_path / "a_class" / "y.JPEG").st_mtime_ns))
    elif change == "add":
        (tmp_path / "b_class" / "new.JPEG").write_bytes(b"")
    elif change == "remove":
        target.unlink()
    else:
        target.rename(target.with_name("renamed.JPEG"))
    assert manifest.render(manifest.scan(tmp_path)) != before


def test_skipped_paths_are_left_out_at_their_level_only(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "b_class" / "a_class").mkdir()
    (tmp_path / "b_class" / "a_class" / "kept.JPEG").write_bytes(b"")
    listed = [e.path for e in manifest.scan(tmp_path, skip=["a_class", "b_class/x.JPEG"])]
    assert listed == ["b_class/a_class/kept.JPEG"]


def test_a_hidden_change_leaves_the_manifest_as_it_was(tmp_path):
    make_tree(tmp_path)
    before = manifest.render(manifest.scan(tmp_path))
    (tmp_path / "a_class" / ".cache" / "w.JPEG").write_bytes(b"changed")
    (tmp_path / ".DS_Store").write_bytes(b"")
    assert manifest.render(manifest.scan(tmp_path)) == before


def test_scanning_opens_no_file(tmp_path, monkeypatch):
    make_tree(tmp_path)
    expected = manifest.scan(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError(f"a file was opened: {args[0]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    assert manifest.scan(tmp_path) == expected


def test_a_missing_folder_is_one_line_naming_it(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path / 'nope'}: not a folder"):
        manifest.scan(tmp_path / "nope")


def test_a_small_file_is_recorded_by_content(tmp_path):
    data = b'{"path": "val/a/1.JPEG"}\n' * 1000
    (tmp_path / "metadata.jsonl").write_bytes(data)
    record = manifest.file_record(tmp_path / "metadata.jsonl", "metadata.jsonl")
    assert record == f"metadata.jsonl\t{len(data)}\t{hashlib.sha256(data).hexdigest()}\n"
    os.utime(tmp_path / "metadata.jsonl", ns=(0, 0))  # content, not time: a copy of the file records the same
    assert manifest.file_record(tmp_path / "metadata.jsonl", "metadata.jsonl") == record
    assert manifest.file_record(tmp_path / "absent.jsonl", "metadata.jsonl") == "# metadata.jsonl: absent\n"


# ----------------------------------------------------------------------------- the stage


def stage_overrides(tmp_path, *extra):
    return ["data=imagefolder", f"data.root={tmp_path}/data", f"paths.manifest={tmp_path}/manifest",
            f"transfer.roots.caltech101={tmp_path}/transfer", f"transfer.roots.caltech256={tmp_path}/transfer",
            f"transfer.roots.pascal={tmp_path}/transfer", "logger.mode=disabled", *extra]


def test_the_stage_lists_both_splits_the_metadata_and_each_transfer_folder(tmp_path):
    train, val = make_tree(tmp_path / "data" / "train"), make_tree(tmp_path / "data" / "val")
    (tmp_path / "data" / "metadata.jsonl").write_text("{}\n")
    make_tree(tmp_path / "transfer" / "caltech101" / "101_ObjectCategories")
    (tmp_path / "data" / "not_a_split.txt").write_text("ignored: the stages read train/ and val/ only")
    load_stage("manifest").main(config.load(stage_overrides(tmp_path)))
    out = tmp_path / "manifest"
    assert sorted(p.name for p in out.iterdir()) == ["metadata.tsv", "other.tsv", "train.tsv",
                                                     "transfer_caltech101.tsv", "transfer_caltech256.tsv",
                                                     "transfer_pascal.tsv", "val.tsv"]
    assert [e.path for e in manifest.parse((out / "other.tsv").read_text())] == ["not_a_split.txt"]
    assert [e.path for e in manifest.parse((out / "train.tsv").read_text())] == sorted(train)
    assert [e.path for e in manifest.parse((out / "val.tsv").read_text())] == sorted(val)
    assert (out / "metadata.tsv").read_text().startswith("metadata.jsonl\t3\t")
    assert len(manifest.parse((out / "transfer_caltech101.tsv").read_text())) == 4
    assert (out / "transfer_pascal.tsv").read_text() == f"# {tmp_path}/transfer/VOCdevkit/VOC2012: absent\n"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    load_stage("manifest").main(config.load(stage_overrides(tmp_path)))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "an unchanged tree gives the same files"


def test_a_missing_split_is_one_line_naming_data_root(tmp_path, capsys):
    make_tree(tmp_path / "data" / "train")
    with pytest.raises(SystemExit) as exit_info:
        stage.run("manifest", load_stage("manifest").main, stage_overrides(tmp_path))
    message = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message.count("\n") == 1 and message.startswith(f"error: data.root: {tmp_path}/data/val is not a folder")
    assert not (tmp_path / "manifest").exists(), "nothing half-written"


def test_a_bad_path_setting_is_one_line_naming_the_key(tmp_path, capsys):
    assert_one_line_error("manifest", stage_overrides(tmp_path, "paths.manifest=null"), "paths.manifest", capsys)
