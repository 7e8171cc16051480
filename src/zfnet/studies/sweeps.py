"""A hyperparameter sweep's results as a table and a figure (pure: a study in, rows and a figure out)."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402
from optuna.distributions import IntLogUniformDistribution, LogUniformDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from zfnet.studies.sweeper import SURPLUS  # noqa: E402


def trial_rows(study: optuna.Study) -> tuple[list[str], list[dict[str, Any]]]:
    """(parameter names, one row per finished or failed trial: number, state, value, seconds, params)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.FAIL)
              and not t.user_attrs.get(SURPLUS)]
    names = sorted({name for t in trials for name in t.params})
    rows = []
    for trial in trials:
        seconds = ((trial.datetime_complete - trial.datetime_start).total_seconds()
                   if trial.datetime_complete and trial.datetime_start else None)
        rows.append({"trial": trial.number, "state": trial.state.name.lower(), "value": trial.value,
                     "seconds": seconds, **{name: trial.params.get(name) for name in names}})
    return names, rows


def log_scaled(study: optuna.Study) -> set[str]:
    """The parameters searched on a log scale (their figure axis is logarithmic too)."""
    return {name for t in study.get_trials(deepcopy=False) for name, dist in t.distributions.items()
            if isinstance(dist, (LogUniformDistribution, IntLogUniformDistribution))}


def sweep_figure(names: list[str], rows: list[dict[str, Any]], metric: str, minimize: bool = True,
                 log_axes: set[str] = frozenset()):
    """The metric against each parameter (best trial ringed), and against trial number with the running best."""
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    panels = len(names) + 1
    columns = min(panels, 3)
    fig, axes = plt.subplots(math.ceil(panels / columns), columns, figsize=(4.2 * columns, 3.4 * math.ceil(panels / columns)),
                             squeeze=False)
    axes = axes.ravel()
    best = (min if minimize else max)(done, key=lambda r: r["value"]) if done else None
    for ax, name in zip(axes, names):
        points = [(r[name], r["value"]) for r in done if isinstance(r[name], (int, float))]
        if points:
            ax.scatter(*zip(*points), color="tab:blue", s=24)
        if best is not None and isinstance(best[name], (int, float)):
            ax.scatter([best[name]], [best["value"]], s=120, facecolors="none", edgecolors="tab:red", label="best")
            ax.legend(fontsize=8)
        if name in log_axes:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    history = axes[len(names)]
    if done:
        numbers, values = [r["trial"] for r in done], [r["value"] for r in done]
        running = [(min if minimize else max)(values[:i + 1]) for i in range(len(values))]
        history.scatter(numbers, values, color="tab:blue", s=24, label="trial")
        history.step(numbers, running, where="post", color="tab:red", label="best so far")
        history.legend(fontsize=8)
    history.xaxis.set_major_locator(MaxNLocator(integer=True))
    history.set_xlabel("trial")
    history.set_ylabel(metric)
    history.grid(alpha=0.3)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"Sweep: {metric} of {len(done)} finished trials ({'lower' if minimize else 'higher'} is better)",
                 fontsize=11)
    fig.tight_layout()
    return fig
