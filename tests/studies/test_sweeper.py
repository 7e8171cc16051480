"""The resumable Optuna sweeper's bookkeeping: budget, surplus trials, stale trials, per-trial seeds."""

import os
import socket
import subprocess
import sys

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import UniformDistribution
from optuna.trial import TrialState

from zfnet.studies.sweeper import SURPLUS, WORKER, ResumableOptunaSweeperImpl, reseed, stale_trials

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"train.lr": UniformDistribution(0.001, 0.1)}


def sweeper(storage: str, n_trials: int) -> ResumableOptunaSweeperImpl:
    impl = ResumableOptunaSweeperImpl(sampler=optuna.samplers.RandomSampler(seed=0), direction="minimize",
                                      storage=storage, study_name="s", n_trials=n_trials, n_jobs=1,
                                      max_failure_rate=0.0, search_space=None, custom_search_space=None, params=None)
    impl.config = OmegaConf.create({"hydra": {"sweeper": {"sampler": {"seed": 0}}}})
    return impl


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


def study_at(storage: str) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=storage, load_if_exists=True)


def me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def test_new_trials_stop_at_the_budget_and_failed_trials_are_replaced(storage):
    impl, study = sweeper(storage, n_trials=2), study_at(storage)
    number, overrides = impl._ask(study, SPACE, {"experiment": "smoke"}, me())
    assert number == 0 and overrides[0].startswith("train.lr=") and overrides[1] == "experiment=smoke"
    study.ask()  # another worker's trial, still running
    assert impl._ask(study, SPACE, {}, me()) is None
    study.tell(1, state=TrialState.FAIL)
    assert impl._ask(study, SPACE, {}, me())[0] == 2


def test_a_trial_asked_beyond_the_budget_by_a_race_is_dropped(storage, monkeypatch):
    impl, study = sweeper(storage, n_trials=1), study_at(storage)
    ask = study.ask

    def another_worker_asks_first():
        ask()
        return ask()

    monkeypatch.setattr(study, "ask", another_worker_asks_first)
    assert impl._ask(study, SPACE, {}, me()) is None
    dropped = study.trials[1]
    assert dropped.state == TrialState.FAIL and dropped.user_attrs[SURPLUS] is True
    assert study.trials[0].state == TrialState.RUNNING


def test_stale_trials_are_those_whose_local_worker_exited(storage):
    study = study_at(storage)
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                            text=True, check=True)
    dead_pid = int(exited.stdout)
    workers = [{"host": socket.gethostname(), "pid": dead_pid},    # killed: stale
               {"host": socket.gethostname(), "pid": os.getppid()},  # alive: another worker's
               {"host": "elsewhere", "pid": dead_pid},               # another host: cannot tell
               me()]                                                 # this very process
    for worker in workers:
        trial = study.ask()
        study._storage.set_trial_user_attr(trial._trial_id, WORKER, worker)
    finished = study.ask()
    study._storage.set_trial_user_attr(finished._trial_id, WORKER, workers[0])
    study.tell(finished, 1.0)
    assert [t.number for t in stale_trials(study, me())] == [0]


@pytest.mark.parametrize("make", [lambda: optuna.samplers.RandomSampler(seed=0),
                                  lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=2)])
def test_each_trial_number_gets_its_own_reproducible_draws(make):
    def draw(number: int) -> float:
        sampler = make()
        study = optuna.create_study(sampler=sampler)
        trial = study.ask()
        reseed(sampler, 0, number)
        return trial.suggest_float("x", 0, 1)

    assert draw(3) == draw(3)
    assert len({draw(0), draw(1), draw(2)}) == 3
