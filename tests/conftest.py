import os
import struct
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_SILENT", "true")
REPO = Path(__file__).resolve().parents[1]


def read_wandb_records(path: Path) -> list:
    """Decode an offline `run-<id>.wandb` file with wandb's own protobuf classes.

    The file is a 7-byte header (':W&B', magic, version) followed by a LevelDB-style log: 32 KiB
    blocks of chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    block, header = 32768, 7
    records, pending, offset = [], b"", 7
    while offset + header <= len(data):
        space = block - offset % block
        if space < header:
            offset += space
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + header])
        offset += header
        chunk, offset = data[offset:offset + length], offset + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


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


@pytest.fixture
def wandb_records():
    return read_wandb_records
