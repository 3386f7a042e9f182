"""One trial's training run around `caser.train.fit`: what it needs going in, and one way out.

Going in: its TensorBoard logger, the pruning callback and, for a retry of a trial whose worker
died, the checkpoint to resume (the dead run gets its FAIL HParams entry, the new one the curve
it inherits). Going out, whatever ends the trial: its HParams entry with its state (FAIL unless
it finished) and the removal of its checkpoints, unless the sweep keeps them.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import optuna
from lightning.pytorch.loggers import TensorBoardLogger

from caser.module import Diverged
from caser.stopping import STOPPED
from caser.train import FitResult
from search import interrupts, record
from search.checkpoints import Resume, earlier_rows, find_resume, merge_history, remove_checkpoints, stored
from search.options import SweepOptions
from search.pruning import OptunaPruning, report
from search.retries import retry_history
from search.run_dirs import checkpoint_dir, write_failure
from search.studyfile import StudySpec
from search.tensorboard import log_inherited, mark_dead_run, trial_logger, write_hparams


@dataclass
class TrialRun:
    trial: optuna.Trial
    spec: StudySpec
    options: SweepOptions
    params: Mapping[str, Any]  # every config field, searched or fixed: the HParams entry
    logger: TensorBoardLogger
    pruning: OptunaPruning
    resume: Resume | None
    earlier: list[dict[str, float]]  # a resumed retry: the rows of the epochs its checkpoint held
    ended: list[int]  # this trial and the trials it retries: their checkpoints go with it
    state: str = "FAIL"  # the HParams state, until the trial finishes
    best: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, trial: optuna.Trial, spec: StudySpec, options: SweepOptions,
              params: Mapping[str, Any], say: Callable[[str], None]) -> TrialRun:
        runs_dir = options.runs_dir
        logger = trial_logger(runs_dir, spec.name, trial.number)
        frozen = stored(trial)
        resume = find_resume(frozen, runs_dir, spec.name, say)
        ended = [trial.number, *retry_history(frozen)]
        earlier = earlier_rows(resume, frozen.intermediate_values, spec.metric)
        if len(ended) > 1:  # a retry: 0 says its checkpoint was missing and it started over
            trial.set_user_attr(record.RESUMED_FROM_EPOCH, resume.epochs_done if resume else 0)
            mark_dead_run(runs_dir, spec.name, ended[-1], params)  # the one it retries
            for row in earlier:  # its curve is the checkpoint's epochs, then its own
                if spec.metric in row:
                    report(trial, row[spec.metric], int(row["epoch"]) - 1)
            log_inherited(logger, earlier)
        pruning = OptunaPruning(trial, spec.metric, prunable=not record.is_default(frozen))
        return cls(trial, spec, options, params, logger, pruning, resume, earlier, ended)

    @property
    def pruned_reason(self) -> str | None:
        return f"pruned after epoch {self.pruning.pruned_at}" if self.pruning.pruned_at else None

    @property
    def ckpt_path(self) -> str | None:
        return self.resume.ckpt_path if self.resume else None

    @property
    def checkpoint_dir(self) -> str:
        return str(checkpoint_dir(self.options.runs_dir, self.spec.name, self.trial.number))

    @contextmanager
    def ending(self) -> Iterator[TrialRun]:
        """The trial's one way out (see the module docstring); a diverged or interrupted
        training records its reason on the way."""
        try:
            yield self
        except Diverged as exc:
            self.trial.set_user_attr(record.REASON, f"diverged: {exc}")
            self.trial.set_user_attr(record.STOP_REASON, record.DIVERGED)
            raise
        except KeyboardInterrupt:
            # Optuna records the trial as FAIL and is not going to retry it, so its checkpoint
            # has no use; the re-run samples anew (and runs the defaults again if this was them).
            self.trial.set_user_attr(record.REASON, record.interrupted(interrupts.name()))
            self.trial.set_user_attr(record.STOP_REASON, record.STOPPED_BY_USER)
            raise
        except OSError as exc:  # a checkpoint or a curve that could not be written: a full disk
            self.trial.set_user_attr(record.REASON, write_failure(exc))
            self.trial.set_user_attr(record.STOP_REASON, record.WRITE_ERROR)
            raise
        finally:
            best_epoch = int(self.best["epoch"]) if self.best else 0
            try:
                write_hparams(self.logger, self.params, self.state, self.best, best_epoch)
            except OSError:  # the same full disk: the study has the trial's state and reason
                pass
            if not self.options.keep_checkpoints:
                remove_checkpoints(self.options.runs_dir, self.spec.name, self.ended)

    def finish(self, result: FitResult, wall_time_s: float, seed: int) -> dict[str, float] | None:
        """Record a finished training (its full curve when resumed) and return its best epoch's
        row, or None when the monitored metric was never logged."""
        metric = self.spec.metric
        if result.stop_reason == STOPPED and not self.pruning.pruned_at:
            # Only early stopping on a nan or infinite metric stops a sweep's training otherwise.
            raise Diverged(f"{metric} became nan or infinite after epoch {result.epochs_run}")
        if self.resume is not None:
            self.trial.set_user_attr(record.EPOCHS_TRAINED, result.epochs_run)
            result.history = merge_history(result.history, self.earlier)
        best = result.best(metric) if self.spec.direction == "maximize" else _lowest(result, metric)
        self.best = best or {}
        self.state = "PRUNED" if self.pruning.pruned_at else "COMPLETE"
        record.TrialRecord(
            seed=seed,
            epochs_run=result.epochs_run,
            wall_time_s=wall_time_s,
            train_time_s=sum(r.get("train_time_s", 0.0) for r in result.history),  # inherited rows: none
            eval_time_s=sum(r.get("eval_time_s", 0.0) for r in result.history),
            num_params=result.num_params,
            stop_reason=record.PRUNED if self.pruning.pruned_at else result.stop_reason,
            best_epoch=int(best["epoch"]) if best else None,
            best_metrics={k: v for k, v in (best or {}).items() if k.startswith("val/")},
        ).write(self.trial)
        if self.pruned_reason:
            self.trial.set_user_attr(record.REASON, self.pruned_reason)
        return best


def _lowest(result: FitResult, monitor: str) -> dict[str, float] | None:
    rows = [r for r in result.history if monitor in r]
    return min(rows, key=lambda r: r[monitor]) if rows else None
