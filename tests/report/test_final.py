"""The final evaluation: paired seeds, the cache in the study's user attributes (a second run
trains nothing, --refresh retrains), and the statistics, with an injected cheap train function;
plus one real run of caser.train.fit on tiny synthetic data."""
from __future__ import annotations

import math
import re
import time

import numpy as np
import optuna
import pytest
from scipy import stats as sps

import report
from search.report.final import TEST_METRICS, cache_key, final_section, run_final
from search.report.stats import compare, min_wilcoxon_p, summarize
from search.report.view import StudyView

from tests.helpers.report_studies import DEFAULTS, FakeTrain, default_value, make_study, storage


def default_last(params, rng):
    """The default config scores worst, so it is retrained only as the baseline."""
    return 0.01 if params == DEFAULTS else default_value(params, rng)


def reload(study: optuna.Study) -> StudyView:
    """A fresh view, as a second `report.py` run would see the study."""
    return StudyView.of(optuna.load_study(study_name=study.study_name, storage=study._storage))


def test_every_config_trains_on_the_same_seeds_for_its_best_epoch(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    view = StudyView.of(study)
    fake = FakeTrain()
    res = run_final(view, top_k=2, seeds=3, train_fn=fake, progress=None)
    shown = [c.key for c in res.candidates]
    assert len(shown) == 3 and res.candidates[-1].is_default  # default trial outside the top 2
    assert len(fake.calls) == 9 and res.trained == 9 and res.cached == 0
    seeds_by_config: dict[float, set[int]] = {}
    for lr, seed, epochs in fake.calls:
        seeds_by_config.setdefault(lr, set()).add(seed)
        assert epochs == 9  # every hand-made trial has best_epoch 9
    assert all(s == {0, 1, 2} for s in seeds_by_config.values())


def test_second_run_trains_nothing_and_refresh_retrains(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    first = FakeTrain()
    res1 = run_final(StudyView.of(study), top_k=2, seeds=2, train_fn=first, progress=None)
    key = cache_key(res1.candidates[0].key, 1, 9)
    assert re.fullmatch(r"final/trial_\d{4}/seed_1/epochs_9", key)
    assert set(study.user_attrs[key]) == set(TEST_METRICS)

    second = FakeTrain()
    res2 = run_final(reload(study), top_k=2, seeds=2, train_fn=second, progress=None)
    assert second.calls == [] and res2.cached == 6 and res2.metrics == res1.metrics
    assert final_section(res2) == final_section(res1)  # the cache changes nothing shown

    third = FakeTrain()
    run_final(reload(study), top_k=2, seeds=2, train_fn=third, refresh=True, progress=None)
    assert len(third.calls) == 6

    # A third seed or another epoch count is new work; the cached ones are reused.
    fourth = FakeTrain()
    run_final(reload(study), top_k=2, seeds=3, train_fn=fourth, progress=None)
    assert sorted({s for _, s, _ in fourth.calls}) == [2] and len(fourth.calls) == 3
    fifth = FakeTrain()
    run_final(reload(study), top_k=2, seeds=1, final_epochs=4, train_fn=fifth, progress=None)
    assert [e for _, _, e in fifth.calls] == [4, 4, 4]


def test_cli_final_evaluation_caches_between_runs(tmp_path, capsys):
    make_study(tmp_path, n=12, value=default_last)
    args = ["--study", "demo", "--storage", storage(tmp_path), "--top", "2", "--final-seeds", "2"]
    fake = FakeTrain()
    assert report.main(args, train_fn=fake) == 0
    out = capsys.readouterr()
    assert len(fake.calls) == 6 and "[final 6/6]" in out.err
    assert "## Final evaluation on test (2 seeds: 0, 1" in out.out
    again = FakeTrain()
    assert report.main(args, train_fn=again) == 0
    second = capsys.readouterr()
    assert again.calls == [] and "0 runs trained, 6 cached" in second.err
    assert second.out == out.out  # same markdown from the cache
    refreshed = FakeTrain()
    assert report.main(args + ["--refresh"], train_fn=refreshed) == 0 and len(refreshed.calls) == 6


def test_final_tables_hold_mean_std_interval_and_tests_against_the_default(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=FakeTrain(), progress=None)
    text = final_section(res)
    best = res.candidates[0]
    maps = [r["test/map"] for r in res.metrics[best.key]]
    s = summarize(maps)
    assert f"{s.mean:.4f} ± {s.std:.4f}" in text and f"[{s.lo:.4f}, {s.hi:.4f}]" in text
    for column in ("MAP", "P@1", "P@5", "P@10", "R@1", "R@5", "R@10", "NDCG@10"):
        assert f" {column} " in text
    assert "Welch p" in text and "Wilcoxon p (paired)" in text
    assert "3 seeds: Wilcoxon p cannot go below 0.25" in text


def test_without_a_default_trial_the_defaults_are_trained_under_their_own_key(tmp_path):
    study = make_study(tmp_path, n=6, default=False)
    fake = FakeTrain()
    res = run_final(StudyView.of(study), top_k=1, seeds=1, train_fn=fake, progress=None)
    assert [c.key for c in res.candidates][-1] == "default"
    assert cache_key("default", 0, 10) in study.user_attrs  # max_epochs when no trial chose
    assert "Welch needs at least 2 seeds" in final_section(res)


def test_t_interval_matches_the_textbook_formula():
    x = [0.10, 0.12, 0.11, 0.14]
    s = summarize(x)
    half = sps.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert s.mean == pytest.approx(0.1175)
    assert (s.lo, s.hi) == pytest.approx((0.1175 - half, 0.1175 + half))
    assert math.isnan(summarize([0.1]).std)


def test_paired_tests_see_a_consistent_gain_and_say_when_seeds_are_too_few():
    base = [0.10, 0.11, 0.105, 0.102, 0.108, 0.101, 0.107, 0.103]
    better = [b + 0.01 + 0.001 * i for i, b in enumerate(base)]
    c = compare(better, base)
    assert c.diff > 0 and c.wilcoxon_p < 0.01 and c.note == ""
    assert c.welch_p == pytest.approx(sps.ttest_ind(better, base, equal_var=False).pvalue)
    assert min_wilcoxon_p(5) == pytest.approx(0.0625)
    assert "cannot go below 0.0625" in compare(better[:5], base[:5]).note
    assert compare(base, base).wilcoxon_p == 1.0


def test_caser_fit_end_to_end_on_tiny_synthetic_data(tmp_path):
    pytest.importorskip("caser.train")
    from search.report.final import caser_train_fn

    study = make_study(tmp_path, n=3, value=default_last, extra_states=False)
    study.set_user_attr("data", {"spec": "synthetic:users=60,items=100,interactions=900"})
    start = time.perf_counter()
    res = run_final(StudyView.of(study), top_k=1, seeds=2, final_epochs=1,
                    train_fn=caser_train_fn(), progress=None)
    took = time.perf_counter() - start
    assert res.trained == 4  # the best trial and the default, 2 seeds each
    for runs in res.metrics.values():
        for run in runs:
            assert 0.0 <= run["test/map"] <= 1.0 and set(TEST_METRICS) <= set(run)
    assert "MAP against the default" in final_section(res)
    print(f"4 real trainings took {took:.1f} s")
