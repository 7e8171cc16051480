"""A sweep's table and figure from an Optuna study."""

import optuna
from optuna.trial import TrialState

from zfnet.studies.sweeper import SURPLUS
from zfnet.studies.sweeps import log_scaled, sweep_figure, trial_rows

optuna.logging.set_verbosity(optuna.logging.WARNING)


def small_study() -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (0.5, 0.2, None, 0.3):
        trial = study.ask()
        lr = trial.suggest_float("train.lr", 1e-3, 1e-1, log=True)
        trial.suggest_float("models.zfnet.dropout", 0.2, 0.7)
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value + lr)
    surplus = study.ask()
    study._storage.set_trial_user_attr(surplus._trial_id, SURPLUS, True)
    study.tell(surplus, state=TrialState.FAIL)
    study.ask()  # still running: not in the table yet
    return study


def test_rows_hold_every_finished_or_failed_trial_but_not_dropped_ones():
    study = small_study()
    names, rows = trial_rows(study)
    assert names == ["models.zfnet.dropout", "train.lr"]
    assert [(r["trial"], r["state"]) for r in rows] == [(0, "complete"), (1, "complete"), (2, "fail"), (3, "complete")]
    for row, trial in zip(rows, study.trials):
        assert row["value"] == trial.value and row["train.lr"] == trial.params["train.lr"]
        assert row["seconds"] >= 0
    assert log_scaled(study) == {"train.lr"}


def test_figure_has_a_panel_per_parameter_and_one_for_the_history():
    study = small_study()
    names, rows = trial_rows(study)
    fig = sweep_figure(names, rows, "val_top1_error_10crop", minimize=True, log_axes=log_scaled(study))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in visible] == [*names, "trial"]
    assert visible[1].get_xscale() == "log" and visible[0].get_xscale() == "linear"
    best = min(r["value"] for r in rows if r["state"] == "complete")
    running_best = visible[-1].lines[0].get_ydata()
    assert running_best[-1] == best and list(running_best) == sorted(running_best, reverse=True)
