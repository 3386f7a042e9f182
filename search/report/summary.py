"""Section 1, the summary: what was searched, how many trials in which state, and the compute
that pruning saved (epochs trained against max_epochs for every finished trial)."""
from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

from search import record
from search.record import epochs_run, trial_time
from search.report import fmt
from search.report.view import StudyView

STATES = (
    ("complete", TrialState.COMPLETE),
    ("pruned", TrialState.PRUNED),
    ("failed", TrialState.FAIL),
    ("running", TrialState.RUNNING),
    ("waiting", TrialState.WAITING),
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def data_label(data: dict) -> str:
    """The data attribute as one line, as stored: the spec first, then the other settings."""
    if not data:
        return "(not recorded)"
    rest = ", ".join(f"{k}={v}" for k, v in data.items() if k != "spec")
    return f"{data.get('spec', '?')} ({rest})" if rest else str(data.get("spec", "?"))


def summary_section(view: StudyView) -> str:
    """The study at a glance, as a two-column table."""
    counts = {label: len(view.by_state(state)) for label, state in STATES}
    finished = [t for t in view.trials if t.state in FINISHED]
    times = [s for s in (trial_time(t) for t in finished) if s is not None]
    rows: list[tuple[str, str]] = [
        ("study", view.name),
        ("storage", view.storage or "(in memory)"),
        ("data", data_label(view.data)),
        ("metric", view.metric),
        ("direction", view.direction.name.lower()),
        ("fixed", ", ".join(f"{k}={fmt.param(k, v)}" for k, v in sorted(view.fixed.items()))
         or "(nothing fixed)"),
        ("trials", f"{len(view.trials)} ({', '.join(f'{n} {k}' for k, n in counts.items())})"),
        ("total trial time", fmt.seconds(sum(times)) if times else "(not recorded)"),
        ("mean trial time", fmt.seconds(sum(times) / len(times)) if times else "(not recorded)"),
    ]
    rows += _compute_rows(view, finished)
    body = fmt.table([{"": k, "value": v} for k, v in rows])
    notes = []
    if counts["running"] or counts["waiting"]:
        notes.append(
            f"The sweep is still going: {counts['running']} running and {counts['waiting']} "
            "waiting trials are counted above but used nowhere else."
        )
    return "\n\n".join(["## Summary", body, *notes])


def _compute_rows(view: StudyView, finished: list[FrozenTrial]) -> list[tuple[str, str]]:
    # A retry's curve holds the epochs its dead original trained, so the original is left out:
    # one configuration, one budget.
    retried = view.retried()
    resumed = sum(t.number in retried for t in finished)
    finished = [t for t in finished if t.number not in retried]
    # A trial pruned as infeasible never trains: it spends no budget, and saves none by pruning.
    infeasible = [t for t in finished if record.is_infeasible(t)]
    finished = [t for t in finished if t not in infeasible]
    trained = sum(epochs_run(t) for t in finished)
    if view.max_epochs is None:
        return [("epochs trained", f"{trained} (no max_epochs recorded, so no budget to compare)")]
    budget = view.max_epochs * len(finished)
    rows = [
        (
            "epochs trained",
            f"{trained} of {budget} ({view.max_epochs} x {len(finished)} finished trials"
            + (f"; the {resumed} whose worker died count in their retries)" if resumed else ")"),
        ),
    ]
    if infeasible:
        rows.append(("infeasible trials", f"{len(infeasible)} (pruned before training, not counted above)"))
    if budget:
        rows.append(("compute saved by pruning", fmt.percent(1 - trained / budget)))
    return rows
