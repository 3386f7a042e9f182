"""sweep.py as users run it: the default trial first, resuming to N finished trials, flags over
the study file, reproducible seeds, and every user mistake as one line and exit code 2."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

from search.study import default_params
from search.studyfile import load_study_spec
from tests.helpers.cli import finish, sweep_cli
from tests.helpers.studies import TINY_DATA, load_study, study_toml
from tests.helpers.tensorboard import hparams_of, read_run

ORIGINAL = {"L": 5, "T": 3, "d": 50, "nv": 4, "nh": 16, "ac_conv": "relu", "ac_fc": "relu",
            "dropout": 0.5, "lr": 1e-3, "l2": 1e-6, "neg_samples": 3, "batch_size": 512}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SMALL_SPACE = {"d": "{ choices = [8, 16, 50] }", "dropout": "{ float = [0.0, 0.6] }",
               "lr": "{ float = [1e-4, 1e-2], log = true }", "ac_fc": '{ choices = ["relu", "tanh"] }'}


def trial_dirs(runs: Path, study: str = "tiny") -> list[str]:
    return sorted(p.name for p in (runs / study).glob("trial_*"))


def test_the_default_trial_comes_first_with_the_original_values(sweep_main, tmp_path):
    code, err = sweep_main("--data", TINY_DATA, "--max-epochs", 1, "--trials", 2,
                           "--runs-dir", tmp_path, "--sampler", "random", "--default-seeds", 0)
    assert code == 0, err
    first, second = load_study(tmp_path / "default.db", "default").trials[:2]
    assert first.number == 0 and first.user_attrs["is_default"] is True
    assert first.params == ORIGINAL  # every searched parameter of the default study
    assert "is_default" not in second.user_attrs and second.params != ORIGINAL
    assert err.strip().endswith(f"--storage sqlite:///{tmp_path}/default.db")  # the report finds it


def test_the_default_trial_samples_only_what_the_space_cannot_hold(study_file):
    spec = load_study_spec(str(study_file(space={"d": "{ choices = [8, 16] }", "L": "{ int = [1, 4] }",
                                                 "lr": "{ float = [1e-4, 1e-2] }", "nh": 8})))
    assert default_params(spec) == {"lr": 1e-3}  # d=50 and L=5 are outside; nh is fixed


def test_resuming_runs_only_the_missing_trials_and_a_finished_study_says_so(sweep_main, study_file, tmp_path):
    path = study_file(space=SMALL_SPACE)
    runs = tmp_path / "runs"
    args = ("--study", path, "--runs-dir", runs)
    assert sweep_main(*args, "--trials", 3)[0] == 0
    before = load_study(runs / "tiny.db").trials
    assert sweep_main(*args, "--trials", 5)[0] == 0
    trials = load_study(runs / "tiny.db").trials
    assert sum(t.state in FINISHED for t in trials) == 5 and len(trials) == 5
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    for old, new in zip(before, trials[:3]):
        assert (new.state, new.params, new.value, new.user_attrs, new.datetime_complete) == (
            old.state, old.params, old.value, old.user_attrs, old.datetime_complete)
    # A resumed sweep must explore, not replay the first run's draws.
    assert all(t.params != old.params for t in trials[3:] for old in trials[:3])
    dirs = trial_dirs(runs)
    assert dirs == [f"trial_{n:04d}" for n in range(5)]

    code, err = sweep_main(*args, "--trials", 5)
    assert code == 0
    assert "already has 5 finished trials (asked for 5); nothing to do" in err
    assert len(load_study(runs / "tiny.db").trials) == 5 and trial_dirs(runs) == dirs


def test_flags_override_the_study_file(sweep_main, study_file, tmp_path):
    import optuna

    from search.seeding import PerTrialSeed
    from search.space import suggest

    path = study_file(space=SMALL_SPACE, data=str(tmp_path / "no-such-file.tsv"),
                      max_epochs=50, sampler="tpe", pruner="median", seed=0)
    runs = tmp_path / "runs"
    code, err = sweep_main("--study", path, "--runs-dir", runs, "--trials", 3, "--max-epochs", 2,
                           "--sampler", "random", "--pruner", "none", "--data", TINY_DATA, "--seed", 7)
    assert code == 0, err
    assert "(random sampler, none pruner, 2 epochs max)" in err
    study = load_study(runs / "tiny.db")
    assert study.user_attrs["data"]["spec"] == TINY_DATA and study.user_attrs["max_epochs"] == 2
    assert [t.user_attrs["epochs_run"] for t in study.trials] == [2, 2, 2]  # no pruning, 2 epochs
    # Each trial's RandomSampler is seeded from (7, its number): replaying gives the same draws.
    replay = optuna.create_study(sampler=PerTrialSeed(lambda s: optuna.samplers.RandomSampler(seed=s), 7))
    replay.enqueue_trial(study.trials[0].params)
    replay.optimize(lambda t: float(len(suggest(t, load_study_spec(str(path)).space))), n_trials=3)
    assert [t.params for t in replay.trials] == [t.params for t in study.trials]
    assert hparams_of(read_run(runs / "tiny" / "trial_0001"))[1]["seed"] == 7  # training seed too


@pytest.mark.slow  # two real processes: ~10-18 s on 2 cores
def test_the_same_seed_gives_the_same_sweep(study_file, tmp_path):
    path = study_file(space=SMALL_SPACE, sampler="tpe", max_epochs=2)
    procs = [sweep_cli("--study", path, "--runs-dir", tmp_path / run, "--trials", 3, "--seed", 11)
             for run in ("a", "b")]
    for code, err in finish(procs):
        assert code == 0, err
    a, b = (load_study(tmp_path / run / "tiny.db").trials for run in ("a", "b"))
    assert [(t.params, t.value) for t in a] == [(t.params, t.value) for t in b]
    assert len({str(t.params) for t in a}) == 3


# -- user mistakes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    """Files for every mistake, and a stored study: {case: (sweep.py arguments, expected text)}."""
    import sweep

    tmp = tmp_path_factory.mktemp("mistakes")
    ok = tmp / "tiny.toml"
    ok.write_text(study_toml())
    (tmp / "malformed.toml").write_text(study_toml().replace("[data]", "[data"))
    (tmp / "unknown_key.toml").write_text(study_toml(epochs=3))
    garbage = tmp / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite file, just text\n" * 40)
    (tmp / "a_file").write_text("")
    (tmp / "other").mkdir()
    other_metric = tmp / "other" / "tiny.toml"  # same study name, another metric
    other_metric.write_text(study_toml(metric="val/prec@10"))
    shared = f"sqlite:///{tmp / 'shared.db'}"
    assert sweep.main(["--study", str(ok), "--storage", shared, "--trials", "1",
                       "--runs-dir", str(tmp / "shared-runs")]) == 0
    readonly = tmp / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    yield tmp, shared, {
        "unknown study": (["--study", "no_such_study"], "no study file"),
        "malformed toml": (["--study", tmp / "malformed.toml"], "not valid TOML"),
        "unknown key": (["--study", tmp / "unknown_key.toml"], "unknown key study.epochs"),
        "bad data path": (["--study", ok, "--data", tmp / "missing.tsv"], "no such file"),
        "zero trials": (["--study", ok, "--trials", "0"], "--trials must be at least 1"),
        "not an sqlite file": (["--study", ok, "--storage", f"sqlite:///{garbage}"], "not an SQLite database"),
        "runs dir under a file": (["--study", ok, "--runs-dir", tmp / "a_file" / "runs"], "cannot create"),
        "unwritable runs dir": (["--study", ok, "--runs-dir", readonly], "not writable"),
        "stored with another metric": (["--study", other_metric, "--storage", shared], "val/map"),
    }
    readonly.chmod(0o700)


def mistake_args(tmp: Path, case: str, args: list) -> list:
    runs = [] if "--runs-dir" in args else ["--runs-dir", tmp / "runs" / case.replace(" ", "_")]
    trials = [] if "--trials" in args else ["--trials", 2]
    return [*args, *runs, *trials]


def snapshot(tmp: Path, shared: str) -> dict:
    files = {p.relative_to(tmp): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}
    study = load_study(shared)
    trials = [(t.number, t.state, t.params, t.value, t.user_attrs) for t in study.trials]
    return {"files": files, "trials": trials, "attrs": study.user_attrs}


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert "Traceback" not in err


CASES = ["unknown study", "malformed toml", "unknown key", "bad data path", "zero trials",
         "not an sqlite file", "runs dir under a file", "unwritable runs dir", "stored with another metric"]


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_on_stderr_exit_code_2_and_touches_nothing(mistakes, sweep_main, case):
    if case == "unwritable runs dir" and os.geteuid() == 0:
        pytest.skip("root writes into a mode 0500 directory anyway")
    tmp, shared, cases = mistakes
    args, expected = cases[case]
    before = snapshot(tmp, shared)
    code, err = sweep_main(*mistake_args(tmp, case, args))
    assert_one_line_error(code, err, expected)
    assert snapshot(tmp, shared) == before  # no new storage, the garbage file and the study untouched


def test_mistakes_in_a_real_process_print_no_traceback(mistakes):
    tmp, _, cases = mistakes
    chosen = ["not an sqlite file", "stored with another metric"]  # ~5 s of imports each
    procs = [sweep_cli(*mistake_args(tmp, case, cases[case][0])) for case in chosen]
    for case, (code, err) in zip(chosen, finish(procs)):
        assert_one_line_error(code, err, cases[case][1])


def test_a_study_resumes_only_on_its_own_data_and_a_compatible_space(sweep_main, study_file, tmp_path):
    runs = tmp_path / "runs"
    assert sweep_main("--study", study_file(space=SMALL_SPACE), "--runs-dir", runs, "--trials", 2)[0] == 0
    before = [(t.number, t.state) for t in load_study(runs / "tiny.db").trials]

    code, err = sweep_main("--study", study_file(space=SMALL_SPACE), "--runs-dir", runs, "--trials", 4,
                           "--data", "synthetic:users=200,items=300,interactions=6000")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: study 'tiny'")
    assert "was run on other data (spec" in err

    wider = {**SMALL_SPACE, "lr": "{ float = [1e-5, 1e-1], log = true }"}  # a range may change
    other_kind = {**SMALL_SPACE, "d": "{ int = [8, 64] }"}  # a kind may not: Optuna fails each trial
    code, err = sweep_main("--study", study_file(space=other_kind, folder=tmp_path / "v2"),
                           "--runs-dir", runs, "--trials", 4)
    assert code == 2 and "space.d cannot change this way in the existing study 'tiny'" in err
    assert [(t.number, t.state) for t in load_study(runs / "tiny.db").trials] == before
    assert sweep_main("--study", study_file(space=wider, folder=tmp_path / "v3"), "--runs-dir", runs,
                      "--trials", 3)[0] == 0


def test_the_same_data_file_named_from_another_folder_is_the_same_data(sweep_main, study_file, tmp_path,
                                                                       monkeypatch):
    rng = np.random.default_rng(0)
    lines = [f"{u} {i}" for u in range(40) for i in rng.choice(60, 25, replace=False)]
    for folder in ("a", "b"):  # two different files, both named data.txt
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.txt").write_text("\n".join(lines) + "\n")
        lines = lines[:-100]
    args = ("--study", study_file(space=SMALL_SPACE), "--runs-dir", tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    assert sweep_main(*args, "--data", "a/data.txt", "--trials", 1)[0] == 0
    monkeypatch.chdir(tmp_path / "a")
    assert sweep_main(*args, "--data", "data.txt", "--trials", 2)[0] == 0  # the same file
    monkeypatch.chdir(tmp_path / "b")
    code, err = sweep_main(*args, "--data", "data.txt", "--trials", 3)  # the same name, other data
    assert code == 2 and "was run on other data" in err


# -- issue 16: names, data identity, giving up ---------------------------------------------


@pytest.mark.parametrize("name", ["exp#1", "a%b?c"])
def test_a_study_named_with_url_characters_keeps_its_database_name(sweep_main, study_file, tmp_path,
                                                                   monkeypatch, capsys, name):
    """SQLAlchemy reads `%`, `?` and `#` in a URL as its own syntax: `exp#1.toml` wrote `exp`."""
    import report

    path = study_file(name=name, space=SMALL_SPACE)
    monkeypatch.chdir(tmp_path)  # the default runs/ folder, so the printed command has no --storage
    for runs_dir in ([], ["--runs-dir", tmp_path / "other"]):
        code, err = sweep_main("--study", path, "--trials", 1, *runs_dir)
        assert code == 0, err
        command = err.strip().splitlines()[-1].split("tables: ")[1]
        folder = tmp_path / ("other" if runs_dir else "runs")
        assert sorted(p.name for p in folder.iterdir()) == sorted([f"{name}.db", name])
        assert len(load_study(f"sqlite:///{folder}/{name.replace('%', '%25').replace('?', '%3F').replace('#', '%23')}.db",
                              name=name).trials) == 1
        code, err = sweep_main("--study", path, "--trials", 1, *runs_dir)  # the re-run resumes
        assert code == 0 and "nothing to do" in err
        assert command.startswith("python report.py ")
        capsys.readouterr()
        assert report.main(shlex.split(command)[2:]) == 0
        assert capsys.readouterr().out.startswith(f"# Caser hyperparameter study: {name}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "runs", "studies"]  # no stray `exp`


def test_a_data_file_changed_in_place_is_refused_and_an_unchanged_one_moved_resumes(
        sweep_main, study_file, tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"{u} {i}" for u in range(40) for i in rng.choice(60, 25, replace=False)]
    data = tmp_path / "data.txt"
    data.write_text("\n".join(lines) + "\n")
    args = ("--study", study_file(space=SMALL_SPACE), "--runs-dir", tmp_path / "runs")
    assert sweep_main(*args, "--data", data, "--trials", 1)[0] == 0
    moved = tmp_path / "elsewhere" / "renamed.txt"
    moved.parent.mkdir()
    data.rename(moved)
    code, err = sweep_main(*args, "--data", moved, "--trials", 2)  # the same content: the same data
    assert code == 0, err
    moved.write_text("\n".join(lines[:-100]) + "\n")  # the same path, other content
    code, err = sweep_main(*args, "--data", moved, "--trials", 3)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: study 'tiny' in sqlite:///{tmp_path}/runs/tiny.db was run on other data: "
                          f"{moved} has changed"), err
    assert len(load_study(tmp_path / "runs" / "tiny.db").trials) == 2


def test_a_sweep_whose_every_trial_diverges_exits_non_zero_and_says_why(sweep_main, study_file, tmp_path):
    space = {**SMALL_SPACE, "lr": "{ float = [1e30, 1e31] }", "l2": 1e10, "batch_size": 16}  # NaN losses
    code, err = sweep_main("--study", study_file(space=space), "--runs-dir", tmp_path / "runs", "--trials", 2)
    last = err.strip().splitlines()[-1]
    assert code != 0
    assert last.startswith("error: stopping: 10 trials in a row failed (last: diverged"), err
    assert "0 of 2 finished trials" in last and "Traceback" not in err


# -- issue 24: names that are paths, settings that change ------------------------------------


@pytest.mark.parametrize("file_name", ["...toml", "..toml"])  # the studies `..` and `.`
def test_a_study_named_like_a_folder_step_is_refused_before_anything_is_written(
        sweep_main, tmp_path, capsys, file_name):
    import report

    path = tmp_path / "studies" / file_name
    path.parent.mkdir()
    path.write_text(study_toml())
    runs = tmp_path / "out" / "runs"
    code, err = sweep_main("--study", path, "--runs-dir", runs, "--trials", 1)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: the study name {path.stem!r}"), err
    assert not (tmp_path / "out").exists()  # no runs folder, no database, no trial folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["studies"]
    capsys.readouterr()
    assert report.main(["--study", path.stem, "--storage", "", "--no-plots"]) == 2  # the default storage
    err = capsys.readouterr().err
    assert err.startswith(f"report.py: error: the study name {path.stem!r}") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("args", [["--data", "{tmp}/missing.tsv"],
                                  ["--storage", "postgresql://u:p@127.0.0.1:1/db"]],
                         ids=["bad data", "unreachable storage"])
def test_a_refused_sweep_leaves_no_runs_folder_behind(sweep_main, study_file, tmp_path, args):
    runs = tmp_path / "new" / "runs"
    code, err = sweep_main("--study", study_file(), "--runs-dir", runs, "--trials", 1,
                           *(a.format(tmp=tmp_path) for a in args))
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "new").exists()


def test_without_workers_a_sweep_trains_on_every_usable_core(study_file, tmp_path):
    """The default --workers is the usable cores (one trial per core, one torch thread each), never
    more than the trials to run; here a real `python sweep.py` without the flag."""
    import subprocess
    import sys

    from search.workers import usable_cores
    from tests.helpers import ROOT

    path = study_file(space=SMALL_SPACE)
    done = subprocess.run([sys.executable, "sweep.py", "--study", str(path), "--trials", "3", "--runs-dir",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = min(usable_cores(), 3)
    workers = {t.user_attrs.get("worker") for t in load_study(tmp_path / "tiny.db").trials}
    if expected > 1:
        assert f"{expected} workers" in done.stderr
        assert workers <= {f"w{i}" for i in range(1, expected + 1)}
    else:
        assert " workers" not in done.stderr and len(workers) == 1
