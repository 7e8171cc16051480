"""Tables 2-3 runs as configuration: what a run trains, where it writes, and one-line errors."""

import pytest

from zfnet import paper
from zfnet.errors import UserError
from zfnet.pipeline import ablations, config
from zfnet.pipeline.tracking import pipeline_fingerprint


@pytest.fixture(scope="module")
def cfg():
    return config.compose([])


def test_every_row_of_the_papers_tables_has_a_run(cfg):
    runs = set(ablations.run_names(cfg))
    assert set(paper.numbers("table3_ablations")["rows"]) <= runs
    assert set(paper.numbers("table2_imagenet")["rows"]) - {"krizhevsky"} <= set(cfg.ablations.ensembles)
    assert len(cfg.ablations.ensembles.zf_x5) == 5 and len(set(cfg.ablations.ensembles.zf_x5)) == 5
    ablations.validate(cfg)


def test_a_run_is_its_base_model_with_its_options_over_it(cfg):
    run = ablations.run_config(cfg, "zfnet_big_fc8192")
    options = run.models.zfnet_big_fc8192
    assert run.model == "zfnet_big_fc8192" and run.ablation is None
    assert options.conv_maps == [512, 1024, 512] and options.fc_units == 8192
    assert options.width == cfg.models.zfnet.width == 0.5 and options.init == "fan_in"  # the default's scale
    assert run.seed == cfg.seed
    assert run.paths.outputs == "outputs/ablations" and run.paths.metrics == "metrics/ablations"
    assert run.paths.evidence == "evidence/ablations"   # its per-image evidence beside its metrics, not the main run's
    assert cfg.paths.outputs == "outputs", "the caller's config is left as it was"


def test_alexnet_runs_keep_krizhevskys_recipe_and_seed_runs_their_seed(cfg):
    alexnet = ablations.run_config(cfg, "alexnet_no67")
    assert config.recipe(alexnet, "alexnet_no67")["renorm_radius"] is None
    assert alexnet.models.alexnet_no67.remove == [6, 7] and alexnet.models.alexnet_no67.grouped is True
    assert config.recipe(ablations.run_config(cfg, "zfnet"), "zfnet")["renorm_radius"] == 0.1
    assert ablations.run_config(cfg, "zfnet_seed3").seed == 3


def test_runs_share_the_w_and_b_group_of_the_pipeline_they_came_from(cfg):
    group = f"pipeline-{pipeline_fingerprint(cfg)}"
    launched = config.compose(["ablation=zfnet_fc2048"])
    assert ablations.run_config(launched, "zfnet_fc2048").logger.group == group
    assert ablations.run_config(launched, "alexnet").logger.group == group


@pytest.mark.parametrize("override, key", [
    ("ablations.runs.zfnet_big.base=vgg", "ablations.runs.zfnet_big.base"),
    ("+ablations.runs.zfnet_big.kernel=3", "ablations.runs.zfnet_big.kernel"),
    ("+ablations.runs.zfnet_big.fc_units=0", "ablations.runs.zfnet_big.fc_units"),
    ("ablations.runs.zfnet_seed1.seed=-1", "ablations.runs.zfnet_seed1.seed"),
    ("ablations.ensembles.zf_x5=[zfnet,zfnet_seed9]", "ablations.ensembles.zf_x5"),
    ("ablation=zfnet_seed9", "ablation"),
])
def test_bad_runs_are_refused_with_one_line_naming_the_key(override, key):
    cfg = config.compose([override])
    with pytest.raises(UserError) as error:
        ablations.run_config(cfg, cfg.ablation or "zfnet")
    assert str(error.value).startswith(f"{key}:") and "\n" not in str(error.value), str(error.value)
