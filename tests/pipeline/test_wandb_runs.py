"""Reading W&B runs back from their local files (the report's source of run ids and logged keys)."""

from zfnet.pipeline.wandb_runs import RunInfo, find_runs, parse_records


def test_a_logged_image_counts_as_its_key_and_its_parents():
    # wandb stores an image logged under "a/b" as the leaves "a/b/_type", "a/b/path", ...
    run = RunInfo("id", "g", "train", "train", "p", "", keys={"evolution/zfnet/conv1/_type", "epoch"})
    assert {"evolution/zfnet/conv1", "evolution/zfnet", "epoch"} <= run.logged()
    assert "evolution/zfnet/conv2" not in run.logged()


def test_a_file_that_is_not_a_run_says_so():
    records, problem = parse_records(b"PNG....")
    assert records == [] and "no wandb header" in problem


def test_a_run_file_cut_short_keeps_what_decoded(tmp_path):
    header = b":W&B" + b"\xbe\xee\x00"  # magic and version, as wandb writes them
    records, problem = parse_records(header + b"\x00\x00\x00\x00\x10\x00\x01" + b"\x00" * 4)
    assert records == [] and "cut short" in problem


def test_no_wandb_folder_means_no_runs(tmp_path):
    assert find_runs(tmp_path / "wandb", "pipeline-x") == []
