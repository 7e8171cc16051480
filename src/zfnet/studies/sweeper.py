"""Hydra's Optuna sweeper, made resumable and shareable between workers.

hydra-optuna-sweeper 1.3 runs `n_trials` new trials on every call. Here `n_trials` is the study's
budget instead, kept in its storage (sqlite, or any RDB URL Optuna takes):
- a sweep started again with the same `study_name` and `storage` runs only the trials still missing;
- a trial left RUNNING by a process of this host that no longer exists (a killed sweep) is run again
  with the same parameters in the same folder, so the train stage resumes it from its last checkpoint;
- several workers (processes, hosts, SLURM jobs) on one storage share the budget: each asks Optuna for
  the next trial until `n_trials` trials are done or running, and a trial asked beyond the budget by a
  race between workers is dropped (marked FAIL with the user attribute `surplus`).

Each trial runs in `<hydra.sweep.dir>/trial_<number>/`. After the last trial the worker writes the
sweep's summary (`optimization_results.yaml`, `trials.csv`, `sweep.png`) and logs it to W&B.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)

WORKER = "zfnet_worker"    # user attribute: {"host", "pid"} of the process running the trial
SURPLUS = "zfnet_surplus"  # user attribute of a trial dropped for being over the budget


def this_worker() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_trials(study: optuna.Study, me: dict[str, Any] | None = None) -> list[FrozenTrial]:
    """RUNNING trials whose worker ran on this host and has exited (their process was killed)."""
    me = me or this_worker()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER)
        if worker and worker["host"] == me["host"] and worker["pid"] != me["pid"] and not _alive(worker["pid"]):
            stale.append(trial)
    return stale


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that use the budget: all but the failed ones (a failed trial is replaced)."""
    return [t for t in trials if t.state != TrialState.FAIL]


def open_study(attempts: int = 20, **settings: Any) -> optuna.Study:
    """Create or load the study; workers starting together on a new database race to create its tables."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts - 1):
        try:
            return optuna.create_study(load_if_exists=True, **settings)
        except SQLAlchemyError:
            time.sleep(0.1 + 0.05 * attempt)
    return optuna.create_study(load_if_exists=True, **settings)


def reseed(sampler: optuna.samplers.BaseSampler, seed: int | None, number: int) -> None:
    """Seed the sampler's random draws from (seed, trial number).

    A seeded sampler restarts its random stream in every process: a resumed sweep, or a second
    worker, would propose the first trials' parameters again. Seeding per trial number keeps a sweep
    reproducible and its workers apart.
    """
    if seed is None:
        sampler.reseed_rng()
        return
    rng = np.random.RandomState(np.random.SeedSequence([seed, number]).generate_state(1))
    for holder in (sampler, getattr(sampler, "_random_sampler", None)):  # TPE draws its start-up trials from the latter
        if holder is not None and hasattr(holder, "_rng"):
            holder._rng = np.random.RandomState(rng.randint(2**31))


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """`OptunaSweeperImpl` with a budget kept in the study (see the module docstring)."""

    summarize: Callable[[optuna.Study, Any, Path], None] | None = None

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides([*self._parse_sweeper_params_config(), *arguments])
        space = {**(self.search_space_distributions or {}), **space}
        for name in fixed:
            space.pop(name, None)
        if isinstance(self.sampler, functools.partial):  # GridSampler, which needs the grid up front
            raise ValueError("hydra.sweeper.sampler: the grid sampler is not supported here; use tpe or random")
        if isinstance(self.storage, str) and self.storage.startswith("sqlite:///"):
            Path(self.storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        study = open_study(study_name=self.study_name, storage=self.storage, sampler=self.sampler,
                           directions=self._get_directions())
        me = this_worker()
        rerun = stale_trials(study, me)
        for trial in rerun:
            study._storage.set_trial_user_attr(trial._trial_id, WORKER, me)
            log.info("trial %d was left running by a process that exited: running it again", trial.number)
        done = len(counted(study.get_trials(deepcopy=False))) - len(rerun)
        log.info("study %s: %d of %d trials done or running", study.study_name, done, self.n_trials)

        failures = ran = 0
        while True:
            batch = [(t.number, self._overrides(t.params, fixed)) for t in rerun[:self.n_jobs]]
            rerun = rerun[len(batch):]
            while len(batch) < self.n_jobs and (asked := self._ask(study, space, fixed, me)) is not None:
                batch.append(asked)
            if not batch:
                break
            overrides = [(*params, f"hydra.sweep.subdir=trial_{number}") for number, params in batch]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            for (number, _), result in zip(batch, returns):
                ran += 1
                try:
                    study.tell(number, float(result.return_value))
                except Exception as err:  # the job raised, or returned no number
                    study.tell(number, state=TrialState.FAIL)
                    failures += 1
                    log.warning("trial %d failed: %s", number, err)
                    if failures / ran > self.max_failure_rate:
                        result.return_value  # re-raises the job's own error, with its traceback
                        raise
        self._finish(study)

    def _ask(self, study: optuna.Study, space: dict, fixed: dict, me: dict) -> tuple[int, tuple[str, ...]] | None:
        """A new trial within the budget, or None when the budget is used up."""
        if len(counted(study.get_trials(deepcopy=False))) >= self.n_trials:
            return None
        trial = study.ask()
        study._storage.set_trial_user_attr(trial._trial_id, WORKER, me)
        rank = sum(1 for t in counted(study.get_trials(deepcopy=False)) if t.number <= trial.number)
        if rank > self.n_trials:  # another worker asked for the last trial of the budget at the same time
            study._storage.set_trial_user_attr(trial._trial_id, SURPLUS, True)
            study.tell(trial, state=TrialState.FAIL)
            return None
        reseed(self.sampler, self.config.hydra.sweeper.sampler.get("seed"), trial.number)
        [overrides] = self._configure_trials([trial], space, fixed)
        return trial.number, tuple(overrides)

    @staticmethod
    def _overrides(params: dict[str, Any], fixed: dict[str, Any]) -> tuple[str, ...]:
        return tuple(f"{name}={value}" for name, value in {**params, **fixed}.items())

    def _finish(self, study: optuna.Study) -> None:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if complete:
            best = study.best_trial
            log.info("best trial %d: %s = %s", best.number, best.params, best.value)
            OmegaConf.save(OmegaConf.create({"name": "optuna", "best_trial": best.number, "best_params": best.params,
                                             "best_value": best.value}), sweep_dir / "optimization_results.yaml")
        if self.summarize is not None:
            self.summarize(study, self.config, sweep_dir)
