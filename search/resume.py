"""The resume policy: when a stored study may go on, and how.

A study resumes only on its own data and with a space Optuna can still sample; the defaults
run again only when Ctrl-C stopped them; and a resumed sampler is seeded anew, so that it
explores instead of replaying the first run's draws.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from caser.catalogue import CATALOGUE
from caser.config import with_current_data_names
from search import record
from search.errors import StudyError
from search.retries import retried_numbers
from search.studyfile import StudySpec


def check_resumable(spec: StudySpec, stored: Mapping[str, Any], trials: Iterable[FrozenTrial], where: str,
                    fingerprint: str | None = None) -> None:
    """Refuse to resume a study on other data, or with a parameter whose kind or choices
    changed (Optuna would fail every trial on it); a wider or narrower range is fine.

    The data is the same when its settings are and, where the study recorded it, so is the
    fingerprint of its prepared split (`search.data.data_fingerprint`): a file changed in place
    is other data, and a file moved or renamed with its content unchanged is the same data."""
    data = stored.get(record.DATA)
    known = stored.get(record.DATA_FINGERPRINT)
    if data is not None:
        data = with_current_data_names(data)  # studies created before `split` became `holdout`
        before, now = data_identity(data), data_identity(asdict(spec.data))
        changed = [k for k, v in now.items() if before.get(k) != v]
        moved = changed == ["spec"] and _is_file(before["spec"]) and _is_file(now["spec"])
        if changed and not (moved and fingerprint is not None and fingerprint == known):
            shown = ", ".join(f"{k} {data.get(k)!r} -> {now[k]!r}" for k in changed)
            raise StudyError(f"study {spec.name!r} in {where} was run on other data ({shown}); "
                             "use another --storage or study name, or the study's own data")
    if known is not None and fingerprint is not None and fingerprint != known:
        raise StudyError(f"study {spec.name!r} in {where} was run on other data: {spec.data.spec} has "
                         "changed since (its prepared split differs from the one the study ran on); use "
                         "another --storage or study name, or restore the data")
    latest: dict[str, BaseDistribution] = {}
    for trial in trials:
        latest.update(trial.distributions)
    for name, dimension in spec.space.items():
        if name not in latest:
            continue
        try:
            check_distribution_compatibility(latest[name], dimension.distribution())
        except ValueError as exc:
            raise StudyError(f"{spec.path}: space.{name} cannot change this way in the existing study "
                             f"{spec.name!r} in {where} ({exc}); use another --storage or study name") from None


def data_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data attributes with a file spec as its absolute path: the same file named from
    another directory is the same data, and the same name from another directory is not.
    (A study stored with a relative path is taken relative to the current directory.)"""
    out = dict(data)
    spec = str(out.get("spec", ""))
    if spec and _is_file(spec):  # a named dataset is no path
        out["spec"] = str(Path(spec).expanduser().resolve())
    return out


def _is_file(spec: str) -> bool:
    return not spec.startswith("synthetic") and spec not in CATALOGUE


def default_was_interrupted(trials: Iterable[FrozenTrial]) -> bool:
    """True when the defaults' trial was stopped by Ctrl-C and nothing has run them since, so
    that the study keeps its baseline. A default that failed for another reason (diverged)
    is not run again."""
    trials = list(trials)
    retried = retried_numbers(trials)  # a dead worker's trial stands for its retry
    defaults = [t for t in trials if record.is_default(t) and t.number not in retried]
    return bool(defaults) and all(
        t.state == TrialState.FAIL and record.was_interrupted(t.user_attrs.get(record.REASON)) for t in defaults
    )


def resumed_seed(seed: int, n_trials: int) -> int:
    """The sampler seed of a study resumed with n_trials stored: a sampler seeded as in the
    first run would replay that run's draws."""
    return int(np.random.SeedSequence([seed % 2**32, n_trials]).generate_state(1)[0])
