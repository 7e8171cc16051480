"""Optuna sweeps of the train stage on tiny data: a smoke sweep killed and resumed, and two workers at once."""

import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from zfnet.studies.sweeper import SURPLUS

from conftest import REPO, read_wandb_records
from test_visualize_stages import prepare_tiny

pytestmark = pytest.mark.slow
STUDY = "zfnet_recipe"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_tiny(tmp_path_factory.mktemp("sweep_data"), train_per_class=8, val_per_class=4)


def sweep(tmp_path, prepared, trials: int) -> list[str]:
    return [sys.executable, "pipelines/train.py", "hparams_search=zfnet_optuna", "experiment=smoke",
            f"paths.prepared={prepared}", f"paths.outputs={tmp_path / 'out'}", f"logger.dir={tmp_path}",
            f"hydra.sweeper.n_trials={trials}"]


def study_in(tmp_path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path / 'out' / 'sweeps' / f'{STUDY}.db'}")


def trial_metrics(tmp_path, number: int):
    return tmp_path / "out" / "sweeps" / STUDY / f"trial_{number}" / "metrics" / "train_zfnet.json"


def test_a_killed_sweep_resumes_without_redoing_finished_trials(tmp_path, prepared):
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(sweep(tmp_path, prepared, 3), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    running = []
    while first.poll() is None and time.monotonic() < deadline and not running:
        time.sleep(0.05)
        try:
            trials = study_in(tmp_path).get_trials(deepcopy=False)
        except Exception:  # not created yet, or its tables half made
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number >= 1]
    first.kill()
    first.wait()
    assert running, f"the sweep ended before its second trial started:\n{(tmp_path / 'first.log').read_text()[-3000:]}"
    before = {t.number: t for t in study_in(tmp_path).trials}
    finished = {n: trial_metrics(tmp_path, n).stat().st_mtime_ns for n, t in before.items()
                if t.state == TrialState.COMPLETE}
    assert 0 in finished and before[running[0].number].state == TrialState.RUNNING

    again = subprocess.run(sweep(tmp_path, prepared, 3), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {t.number: t for t in study_in(tmp_path).trials}
    assert sorted(after) == [0, 1, 2] and all(t.state == TrialState.COMPLETE for t in after.values())
    for number, mtime in finished.items():
        assert trial_metrics(tmp_path, number).stat().st_mtime_ns == mtime, f"trial {number} ran again"
    killed = running[0].number
    assert after[killed].params == before[killed].params, "the killed trial reran with its own parameters"

    table = (tmp_path / "out" / "sweeps" / STUDY / "trials.csv").read_text().splitlines()
    assert len(table) == 4 and all(",complete," in row for row in table[1:])
    assert (tmp_path / "out" / "sweeps" / STUDY / "sweep.png").stat().st_size > 0
    groups = {}
    for run_file in (tmp_path / "wandb").glob("offline-run-*/run-*.wandb"):
        record = next(r.run for r in read_wandb_records(run_file) if r.HasField("run"))
        groups.setdefault(record.job_type, set()).add(record.run_group)
    assert groups == {"train": {f"sweep-{STUDY}"}, "sweep": {f"sweep-{STUDY}"}}


def test_two_workers_share_one_study_without_running_a_trial_twice(tmp_path, prepared):
    logs = [(tmp_path / f"worker{i}.log").open("w") for i in range(2)]
    workers = [subprocess.Popen(sweep(tmp_path, prepared, 3), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
               for log in logs]
    for worker, log in zip(workers, logs):
        assert worker.wait(timeout=600) == 0, (tmp_path / log.name).read_text()[-3000:]
    trials = study_in(tmp_path).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    dropped = [t for t in trials if t.user_attrs.get(SURPLUS)]
    assert len(complete) == 3 and len(trials) == len(complete) + len(dropped)
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 3, "each trial its own parameters"
    for trial in complete:
        assert trial_metrics(tmp_path, trial.number).is_file()
