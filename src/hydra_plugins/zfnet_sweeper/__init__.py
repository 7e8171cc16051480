"""Hydra finds sweepers only under `hydra_plugins`: this is zfnet's, a thin shim over the library.

`hydra.sweeper._target_: hydra_plugins.zfnet_sweeper.ResumableOptunaSweeper` (see conf/hparams_search/)
takes the Optuna sweeper's settings; the work is done by `zfnet.studies.sweeper`.
"""

from __future__ import annotations

from typing import Any, List

from hydra.plugins.sweeper import Sweeper


class ResumableOptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's OptunaSweeper, with `n_trials` as the study's budget (resumable, shared by workers)."""

    def __init__(self, **settings: Any) -> None:
        from zfnet.pipeline.multirun import summarize
        from zfnet.studies.sweeper import ResumableOptunaSweeperImpl

        self.sweeper = ResumableOptunaSweeperImpl(**settings)
        self.sweeper.summarize = summarize

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
