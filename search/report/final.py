"""The final evaluation: retrain the top K configs and the default to convergence, then score test
once. A study's budget ranks configurations by how fast they learn (issue 14); this is where the
report asks how good they get.

For each configuration and each seed 0..S-1 (the same seeds for every config, so runs pair up):
1. converge: train on train, validate every epoch, and stop by the stopping rule (the study's
   patience and min_delta, else `DEFAULT_PATIENCE`) within a generous budget; the best validation
   epoch is the epoch count picked. The default gets exactly this, never the sweep's curtailment.
2. test: train on train+validation for the picked epoch count and score test once, keeping
   every test user's AP for the paired tests.
`final_epochs` skips step 1 and trains every config that many epochs.

Results are cached in the study's user attributes, one key per step, seed and data
(`final/trial_0007/seed_0/converge_max60_p5_d0/data_<fingerprint>`,
`final/trial_0007/seed_0/epochs_23/data_<fingerprint>`), written as each finishes: a second
report, or one after Ctrl-C, trains only what is missing. The data is the study's own, checked by
the fingerprint of its prepared split as the sweep checks it (`study_data`); a study from before
fingerprints has nothing to check against, so the key's fingerprint keeps results trained on a
file since edited from being read as its. Entries from before the key held the data are not read:
nothing in them says which data they were trained on, and a retraining costs less than a wrong
number.
The training function is injectable: tests pass a cheap fake, the CLI passes `caser_train_fn`.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TextIO

import numpy as np

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.metric_names import metric_names
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.best import shown_trials
from search.report.view import StudyView
from search.run_dirs import trial_dir_name

# (model config, train config with seed and epochs set, data config, protocol, stopping rule or
# None) -> caser.train.FitResult (metrics, history, stop_reason, eval_users, user_ap are read).
TrainFn = Callable[..., Any]
TEST_METRICS = tuple(metric_names("test"))
CACHE_PREFIX = "final/"
DATA_TAG = "/data_"  # the cache key's last segment: the data's fingerprint, abridged
FINGERPRINT_CHARS = 16  # of the sha256: 64 bits tell one data file from another
# Written (a count) before the first training of a report, so that a study that cannot be written
# (read-only, a full disk) is refused before hours of training rather than after.
WRITE_CHECK = "final_write_check"
DEFAULT_PATIENCE = 5  # when the study recorded no stopping rule of its own
BUDGET_FACTOR = 5  # the final budget: this many times the study's ...
MIN_FINAL_EPOCHS = 50  # ... and never fewer epochs than this
AP_DIGITS = 6  # per-user AP as cached: differences below 1e-6 mean nothing


@dataclass(frozen=True)
class Convergence:
    """How the final evaluation trains to convergence: the budget and the stopping rule."""

    max_epochs: int
    patience: int
    min_delta: float
    source: str = "given"  # where the patience comes from, for the report's sentence

    def tag(self) -> str:
        return f"max{self.max_epochs}_p{self.patience}_d{self.min_delta:g}"

    def describe(self, metric: str) -> str:
        return (f"patience {self.patience} evaluations on {metric}, min improvement "
                f"{self.min_delta:g} ({self.source}), at most "
                f"{fmt.count(self.max_epochs, 'epoch')}")


def convergence_rule(view: StudyView, max_epochs: int | None = None,
                     patience: int | None = None) -> Convergence:
    """The study's stopping rule (or the given/default patience) under a generous budget."""
    study_patience = view.user_attrs.get(record.PATIENCE)
    min_delta = float(view.user_attrs.get(record.MIN_DELTA) or 0.0)
    if patience is not None:
        chosen, source = patience, "patience from --final-patience"
    elif study_patience is not None:
        chosen, source = study_patience, "the study's rule"
    else:
        chosen, source = DEFAULT_PATIENCE, "the report's default patience: the study recorded none"
    budget = max_epochs or max(BUDGET_FACTOR * (view.max_epochs or 0), MIN_FINAL_EPOCHS)
    if budget < 1:
        raise StudyError(f"--final-max-epochs must be at least 1, got {budget}")
    if chosen < 1:
        raise StudyError(f"--final-patience must be at least 1, got {chosen}")
    return Convergence(int(budget), int(chosen), min_delta, source)


@dataclass
class Candidate:
    """One configuration to retrain: `key` names it in the cache (`trial_0007` or `default`)."""

    key: str
    label: str
    model_config: ModelConfig
    train_config: TrainConfig
    is_default: bool
    budget_value: float | None = None  # the trial's value at the study's budget
    budget_epoch: int | None = None  # and its best epoch there


@dataclass(frozen=True)
class Converged:
    """One seed's run to convergence on validation."""

    epoch: int  # the best validation epoch: the test run trains this many
    value: float  # the metric there
    epochs_run: int
    stop_reason: str  # caser.stopping: patience or budget


@dataclass(frozen=True)
class Tested:
    """One seed's test run: its metrics and every test user's AP."""

    epochs: int
    metrics: dict[str, float]
    users: tuple[int, ...] = ()
    user_ap: tuple[float, ...] = ()


@dataclass
class FinalResults:
    seeds: list[int]
    candidates: list[Candidate]
    metric: str = "val/map"
    maximize: bool = True
    rule: Convergence | None = None  # None: fixed epochs (`final_epochs`)
    study_budget: int | None = None
    fingerprint: str = ""  # the data's, as in the cache keys
    converged: dict[str, list[Converged]] = field(default_factory=dict)  # key -> per seed
    tested: dict[str, list[Tested]] = field(default_factory=dict)  # key -> per seed
    trained: int = 0
    cached: int = 0

    @property
    def metrics(self) -> dict[str, list[dict[str, float]]]:
        """Test metrics per config key, per seed."""
        return {k: [t.metrics for t in runs] for k, runs in self.tested.items()}

    def default(self) -> Candidate:
        return next(c for c in self.candidates if c.is_default)


@dataclass(frozen=True)
class StudyData:
    """The study's data as the final evaluation trains on it: its config, the fingerprint of its
    prepared split (`search.data.data_fingerprint`) and the prepared data itself."""

    config: DataConfig
    fingerprint: str
    prepared: Any = field(default=None, repr=False)  # caser.data_module.PreparedData


def study_data(view: StudyView) -> StudyData:
    """Load the study's data; a StudyError, before anything trains, when it is not the data the
    study ran on (a file changed in place since the sweep), as a resumed sweep refuses it."""
    from caser.data_module import PreparedData  # torch: only for a final evaluation
    from caser.datasets import load_split
    from search.data import data_fingerprint

    config = view.data_config()
    prepared = PreparedData(load_split(config))
    fingerprint = data_fingerprint(prepared)
    known = view.user_attrs.get(record.DATA_FINGERPRINT)
    if known is not None and known != fingerprint:
        raise StudyError(f"study {view.name!r} was run on other data: {config.spec} has changed "
                         "since (its prepared split differs from the one the study ran on); "
                         "restore the data to run the final evaluation")
    return StudyData(config, fingerprint, prepared)


def converge_key(key: str, seed: int, rule: Convergence, fingerprint: str) -> str:
    return f"{CACHE_PREFIX}{key}/seed_{seed}/converge_{rule.tag()}{_data_tag(fingerprint)}"


def cache_key(key: str, seed: int, epochs: int, fingerprint: str) -> str:
    return f"{CACHE_PREFIX}{key}/seed_{seed}/epochs_{epochs}{_data_tag(fingerprint)}"


def _data_tag(fingerprint: str) -> str:
    return f"{DATA_TAG}{fingerprint[:FINGERPRINT_CHARS]}"


def unkeyed_entries(user_attrs: dict[str, Any]) -> int:
    """Cached results from before the cache key named the data: never read (module docstring)."""
    return sum(k.startswith(CACHE_PREFIX) and DATA_TAG not in k for k in user_attrs)


def candidates(view: StudyView, top_k: int) -> list[Candidate]:
    """The top K complete trials and the default (its trial, else the defaults with `fixed`)."""
    out = []
    for trial in shown_trials(view, top_k):
        model_config, train_config = view.configs(trial)
        is_default = view.is_default(trial)
        label = f"trial {trial.number}" + (" (default)" if is_default else "")
        key = trial_dir_name(trial.number)  # the trial's name in TensorBoard too
        best_epoch = trial.user_attrs.get(record.BEST_EPOCH)
        out.append(Candidate(key, label, model_config, train_config, is_default, trial.value,
                             int(best_epoch) if best_epoch is not None else None))
    if not any(c.is_default for c in out):
        model_config, train_config = view.default_configs()
        out.append(Candidate("default", "defaults (not a trial)", model_config, train_config,
                             True))
    return out


def run_final(
    view: StudyView,
    top_k: int,
    seeds: int,
    train_fn: TrainFn,
    final_epochs: int | None = None,
    refresh: bool = False,
    progress: TextIO | None = None,
    rule: Convergence | None = None,
    data: StudyData | None = None,
) -> FinalResults:
    """Train what is not cached (everything with `refresh`), store it, return all results.

    rule: the convergence settings (default `convergence_rule(view)`); ignored with final_epochs.
    progress: where to write a line per training (report.py passes stderr); None is silent.
    data: the study's data, checked (default `study_data(view)`, which loads it).
    """
    if seeds < 1:
        raise StudyError(f"--final-seeds must be at least 1, got {seeds}")
    if view.study is None:
        raise StudyError("the final evaluation needs the study itself, to cache its results")
    if final_epochs is None and rule is None:
        rule = convergence_rule(view)
    data = data or study_data(view)
    res = FinalResults(seeds=list(range(seeds)), candidates=candidates(view, top_k),
                       metric=view.metric, maximize=view.maximize,
                       rule=None if final_epochs is not None else rule,
                       study_budget=view.max_epochs, fingerprint=data.fingerprint)
    runner = _Runner(view, res, train_fn, refresh, progress, data)
    for cand in res.candidates:
        for seed in res.seeds:
            epochs = final_epochs
            if res.rule is not None:
                conv = runner.converge(cand, seed, res.rule)
                res.converged.setdefault(cand.key, []).append(conv)
                epochs = conv.epoch
            res.tested.setdefault(cand.key, []).append(runner.test(cand, seed, int(epochs)))
    return res


class _Runner:
    """Runs or reads from the cache one step of one seed, and says so on `progress`."""

    def __init__(self, view: StudyView, res: FinalResults, train_fn: TrainFn, refresh: bool,
                 progress: TextIO | None, data: StudyData) -> None:
        self.view, self.res, self.train_fn = view, res, train_fn
        self.refresh, self.progress = refresh, progress
        self.data, self.fingerprint = data.config, data.fingerprint
        self.steps = len(res.candidates) * len(res.seeds) * (2 if res.rule else 1)
        self.step = 0
        self.writable = False  # checked before the first training, not before cached reads

    def _check_writable(self) -> None:
        """A real write to the study (a count that changes each time: an unchanged value writes
        nothing), before the first training of this report."""
        if self.writable:
            return
        count = self.view.user_attrs.get(WRITE_CHECK)
        count = (count if isinstance(count, int) else 0) + 1
        try:
            self.view.study.set_user_attr(WRITE_CHECK, count)
        except Exception as exc:  # the storage's own kind: StorageInternalError, OSError, ...
            raise StudyError(f"cannot write to the study in {self.view.storage} ({_reason(exc)}): "
                             "the final evaluation would train and then lose its results; nothing "
                             "was trained") from None
        self.writable = True

    def _cached(self, key: str, parse: Callable[[Any], Any]) -> Any:
        """The cached result under `key`, parsed; None when there is none (or `refresh`), and
        when it cannot be read (another version wrote it, or a hand): said, then trained again."""
        if self.refresh or key not in self.view.user_attrs:
            return None
        try:
            return parse(self.view.user_attrs[key])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            why = f"no {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
            self._say(f"final evaluation: the cached {key} cannot be read ({why}); training it "
                      "again")
            return None

    def _store(self, key: str, value: dict, cand: Candidate, seed: int) -> None:
        try:
            self.view.study.set_user_attr(key, value)
        except Exception as exc:  # the disk filled, the server went away, during training
            raise StudyError(f"cannot store the final evaluation's run of {cand.label}, seed "
                             f"{seed} in {self.view.storage} ({_reason(exc)}): the "
                             f"{self.res.trained} run(s) finished before it are kept in the "
                             "study; run the same command again to go on") from None
        self.view.user_attrs[key] = value
        self.res.trained += 1

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, file=self.progress, flush=True)

    def converge(self, cand: Candidate, seed: int, rule: Convergence) -> Converged:
        from caser.stopping import StoppingRule  # lightning: only when something trains

        self.step += 1
        key = converge_key(cand.key, seed, rule, self.fingerprint)
        cached = self._cached(key, _converged_from)
        if cached is not None:
            self.res.cached += 1
            return cached
        self._check_writable()
        self._say(f"[final {self.step}/{self.steps}] {cand.label}, seed {seed}: to convergence "
                  f"on validation (patience {rule.patience}, at most "
                  f"{fmt.count(rule.max_epochs, 'epoch')}) ...")
        start = time.perf_counter()
        stopping = StoppingRule(monitor=self.res.metric, patience=rule.patience,
                                min_delta=rule.min_delta,
                                mode="max" if self.res.maximize else "min")
        train_config = replace(cand.train_config, seed=seed, epochs=rule.max_epochs)
        fit = self.train_fn(cand.model_config, train_config, self.data, protocol="validation",
                            stopping=stopping)
        rows = [r for r in fit.history if self.res.metric in r]
        if not rows:
            raise StudyError(f"{cand.label} logged no {self.res.metric} while converging")
        sign = 1.0 if self.res.maximize else -1.0
        best = max(rows, key=lambda r: (sign * r[self.res.metric], -r["epoch"]))
        conv = Converged(int(best["epoch"]), float(best[self.res.metric]), len(fit.history),
                         str(fit.stop_reason))
        self._store(key, {"epoch": conv.epoch, "value": conv.value, "epochs_run": conv.epochs_run,
                          "stop_reason": conv.stop_reason}, cand, seed)
        self._say(f"    picked epoch {conv.epoch} ({self.res.metric} {conv.value:.4f}); ran "
                  f"{conv.epochs_run}, ended by {conv.stop_reason} "
                  f"({time.perf_counter() - start:.1f} s)")
        return conv

    def test(self, cand: Candidate, seed: int, epochs: int) -> Tested:
        self.step += 1
        key = cache_key(cand.key, seed, epochs, self.fingerprint)
        cached = self._cached(key, lambda entry: _tested_from(entry, epochs))
        if cached is not None:
            self.res.cached += 1
            return cached
        self._check_writable()
        self._say(f"[final {self.step}/{self.steps}] {cand.label}, seed {seed}: train+validation "
                  f"for {fmt.count(epochs, 'epoch')}, then test ...")
        start = time.perf_counter()
        train_config = replace(cand.train_config, seed=seed, epochs=epochs)
        fit = self.train_fn(cand.model_config, train_config, self.data, protocol="test",
                            stopping=None)
        users = tuple(int(u) for u in np.asarray(fit.eval_users).tolist())
        ap = tuple(round(float(a), AP_DIGITS) for a in np.asarray(fit.user_ap).tolist())
        tested = Tested(epochs, {k: float(v) for k, v in fit.metrics.items()}, users, ap)
        self._store(key, {"metrics": tested.metrics, "users": list(users), "user_ap": list(ap)},
                    cand, seed)
        took = time.perf_counter() - start
        self._say(f"    test/map {tested.metrics.get('test/map', math.nan):.4f} ({took:.1f} s)")
        return tested


def _converged_from(entry: Any) -> Converged:
    """A cached convergence run; KeyError, TypeError or ValueError when it is not one."""
    epoch, epochs_run = _whole(entry["epoch"]), _whole(entry["epochs_run"])
    if not 1 <= epoch <= epochs_run:
        raise ValueError(f"epoch {epoch} of {epochs_run} run")
    return Converged(epoch, _number(entry["value"]), epochs_run, str(entry["stop_reason"]))


def _tested_from(entry: Any, epochs: int) -> Tested:
    """A cached test run with every test metric; its per-user AP may be missing (an older
    report), not cut short."""
    metrics = {str(name): _number(value) for name, value in entry["metrics"].items()}
    for name in TEST_METRICS:
        if name not in metrics:
            raise KeyError(name)
    users = tuple(_whole(u) for u in entry.get("users", ()))
    user_ap = tuple(_number(a) for a in entry.get("user_ap", ()))
    if len(users) != len(user_ap):
        raise ValueError(f"{len(users)} users but {len(user_ap)} AP values")
    return Tested(epochs, metrics, users, user_ap)


def _whole(x: Any) -> int:
    if not math.isfinite(_number(x)) or x != math.floor(x):
        raise ValueError(f"{x!r} is not a whole number")
    return int(x)


def _number(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{x!r} is not a number")
    return float(x)


def _reason(exc: BaseException) -> str:
    """Why a write failed: the innermost cause, first line (Optuna wraps a failed SQL commit in
    a message about "exceeding max length", which is rarely the reason)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def reproduce_epochs(res: FinalResults, key: str) -> int | None:
    """The converged epoch count for a config: the median over seeds of the epochs picked on
    validation (rounded down to a picked count on an even split); None without convergence."""
    runs = res.converged.get(key) if res.rule is not None else None
    if not runs:
        return None
    return int(statistics.median_low(c.epoch for c in runs))


def caser_train_fn(data: StudyData | None = None) -> TrainFn:
    """Train with `caser.train.fit`, loading each data split once (`data`: already loaded)."""
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.train import fit

    prepared: dict[DataConfig, PreparedData] = {}  # windows and evaluation sets built once
    if data is not None and data.prepared is not None:
        prepared[data.config] = data.prepared

    def train_fn(model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig,
                 protocol: str = "test", stopping: Any = None) -> Any:
        if data_config not in prepared:
            prepared[data_config] = PreparedData(load_split(data_config))
        return fit(model_config, train_config, prepared[data_config], protocol=protocol,
                   stopping=stopping)

    return train_fn
