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
    check_same_settings(spec, stored, where)
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


def check_same_settings(spec: StudySpec, stored: Mapping[str, Any], where: str) -> None:
    """Refuse to resume a study under another budget, stopping rule, sampler, pruner or seed:
    its new trials would train or be chosen otherwise than its old ones while the study keeps
    the old record, and the report would rank them together. A setting the study did not
    record (a study from before it was) is accepted. The sampler's seed is each worker's own
    (seed + worker index), so the study's seed is compared, not the sampler's."""
    from search.strategy import pruner_options  # builds no pruner; imports Optuna's pruners

    given = {
        record.MAX_EPOCHS: spec.max_epochs,
        record.PATIENCE: spec.patience or None,
        record.MIN_DELTA: float(spec.min_delta),
        record.REL_DELTA: float(spec.rel_delta),
        record.PATIENCE_GROWTH: float(spec.patience_growth),
        record.WARMUP: spec.warmup,
        record.DEFAULT_SEEDS: spec.default_seeds,
        record.SEED: spec.seed,
    }
    for key, value in given.items():
        if key in stored and stored[key] != value:
            shown = (_shown(key, stored[key]), _shown(key, value))
            _refuse(spec, where, f"{key} {shown[0]}, not {shown[1]}", f"give {_flag(key)} {shown[0]} (or set it in the study file)")
    for key, name in ((record.SAMPLER, spec.sampler), (record.PRUNER, spec.pruner)):
        was = (stored.get(key) or {}).get("name")
        if was is not None and was != name:
            _refuse(spec, where, f"{key} {was!r}, not {name!r}", f"give {_flag(key)} {was} (or set it in the study file)")
    was = (stored.get(record.PRUNER) or {}).get("options")
    now = pruner_options(spec)
    if was is not None and was != now:
        _refuse(spec, where, f"pruners.{spec.pruner} {was}, not {now}",
                f"restore [pruners.{spec.pruner}] in {spec.path}")


def _shown(key: str, value: Any) -> Any:
    return 0 if key == record.PATIENCE and value is None else value  # None: no early stopping


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _refuse(spec: StudySpec, where: str, what: str, fix: str) -> None:
    raise StudyError(f"study {spec.name!r} in {where} was run with {what}; {fix} to resume it, or use "
                     "another --storage or study name")


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


def default_runs_to_queue(trials: Iterable[FrozenTrial], default_seeds: int) -> list[int]:
    """The runs of the defaults (0: the default, k: its k-th extra seed, up to default_seeds)
    that a sweep should queue: those never queued (a study made with fewer trials asked than
    runs), and those Ctrl-C stopped that nothing has run since, so that the study keeps its
    baseline and its noise floor. A run that failed for another reason (diverged) is not run
    again."""
    trials = list(trials)
    retried = retried_numbers(trials)  # a dead worker's trial stands for its retry
    runs: dict[int, list[FrozenTrial]] = {k: [] for k in range(default_seeds + 1)}
    for t in trials:
        if record.is_default(t) and t.number not in retried:
            runs.setdefault(int(t.user_attrs.get(record.DEFAULT_REPLICA) or 0), []).append(t)
    return sorted(k for k, ts in runs.items() if all(
        t.state == TrialState.FAIL and record.was_interrupted(t.user_attrs.get(record.REASON)) for t in ts))


def resumed_seed(seed: int, n_trials: int) -> int:
    """The sampler seed of a study resumed with n_trials stored: a sampler seeded as in the
    first run would replay that run's draws."""
    return int(np.random.SeedSequence([seed % 2**32, n_trials]).generate_state(1)[0])
