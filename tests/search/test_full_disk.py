"""A disk that fills up during a sweep: one line, no temporary file left, the trial recorded as
failed with its reason where the storage can still be written, and a re-run resumes.

    python -m pytest tests/search/test_full_disk.py

The full disk is a small tmpfs mounted for the test (Linux, as root); elsewhere the tests skip.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import ROOT
from tests.helpers.studies import TINY_DATA, study_toml

DISK_BYTES = 8 * 2**20
WAIT_S = 120
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """An empty 8 MB filesystem of its own at <tmp>/disk, to fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs Linux and root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem has no byte left; returns it (delete it to free the disk)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (65536, 512, 1):  # big writes, then the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def sweep_filled_mid_trial(tmp_path: Path, disk: Path, storage: list[str]) -> tuple[int, str, list[str]]:
    """A sweep whose runs folder is `disk`, which fills up once its first trial has saved a
    checkpoint; returns (exit status, output, its arguments)."""
    study = tmp_path / "full.toml"
    study.write_text(study_toml(max_epochs=40, data=TINY_DATA))
    args = [sys.executable, "sweep.py", "--study", study, "--trials", 2, "--runs-dir", disk / "runs",
            "--workers", 1, "--checkpoint-interval", 0, "--heartbeat", 1, *storage]
    args = [str(a) for a in args]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + WAIT_S
    while not list((disk / "runs").glob("full/trial_*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.01)
    fill(disk)
    try:
        output, _ = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the sweep hung on a full disk:\n{proc.communicate()[0]}") from None
    return proc.returncode, output, args


def assert_one_error_line(code: int, output: str, *says: str) -> None:
    assert code not in (0, None) and "Traceback" not in output, output
    errors = [line for line in output.splitlines() if not line.startswith(("data ", "study ", "["))]
    assert len(errors) == 1 and errors[0].startswith("error: "), output
    assert all(text in errors[0] for text in says), output
    assert "run the same command again to resume" in errors[0], output


def test_a_full_runs_folder_fails_the_trial_with_its_reason_in_one_line(tmp_path, disk):
    db = tmp_path / "full.db"  # the database elsewhere: it can still be written
    code, output, _ = sweep_filled_mid_trial(tmp_path, disk, ["--storage", f"sqlite:///{db}"])
    assert_one_error_line(code, output, f"error: cannot write {disk}/runs/full/trial_0000/", "No space left on device")
    assert not list(disk.rglob("*.tmp")), sorted(map(str, disk.rglob("*")))
    trial = optuna.load_study(study_name="full", storage=f"sqlite:///{db}").trials[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["stop_reason"] == "write error"
    assert "No space left on device" in trial.user_attrs["reason"]


def test_a_full_disk_under_the_database_too_is_one_line_and_the_re_run_resumes(tmp_path, disk):
    code, output, args = sweep_filled_mid_trial(tmp_path, disk, [])  # runs/full.db on the disk
    assert_one_error_line(code, output, "full")
    assert not list(disk.rglob("*.tmp")), sorted(map(str, disk.rglob("*")))
    (disk / "filler").unlink()
    rerun = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert rerun.returncode == 0, rerun.stderr
    trials = optuna.load_study(study_name="full", storage=f"sqlite:///{disk}/runs/full.db").trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]
