"""What every stage prints: no third-party noise (Lightning's litlogger tip, torch's LeafSpec warning)."""

import logging
import subprocess
import sys
import warnings

import pytest
import torch

from zfnet.errors import UserError
from zfnet.pipeline import stage

from conftest import REPO
from test_visualize_stages import prepare_tiny

TIP = "litlogger"
LEAFSPEC = "LeafSpec"
TRANSFER_HOOK = "overridden `transfer_batch_to_device`"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three classes, four training and two validation images each, prepared for the train stage."""
    root = tmp_path_factory.mktemp("tiny")
    prepare_tiny(root, train_per_class=4, val_per_class=2)
    return root


def test_train_stage_prints_no_litlogger_tip_or_leafspec_warning(tiny, tmp_path):
    overrides = [
        "experiment=smoke", "data=imagefolder", f"data.root={tiny}/raw", f"paths.prepared={tiny}/prepared",
        f"paths.outputs={tmp_path}/outputs", f"paths.metrics={tmp_path}/metrics", f"paths.plots={tmp_path}/plots",
        f"paths.evidence={tmp_path}/evidence", f"logger.dir={tmp_path}", "logger.mode=disabled", "model=zfnet",
        "train.epochs=1", "train.batch_size=6",
        "train.snapshot_epochs=[1]",
    ]
    result = subprocess.run([sys.executable, "pipelines/train.py", *overrides], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert TIP not in output and LEAFSPEC not in output and TRANSFER_HOOK not in output, output[-3000:]
    # the rest of what Lightning says through the same logger still shows, and so does the stage's own log
    assert "GPU available" in result.stderr and "10-crop val top-1 error" in result.stderr


def test_quiet_filters_match_only_their_own_lines():
    import torch.utils._pytree as pytree

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stage.quiet_third_party()
        pytree.LeafSpec()  # what Lightning's _tree_flatten does
        warnings.warn("zfnet-test")
        warnings.warn("zfnet-test", FutureWarning)
        warnings.warn("zfnet-test: LeafSpec", DeprecationWarning)
    assert [(w.category, str(w.message)) for w in caught] == [
        (UserWarning, "zfnet-test"), (FutureWarning, "zfnet-test"), (DeprecationWarning, "zfnet-test: LeafSpec")]

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    lightning = logging.getLogger(stage.LIGHTNING_RANK_ZERO_LOGGERS[0])
    keep = Keep()
    lightning.addHandler(keep)
    level = lightning.level
    lightning.setLevel(logging.INFO)
    try:
        lightning.info("💡 Tip: For seamless cloud logging, try installing [litlogger](https://pypi.org/project/litlogger/)")
        lightning.info("GPU available: False, used: False")
    finally:
        lightning.removeHandler(keep)
        lightning.setLevel(level)
    assert records == ["GPU available: False, used: False"]


class _Refuses(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise UserError(f"data/prepared/train/images_00000.jpg.bin: image {index} (a/1.jpg) does not decode")


def test_an_error_raised_in_a_loader_worker_is_one_line(capsys):
    loader = torch.utils.data.DataLoader(_Refuses(), batch_size=None, num_workers=1)

    def body(cfg):
        next(iter(loader))

    with pytest.raises(SystemExit) as exit_info:
        stage.run("train", body, argv=[])
    assert exit_info.value.code == 2
    printed = capsys.readouterr().err.strip().splitlines()[-1]
    assert printed == "error: data/prepared/train/images_00000.jpg.bin: image 0 (a/1.jpg) does not decode"
