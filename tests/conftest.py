import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_SILENT", "true")
REPO = Path(__file__).resolve().parents[1]


def read_wandb_records(path: Path, timeout: float = 30.0) -> list:
    """Decode an offline `run-<id>.wandb` file with wandb's own protobuf classes, once it is complete.

    (`zfnet.pipeline.wandb_runs.parse_records` reads the format.) wandb's service process writes it
    on its own schedule, so this polls until the whole file decodes and holds the run's exit record, for up to `timeout` seconds, then fails saying what was missing.
    """
    import time

    from zfnet.pipeline.wandb_runs import parse_records

    deadline = time.monotonic() + timeout
    while True:
        records, problem = parse_records(Path(path).read_bytes())
        if problem is None and not any(r.HasField("exit") for r in records):
            problem = f"no exit record among {len(records)} records"
        if problem is None:
            return records
        if time.monotonic() >= deadline:
            pytest.fail(f"{path} is incomplete after {timeout:g} s: {problem}", pytrace=False)
        time.sleep(0.05)


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



@contextlib.contextmanager
def restored_torch_state():
    """Undo what a Lightning Trainer changes for the whole process: Trainer(deterministic=True) turns on torch's
    deterministic algorithms (and sets an environment variable), and training reseeds the global generator."""
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng, environ = torch.get_rng_state(), dict(os.environ)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng)
        os.environ.clear()
        os.environ.update(environ)


REPO_OUTPUTS = ("metrics", "evidence", "plots", "reports", "outputs")  # what `dvc repro` writes in the checkout


def _outputs_state() -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(REPO)): (path.stat().st_mtime_ns, path.stat().st_size)
            for folder in REPO_OUTPUTS if (REPO / folder).is_dir()
            for path in (REPO / folder).rglob("*") if path.is_file()}


@pytest.fixture(scope="session", autouse=True)
def checkout_outputs_untouched():
    """No test writes into the checkout's pipeline outputs (a stage run without every `paths.*` override
    would replace the default pipeline's metrics or evidence with a test's)."""
    before = _outputs_state()
    yield
    after = _outputs_state()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"tests wrote into the checkout's outputs: {changed[:10]}"
