"""The sweep's console progress: one line per finished trial, and when to stop starting trials."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import record
from search.study import counts_toward_target

MAX_FAILURE_STREAK = 10
MAX_INFEASIBLE_STREAK = 100  # an infeasible trial costs milliseconds, and may be one corner of many


@dataclass
class Progress:
    """An Optuna callback: prints each finished trial through `say` and stops the study at
    `target` finished trials, or gives up after MAX_FAILURE_STREAK failures or
    MAX_INFEASIBLE_STREAK infeasible trials in a row (`gave_up` says why). Infeasible trials
    never count as finished (search.study.counts_toward_target)."""

    target: int
    say: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)
    done_at_start: int = 0
    failure_streak: int = 0
    infeasible_streak: int = 0
    stopped: bool = False  # set when the sweep should start no more trials
    gave_up: str = ""  # why the sweep stopped before `target`, when it did

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        finished = sum(map(counts_toward_target, trials))
        elapsed = time.perf_counter() - self.started
        ran = max(finished - self.done_at_start, 1)
        eta = elapsed / ran * max(self.target - finished, 0)
        best = _best(study)
        best_text = f"best {best.value:.4f} (#{best.number})" if best else "best -"
        value = f"{trial.value:.4f}" if trial.value is not None else trial.user_attrs.get(record.REASON, "-")
        attrs = trial.user_attrs
        self.say(
            f"[{finished}/{self.target}] trial {trial.number:>3} {trial.state.name:<8} {value:<24} "
            f"epochs {attrs.get(record.EPOCHS_RUN, 0):>2}  {attrs.get(record.WALL_TIME_S, 0):6.1f}s  "
            f"params {attrs.get(record.NUM_PARAMS, 0):>8}  | {best_text}  "
            f"complete {counts[TrialState.COMPLETE]} pruned {counts[TrialState.PRUNED]} "
            f"failed {counts[TrialState.FAIL]}  elapsed {_clock(elapsed)} eta {_clock(eta)}"
        )
        self.failure_streak = self.failure_streak + 1 if trial.state == TrialState.FAIL else 0
        self.infeasible_streak = self.infeasible_streak + 1 if record.is_infeasible(trial) else 0
        if self.failure_streak >= MAX_FAILURE_STREAK:
            self.gave_up = (f"stopping: {self.failure_streak} trials in a row failed (last: {value}); "
                            "narrow the space (a diverging loss: lower space.lr)")
        if self.infeasible_streak >= MAX_INFEASIBLE_STREAK:
            self.gave_up = (f"stopping: {self.infeasible_streak} trials in a row were infeasible (last: "
                            f"{value}); narrow the space")
        if self.gave_up:
            self.stopped = True
        if finished >= self.target:
            self.stopped = True
        if self.stopped:
            study.stop()


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
