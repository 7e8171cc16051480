import os
import struct
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_SILENT", "true")
REPO = Path(__file__).resolve().parents[1]


def read_wandb_records(path: Path, timeout: float = 30.0) -> list:
    """Decode an offline `run-<id>.wandb` file with wandb's own protobuf classes, once it is complete.

    The file is a 7-byte header (':W&B', magic, version) followed by a LevelDB-style log: 32 KiB
    blocks of chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    wandb's service process writes it on its own schedule, so this polls until the whole file decodes
    and holds the run's exit record, for up to `timeout` seconds, then fails saying what was missing.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        records, problem = _parse_wandb_log(Path(path).read_bytes())
        if problem is None and not any(r.HasField("exit") for r in records):
            problem = f"no exit record among {len(records)} records"
        if problem is None:
            return records
        if time.monotonic() >= deadline:
            pytest.fail(f"{path} is incomplete after {timeout:g} s: {problem}", pytrace=False)
        time.sleep(0.05)


def _parse_wandb_log(data: bytes) -> tuple[list, str | None]:
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


def random_model(name: str, size: int, **options):
    """A small model (eval mode) whose weights keep deep activations alive and whose biases matter."""
    import torch
    from torch import nn

    from zfnet.nets.models import build_model

    torch.manual_seed(0)
    model = build_model(name, 10, input_size=size, width=0.25, **options)
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
            nn.init.normal_(module.bias, std=0.3)
    return model.eval()


def plateau_schedule(lr: float, errors: list[float], factor: float, patience: int) -> list[float]:
    """The lr each epoch trains with, dropping by `factor` once more than `patience` epochs in a row fail to
    beat the best error by a relative 1e-4 (ReduceLROnPlateau's documented rule, mode min, threshold 1e-4)."""
    lrs, best, bad = [], float("inf"), 0
    for error in errors:
        lrs.append(lr)
        if error < best * (1 - 1e-4):
            best, bad = error, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
    return lrs


@pytest.fixture
def wandb_records():
    return read_wandb_records


def assert_one_line_error(stage_name: str, argv: list[str], key: str, capsys) -> None:
    """The stage refuses `argv` before running: exit code 2 and one stderr line naming `key`."""
    import pytest

    from zfnet.pipeline import stage

    with pytest.raises(SystemExit) as exit_info:
        stage.run(stage_name, lambda cfg: None, argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith(f"error: {key}:"), message

