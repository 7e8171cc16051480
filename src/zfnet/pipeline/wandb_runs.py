"""Read W&B runs back from their local transaction logs (`wandb/*run-*/run-<id>.wandb`), no network.

Online and offline runs both keep this file, so the report finds the pipeline's runs, their ids and
the keys they really logged the same way in either mode. The file is a 7-byte header (':W&B', magic,
version) followed by a LevelDB-style log: 32 KiB blocks of chunks, each with a 7-byte header (crc32,
length, type: 1 full, 2 first, 3 middle, 4 last), each record one `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunInfo:
    """What the report needs of one run: who it is and which keys it logged."""

    id: str
    group: str
    job_type: str
    name: str
    project: str
    entity: str
    started: float = 0.0                      # start time (seconds since the epoch)
    keys: set[str] = field(default_factory=set)  # history and summary keys, "/"-joined when nested

    def logged(self) -> set[str]:
        """Its keys and every "/"-prefix of them: a logged image "a/b" is stored as "a/b/_type", ..."""
        parts = (key.split("/") for key in self.keys)
        return {"/".join(p[:n]) for p in parts for n in range(1, len(p) + 1)}


def parse_records(data: bytes) -> tuple[list, str | None]:
    """The records of a run file and None, or the records read so far and why the rest is not readable."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    if len(data) < 7 or data[:4] != b":W&B":
        return [], f"no wandb header ({len(data)} bytes)"
    block, header = 32768, 7
    records, pending, offset = [], None, 7
    while offset + header <= len(data):
        space = block - offset % block
        if space < header:
            offset += space
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + header])
        offset += header
        if kind == 0 and length == 0:
            continue
        if offset + length > len(data):
            return records, f"last chunk cut short at byte {len(data)}"
        chunk, offset = data[offset:offset + length], offset + length
        if kind in (1, 2):
            pending = chunk
        elif kind in (3, 4) and pending is not None:
            pending += chunk
        else:
            return records, f"chunk of type {kind} out of order before byte {offset}"
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(pending)
            except DecodeError as err:
                return records, f"record {len(records)} does not decode ({err})"
            records.append(record)
            pending = None
    if pending is not None:
        return records, f"record {len(records)} is cut short"
    if offset != len(data) and any(data[offset:]):
        return records, f"{len(data) - offset} stray bytes at the end"
    return records, None


def run_info(path: Path) -> RunInfo | None:
    """One run file read as far as it decodes (None without a run record)."""
    records, _ = parse_records(Path(path).read_bytes())
    run = next((r.run for r in records if r.HasField("run")), None)
    if run is None:
        return None
    info = RunInfo(id=run.run_id, group=run.run_group, job_type=run.job_type, name=run.display_name,
                   project=run.project, entity=run.entity,
                   started=run.start_time.seconds + run.start_time.nanos / 1e9)
    for record in records:
        if record.HasField("history"):
            info.keys.update(_key(item) for item in record.history.item)
        elif record.HasField("summary"):
            info.keys.update(_key(item) for item in record.summary.update)
    info.keys = {k for k in info.keys if k and not k.startswith("_")}
    return info


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def find_runs(wandb_dir: Path, group: str) -> list[RunInfo]:
    """The latest run of each (job_type, name) in `group`, oldest first; unreadable files are skipped."""
    latest: dict[tuple[str, str], RunInfo] = {}
    for path in sorted(Path(wandb_dir).glob("*run-*/run-*.wandb")):
        try:
            info = run_info(path)
        except OSError:
            continue
        if info is None or info.group != group:
            continue
        slot = (info.job_type, info.name)
        if slot not in latest or info.started >= latest[slot].started:
            latest[slot] = info
    return sorted(latest.values(), key=lambda r: r.started)
