"""Run a pruned Optuna study of Caser's hyperparameters; every trial stored, curves in TensorBoard.

    python sweep.py --trials 100                       # the default study on synthetic data
    python sweep.py --study ml100k --trials 30 --data ../shared/data/ml-100k/u.data
    python sweep.py --trials 100 --workers 1           # one trial at a time: reproducible under --seed

A thin shell: flags -> the study (search/studyfile.py) and the options (search/options.py);
then the data, the study and the run loop (search/runner.py).
"""
from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import time
import warnings
from pathlib import Path
from dataclasses import replace
from typing import Sequence

from search import interrupts

if __name__ == "__main__":  # before the imports below load optuna (a second): Ctrl-C is one line
    interrupts.exit_at_once("sweep.py")

from caser.errors import DataError  # noqa: E402
from search.errors import StudyError  # noqa: E402
from search.options import HEARTBEAT_INTERVAL_S, SweepOptions  # noqa: E402
from search.run_dirs import check_runs_dir, runs_dir_made, write_failure  # noqa: E402
from search.storage import (  # noqa: E402
    DEFAULT_RUNS_DIR, check_sweep_storage, check_writable, quiet_storage_threads, redact, storage_failure, storage_url,
)
from search.studyfile import (  # noqa: E402
    MAX_SEED, PRUNERS, SAMPLERS, SETTING_RULES, load_study_spec,
)
from search.workers import usable_cores, worker_label  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python sweep.py",
        description="Pruned Optuna sweep of Caser's hyperparameters. Flags override the study file.",
    )
    p.add_argument("--study", default="default",
                   help="study name in studies/ (default, ml100k, paper) or a path to a TOML file (default %(default)s)")
    p.add_argument("--trials", type=int, default=100,
                   help="finished trials (complete + pruned) the study should have; re-running resumes (default %(default)s)")
    p.add_argument("--data", help="override the study's data: synthetic, ml-100k, or a file path")
    p.add_argument("--storage", help="Optuna storage: an SQLAlchemy URL (sqlite:///x.db, postgresql://user:pass@host/db) "
                   "or a journal file (x.journal); default sqlite:///runs/<study>.db")
    p.add_argument("--sampler", choices=SAMPLERS, help="override the study's sampler")
    p.add_argument("--pruner", choices=PRUNERS, help="override the study's pruner")
    p.add_argument("--max-epochs", type=int, help="override the epoch budget of one trial")
    p.add_argument("--patience", type=int, help="override the study's early stopping: a trial stops after this many "
                   "evaluations without improvement of the metric (0: every trial trains its whole budget)")
    p.add_argument("--min-delta", type=float, help="override the improvement of the metric that counts for --patience")
    p.add_argument("--rel-delta", type=float, help="override the improvement that counts as a share of the best so "
                   "far (the larger of it and --min-delta counts)")
    p.add_argument("--patience-growth", type=float, help="override how patience grows: to this share of the epoch "
                   "of the best, when that is more than --patience")
    p.add_argument("--warmup", type=int, help="override the evaluations before patience may end a trial")
    p.add_argument("--default-seeds", type=int, help="override the extra training seeds of the default, whose "
                   "spread is the study's noise floor")
    p.add_argument("--train-frac", type=float, help="override the validation protocol: each user's first share "
                   "that validation trains on (0.6 with --val-frac 0.2: forward chaining at test's horizon)")
    p.add_argument("--val-frac", type=float, help="override the share after it that validation scores; test "
                   "trains on both and scores the rest")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--seed", type=int, help="sampler and training seed: a single-process sweep is reproducible")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR,
                   help="where SQLite files and TensorBoard runs go (default %(default)s)")
    p.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default="cpu",
                   help="where trials train; auto uses a GPU when present (default %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes on this machine sharing the study, each training its trials with "
                   "cores // K torch threads (default: the usable cores: two 1-thread trials train about twice "
                   "as fast as one 2-thread trial, docs/measurements.md); --workers 1 trains one trial at a "
                   "time, a sequence of trials that --seed reproduces")
    p.add_argument("--heartbeat", type=int, default=HEARTBEAT_INTERVAL_S, metavar="SECONDS",
                   help="RDB storages: a running trial's heartbeat interval; a trial silent for "
                   "4 intervals is failed and retried (default %(default)s)")
    p.add_argument("--checkpoint-interval", type=float, metavar="SECONDS",
                   help="seconds of training between a trial's resume checkpoints, written at the end of "
                   "an epoch (default: caser/callbacks.py's CHECKPOINT_INTERVAL_S, 30; 0: every epoch)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep runs/<study>/trial_*/checkpoints of ended trials (default: removed)")
    p.add_argument("--worker-index", type=int, metavar="I",
                   help="this worker's place among a shared study's workers: sampler seed = seed + I "
                   "(give each machine its own; with --workers K its workers take I .. I+K-1)")
    p.add_argument("--pool-worker", action="store_true", help=argparse.SUPPRESS)  # set by --workers
    p.add_argument("-v", "--verbose", action="store_true", help="show Optuna's and Lightning's own messages")
    return p.parse_args(argv)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers is None:
        args.workers = usable_cores()
    for flag in ("trials", "workers", "heartbeat", "max_epochs"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            say(f"error: --{flag.replace('_', '-')} must be at least 1")  # not the study file's mistake
            return 2
    for flag, ok, rule in SETTING_RULES:  # the flag's mistake, not the study file's
        value = getattr(args, flag)
        if value is not None and not ok(value):
            say(f"error: --{flag.replace('_', '-')} must be {rule}, got {value:g}")
            return 2
    if args.checkpoint_interval is not None and not (math.isfinite(args.checkpoint_interval)
                                                     and args.checkpoint_interval >= 0):
        say(f"error: --checkpoint-interval must be a number of seconds >= 0, got {args.checkpoint_interval:g}")
        return 2
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        say(f"error: --timeout must be a positive number of seconds, got {args.timeout:g}")
        return 2
    for flag, room in (("seed", 0), ("worker_index", args.workers - 1)):  # room: the pool's indexes
        value = getattr(args, flag)
        if value is not None and not 0 <= value < MAX_SEED - room:
            say(f"error: --{flag.replace('_', '-')} must be from 0 to {MAX_SEED - 1 - room}, got {value}")
            return 2
    import optuna  # after the cheap checks, so --help and flag errors are instant

    from caser.train import check_accelerator
    from search.data import check_space_fits, data_fingerprint, prepare_data
    from search.space import check_space_size
    from search.strategy import check_pruner_options
    from search.runner import run_sweep, stale_running
    from search.study import count_finished, open_study
    from caser.memory import available_memory
    from search.workers import plan_workers, run_workers, torch_threads, worker_ended, worker_memory

    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial says it
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    quiet_storage_threads()
    interrupts.ready()  # Ctrl-C and SIGTERM now stop the running trial, recorded as interrupted
    url = ""
    try:
        spec = load_study_spec(args.study).with_overrides(
            data_spec=args.data, sampler=args.sampler, pruner=args.pruner,
            max_epochs=args.max_epochs, patience=args.patience, min_delta=args.min_delta, seed=args.seed,
            rel_delta=args.rel_delta, patience_growth=args.patience_growth, warmup=args.warmup,
            default_seeds=args.default_seeds, train_frac=args.train_frac, val_frac=args.val_frac,
        )
        check_pruner_options(spec)  # before the data is prepared: a mistake costs no wait
        options = sweep_options(args)
        check_space_size(spec.space, options.n_trials, str(spec.path))
        url = storage_url(spec.name, args.storage, options.runs_dir)
        check_sweep_storage(url)
        check_writable(url)
        check_runs_dir(options.runs_dir)
        check_accelerator(options.accelerator)
        started = time.perf_counter()
        data = prepare_data(spec)
        check_space_fits(spec, data)
        with runs_dir_made(options.runs_dir):  # only now: a refused input leaves no folder
            study = open_study(spec, url, options, data_fingerprint(data))
        # Only now, so that a refused input prints one line: its error.
        say(f"data {spec.data.spec}: {data.num_users} users, {data.num_items} items, "
            f"{data.split.train.num_events} training events ({time.perf_counter() - started:.1f}s)")
        done = count_finished(study)
        if done >= options.n_trials:
            say(f"study {spec.name!r} already has {done} finished trials (asked for {options.n_trials}); nothing to do")
            return 0
        workers = args.workers
        if workers > 1 and not args.pool_worker:
            workers = plan_workers(workers, options.n_trials - done, available_memory(), worker_memory(),
                                   usable_cores(), say)
            if workers == 1:  # this process runs the trials, as a sweep without --workers
                options = replace(options, worker=None)
        if not args.pool_worker:
            say(f"study {spec.name!r} in {redact(url)}: {done} finished, running until {options.n_trials} "
                f"({spec.sampler} sampler, {spec.pruner} pruner, {spec.max_epochs} epochs max"
                f"{f', {workers} workers' if workers > 1 else ''}); "
                f"early stopping: {spec.stopping().describe()}")
            for number in stale_running(study):
                say(f"warning: trial {number} is RUNNING in a journal storage, which has no "
                    f"heartbeat: if no worker runs it, it stays so (see docs/distributed.md)")
        if workers > 1 and not args.pool_worker:
            pool = run_workers(sys.argv[1:] if argv is None else list(argv), workers, say,
                               first_index=options.worker_index)
            for label, code in pool.ended_early():
                say(worker_ended(study, label, code))
            finished = count_finished(study)
            if pool.interrupted:
                raise KeyboardInterrupt
            if pool.ended_early() and finished < options.n_trials:
                say(f"error: the workers stopped with {finished} of {options.n_trials} finished trials; "
                    "run the same command again to resume")
                return 1
        else:
            import torch

            torch.set_num_threads(torch_threads(workers))
            finished = run_sweep(spec, study, data, options, say)
        if finished < options.n_trials and finished == done:  # e.g. a timeout before any trial ended
            why = f"--timeout {args.timeout:g} s passed before" if args.timeout else "the sweep ended without"
            say(f"error: {why} any trial finished; the study has {finished} of {options.n_trials} "
                f"finished trials{': give a longer --timeout' if args.timeout else ''}")
            return 1
    except (StudyError, DataError) as exc:
        say(f"error: {exc}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a storage gone or full, under Optuna's chained errors
        line = storage_failure(url, exc) if url else None
        if line is None and isinstance(exc, OSError):  # the runs folder (its disk full, say)
            line = (f"error: {write_failure(exc)}; the running trial is recorded as failed, finished "
                    "trials are kept: make room and run the same command again to resume")
        if line is None:
            raise
        say(line)
        return 1
    except KeyboardInterrupt:
        say(f"interrupted ({interrupts.name()}): a running trial is recorded as interrupted, finished "
            f"trials are kept; run the same command again to resume")
        return interrupts.exit_code()
    best = study.best_trial if any(t.value is not None for t in study.get_trials(deepcopy=False)) else None
    say(f"done: {finished} finished trials" + (f"; best {spec.metric} {best.value:.4f} (trial {best.number})" if best else ""))
    where = "" if url == storage_url(spec.name, None) else f" --storage {shlex.quote(redact(url))}"
    say(f"curves: tensorboard --logdir {options.runs_dir}    tables: python report.py --study {shlex.quote(args.study)}{where}")
    return 0


def sweep_options(args: argparse.Namespace) -> SweepOptions:
    """The runtime settings, from the flags: built once, then passed along."""
    return SweepOptions(
        n_trials=args.trials, runs_dir=args.runs_dir, timeout=args.timeout, accelerator=args.accelerator,
        keep_checkpoints=args.keep_checkpoints, checkpoint_interval_s=args.checkpoint_interval, heartbeat=args.heartbeat,
        worker_index=args.worker_index or 0,
        worker=worker_label(args.worker_index or 0) if args.workers > 1 else None,
    )


if __name__ == "__main__":
    sys.exit(interrupts.run_script("sweep.py", main))
