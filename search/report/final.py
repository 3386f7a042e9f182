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

import statistics
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TextIO

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.metric_names import metric_names
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.best import shown_trials
from search.report.final_runs import (POLL_S, CaserTrain, Converged, InProcess, Job, Tested, Workers,
                                      converged_from, record_of, tested_from)
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


@dataclass(frozen=True)
class Convergence:
    """How the final evaluation trains to convergence: the budget and the stopping rule
    (`caser.stopping.StoppingRule`'s settings)."""

    max_epochs: int
    patience: int
    min_delta: float
    source: str = "given"  # where the patience comes from, for the report's sentence
    rel_delta: float = 0.0
    patience_growth: float = 0.0
    warmup: int = 0

    def tag(self) -> str:
        extra = "".join(f"_{short}{value:g}" for short, value in
                        (("r", self.rel_delta), ("g", self.patience_growth), ("w", self.warmup)) if value)
        return f"max{self.max_epochs}_p{self.patience}_d{self.min_delta:g}{extra}"

    def stopping(self, metric: str, maximize: bool) -> Any:
        from caser.stopping import StoppingRule  # lightning: only when something trains

        return StoppingRule(monitor=metric, patience=self.patience, min_delta=self.min_delta,
                            mode="max" if maximize else "min", rel_delta=self.rel_delta,
                            patience_growth=self.patience_growth, warmup=self.warmup)

    def describe(self, metric: str) -> str:
        return (f"{self.stopping(metric, True).describe()} ({self.source}), at most "
                f"{fmt.count(self.max_epochs, 'epoch')}")


def convergence_rule(view: StudyView, max_epochs: int | None = None,
                     patience: int | None = None) -> Convergence:
    """The study's stopping rule (or the given/default patience) under a generous budget."""
    attrs = view.user_attrs
    study_patience = attrs.get(record.PATIENCE)
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
    return Convergence(int(budget), int(chosen), float(attrs.get(record.MIN_DELTA) or 0.0), source,
                       float(attrs.get(record.REL_DELTA) or 0.0), float(attrs.get(record.PATIENCE_GROWTH) or 0.0),
                       int(attrs.get(record.WARMUP) or 0))


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
    jobs: int = 1,
    threads: int = 1,
) -> FinalResults:
    """Train what is not cached (everything with `refresh`), store it, return all results.

    rule: the convergence settings (default `convergence_rule(view)`); ignored with final_epochs.
    progress: where to write a line per training (report.py passes stderr); None is silent.
    data: the study's data, checked (default `study_data(view)`, which loads it).
    jobs: trainings at once (`search.report.final_runs`); 1 trains in this process, more in
    worker processes with `threads` torch threads each (train_fn must then be picklable).
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
    plan = _Plan(view, res, refresh, progress, data.config, final_epochs)
    start = (lambda: InProcess(train_fn)) if jobs <= 1 else (lambda: Workers(train_fn, jobs, threads))
    plan.run(start)
    return res


class _Plan:
    """The runs of every (configuration, seed): read from the cache, or trained (by the executor
    `run` starts once the first run is needed), stored as each finishes, said on `progress`."""

    def __init__(self, view: StudyView, res: FinalResults, refresh: bool, progress: TextIO | None,
                 data: DataConfig, final_epochs: int | None) -> None:
        self.view, self.res, self.refresh, self.progress = view, res, refresh, progress
        self.data, self.final_epochs = data, final_epochs
        self.steps = len(res.candidates) * len(res.seeds) * (2 if res.rule else 1)
        self.step = 0
        self.writable = False  # checked before the first training, not before cached reads
        self.converged: dict[tuple[str, int], Converged] = {}
        self.tested: dict[tuple[str, int], Tested] = {}

    def run(self, start: Callable[[], Any]) -> None:
        pending: deque[Job] = deque()
        for cand in self.res.candidates:
            for seed in self.res.seeds:
                if self.res.rule is None:
                    self._need_test(cand, seed, int(self.final_epochs), pending)
                else:
                    self._need_convergence(cand, seed, pending)
        if pending:
            self._check_writable()
            executor = start()
            try:
                self._drain(executor, pending)
            except BaseException:
                executor.close(cancel=True)
                raise
            executor.close()
        for cand in self.res.candidates:
            if self.res.rule is not None:
                self.res.converged[cand.key] = [self.converged[cand.key, s] for s in self.res.seeds]
            self.res.tested[cand.key] = [self.tested[cand.key, s] for s in self.res.seeds]

    def _drain(self, executor: Any, pending: deque[Job]) -> None:
        """Keep the executor's slots busy until every job has run; a finished convergence run
        queues its test run first, so that pairs complete early."""
        running: list[tuple[Any, Job, float]] = []
        while pending or running:
            while pending and len(running) < executor.slots:
                job = pending.popleft()
                self.step += 1
                self._say(self._start_line(job))
                running.append((executor.submit(job), job, time.perf_counter()))
            done = [r for r in running if r[0].ready()]
            if not done:
                time.sleep(POLL_S)
                continue
            for item in done:
                running.remove(item)
                handle, job, started = item
                try:
                    result = handle.get()
                except ValueError as exc:
                    raise StudyError(f"{self._label(job.key)}, seed {job.seed}: {exc}") from None
                self._store(job, result, time.perf_counter() - started)
                if isinstance(result, Converged):
                    self.converged[job.key, job.seed] = result
                    cand = next(c for c in self.res.candidates if c.key == job.key)
                    self._need_test(cand, job.seed, result.epoch, pending, first=True)
                else:
                    self.tested[job.key, job.seed] = result

    def _need_convergence(self, cand: Candidate, seed: int, pending: deque[Job]) -> None:
        rule = self.res.rule
        key = converge_key(cand.key, seed, rule, self.res.fingerprint)
        cached = self._cached(key, converged_from)
        if cached is None:
            pending.append(self._job("converge", cand, seed, rule.max_epochs,
                                     rule.stopping(self.res.metric, self.res.maximize)))
            return
        self.res.cached += 1
        self.step += 1
        self.converged[cand.key, seed] = cached
        self._need_test(cand, seed, cached.epoch, pending)

    def _need_test(self, cand: Candidate, seed: int, epochs: int, pending: deque[Job],
                   first: bool = False) -> None:
        key = cache_key(cand.key, seed, epochs, self.res.fingerprint)
        cached = self._cached(key, lambda entry: tested_from(entry, epochs, TEST_METRICS))
        if cached is not None:
            self.res.cached += 1
            self.step += 1
            self.tested[cand.key, seed] = cached
            return
        job = self._job("test", cand, seed, epochs)
        pending.appendleft(job) if first else pending.append(job)

    def _job(self, kind: str, cand: Candidate, seed: int, epochs: int, stopping: Any = None) -> Job:
        return Job(kind, cand.key, seed, cand.model_config, replace(cand.train_config, seed=seed, epochs=epochs),
                   self.data, self.res.metric, self.res.maximize, stopping)

    def _label(self, key: str) -> str:
        return next(c.label for c in self.res.candidates if c.key == key)

    def _start_line(self, job: Job) -> str:
        at = f"[final {self.step}/{self.steps}]"
        if job.kind == "converge":
            rule = self.res.rule
            return (f"{at} {self._label(job.key)}, seed {job.seed}: to convergence on validation "
                    f"(patience {rule.patience}, at most {fmt.count(rule.max_epochs, 'epoch')}) ...")
        return (f"{at} {self._label(job.key)}, seed {job.seed}: train+validation for "
                f"{fmt.count(job.train_config.epochs, 'epoch')}, then test ...")

    def _check_writable(self) -> None:
        """A real write to the study (a count that changes each time: an unchanged value writes
        nothing), before the first training of this report."""
        count = self.view.user_attrs.get(WRITE_CHECK)
        count = (count if isinstance(count, int) else 0) + 1
        try:
            self.view.study.set_user_attr(WRITE_CHECK, count)
        except Exception as exc:  # the storage's own kind: StorageInternalError, OSError, ...
            raise StudyError(f"cannot write to the study in {self.view.storage} ({_reason(exc)}): "
                             "the final evaluation would train and then lose its results; nothing "
                             "was trained") from None

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

    def _store(self, job: Job, result: Converged | Tested, seconds: float) -> None:
        if isinstance(result, Converged):
            key = converge_key(job.key, job.seed, self.res.rule, self.res.fingerprint)
            done = (f"    {self._label(job.key)}, seed {job.seed}: picked epoch {result.epoch} "
                    f"({self.res.metric} {result.value:.4f}); ran {result.epochs_run}, ended by "
                    f"{result.stop_reason} ({seconds:.1f} s)")
        else:
            key = cache_key(job.key, job.seed, result.epochs, self.res.fingerprint)
            done = (f"    {self._label(job.key)}, seed {job.seed}: test/map "
                    f"{result.metrics.get('test/map', float('nan')):.4f} ({seconds:.1f} s)")
        value = record_of(result)
        try:
            self.view.study.set_user_attr(key, value)
        except Exception as exc:  # the disk filled, the server went away, during training
            raise StudyError(f"cannot store the final evaluation's run of {self._label(job.key)}, seed "
                             f"{job.seed} in {self.view.storage} ({_reason(exc)}): the "
                             f"{self.res.trained} run(s) finished before it are kept in the "
                             "study; run the same command again to go on") from None
        self.view.user_attrs[key] = value
        self.res.trained += 1
        self._say(done)

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, file=self.progress, flush=True)


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
    return CaserTrain(data.config, data.prepared) if data is not None else CaserTrain()
