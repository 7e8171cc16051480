"""`stage.save_figures`: the folder every stage's figures go to, and the W&B keys it hands back."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from zfnet.pipeline import stage  # noqa: E402


def figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    return fig


def test_figures_replace_the_folder_and_come_back_as_wandb_keys(tmp_path):
    cfg = OmegaConf.create({"paths": {"plots": str(tmp_path)}})
    (tmp_path / "occlusion_zfnet").mkdir()
    (tmp_path / "occlusion_zfnet" / "fig7_old.png").write_bytes(b"stale")
    pairs = ((stem, figure()) for stem in ("fig7_a", "measures"))  # a generator: one figure at a time
    saved = stage.save_figures(cfg, "occlusion_zfnet", pairs, "occlusion/zfnet")
    folder = tmp_path / "occlusion_zfnet"
    assert saved == {"occlusion/zfnet/fig7_a": folder / "fig7_a.png", "occlusion/zfnet/measures": folder / "measures.png"}
    assert sorted(p.name for p in folder.iterdir()) == ["fig7_a.png", "measures.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in saved.values())
    assert stage.save_figures(cfg, "table", {"t": figure()}, "x") == {"x/t": tmp_path / "table" / "t.png"}
