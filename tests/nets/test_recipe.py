"""Per-model training recipes: `models.<key>.train` merged over `train`, checked key by key."""

import pytest

from zfnet.errors import UserError
from zfnet.pipeline.config import architecture, compose, recipe, validate


def composed(*overrides):
    cfg = compose(list(overrides))
    validate(cfg)
    return cfg


def test_alexnet_keeps_krizhevskys_recipe_and_zfnet_the_papers():
    cfg = composed()
    assert recipe(cfg, "zfnet")["renorm_radius"] == 0.1
    assert recipe(cfg, "alexnet")["renorm_radius"] is None  # no filter renormalization for the baseline
    assert recipe(cfg, "alexnet")["weight_decay"] == 0.0005
    shared = {k: v for k, v in recipe(cfg, "alexnet").items() if k not in ("renorm_radius", "weight_decay")}
    assert shared == {k: v for k, v in recipe(cfg, "zfnet").items() if k not in ("renorm_radius", "weight_decay")}
    assert shared["lr"] == 0.01 and shared["momentum"] == 0.9 and shared["crop"] == 112  # conf/train + default


def test_model_overrides_win_over_train_and_stay_with_their_model():
    cfg = composed("train.lr=0.03", "models.alexnet.train.renorm_radius=0.2", "+models.alexnet.train.lr=0.05",
                   "train.momentum=0.8")
    alexnet, zfnet = recipe(cfg, "alexnet"), recipe(cfg, "zfnet")
    assert (alexnet["lr"], alexnet["renorm_radius"], alexnet["momentum"]) == (0.05, 0.2, 0.8)
    assert (zfnet["lr"], zfnet["renorm_radius"], zfnet["momentum"]) == (0.03, 0.1, 0.8)
    assert cfg.train.lr == 0.03  # merging does not write back into `train`


def test_architecture_leaves_the_recipe_out():
    cfg = composed()
    options = architecture(cfg, "alexnet")
    assert "train" not in options and options["name"] == "alexnet" and options["grouped"] is True
    assert "train" in cfg.models.alexnet  # the config itself is untouched
    assert set(options) == set(cfg.models.alexnet) - {"train"}


@pytest.mark.parametrize("override, key", [
    ("+models.alexnet.train.nosuch=1", "models.alexnet.train.nosuch"),
    ("+models.zfnet.train.momentum=2", "models.zfnet.train.momentum"),
    ("models.alexnet.train.renorm_radius=0", "models.alexnet.train.renorm_radius"),
    ("models.alexnet.train.weight_decay=lots", "models.alexnet.train.weight_decay"),
])
def test_a_bad_model_override_is_refused_in_one_line_naming_it(override, key):
    with pytest.raises(UserError) as err:
        composed(override)
    message = str(err.value)
    assert message.startswith(f"{key}:") and "\n" not in message, message


def test_a_per_model_crop_larger_than_the_prepared_images_is_refused():
    cfg = compose(["+models.alexnet.train.crop=200", "models.alexnet.input_size=200"])
    with pytest.raises(UserError, match=r"^models\.alexnet\.train\.crop: 200 is larger than prepare\.size"):
        validate(cfg)
