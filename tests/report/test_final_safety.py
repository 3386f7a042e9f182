"""The final evaluation on the study's own data only, with a cache it can trust (issue 24,
defects 6, 13 and 15): a data file changed since the sweep is refused before anything trains,
cached results are keyed on the data they were trained on, a study that cannot be written is
refused before training, and a cache entry that cannot be read is trained again."""
from __future__ import annotations

import optuna

import report

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
