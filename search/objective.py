"""The objective: a trial -> a config -> a training through caser/ -> the best validation value.

    params = suggest(trial, space)            # search/space.py
    model, train = configs_from_params(...)   # caser/config.py
    result = fit(model, train, data, callbacks=[pruning], logger=tensorboard)
    record what the report needs; raise TrialPruned if the pruner stopped it; return the best.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import optuna

from caser.config import TrainConfig, configs_from_params
from caser.data_module import PreparedData
from caser.module import Diverged
from caser.train import FitResult, fit
from search.checkpoints import checkpoint_dir, find_resume, merge_history, remove_checkpoints
from search.checkpoints import stored
from search.retries import retry_history
from search.pruning import OptunaPruning
from search.space import Infeasible, check_feasible, suggest
from search.studyfile import StudySpec
from search.tensorboard import log_inherited, mark_dead_run, trial_logger, write_hparams


INTERRUPTED = "interrupted (Ctrl-C)"  # the reason of a trial stopped by the user


def make_objective(
    spec: StudySpec,
    data: PreparedData,
    runs_dir: Path,
    max_window: int | None,
    accelerator: str = "cpu",
    keep_checkpoints: bool = False,
) -> Callable[[optuna.Trial], float]:
    """The function `study.optimize` calls once per trial.

    A retry of a trial whose worker died resumes from that trial's last checkpoint (see
    search/checkpoints.py); checkpoints of trials that end here are removed unless kept.
    """

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        params = {**spec.fixed, **suggest(trial, spec.space)}
        try:
            check_feasible(params, max_window)
        except Infeasible as exc:
            trial.set_user_attr("reason", str(exc))
            trial.set_user_attr("infeasible", True)  # never trained: the report leaves it out of the budget
            raise optuna.TrialPruned(str(exc)) from None
        model, train = configs_from_params(params, train=TrainConfig(epochs=spec.max_epochs, seed=spec.seed))
        all_params = {**asdict(model), **asdict(train)}
        logger = trial_logger(runs_dir, spec.name, trial.number)
        pruning = OptunaPruning(trial, spec.metric)
        frozen = stored(trial)
        resume = find_resume(frozen, runs_dir, spec.name)
        ended = [trial.number, *retry_history(frozen)]
        if len(ended) > 1:  # a retry: 0 says its checkpoint was missing and it started over
            trial.set_user_attr("resumed_from_epoch", resume.epochs_done if resume else 0)
            mark_dead_run(runs_dir, spec.name, ended[-1], all_params)  # the one it retries
            if resume is not None:
                log_inherited(logger, spec.metric, frozen.intermediate_values, resume.epochs_done)
        try:
            result = fit(model, train, data, "validation", callbacks=[pruning], logger=logger,
                         accelerator=accelerator, ckpt_path=resume.ckpt_path if resume else None,
                         checkpoint_dir=checkpoint_dir(runs_dir, spec.name, trial.number))
        except Diverged as exc:
            trial.set_user_attr("reason", f"diverged: {exc}")
            write_hparams(logger, all_params, "FAIL", {}, 0)
            if not keep_checkpoints:
                remove_checkpoints(runs_dir, spec.name, ended)
            raise
        except KeyboardInterrupt:
            # Optuna records the trial as FAIL and is not going to retry it, so its checkpoint
            # has no use; the re-run samples anew (and runs the defaults again if this was them).
            trial.set_user_attr("reason", INTERRUPTED)
            write_hparams(logger, all_params, "FAIL", {}, 0)
            if not keep_checkpoints:
                remove_checkpoints(runs_dir, spec.name, ended)
            raise
        if not keep_checkpoints:
            remove_checkpoints(runs_dir, spec.name, ended)
        if resume is not None:
            trial.set_user_attr("epochs_trained", result.epochs_run)
            result.history = merge_history(result.history, frozen.intermediate_values, spec.metric,
                                           resume.epochs_done)
        best = result.best(spec.metric) if spec.direction == "maximize" else _lowest(result, spec.metric)
        state = "PRUNED" if pruning.pruned_at else "COMPLETE"
        _record(trial, result, best, time.perf_counter() - started, train.seed)
        write_hparams(logger, all_params, state, best or {}, int(best["epoch"]) if best else 0)
        if pruning.pruned_at:
            reason = f"pruned after epoch {pruning.pruned_at}"
            trial.set_user_attr("reason", reason)
            raise optuna.TrialPruned(reason)
        if best is None or not math.isfinite(best[spec.metric]):
            raise Diverged(f"no finite {spec.metric} in {result.epochs_run} epochs")
        return best[spec.metric]

    return objective


def _lowest(result: FitResult, monitor: str) -> dict[str, float] | None:
    rows = [r for r in result.history if monitor in r]
    return min(rows, key=lambda r: r[monitor]) if rows else None


def _record(trial: optuna.Trial, result: FitResult, best: dict[str, float] | None, wall: float,
            seed: int) -> None:
    """The user attributes the report reads (see search/report)."""
    attrs: dict[str, Any] = {
        "seed": seed,  # the training seed: a resumed sweep may have been given another
        "epochs_run": result.epochs_run,
        "wall_time_s": round(wall, 3),
        # the epochs' own time (training + validation); the rest of wall_time_s is overhead
        "train_time_s": round(sum(r["time_s"] for r in result.history), 3),
        "num_params": result.num_params,
    }
    if best is not None:
        attrs["best_epoch"] = int(best["epoch"])
        attrs.update({k: v for k, v in best.items() if k.startswith("val/")})
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
