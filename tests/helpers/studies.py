"""Tiny study files and stored studies for the sweep tests.

    path.write_text(study_toml(space={"lr": "{ float = [1e-4, 1e-2], log = true }"}, max_epochs=2))
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_DATA = "synthetic:users=60,items=100,interactions=900"  # ~600 training events, 1 batch


def toml_value(value: Any) -> str:
    """A Python value as TOML; strings that already hold TOML (`"{ int = [1, 3] }"`) pass as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.lstrip().startswith(("{", "[", '"')) else f'"{value}"'
    return repr(value)


def study_toml(
    space: dict[str, Any] | None = None,
    pruners: dict[str, dict[str, Any]] | None = None,
    data: str = TINY_DATA,
    **study: Any,
) -> str:
    """A study file's text: [study] keys from **study (max_epochs 1, random sampler, no pruner, no
    extra seeds of the default unless given), [pruners.*], [data] spec, and a [space] of raw TOML
    values."""
    keys = {"max_epochs": 1, "sampler": "random", "pruner": "none", "seed": 0, "default_seeds": 0, **study}
    lines = ["[study]", *(f"{k} = {toml_value(v)}" for k, v in keys.items())]
    for name, options in (pruners or {}).items():
        lines += ["", f"[pruners.{name}]", *(f"{k} = {toml_value(v)}" for k, v in options.items())]
    lines += ["", "[data]", f"spec = {toml_value(data)}", "", "[space]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (space or {"lr": "{ float = [1e-4, 1e-2], log = true }"}).items()]
    return "\n".join(lines) + "\n"


def load_study(storage: str | Path, name: str = "tiny"):
    """The stored study (an SQLite path or URL), for asserting on its trials."""
    import optuna

    url = storage if str(storage).startswith("sqlite:") else f"sqlite:///{storage}"
    return optuna.load_study(study_name=name, storage=str(url))


def dead_worker_trial(study, reported: dict[int, float] | None = None, retry_callback=None) -> int:
    """The next trial of `study` run by a worker that died after reporting `reported` (0-based
    step: value): failed as its stale heartbeat would be, and its retry queued by
    `retry_callback` (default: the sweep's own). Returns the dead trial's number."""
    from optuna.trial import TrialState

    from search.study import stale_trial_retry

    trial = study.ask()
    for step, value in (reported or {}).items():
        trial.report(value, step)
    study.tell(trial, state=TrialState.FAIL)
    (retry_callback or stale_trial_retry())(study, study.trials[trial.number])
    return trial.number
