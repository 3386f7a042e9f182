"""Section 1, the summary: what was searched and how (stopping rule, budget, sampler, pruner,
seeds), how many trials in which state, where the seconds went (training, evaluation), and the
compute that pruning and early stopping saved against the budget of every finished trial.

Studies written before a setting was recorded say "not recorded" rather than a guess.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from search import record
from search.errors import StudyError
from search.record import epochs_run, trial_time
from search.report import fmt
from search.report.noise import NoiseFloor, describe
from search.report.view import StudyView

STATES = (
    ("complete", TrialState.COMPLETE),
    ("pruned", TrialState.PRUNED),
    ("failed", TrialState.FAIL),
    ("running", TrialState.RUNNING),
    ("waiting", TrialState.WAITING),
)
# Trials that ran and ended, whatever the way: their seconds are spent.
ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Finished, as `--trials N` counts: a failed or interrupted trial is not, and has no budget.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
NOT_RECORDED = "not recorded"


def data_label(data: dict) -> str:
    """The data attribute as one line of markdown, as stored: the spec first, then the other
    settings."""
    if not data:
        return "(not recorded)"
    rest = ", ".join(f"{fmt.text(k)}={fmt.text(v)}" for k, v in data.items() if k != "spec")
    spec = fmt.text(data.get("spec", "?"))
    return f"{spec} ({rest})" if rest else spec


def summary_section(view: StudyView, noise: NoiseFloor | None = None) -> str:
    """The study at a glance, as a two-column table; a sentence under it when its validation
    ranks configurations on another horizon than test's."""
    counts = {label: len(view.by_state(state)) for label, state in STATES}
    ended = [t for t in view.trials if t.state in ENDED]
    times = [s for s in (trial_time(t) for t in ended) if s is not None]
    rows: list[tuple[str, str]] = [
        ("study", fmt.text(view.name)),
        ("storage", fmt.text(view.storage) if view.storage else "(in memory)"),
        ("data", data_label(view.data)),
        ("protocol", _protocol(view)),
        ("metric", view.metric),
        ("direction", view.direction.name.lower()),
        ("fixed", ", ".join(f"{fmt.text(k)}={fmt.param(k, v)}"
                            for k, v in sorted(view.fixed.items()))
         or "(nothing fixed)"),
        *setting_rows(view),
        ("noise floor", describe(noise, view.metric)),
        ("trials", f"{len(view.trials)} ({', '.join(f'{n} {k}' for k, n in counts.items())})"),
        ("total trial time", fmt.seconds(sum(times)) if times else "(not recorded)"),
        ("mean trial time", fmt.seconds(sum(times) / len(times)) if times else "(not recorded)"),
        *_seconds_rows(ended),
        *_stop_rows(view),
    ]
    rows += _compute_rows(view)
    body = fmt.table([{"": k, "value": v} for k, v in rows])
    notes = []
    warning = _horizon_warning(view)
    if warning:
        notes.append(f"**{warning}**")
    if counts["running"] or counts["waiting"]:
        notes.append(
            f"The sweep is still going: {counts['running']} running and {counts['waiting']} "
            "waiting trials are counted above but used nowhere else."
        )
    return "\n\n".join(["## Summary", body, *notes])


def _protocol(view: StudyView) -> str:
    from caser.splits import describe_holdout  # numpy only, but not needed by report.py --help

    try:
        return describe_holdout(view.data_config())
    except StudyError:
        return NOT_RECORDED


def _horizon_warning(view: StudyView) -> str | None:
    from caser.splits import horizon_warning

    try:
        return horizon_warning(view.data_config())
    except StudyError:
        return None


def setting_rows(view: StudyView) -> list[tuple[str, str]]:
    """How the study searched: stopping rule, budget, sampler, pruner, seeds."""
    return [
        ("stopping rule", stopping_label(view)),
        ("budget", f"{fmt.count(view.max_epochs, 'epoch')} per trial"
         if view.max_epochs is not None else NOT_RECORDED),
        ("sampler", component_label(view.user_attrs.get(record.SAMPLER), "args")),
        ("pruner", component_label(view.user_attrs.get(record.PRUNER), "options")),
        ("seeds", seeds_label(view)),
    ]


def stopping_label(view: StudyView) -> str:
    """The early-stopping rule as recorded; a study from before it was recorded says so."""
    attrs = view.user_attrs
    if record.PATIENCE not in attrs:
        return NOT_RECORDED
    patience = attrs[record.PATIENCE]
    if patience is None:
        return "none: every trial trains its whole budget unless pruned"
    delta = attrs.get(record.MIN_DELTA)
    if not isinstance(delta, (int, float)) or not isinstance(patience, int):
        return f"patience {fmt.text(patience)} evaluations on {view.metric} (min improvement {NOT_RECORDED})"
    from caser.stopping import StoppingRule  # lightning: not for report.py --help

    return fmt.text(StoppingRule(monitor=view.metric, patience=patience, min_delta=float(delta),
                                 rel_delta=float(attrs.get(record.REL_DELTA) or 0.0),
                                 patience_growth=float(attrs.get(record.PATIENCE_GROWTH) or 0.0),
                                 warmup=int(attrs.get(record.WARMUP) or 0)).describe())


def component_label(stored: Any, args_key: str) -> str:
    """`{"name": "TPESampler", "args": {"seed": 0}}` -> `TPESampler (seed=0)`."""
    if stored is None:
        return NOT_RECORDED
    if not isinstance(stored, dict):
        return fmt.text(stored)
    name = fmt.text(stored.get("name", "?"))
    args = stored.get(args_key)
    if isinstance(args, dict) and args:
        return f"{name} ({', '.join(f'{fmt.text(k)}={_arg(v)}' for k, v in sorted(args.items()))})"
    if args:
        return f"{name} ({fmt.text(args)})"
    return name


def _arg(value: Any) -> str:
    return fmt.number(value, 6) if isinstance(value, float) else fmt.text(value)


def seeds_label(view: StudyView) -> str:
    """The study's seed, and the trials' own seeds where any differs from it."""
    study_seed = view.user_attrs.get(record.SEED)
    head = f"study {fmt.text(study_seed)}" if study_seed is not None else f"study {NOT_RECORDED}"
    trial_seeds = Counter(t.user_attrs[record.SEED] for t in view.trials
                          if record.SEED in t.user_attrs)
    if not trial_seeds or set(trial_seeds) == {study_seed}:
        return head
    per = ", ".join(f"{fmt.text(s)} ({n} trial{'s' if n != 1 else ''})"
                    for s, n in sorted(trial_seeds.items(), key=_numbers_first))
    return f"{head}; trials trained with {per}"


def _numbers_first(item: tuple[Any, int]) -> tuple[bool, Any]:
    """Seeds in numeric order, then anything else a study stored as one, as text: a sort that
    compares an int with a string would raise."""
    value = item[0]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (not number, value if number else str(value))


def _seconds_rows(ended: list[FrozenTrial]) -> list[tuple[str, str]]:
    # train_time_s held training + evaluation until eval_time_s was recorded beside it, so only
    # trials with both split the seconds.
    split = [t for t in ended if record.EVAL_TIME_S in t.user_attrs]
    if not split:
        return [("training time", NOT_RECORDED), ("evaluation time", NOT_RECORDED)]
    train = sum(float(t.user_attrs.get(record.TRAIN_TIME_S) or 0.0) for t in split)
    evaluate = sum(float(t.user_attrs[record.EVAL_TIME_S] or 0.0) for t in split)
    total = train + evaluate
    share = f"; {fmt.percent(evaluate / total)} of the two" if total else ""
    of = "" if len(split) == len(ended) else f", {len(split)} of {len(ended)} trials recorded it"
    return [("training time", f"{fmt.seconds(train)}{of}"),
            ("evaluation time", f"{fmt.seconds(evaluate)}{share}{of}")]


def _stop_rows(view: StudyView) -> list[tuple[str, str]]:
    """Why the finished trials that trained ended, when the sweep recorded it."""
    trained = [t for t in view.trials if t.state in FINISHED and not record.is_infeasible(t)]
    reasons = Counter(t.user_attrs.get(record.STOP_REASON) for t in trained)
    if not any(reasons):
        return [("why trials ended", NOT_RECORDED)]
    shown = ", ".join(f"{fmt.text(r)} {n}"
                      for r, n in sorted(reasons.items(), key=lambda kv: str(kv[0]))
                      if r is not None)
    if reasons.get(None):
        shown += f", {NOT_RECORDED} {reasons[None]}"
    return [("why trials ended", shown)]


def _compute_rows(view: StudyView) -> list[tuple[str, str]]:
    # A retry's curve holds the epochs its dead original trained, so the original is left out:
    # one configuration, one budget.
    retried = view.retried()
    resumed = sum(t.number in retried for t in view.trials if t.state in ENDED)
    live = [t for t in view.trials if t.state in ENDED and t.number not in retried]
    # A trial pruned as infeasible never trains: it spends no budget, and saves none by pruning.
    infeasible = [t for t in live if record.is_infeasible(t)]
    # A failed or interrupted trial is not finished: its epochs are spent, but its unused
    # budget is nobody's saving (issue 16, defect 4).
    failed = [t for t in live if t.state == TrialState.FAIL]
    finished = [t for t in live if t.state in FINISHED and t not in infeasible]
    trained = sum(epochs_run(t) for t in finished)
    rows: list[tuple[str, str]] = []
    budget = view.max_epochs * len(finished) if view.max_epochs is not None else 0
    if view.max_epochs is None:
        rows.append(("epochs trained",
                     f"{trained} (no max_epochs recorded, so no budget to compare)"))
    else:
        rows.append((
            "epochs trained",
            f"{trained} of {budget} ({view.max_epochs} x "
            f"{fmt.count(len(finished), 'finished trial')}"
            + (f"; the {resumed} whose worker died count in their retries)" if resumed else ")"),
        ))
    if infeasible:
        rows.append(("infeasible trials",
                     f"{len(infeasible)} (pruned before training, not counted above)"))
    if failed:
        rows.append(("failed trials", _failed_label(failed)))
    if view.max_epochs is None or not finished:
        return rows
    unused = {"pruning": 0, "early stopping": 0}
    for t in finished:
        left = max(0, view.max_epochs - epochs_run(t))
        pruned = t.state == TrialState.PRUNED or t.user_attrs.get(record.STOP_REASON) == record.PRUNED
        # A complete trial ends before its budget only by the stopping rule.
        unused["pruning" if pruned else "early stopping"] += left
    rows.append(("compute saved by pruning", fmt.percent(unused["pruning"] / budget)))
    if unused["early stopping"] or view.user_attrs.get(record.PATIENCE) is not None:
        rows.append(("compute saved by early stopping",
                     fmt.percent(unused["early stopping"] / budget)))
    return rows


def _failed_label(failed: list[FrozenTrial]) -> str:
    """`2 (1 interrupted (Ctrl-C), 1 diverged; 3 epochs trained, not counted above)`."""
    reasons = Counter(_reason_kind(t) for t in failed)
    epochs = sum(epochs_run(t) for t in failed)
    kinds = ", ".join(f"{n} {fmt.text(r)}" for r, n in sorted(reasons.items()))
    return (f"{len(failed)} ({kinds}; {fmt.count(epochs, 'epoch')} trained, "
            "not counted above)")


def _reason_kind(trial: FrozenTrial) -> str:
    reason = trial.user_attrs.get(record.REASON) or trial.user_attrs.get(record.STOP_REASON)
    if not reason:
        return "no reason recorded"
    return str(reason) if record.was_interrupted(reason) else str(reason).split(":", 1)[0]
