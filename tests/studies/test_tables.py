"""Tables 2 and 3 rows: percent, missing runs, and each row's change from its base model."""

import pytest

from zfnet import paper
from zfnet.studies.tables import (
    TABLE3_COLUMNS,
    gathered_evidence,
    markdown,
    seed_replicates,
    table2,
    table2_cells,
    table3,
    table3_cells,
)


def metrics(train: float, top1: float, top5: float) -> dict:
    return {"train_top1_error": train, "val_top1_error_10crop": top1, "val_top5_error_10crop": top5,
            "val_top1_error": 0.99}  # the centre-crop error: not what the table shows


def test_table3_rows_follow_the_paper_and_show_ours_in_percent():
    runs = {"zfnet": metrics(0.10, 0.20, 0.05), "zfnet_fc2048": metrics(0.12, 0.25, 0.06),
            "alexnet_no7": metrics(0.3, 0.4, 0.1)}
    rows = table3(runs)
    printed = paper.numbers("table3_ablations")["rows"]
    assert [row["run"] for row in rows] == list(printed)
    by_run = {row["run"]: row for row in rows}
    assert by_run["zfnet_fc2048"]["ours"] == {"train_top1": 12.0, "val_top1": 25.0, "val_top5": 6.0,
                                              "delta_val_top1": 5.0}
    assert by_run["zfnet_fc2048"]["paper"] == {"train_top1": 38.2, "val_top1": 40.2, "val_top5": 17.6,
                                               "delta_val_top1": pytest.approx(40.2 - 38.4)}
    assert by_run["zfnet"]["ours"]["delta_val_top1"] is None  # a base has no change from itself
    # the base run did not finish: no change to report, ours or (for the comparison's sake) the paper's stays
    assert by_run["alexnet_no7"]["ours"]["delta_val_top1"] is None
    assert by_run["alexnet_no7"]["paper"]["delta_val_top1"] == pytest.approx(40.0 - 40.5)
    assert by_run["alexnet_fc8192"]["ours"] == {c: None for c in (*TABLE3_COLUMNS, "delta_val_top1")}


def test_table2_rows_keep_the_papers_order_and_add_our_own_entries():
    errors = {"zf": (0.2, 0.05), "zf_x5": (0.15, 0.04), "zf_x3": (0.17, 0.045)}
    members = {"zf": ["zfnet"], "zf_x5": ["zfnet", "s1", "s2", "s3", "s4"], "zf_x3": ["zfnet", "s1", "s2"]}
    rows = table2(errors, members)
    assert [row["entry"] for row in rows] == [*paper.numbers("table2_imagenet")["rows"], "zf_x3"]
    by_entry = {row["entry"]: row for row in rows}
    assert by_entry["zf_x5"]["ours"] == {"val_top1": 15.0, "val_top5": 4.0}
    assert by_entry["zf_x5"]["paper"] == {"val_top1": 36.7, "val_top5": 15.3, "test_top5": 15.3}
    assert by_entry["krizhevsky"]["ours"] == {"val_top1": None, "val_top5": None}
    assert by_entry["zf_x3"]["paper"]["val_top1"] is None and len(by_entry["zf_x3"]["members"]) == 3


def test_markdown_has_a_line_per_row_and_dashes_for_missing_values():
    rows = table2({"zf": (0.2, 0.05)}, {"zf": ["zfnet"]})
    lines = markdown(rows, ("val_top1", "val_top5")).splitlines()
    assert len(lines) == 2 + len(rows)
    assert "| 1 convnet as per Fig. 3 | 20.0 | 5.0 | 38.4 | 16.5 |" in lines
    assert lines[2].count("| - ") == 2


def test_seed_replicates_are_the_runs_that_differ_only_in_their_seed():
    specs = {"zfnet": {"base": "zfnet"}, "zfnet_fc2048": {"base": "zfnet", "fc_units": 2048},
             "zfnet_seed1": {"base": "zfnet", "seed": 1}, "zfnet_seed2": {"base": "zfnet", "seed": 2},
             "zfnet_again": {"base": "zfnet", "seed": 0},          # the pipeline's seed named: the same run as zfnet
             "alexnet": {"base": "alexnet"}, "alexnet_seed1": {"base": "alexnet", "seed": 1}}
    replicates = seed_replicates(specs, default_seed=0)
    assert replicates["zfnet"] == ["zfnet", "zfnet_seed1", "zfnet_seed2"]
    assert replicates["zfnet_seed2"] == ["zfnet_seed2", "zfnet", "zfnet_seed1"]
    assert replicates["zfnet_fc2048"] == ["zfnet_fc2048"]
    assert replicates["alexnet"] == ["alexnet", "alexnet_seed1"]
    # under seed 1, zfnet_seed1 repeats zfnet and zfnet_again (seed 0) is another seed
    assert seed_replicates(specs, default_seed=1)["zfnet"] == ["zfnet", "zfnet_seed2", "zfnet_again"]


def test_the_paper_s_five_zf_nets_are_seed_replicates_of_zfnet():
    """conf/ablations/paper.yaml: Table 2's "5 convnets as per Fig. 3" are zfnet and its 4 seed runs."""
    import yaml

    from conftest import REPO

    runs = yaml.safe_load((REPO / "conf" / "ablations" / "paper.yaml").read_text())["runs"]
    assert seed_replicates(runs, default_seed=0)["zfnet"] == ["zfnet", *(f"zfnet_seed{i}" for i in range(1, 5))]
    assert paper.numbers("table2_imagenet")["rows"]["zf_x5"]["label"].startswith("5 convnets")


def test_table3_evidence_gathers_what_the_runs_wrote_and_their_seeds_among_them():
    specs = {"zfnet": {"base": "zfnet"}, "zfnet_seed1": {"base": "zfnet", "seed": 1},
             "zfnet_seed2": {"base": "zfnet", "seed": 2}}              # seed2 wrote no evidence: not a replicate here
    evidence = {"zfnet": {"images": 2, "top1_correct": [1, 0]}, "zfnet_seed1": {"images": 2, "top1_correct": [1, 1]}}
    gathered = gathered_evidence(evidence, specs, default_seed=0)
    assert gathered == {"runs": evidence, "seeds": {"zfnet": ["zfnet", "zfnet_seed1"],
                                                    "zfnet_seed1": ["zfnet_seed1", "zfnet"]}}
    assert gathered_evidence({}, specs, default_seed=0) == {"runs": {}, "seeds": {}}


def test_flat_cells_put_ours_beside_the_paper_s_under_named_columns():
    columns, cells = table2_cells(table2({"zf": (0.2, 0.05)}, {"zf": ["zfnet"]}))
    assert columns == ["entry", "model", "members", "val_top1 ours", "val_top5 ours", "val_top1 paper",
                       "val_top5 paper"]
    assert ["zf", "1 convnet as per Fig. 3", 1, 20.0, 5.0, 38.4, 16.5] in cells
    columns, cells = table3_cells(table3({}))
    assert columns == ["run", "model", *(f"{c} ours" for c in TABLE3_COLUMNS), *(f"{c} paper" for c in TABLE3_COLUMNS)]
    printed = paper.numbers("table3_ablations")["rows"]
    assert [row[0] for row in cells] == list(printed)
    assert all(row[2:5] == [None] * 3 and row[5:] == [printed[row[0]][c] for c in TABLE3_COLUMNS] for row in cells)
