"""The final evaluation on the study's own data only, with a cache it can trust (issue 24,
defects 6, 13 and 15): a data file changed since the sweep is refused before anything trains,
cached results are keyed on the data they were trained on, a study that cannot be written is
refused before training, and a cache entry that cannot be read is trained again."""
from __future__ import annotations

import re
import subprocess
import sys

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

import report
from tests.helpers import ROOT

from tests.helpers.report_studies import FakeTrain, make_study, record_data, storage, write_events

ARGS = ["--study", "demo", "--top", "1", "--final-seeds", "1", "--final-max-epochs", "6",
        "--importance-bootstrap", "0"]


def final_keys(tmp_path) -> set[str]:
    study = optuna.load_study(study_name="demo", storage=storage(tmp_path))
    return {k for k in study.user_attrs if k.startswith("final/")}


def test_a_data_file_changed_since_the_sweep_is_refused_before_any_training(tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    data = write_events(tmp_path / "events.tsv")
    record_data(study, data)
    write_events(data, seed=1)  # edited in place after the sweep
    fake = FakeTrain()
    assert report.main(ARGS + ["--storage", storage(tmp_path)], train_fn=fake) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"report.py: error: study 'demo' was run on other data: {data} has changed "
                   "since (its prepared split differs from the one the study ran on); restore "
                   "the data to run the final evaluation"]
    assert fake.calls == [] and final_keys(tmp_path) == set()


def test_cached_results_are_reused_only_on_the_data_they_were_trained_on(tmp_path, capsys):
    # A study from before fingerprints were recorded: nothing to refuse, so the cache must tell.
    make_study(tmp_path, n=4, extra_states=False)
    study = optuna.load_study(study_name="demo", storage=storage(tmp_path))
    data = write_events(tmp_path / "events.tsv")
    study.set_user_attr("data", {"spec": str(data), "holdout": "ratio", "seed": 0})
    argv = ARGS + ["--storage", storage(tmp_path)]
    first = FakeTrain()
    assert report.main(argv, train_fn=first) == 0 and first.calls
    write_events(data, seed=1)
    changed = FakeTrain()
    assert report.main(argv, train_fn=changed) == 0
    assert len(changed.calls) == len(first.calls)  # other data: nothing cached for it
    write_events(data, seed=0)
    restored = FakeTrain()
    assert report.main(argv, train_fn=restored) == 0
    assert restored.calls == [] and f"0 runs trained, {len(first.calls)} cached" in capsys.readouterr().err


def test_cached_results_from_before_the_cache_named_its_data_are_retrained_and_it_says_so(
        tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    old = {"metrics": {"test/map": 0.99}, "users": [], "user_ap": []}  # an unkeyed entry
    study.set_user_attr("final/trial_0000/seed_0/epochs_9", old)
    fake = FakeTrain()
    assert report.main(ARGS + ["--storage", storage(tmp_path)], train_fn=fake) == 0
    assert fake.calls
    err = capsys.readouterr().err
    assert ("final evaluation: 1 cached result(s) from before the cache recorded its data are not "
            "reused: nothing says which data they were trained on") in err


def read_only(tmp_path) -> str:
    """The study's SQLite file opened read-only (SQLite's own mode=ro: root is not stopped by a
    file's permissions, SQLite is)."""
    return f"sqlite:///file:{tmp_path / 'demo.db'}?mode=ro&uri=true"


def test_a_study_that_cannot_be_written_is_refused_before_any_training(tmp_path, capsys):
    make_study(tmp_path, n=4, extra_states=False)
    fake = FakeTrain()
    assert report.main(ARGS + ["--storage", read_only(tmp_path)], train_fn=fake) == 2
    err = capsys.readouterr().err.splitlines()
    assert fake.calls == [] and len(err) == 1, err
    assert err[0] == (f"report.py: error: cannot write to the study in {read_only(tmp_path)} "
                      "(attempt to write a readonly database): the final evaluation would train "
                      "and then lose its results; nothing was trained")


def test_a_read_only_study_with_every_run_cached_still_reports(tmp_path, capsys):
    make_study(tmp_path, n=4, extra_states=False)
    assert report.main(ARGS + ["--storage", storage(tmp_path)], train_fn=FakeTrain()) == 0
    fake = FakeTrain()
    assert report.main(ARGS + ["--storage", read_only(tmp_path)], train_fn=fake) == 0
    assert fake.calls == [] and "## Final evaluation on test" in capsys.readouterr().out


FILLS_THE_DISK = """
import os, resource, signal, sys
import report
from tests.helpers.report_studies import FakeTrain

class FillsTheDisk(FakeTrain):
    # From the second training on, the journal cannot grow: as if the disk were full.
    def __call__(self, *args, **kwargs):
        if len(self.calls) == 1:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            size = os.path.getsize(sys.argv[-1])
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
        return super().__call__(*args, **kwargs)

sys.exit(report.main(sys.argv[1:], train_fn=FillsTheDisk()))
"""


def test_a_store_that_fails_after_training_is_one_line_and_keeps_the_runs_before_it(tmp_path):
    make_study(tmp_path, n=4, extra_states=False)
    journal = tmp_path / "demo.journal"
    optuna.copy_study(from_study_name="demo", from_storage=storage(tmp_path),
                      to_storage=JournalStorage(JournalFileBackend(str(journal))))
    proc = subprocess.run([sys.executable, "-c", FILLS_THE_DISK, *ARGS, "--storage", str(journal)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    assert re.fullmatch(
        rf"report.py: error: cannot store the final evaluation's run of trial \d+( \(default\))?, "
        rf"seed 0 in {re.escape(str(journal))} \(File too large\): the 1 run\(s\) finished before "
        r"it are kept in the study; run the same command again to go on", err[-1]), err[-1]
    study = optuna.load_study(study_name="demo", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert len([k for k in study.user_attrs if k.startswith("final/")]) == 1


def test_a_cache_entry_that_cannot_be_read_is_trained_again_and_it_says_so(tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    argv = ARGS + ["--storage", storage(tmp_path)]
    first = FakeTrain()
    assert report.main(argv, train_fn=first) == 0
    capsys.readouterr()
    tested = sorted(k for k in final_keys(tmp_path) if "/epochs_" in k)[0]
    converged = sorted(k for k in final_keys(tmp_path) if "/converge_" in k)[-1]
    study.set_user_attr(tested, {"metrics": {"val/map": 0.1}, "users": [], "user_ap": []})
    study.set_user_attr(converged, {"epoch": "six", "value": 0.1, "epochs_run": 6,
                                    "stop_reason": "budget"})
    again = FakeTrain()
    assert report.main(argv, train_fn=again) == 0
    out = capsys.readouterr()
    assert len(again.calls) == 2 and "## Final evaluation on test" in out.out
    for key in (tested, converged):
        assert (f"final evaluation: the cached {key} cannot be read (" in out.err
                and "); training it again" in out.err), out.err
