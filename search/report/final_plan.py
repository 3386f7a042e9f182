"""The final evaluation's runs: which (configuration, seed) pairs need which training, read from
the study's cache or trained (here, or in worker processes: `search.report.final_runs`), stored
as each finishes, and said on the progress stream. What the runs are and how they are keyed:
`search.report.final`.

    res = run_final(view, top_k=3, seeds=3, train_fn=caser_train_fn(), jobs=2, threads=1)
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, TextIO

from caser.config import DataConfig
from search import interrupts
from search.errors import StudyError
from search.report import fmt
from search.report.final import (TEST_METRICS, Candidate, Convergence, FinalResults, StudyData, TrainFn,
                                 cache_key, candidates, converge_key, convergence_rule, study_data)
from search.report.final_estimate import estimate_line
from search.report.final_runs import (POLL_S, Converged, InProcess, Job, Tested, WorkerDied, Workers,
                                      converged_from, record_of, tested_from)
from search.report.view import StudyView
from search.workers import ended_how

# Written (a count) before the first training of a report, so that a study that cannot be written
# (read-only, a full disk) is refused before hours of training rather than after.
WRITE_CHECK = "final_write_check"


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
            paces = {c.key: c.pace for c in self.res.candidates if c.pace is not None}
            estimate = estimate_line(list(pending), paces, executor.slots, self.data)
            if estimate:
                self._say(estimate)
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
            interrupts.check()
            done = [r for r in running if r[0].ready()]
            if not done:
                time.sleep(POLL_S)
                continue
            died: WorkerDied | None = None
            for item in done:
                running.remove(item)
                handle, job, started = item
                try:
                    result = handle.get()
                except ValueError as exc:
                    raise StudyError(f"{self._label(job.key)}, seed {job.seed}: {exc}") from None
                except WorkerDied as exc:  # the runs that finished beside it are stored first
                    died = exc
                    continue
                self._store(job, result, time.perf_counter() - started)
                if isinstance(result, Converged):
                    self.converged[job.key, job.seed] = result
                    cand = next(c for c in self.res.candidates if c.key == job.key)
                    self._need_test(cand, job.seed, result.epoch, pending, first=True)
                else:
                    self.tested[job.key, job.seed] = result
            if died is not None:
                how = ended_how(died.code) if died.code is not None else "ended"
                raise StudyError(f"a final-evaluation worker process {how}; the finished runs "
                                 "are cached: run the same command again to go on")

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
