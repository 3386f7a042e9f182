"""The objective: a trial -> a config -> a training through caser/ -> the best validation value."""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any, Callable, Mapping

import optuna

from caser.callbacks import SaveLast
from caser.config import TrainConfig, configs_from_params
from caser.data_module import PreparedData
from caser.module import Diverged
from caser.train import fit
from search import record
from search.checkpoints import stored
from search.options import SweepOptions
from search.space import Infeasible, check_feasible, suggest
from search.studyfile import StudySpec
from search.trial_run import TrialRun


def make_objective(spec: StudySpec, data: PreparedData, options: SweepOptions,
                   say: Callable[[str], None]) -> Callable[[optuna.Trial], float]:
    """The function `study.optimize` calls once per trial; `say` prints a line (a refused
    checkpoint)."""

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        params = {**spec.fixed, **suggest(trial, spec.space)}
        prune_if_infeasible(trial, params, data)
        # The default's k-th extra seed (the noise floor) trains with the study's seed + k.
        seed = spec.seed + int(stored(trial).user_attrs.get(record.DEFAULT_REPLICA) or 0)
        model_config, train_config = configs_from_params(
            params, train_config=TrainConfig(epochs=spec.max_epochs, seed=seed))
        run = TrialRun.start(trial, spec, options, {**asdict(model_config), **asdict(train_config)}, say)
        with run.ending():
            # SaveLast after the pruner, so that it knows when the pruner ended the training.
            every = {} if options.checkpoint_interval_s is None else {"interval_s": options.checkpoint_interval_s}
            saving = SaveLast(run.checkpoint_dir, **every)
            result = fit(model_config, train_config, data, "validation", callbacks=[run.pruning, saving],
                         logger=run.logger, accelerator=options.accelerator, ckpt_path=run.ckpt_path,
                         stopping=spec.stopping())
            best = run.finish(result, time.perf_counter() - started, train_config.seed)
        if run.pruned_reason:
            raise optuna.TrialPruned(run.pruned_reason)
        if best is None or not math.isfinite(best[spec.metric]):
            raise Diverged(f"no finite {spec.metric} in {result.epochs_run} epochs")
        return best[spec.metric]

    return objective


def prune_if_infeasible(trial: optuna.Trial, params: Mapping[str, Any], data: PreparedData) -> None:
    """Prune a configuration that cannot be trained, before any training, with its reason."""
    try:
        check_feasible(params, data)
    except Infeasible as exc:
        trial.set_user_attr(record.REASON, str(exc))
        trial.set_user_attr(record.INFEASIBLE, True)  # never trained: the report leaves it out of the budget
        trial.set_user_attr(record.STOP_REASON, record.INFEASIBLE)
        raise optuna.TrialPruned(str(exc)) from None
