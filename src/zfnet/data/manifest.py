"""Manifests: a folder tree's fingerprint that costs one directory walk, for DVC to depend on.

A DVC directory dependency is hashed file by file (and re-walked by every `dvc status`); at ImageNet's
1.33M files that is minutes per command. A manifest lists instead, per file under the folder, its
relative path, size and modification time (st_mtime_ns), sorted by path, read with `os.scandir` and
never opening a file:

    # zfnet manifest 1: 3 files, 2047 bytes
    n01440764/a.JPEG<TAB>1024<TAB>1712345678123456789
    n01440764/b.JPEG<TAB>1000<TAB>1712345678223456789
    n01443537/c.JPEG<TAB>23<TAB>1712345678323456789

The same tree gives the same bytes; an added, removed, resized or rewritten (touched) file changes
them. Names starting with "." are left out at every level, as the prepare stage ignores them. Symbolic
links are followed (as the prepare stage follows them). A copy of the tree with new modification times
gives a different manifest: DVC then reruns what depends on it, whose outputs come out the same.

Small files whose content matters and that are cheap to read (a `metadata.jsonl`) get a content
fingerprint instead (`file_record`): path, size and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Collection, NamedTuple

from zfnet.errors import UserError

FORMAT = "zfnet manifest 1"


class Entry(NamedTuple):
    path: str  # relative to the scanned folder, "/"-separated
    size: int
    mtime_ns: int


def scan(folder: str | os.PathLike, skip: Collection[str] = ()) -> list[Entry]:
    """Every non-hidden file under `folder` (recursively), sorted by relative path; files and folders whose
    relative path is in `skip` are left out (e.g. the split folders another manifest lists)."""
    root = os.fspath(folder)
    skip = {Path(s).as_posix().strip("/") for s in skip}
    if not os.path.isdir(root):
        raise UserError(f"{root}: not a folder (a manifest lists a folder's files)")
    entries: list[Entry] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(os.path.join(root, relative) if relative else root) as listing:
                for item in listing:
                    path = f"{relative}/{item.name}" if relative else item.name
                    if item.name.startswith(".") or path in skip:
                        continue
                    if item.is_dir():
                        pending.append(path)
                    elif item.is_file():
                        stat = item.stat()
                        entries.append(Entry(path, stat.st_size, stat.st_mtime_ns))
        except OSError as err:
            raise UserError(f"{os.path.join(root, relative)}: cannot list this folder ({err.strerror})") from None
    entries.sort()
    return entries


def render(entries: list[Entry]) -> str:
    """The manifest text of `entries` (see the module docstring); paths with a tab, newline or
    backslash are escaped so that every file is one line."""
    total = sum(e.size for e in entries)
    lines = [f"# {FORMAT}: {len(entries)} files, {total} bytes\n"]
    lines.extend(f"{_escape(e.path)}\t{e.size}\t{e.mtime_ns}\n" for e in entries)
    return "".join(lines)


def parse(text: str) -> list[Entry]:
    """The entries of a manifest written by `render` (the inverse, for tests and tools)."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise UserError(f"manifest line {number}: expected path<TAB>size<TAB>mtime_ns, got {line!r}")
        entries.append(Entry(_unescape(fields[0]), int(fields[1]), int(fields[2])))
    return entries


def file_record(path: str | os.PathLike, name: str) -> str:
    """One line for a small file read whole: `name<TAB>size<TAB>sha256`, or a comment when it is absent."""
    path = Path(path)
    if not path.is_file():
        return f"# {name}: absent\n"
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return f"{_escape(name)}\t{size}\t{digest.hexdigest()}\n"


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _unescape(path: str) -> str:
    out, chars = [], iter(path)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"t": "\t", "n": "\n"}.get(following, following))
        else:
            out.append(char)
    return "".join(out)
