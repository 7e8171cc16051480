"""The W&B report is built and serialized offline, filters on the group, and holds every panel key."""

import copy
import json
import re
import socket

import pytest

from zfnet.report import wandb_report
from zfnet.report.spec import NOT_RUN, REPRODUCED, Panel, Section, Table, Verdict

GROUP = "pipeline-ab12cd"


def sections():
    fig2 = Section(
        id="fig2", title="Figure 2: top-9 deconvolutions", paper="Layers 1-5, top 9 patches.", config="tiny scale",
        verdicts=[Verdict("layer 5 is class specific", "zfnet", REPRODUCED, "purity > 0.5", "purity 0.71")],
        panels=[Panel("media", ("viz/layer1", "viz/layer5"), "visualize", title="deconv")],
    )
    table2 = Section(
        id="table2", title="Table 2: ImageNet error", paper="| model | top-1 |\n|---|---|\n| zfnet | 38.4 |",
        config="tiny scale", tables=[Table(["model", "top-1"], [["zfnet", "61.0"]], caption="ours")],
        panels=[Panel("line", ("train/loss", "val/loss"), "train", x="epoch"),
                Panel("bar", ("test/top1",), "evaluate"),
                Panel("scalar", ("test/top5", "test/top1_error"), "evaluate")],
    )
    fig9 = Section(id="fig9", title="Figure 9: transfer", paper="Caltech-101 accuracy 86.5%.", config="-",
                   status=NOT_RUN, panels=[Panel("line", ("transfer/acc",), "transfer")])
    return [fig2, table2, fig9]


def build():
    return wandb_report.build(sections(), entity="ent-x", project="proj-y", group=GROUP, title="ZFNet repro")


@pytest.fixture
def no_network(monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")

    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def blocks(spec):
    return spec["spec"]["blocks"]


def grids(spec):
    return [b for b in blocks(spec) if b["type"] == "panel-grid"]


def test_builds_serializes_and_validates_offline(no_network):
    spec = wandb_report.spec(build())
    json.dumps(spec)
    wandb_report.validate(spec)


def test_structure_follows_sections():
    spec = wandb_report.spec(build())
    kinds = [b["type"] for b in blocks(spec) if b["type"] != "paragraph"]
    assert kinds == ["heading", "markdown-block", "panel-grid",
                     "heading", "markdown-block", "panel-grid",
                     "heading", "markdown-block"]  # fig9 did not run: no grid
    text = json.dumps(spec)
    for section in sections():
        assert section.title in text
    markdown = [b["content"] for b in blocks(spec) if b["type"] == "markdown-block"]
    assert "purity 0.71" in markdown[0] and "| zfnet | 61.0 |" in markdown[1]
    assert "Caltech-101" in markdown[2] and NOT_RUN in markdown[2].lower()


def test_runsets_filter_on_group_of_project():
    spec = wandb_report.spec(build())
    assert spec["project"] == {"name": "proj-y", "entityName": "ent-x"}
    for grid in grids(spec):
        (runset,) = grid["metadata"]["runSets"]
        assert runset["project"] == {"name": "proj-y", "entityName": "ent-x"}
        (only,) = runset["filters"]["filters"]
        assert only["key"] == {"section": "run", "name": "group"}
        assert (only["op"], only["value"]) == ("=", GROUP)


def test_every_panel_key_is_in_a_panel():
    spec = wandb_report.spec(build())
    panels = [p for g in grids(spec) for p in g["metadata"]["panelBankSectionConfig"]["panels"]]
    by_type = {}
    for p in panels:
        by_type.setdefault(p["viewType"], []).append(p["config"])
    assert by_type["Media Browser"][0]["mediaKeys"] == ["viz/layer1", "viz/layer5"]
    assert by_type["Run History Line Plot"][0]["metrics"] == ["train/loss", "val/loss"]
    assert by_type["Run History Line Plot"][0]["xAxis"] == "epoch"
    assert by_type["Bar Chart"][0]["metrics"] == ["test/top1"]
    assert [c["metrics"] for c in by_type["Scalar Chart"]] == [["test/top5"], ["test/top1_error"]]
    assert "transfer/acc" not in json.dumps(spec)


def corrupt(spec, change):
    spec = copy.deepcopy(spec)
    change(spec)
    return spec


@pytest.mark.parametrize("change, message", [
    (lambda s: s["spec"].update(blocks="nope"), "spec.blocks: Input should be a valid list"),
    (lambda s: blocks(s)[1].update(type="no-such-block"), "unrecognised block or panel at spec.blocks.1"),
    (lambda s: grids(s)[0].update(metadata="not a mapping"), "'panel-grid' with PanelGrid"),
    (lambda s: blocks(s)[1].update(level=7), "does not round-trip"),  # parses, but no H7 to rebuild
])
def test_validate_rejects_corrupted_specs(change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        wandb_report.validate(corrupt(wandb_report.spec(build()), change))


def test_group_with_quote_is_refused():
    with pytest.raises(ValueError, match="quotes"):
        wandb_report.build(sections(), entity="e", project="p", group="a'b", title="t")


def test_missing_keys_lists_exactly_the_absent_ones():
    logged = {"visualize": {"viz/layer1", "viz/layer5"}, "train": {"train/loss"},
              "evaluate": {"test/top1", "test/top5"}}
    # fig9's transfer/acc is absent too, but fig9 did not run.
    assert wandb_report.missing_keys(sections(), logged) == ["evaluate: test/top1_error", "train: val/loss"]


def test_save_uploads_and_returns_url():
    class Fake:
        url = "https://wandb.ai/ent/proj/reports/x--abc"
        saved = 0

        def save(self):
            self.saved += 1

    fake = Fake()
    assert wandb_report.save(fake) == Fake.url and fake.saved == 1


def test_panels_over_stages_without_a_run_are_dropped_and_unlogged_keys_named():
    """Runs: one train run that logged train/loss only. The evaluate panels have no run (dropped); the train panel
    stays and names val/loss; fig9 did not run, so its panel's key is never asked for."""
    class Run:
        job_type = "train"

        def logged(self):
            return {"train/loss", "epoch"}

    shown = sections()
    shown[0].panels.append(Panel("line", (), "train"))                 # a panel with no key: dropped too
    missing = wandb_report.keep_logged_panels(shown, [Run()])
    assert [p.job_type for s in shown for p in s.panels] == ["train"]
    assert missing == ["train: val/loss"]
