"""Shared and crash-safe sweeps: `sweep.py` worker processes on one study, one of them killed.

    python -m pytest tests/search/test_distributed.py   (the PostgreSQL test skips without
                                                        Debian's postgresql; see tests/helpers/postgres.py)

Every test runs the real CLI in subprocesses on tiny synthetic data, as a user would.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from search.retries import retry_history
from search.run_dirs import checkpoint_dir
from tests.helpers import ROOT
from tests.helpers.studies import TINY_DATA
from tests.helpers.tensorboard import hparams_of, read_run

N_TRIALS = 12
N_WORKERS = 3
RUN_TIMEOUT_S = 150
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A config slow enough (a few tenths of a second an epoch) to be killed between two epochs.
SLOW_STUDY = """
[study]
max_epochs = 6
sampler = "random"
pruner = "none"
[data]
spec = "synthetic:users=300,items=400,interactions=30000"
[space]
L = 5
T = 3
d = 64
nv = 4
nh = 16
batch_size = 256
lr = { float = [1e-3, 3e-3], log = true }
"""

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def sweep(*args: str) -> subprocess.Popen:
    """`python sweep.py ARGS` with a 2 s heartbeat (8 s to go stale: a worker slowed down by
    the others on a loaded 2-core machine still beats in time) and a checkpoint after every
    epoch but the last (so that a kill finds one), stderr and stdout merged; one process unless
    the test asks for workers (the default is the usable cores)."""
    workers = [] if "--workers" in args else ["--workers", "1"]
    cmd = [sys.executable, str(ROOT / "sweep.py"), "--heartbeat", "2", "--checkpoint-interval", "0", *workers, *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"sweep hung:\n{proc.communicate()[0]}") from None
    assert proc.returncode == 0, f"sweep exited {proc.returncode}:\n{output}"
    return output


def slow_sweep_after_its_first_epoch(tmp_path: Path) -> tuple[subprocess.Popen, list[str], Path]:
    """A one-trial sweep of SLOW_STUDY, returned once trial 0 has written its first checkpoint
    (the middle of the trial); with its arguments, to run it again, and that checkpoint."""
    study_file = tmp_path / "slow.toml"
    study_file.write_text(SLOW_STUDY)
    args = ["--study", str(study_file), "--trials", "1", "--runs-dir", str(tmp_path)]
    proc = sweep(*args)
    ckpt = checkpoint_dir(tmp_path, "slow", 0) / "last.ckpt"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ckpt.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.02)
    return proc, args, ckpt


def assert_exactly_n_finished(study: optuna.Study, workers: int) -> None:
    """N finished, none lost. Two workers starting a trial at the same instant could each take
    the last slot, so the bound is N + workers - 1; in practice we see exactly N."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    assert N_TRIALS <= len(finished) <= N_TRIALS + workers - 1, [t.state for t in trials]
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    assert len({t.user_attrs["worker"] for t in finished}) > 1  # the work was shared


@pytest.mark.slow
def test_three_machines_share_a_postgres_study(postgres_url: str, tmp_path: Path) -> None:
    args = ["--storage", postgres_url, "--trials", str(N_TRIALS), "--data", TINY_DATA,
            "--max-epochs", "2", "--runs-dir", str(tmp_path)]
    procs = [sweep(*args, "--worker-index", str(i)) for i in range(N_WORKERS)]
    for proc in procs:
        finish(proc)
    assert_exactly_n_finished(optuna.load_study(study_name="default", storage=postgres_url),
                              N_WORKERS)


@pytest.mark.slow
def test_workers_share_the_default_sqlite_study(tmp_path: Path) -> None:
    # A machine's --worker-index is its first worker's: these are workers 10, 11 and 12.
    output = finish(sweep("--workers", str(N_WORKERS), "--trials", str(N_TRIALS), "--data", TINY_DATA,
                          "--max-epochs", "2", "--runs-dir", str(tmp_path), "--worker-index", "10"))
    labels = {f"w{i}" for i in range(11, 11 + N_WORKERS)}
    assert all(f"[{label}] " in output for label in labels), output
    study = optuna.load_study(study_name="default", storage=f"sqlite:///{tmp_path}/default.db")
    assert_exactly_n_finished(study, N_WORKERS)
    assert {t.user_attrs["worker"] for t in study.trials} <= labels
    assert not list(tmp_path.glob("default/trial_*/checkpoints/*.ckpt"))  # finished: removed


@pytest.mark.slow
def test_a_killed_worker_s_trial_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    # One trial: the restarted worker must wait for the dead one to go stale, then retry it.
    victim, args, _ = slow_sweep_after_its_first_epoch(tmp_path)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    finish(sweep(*args))
    study = optuna.load_study(study_name="slow", storage=f"sqlite:///{tmp_path}/slow.db")
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    # The last retry of trial 0 (on a loaded machine a live retry's heartbeat can be late, and
    # another worker then fails and retries it in turn): it completes, resumed from a checkpoint.
    retry = [t for t in trials if 0 in retry_history(t)][-1]
    assert retry.state == TrialState.COMPLETE
    resumed = retry.user_attrs["resumed_from_epoch"]
    assert 1 <= resumed < 6
    assert retry.user_attrs["epochs_trained"] == 6 - resumed  # not started over
    assert retry.user_attrs["epochs_run"] == 6  # the curve: inherited epochs + trained ones
    assert sorted(retry.intermediate_values) == list(range(6))
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 1
    assert not list(tmp_path.glob("slow/trial_*/checkpoints/*.ckpt"))
    # TensorBoard: the retry's run shows the whole curve; the dead run is marked failed.
    run = read_run(tmp_path / "slow" / f"trial_{retry.number:04d}")
    assert [e.step for e in run.Scalars("val/map")] == list(range(1, 7))
    assert hparams_of(read_run(tmp_path / "slow" / "trial_0000"))[1]["state"] == "FAIL"


@pytest.mark.slow
def test_ctrl_c_records_the_trial_as_interrupted_and_the_re_run_trains_the_defaults_again(tmp_path: Path) -> None:
    user, args, ckpt = slow_sweep_after_its_first_epoch(tmp_path)  # in the defaults' trial
    user.send_signal(signal.SIGINT)
    output = user.communicate(timeout=RUN_TIMEOUT_S)[0]
    assert user.returncode == 130 and "interrupted (Ctrl-C):" in output, output
    study = optuna.load_study(study_name="slow", storage=f"sqlite:///{tmp_path}/slow.db")
    stopped = study.get_trials(deepcopy=False)[0]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["reason"] == "interrupted (Ctrl-C)"
    assert not ckpt.exists()  # nothing will resume it
    finish(sweep(*args))
    trials = study.get_trials(deepcopy=False)
    assert [(t.state, t.user_attrs.get("is_default")) for t in trials] == [
        (TrialState.FAIL, True), (TrialState.COMPLETE, True)]

# Two sweeps of one study that started together: the study that the issue saw duplicated.
TWIN_STUDY = """
[study]
max_epochs = 4
sampler = "random"
pruner = "none"
seed = 0
[data]
spec = "synthetic:users=60,items=100,interactions=900"
[space]
lr = { float = [1e-4, 1e-2], log = true }
d = { int = [8, 64] }
"""


@pytest.mark.slow
def test_two_identical_sweeps_at_once_neither_repeat_a_trial_nor_train_the_default_twice(tmp_path: Path) -> None:
    study_file = tmp_path / "twin.toml"
    study_file.write_text(TWIN_STUDY)
    # Optuna's tables made beforehand, so that neither sweep waits out the other's creating
    # them: both open the study before its first trial ends, as two sweeps started together do.
    optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/twin.db")
    args = ["--study", str(study_file), "--trials", "8", "--runs-dir", str(tmp_path)]
    procs = [sweep(*args) for _ in range(2)]  # the same command, the same seed, at once
    for proc in procs:
        finish(proc)
    trials = optuna.load_study(study_name="twin", storage=f"sqlite:///{tmp_path}/twin.db").trials
    assert len({t.user_attrs["worker"] for t in trials}) == 2, "both sweeps ran trials"
    # The default's extra seeds (default_seeds, 2 by default) repeat its configuration.
    configs = [tuple(sorted(t.params.items())) for t in trials if t.user_attrs.get("default_replica") is None]
    assert len(set(configs)) == len(configs), sorted(configs)
    assert sorted(t.user_attrs.get("default_replica") or 0 for t in trials if t.user_attrs.get("is_default")) == [0, 1, 2]
    assert 8 <= sum(t.state in FINISHED for t in trials) <= 9


def worker_pids(parent: subprocess.Popen) -> dict[str, int]:
    """The live worker processes of `sweep.py --workers K`, by label (`w1` is --worker-index 0)."""
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    pids = {}
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        index = int(argv[len(argv) - 1 - argv[::-1].index("--worker-index") + 1])
        pids[f"w{index + 1}"] = int(pid)
    return pids


def running_trial_with_a_checkpoint(tmp_path: Path, name: str, worker: str, proc: subprocess.Popen) -> int:
    """Wait until `worker` runs a trial that has saved an epoch (the middle of a trial)."""
    url = f"sqlite:///{tmp_path}/{name}.db"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        if (tmp_path / f"{name}.db").exists():
            try:
                running = optuna.load_study(study_name=name, storage=url).get_trials(
                    deepcopy=False, states=(TrialState.RUNNING,))
            except (KeyError, ValueError):  # the study is being created
                running = []
            for t in running:
                if t.user_attrs.get("worker") == worker and (
                        checkpoint_dir(tmp_path, name, t.number) / "last.ckpt").exists():
                    return t.number
        time.sleep(0.05)
    raise AssertionError(f"no trial of {worker} got past its first epoch")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_worker_killed_mid_trial_is_named_and_the_other_completes_the_study(tmp_path: Path, sig: int) -> None:
    study_file = tmp_path / "slow.toml"
    study_file.write_text(SLOW_STUDY.replace("max_epochs = 6", "max_epochs = 3"))
    proc = sweep("--study", str(study_file), "--trials", "3", "--workers", "2", "--runs-dir", str(tmp_path))
    number = running_trial_with_a_checkpoint(tmp_path, "slow", "w2", proc)
    os.kill(worker_pids(proc)["w2"], sig)
    output = finish(proc)  # exit 0: the study reached its 3 finished trials
    name = signal.Signals(sig).name
    assert f"w2 was stopped by {name} during trial {number}" in output, output
    assert "Traceback" not in output, output
    study = optuna.load_study(study_name="slow", storage=f"sqlite:///{tmp_path}/slow.db")
    trials = study.get_trials(deepcopy=False)
    assert len([t for t in trials if t.state in FINISHED]) == 3
    killed = trials[number]
    assert killed.state == TrialState.FAIL
    if sig == signal.SIGKILL:  # died without a word: retried
        retry = next(t for t in trials if t.system_attrs.get("failed_trial") == number)
        assert retry.state == TrialState.COMPLETE
        assert f"trial {number} is retried as trial {retry.number}" in output, output
    else:  # stopped as by Ctrl-C: recorded as interrupted, never retried
        assert killed.user_attrs["reason"].startswith("interrupted")
        assert not [t for t in trials if t.system_attrs.get("failed_trial") == number]



@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"not a checkpoint\n"])
def test_an_unreadable_checkpoint_means_starting_over(tmp_path: Path, content: bytes) -> None:
    from search.checkpoints import find_resume

    path = checkpoint_dir(tmp_path, "s", 0) / "last.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    retry = optuna.trial.create_trial(state=TrialState.WAITING,
                                      system_attrs={"failed_trial": 0, "retry_history": [0]})
    said: list[str] = []
    assert find_resume(retry, tmp_path, "s", said.append) is None
    assert len(said) == 1 and str(path) in said[0] and said[0].endswith("starts over"), said


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two usable cores")
def test_the_workers_share_only_the_cores_the_process_may_use(tmp_path: Path) -> None:
    # Under taskset or a batch scheduler's allocation os.cpu_count still counts every core.
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from search.workers import torch_threads; print(torch_threads(1))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.slow
def test_no_more_workers_start_than_trials_are_left(tmp_path: Path) -> None:
    # --workers 1000 --trials 2 started 1,000 processes and the kernel's OOM killer ended others.
    output = finish(sweep("--workers", "5", "--trials", "2", "--data", TINY_DATA, "--max-epochs", "1",
                          "--runs-dir", str(tmp_path)))
    assert "starting 2 workers, not 5: only 2 trials are left to run" in output, output
    assert "[w1] " in output and "[w2] " in output and "[w3] " not in output, output


GB = 1024**3


@pytest.mark.parametrize("requested,left,available,cores,expected,says", [
    (1000, 2, 64 * GB, 16, 2, ["starting 2 workers, not 1000: only 2 trials are left to run"]),
    (8, 100, 1 * GB, 16, 4, ["starting 4 workers, not 8: each needs about 256 MB (the size of this "
                             "process, which holds the data as each worker will) and 1.0 GB is available"]),
    (8, 100, 100 * GB, 2, 8, ["warning: 8 workers on 2 usable cores: each trains with 1 torch thread and "
                              "they take turns on the cores, so each trial is slower"]),
    (3, 100, 100 * GB, 4, 3, []),
    (4, 100, None, 4, 4, []),  # available memory unknown: the workers asked for
    (4, 100, GB // 8, 4, 1, ["starting 1 worker, not 4: each needs about 256 MB (the size of this "
                             "process, which holds the data as each worker will) and 0.1 GB is available"]),
])
def test_the_workers_started_fit_the_trials_left_and_the_memory(requested, left, available, cores, expected, says):
    from search.workers import plan_workers

    said: list[str] = []
    assert plan_workers(requested, left, available, 256 * 2**20, cores, said.append) == expected
    assert said == says


@pytest.mark.slow
def test_postgres_stopped_mid_sweep_is_one_line_and_the_re_run_resumes(tmp_path: Path) -> None:
    from tests.helpers.postgres import PostgresUnavailable, _as_cluster_owner, find_pg_bin, postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        study_file = tmp_path / "slow.toml"  # 10 short epochs a trial: the server stops mid-sweep
        study_file.write_text(SLOW_STUDY.replace("max_epochs = 6", "max_epochs = 10").replace(
            "users=300,items=400,interactions=30000", "users=60,items=100,interactions=900"))
        args = ["--study", str(study_file), "--trials", "4", "--runs-dir", str(tmp_path), "--storage", url]
        proc = sweep(*args)
        lines: list[str] = []
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not any(line.startswith("[1/4] trial") for line in lines):  # one trial finished
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(proc.stdout.readline())
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            data = connection.execute(sqlalchemy.text("SHOW data_directory")).scalar()
        engine.dispose()
        ctl = [str(find_pg_bin() / "pg_ctl"), "-D", data, "-w"]
        subprocess.run(_as_cluster_owner([*ctl, "-m", "fast", "stop"]), check=True, capture_output=True, timeout=60)
        try:
            rest, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"the sweep hung without its storage:\n{''.join(lines)}{proc.communicate()[0]}")
        after = rest.strip().splitlines()
        assert proc.returncode not in (0, None) and "Traceback" not in rest, "".join(lines) + rest
        assert len(after) == 1 and after[0].startswith("error: the storage "), rest
        assert "finished trials are kept" in after[0] and "run the same command again" in after[0], rest

        subprocess.run(_as_cluster_owner([*ctl, "-l", str(Path(data).parent / "server.log"), "start"]),
                       check=True, capture_output=True, timeout=60)
        output = finish(sweep(*args))
        assert int(re.search(r": (\d+) finished, running until 4", output).group(1)) >= 1, output  # kept
        study = optuna.load_study(study_name="slow", storage=url)
        assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 4
    finally:
        server.__exit__(None, None, None)
