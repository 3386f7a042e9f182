"""A real sweep killed with SIGKILL, SIGINT and SIGTERM at several points, then run again.

    python -m pytest tests/search/test_crash.py

Each kill waits for its point by watching the process (its output lines, the files it writes,
the libraries it has loaded), not by sleeping. After each kill: the SQLite file passes
`PRAGMA integrity_check` and keeps every finished trial; after the last re-run: exactly N
finished trials, and no configuration run twice unless a retry or the re-queued interrupted
defaults say why.
"""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from search.retries import retried_numbers
from tests.helpers import ROOT
from tests.helpers.studies import TINY_DATA, study_toml

N_TRIALS = 3
WAIT_S = 120  # a point that never comes: the test fails with the process's output
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PROGRESS_LINE = re.compile(r"^\[\d+/\d+\] trial ")

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


class Cli:
    """`python SCRIPT ARGS` from the repository root, its stdout and stderr read line by line."""

    def __init__(self, script: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, script, *(str(a) for a in args)], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, point: str, reached: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not reached():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"never reached {point}:\n{self.finish()[1]}")
            time.sleep(0.002)

    def kill(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        return self.finish()

    def finish(self) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.reader.join(timeout=5)
            raise AssertionError(f"hung:\n{self.output}") from None
        self.reader.join(timeout=5)
        return self.proc.returncode, self.output


def importing(cli: Cli) -> Callable[[], bool]:
    """The process has loaded numpy's compiled core: it is importing its libraries."""
    maps = Path(f"/proc/{cli.proc.pid}/maps")
    return lambda: "_multiarray_umath" in maps.read_text(errors="replace")


def assert_stopped_by(sig: int, code: int, output: str) -> None:
    """SIGINT and SIGTERM: one line that says so, exit 128 + the signal; SIGKILL: no word."""
    assert "Traceback" not in output, output
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL, output
    else:
        assert code == 128 + sig, output
        assert "interrupted" in output.strip().splitlines()[-1], output


def intact(db: Path, kept: set[int]) -> set[int]:
    """The file passes SQLite's integrity check and keeps the finished trials `kept`; returns
    the finished trials now."""
    if not db.exists():
        return kept
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Optuna's tables whole: without this index every process creates its own study.
        indexes = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("ix_studies_study_name",) in indexes
    trials = stored_trials(db)
    finished = {t.number for t in trials if t.state in FINISHED}
    assert kept <= finished, f"finished trials lost: {kept - finished}"
    return finished


def stored_trials(db: Path) -> list[FrozenTrial]:
    """The study's trials; none when the sweep was stopped before it created the study."""
    if not db.exists():
        return []
    try:
        return optuna.load_study(study_name=db.stem, storage=f"sqlite:///{db}").get_trials(deepcopy=False)
    except KeyError:
        return []


def assert_each_configuration_ran_once(trials: list[FrozenTrial]) -> None:
    """Trials with the same parameters: all but the last failed, and each of those is retried
    by a later trial (its worker died) or is the interrupted defaults (queued again)."""
    retried = retried_numbers(trials)
    by_config: dict[tuple, list[FrozenTrial]] = {}
    for trial in trials:
        by_config.setdefault(tuple(sorted(trial.params.items())), []).append(trial)
    for same in by_config.values():
        for earlier in same[:-1]:
            why = earlier.number in retried or (
                earlier.user_attrs.get("is_default") and earlier.user_attrs.get("reason", "").startswith("interrupted"))
            assert earlier.state == TrialState.FAIL and why, [(t.number, t.state, t.user_attrs) for t in same]


POINTS = ("study creation", "mid-trial", "between trials", "report")
SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


def crash_and_resume(tmp_path: Path, sigs: dict[str, int]) -> None:
    """One study: a sweep killed during its creation, then its re-runs mid-trial and between
    trials, a last re-run to N; then the report killed during its final evaluation, re-run."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    study_file = tmp_path / "crash.toml"
    study_file.write_text(study_toml(max_epochs=3, data=TINY_DATA))  # mid-trial: after epoch 1
    db = tmp_path / "crash.db"
    sweep = ["sweep.py", "--workers", "1", "--study", study_file, "--trials", N_TRIALS, "--runs-dir", tmp_path,
             "--heartbeat", "1", "--checkpoint-interval", "0"]  # a checkpoint after every epoch but the last
    checkpoints = lambda: any(tmp_path.glob("crash/trial_*/checkpoints/last.ckpt"))  # noqa: E731
    reached = {
        # The storage file's tables are built in a temporary file, then the study is created.
        "study creation": lambda cli: lambda: db.exists() or any(tmp_path.glob(".crash.db.*.tmp")),
        "mid-trial": lambda cli: checkpoints,  # an epoch done, more to go
        "between trials": lambda cli: lambda: any(PROGRESS_LINE.match(line) for line in cli.lines),
    }
    finished: set[int] = set()
    for point in POINTS[:3]:
        cli = Cli(*sweep)
        cli.wait_for(point, reached[point](cli))
        assert_stopped_by(sigs[point], *cli.kill(sigs[point]))
        finished = intact(db, finished)
        if sigs[point] != signal.SIGKILL:  # the sweep recorded its trial as stopped
            trials = stored_trials(db)
            assert not [t.number for t in trials if t.state == TrialState.RUNNING], point
            retried = retried_numbers(trials)  # an earlier SIGKILL's trial, failed as stale
            assert all(str(t.user_attrs.get("reason")).startswith("interrupted") or t.number in retried
                       for t in trials if t.state == TrialState.FAIL), [(t.number, t.state, t.user_attrs) for t in trials]

    code, output = Cli(*sweep).finish()
    assert code == 0, output
    intact(db, finished)
    trials = stored_trials(db)
    assert sum(t.state in FINISHED for t in trials) == N_TRIALS, output
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], output
    assert_each_configuration_ran_once(trials)

    # The report's final evaluation caches each seed's result in the study as it goes.
    report = ["report.py", "--study", study_file, "--storage", f"sqlite:///{db}", "--out", tmp_path / "r.md",
              "--final-seeds", "2", "--top", "1", "--final-epochs", "1", "--no-plots"]
    cli = Cli(*report)
    # Killed once a run's result is stored (trainings run two at a time: the second may have
    # started with the first): that result must survive the kill.
    cli.wait_for("the report's first stored run", lambda: any("test/map" in line for line in cli.lines))
    assert_stopped_by(sigs["report"], *cli.kill(sigs["report"]))
    intact(db, finished)
    code, output = Cli(*report).finish()
    assert code == 0 and "cached" in output and (tmp_path / "r.md").exists(), output
    assert int(re.search(r"(\d+) cached", output).group(1)) >= 1, output


@pytest.mark.slow  # 18 processes (each imports torch: seconds), three at a time
def test_a_sweep_killed_at_each_point_resumes_to_exactly_n_trials_losing_none(tmp_path: Path) -> None:
    # Three studies side by side; each sends every signal to some point, and together they
    # send every signal to every point.
    chains = {
        "-".join(signal.Signals(SIGNALS[(i + shift) % 3]).name for i in range(len(POINTS))):
            dict(zip(POINTS, (SIGNALS[(i + shift) % 3] for i in range(len(POINTS)))))
        for shift in range(3)
    }
    with ThreadPoolExecutor(len(chains)) as pool:
        runs = {label: pool.submit(crash_and_resume, tmp_path / label, sigs) for label, sigs in chains.items()}
    for label, run in runs.items():
        error = run.exception()
        if error is not None:
            raise AssertionError(f"{label} (signals for {', '.join(POINTS)}): {error}") from error


@pytest.mark.slow
def test_sigterm_between_and_during_trials_records_the_trial_as_interrupted(tmp_path: Path) -> None:
    study_file = tmp_path / "crash.toml"
    study_file.write_text(study_toml(max_epochs=3, data=TINY_DATA))
    sweep = ["sweep.py", "--workers", "1", "--study", study_file, "--trials", 20, "--runs-dir", tmp_path, "--checkpoint-interval", "0"]
    cli = Cli(*sweep)
    cli.wait_for("between trials", lambda: any(PROGRESS_LINE.match(line) for line in cli.lines))
    assert_stopped_by(signal.SIGTERM, *cli.kill(signal.SIGTERM))
    cli = Cli(*sweep)
    cli.wait_for("mid-trial", lambda: any(tmp_path.glob("crash/trial_*/checkpoints/last.ckpt")))
    assert_stopped_by(signal.SIGTERM, *cli.kill(signal.SIGTERM))
    trials = optuna.load_study(study_name="crash", storage=f"sqlite:///{tmp_path}/crash.db").get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert stopped and all(t.user_attrs["reason"] == "interrupted (SIGTERM)" for t in stopped)


@pytest.mark.parametrize("script", ["sweep.py", "report.py"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_while_a_script_imports_its_libraries_prints_one_line(tmp_path: Path, script: str, sig: int) -> None:
    cli = Cli(script, "--study", tmp_path / "x.toml", "--runs-dir", tmp_path) if script == "sweep.py" else \
        Cli(script, "--study", "x", "--storage", f"sqlite:///{tmp_path}/x.db")
    cli.wait_for("the imports", importing(cli))
    code, output = cli.kill(sig)
    assert code == 128 + sig and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1 and "interrupted" in output, output
