"""The README's notebook example (section Layout) runs as printed, on a tiny checkpoint and split."""

import re

import numpy as np
import torch

from conftest import REPO
from test_visualize_stages import prepare_tiny, save_checkpoint

CHECKPOINT, SPLIT = "outputs/train/zfnet/checkpoints/best.ckpt", "data/prepared/val"


def readme_example() -> str:
    layout = REPO.joinpath("README.md").read_text().split("\n## Layout\n", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", layout.split("\n## ", 1)[0], flags=re.S)
    assert CHECKPOINT in code and SPLIT in code, "the example's paths changed: update this test"
    return code


def test_the_readme_example_runs_an_experiment_without_dvc_or_hydra_files(tmp_path):
    prepared = prepare_tiny(tmp_path, train_per_class=3, val_per_class=3)
    mean = torch.from_numpy(np.load(prepared / "train" / "mean.npy")).permute(2, 0, 1).contiguous()
    save_checkpoint(tmp_path / "best.ckpt", "zfnet", 0, mean)
    code = readme_example().replace(CHECKPOINT, str(tmp_path / "best.ckpt")).replace(SPLIT, str(prepared / "val"))
    names = {}
    exec(compile(code, "README.md", "exec"), names)
    result = names["result"]
    assert result.sweep.p_true.shape[0] == 8 == len(names["indices"])  # 9 val images, 8 drawn
    assert 0 <= result.metrics["top_label_change"]["positions"] <= 1
    assert result.metrics["stride"] == 16  # the override reached the experiment
