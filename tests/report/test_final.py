"""The final evaluation: every config (the default too) converges on validation under one
stopping rule and budget, then trains on train+validation for the picked epochs and scores
test once; paired seeds; the cache in the study's user attributes (a second run trains nothing,
--refresh retrains); the statistics; and one real run of caser.train.fit on tiny data."""
from __future__ import annotations

import dataclasses
import math
import re
import time

import numpy as np
import optuna
import pytest
from scipy import stats as sps

import report
from search.report.final import TEST_METRICS, Convergence, cache_key, converge_key, convergence_rule
from search.report.final_plan import run_final
from search.report.final_section import final_section
from search.report.reproduce import reproduce_section
from search.report.stats import compare, min_wilcoxon_p, summarize
from search.report.view import StudyView

from search.errors import StudyError
from tests.helpers.report_studies import (DEFAULTS, FakeTrain, KillsItsProcess, default_value,
                                          make_study, record_settings, storage)

RULE = Convergence(max_epochs=30, patience=2, min_delta=0.0)


def default_last(params, rng):
    """The default config scores worst, so it is retrained only as the baseline."""
    return 0.01 if params == DEFAULTS else default_value(params, rng)


def reload(study: optuna.Study) -> StudyView:
    """A fresh view, as a second `report.py` run would see the study."""
    return StudyView.of(optuna.load_study(study_name=study.study_name, storage=study._storage))


def test_every_config_converges_then_tests_on_the_same_seeds(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    fake = FakeTrain()
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=fake, rule=RULE)
    assert len(res.candidates) == 3 and res.candidates[-1].is_default  # outside the top 2
    assert len(fake.calls) == 18 and res.trained == 18 and res.cached == 0
    # Each (config, seed): a validation run with the whole final budget, the default included
    # (never the study's 10 epochs), then a test run for the epoch it picked.
    assert fake.protocols == ["validation", "test"] * 9
    for (lr, seed, budget), (lr2, seed2, epochs) in zip(fake.calls[::2], fake.calls[1::2]):
        assert budget == 30 and (lr, seed) == (lr2, seed2)
        history = [fake.value(lr, seed, e) for e in range(1, budget + 1)]
        assert epochs == 1 + int(np.argmax(history[:epochs + RULE.patience]))
    for cand in res.candidates:
        assert [t.epochs for t in res.tested[cand.key]] == [c.epoch for c in res.converged[cand.key]]
    seeds_by_config: dict[float, set[int]] = {}
    for lr, seed, _ in fake.calls:
        seeds_by_config.setdefault(lr, set()).add(seed)
    assert all(s == {0, 1, 2} for s in seeds_by_config.values())


def test_the_stopping_rule_ends_a_run_and_the_budget_ends_a_slow_one(tmp_path):
    study = make_study(tmp_path, n=4, value=default_last, extra_states=False)
    # lr 1e-3 (the default) learns slowly: 30 epochs are not enough for patience to fire.
    fake = FakeTrain(curve=lambda lr: (0.2, 400.0) if lr == 1e-3 else (0.1, 2.0))
    res = run_final(StudyView.of(study), top_k=1, seeds=1, train_fn=fake, rule=RULE)
    best, default = res.candidates[0], res.default()
    assert res.converged[best.key][0].stop_reason == "patience"
    assert res.converged[default.key][0].stop_reason == "budget"
    assert res.converged[default.key][0].epoch == 30
    assert "Still improving at 30 epochs" in final_section(res)


def test_second_run_trains_nothing_and_refresh_retrains(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res1 = run_final(StudyView.of(study), top_k=2, seeds=2, train_fn=FakeTrain(), rule=RULE)
    conv = res1.converged[res1.candidates[0].key][1]
    key = converge_key(res1.candidates[0].key, 1, RULE, res1.fingerprint)
    assert re.fullmatch(r"final/trial_\d{4}/seed_1/converge_max30_p2_d0/data_[0-9a-f]{16}", key)
    assert study.user_attrs[key]["epoch"] == conv.epoch
    test_key = cache_key(res1.candidates[0].key, 1, conv.epoch, res1.fingerprint)
    assert set(study.user_attrs[test_key]["metrics"]) == set(TEST_METRICS)
    assert len(study.user_attrs[test_key]["user_ap"]) == 40

    second = FakeTrain()
    res2 = run_final(reload(study), top_k=2, seeds=2, train_fn=second, rule=RULE)
    assert second.calls == [] and res2.cached == 12 and res2.metrics == res1.metrics
    assert final_section(res2) == final_section(res1)  # the cache changes nothing shown

    third = FakeTrain()
    run_final(reload(study), top_k=2, seeds=2, train_fn=third, refresh=True, rule=RULE)
    assert len(third.calls) == 12

    # A third seed, or another rule, is new work; the cached ones are reused.
    fourth = FakeTrain()
    run_final(reload(study), top_k=2, seeds=3, train_fn=fourth, rule=RULE)
    assert sorted({s for _, s, _ in fourth.calls}) == [2] and len(fourth.calls) == 6
    fifth = FakeTrain()
    run_final(reload(study), top_k=2, seeds=1, train_fn=fifth,
              rule=Convergence(max_epochs=31, patience=2, min_delta=0.0))
    assert fifth.protocols == ["validation"] * 3  # same picks: the test runs are cached
    sixth = FakeTrain()
    run_final(reload(study), top_k=2, seeds=1, final_epochs=4, train_fn=sixth)
    assert [e for _, _, e in sixth.calls] == [4, 4, 4] and set(sixth.protocols) == {"test"}


def test_the_rule_comes_from_the_study_and_the_budget_from_its_budget(tmp_path):
    study = make_study(tmp_path, n=2)
    view = StudyView.of(study)
    rule = convergence_rule(view)
    assert (rule.max_epochs, rule.patience, rule.min_delta) == (50, 5, 0.0)
    assert "the study recorded none" in rule.source
    record_settings(study, patience=3)
    view = StudyView.of(study)
    study.set_user_attr("max_epochs", 40)
    rule = convergence_rule(StudyView.of(study))
    assert (rule.max_epochs, rule.patience, rule.min_delta, rule.source) == (200, 3, 0.001, "the study's rule")
    assert convergence_rule(view, max_epochs=7, patience=9).tag() == "max7_p9_d0.001"


def test_cli_final_evaluation_caches_between_runs(tmp_path, capsys):
    make_study(tmp_path, n=12, value=default_last)
    args = ["--study", "demo", "--storage", storage(tmp_path), "--top", "2", "--final-seeds", "2",
            "--final-max-epochs", "20", "--final-patience", "2", "--importance-bootstrap", "0"]
    fake = FakeTrain()
    assert report.main(args, train_fn=fake) == 0
    out = capsys.readouterr()
    assert len(fake.calls) == 12 and "[final 12/12]" in out.err and "to convergence" in out.err
    assert "## Final evaluation on test, at convergence (2 seeds: 0, 1" in out.out
    assert "patience 2 evaluations on val/map (min improvement 0) (patience from --final-patience)" in out.out
    again = FakeTrain()
    assert report.main(args, train_fn=again) == 0
    second = capsys.readouterr()
    assert again.calls == [] and "0 runs trained, 12 cached" in second.err
    assert second.out == out.out  # same markdown from the cache
    refreshed = FakeTrain()
    assert report.main(args + ["--refresh"], train_fn=refreshed) == 0 and len(refreshed.calls) == 12


def test_final_flags_without_final_seeds_or_below_one_are_refused(tmp_path, capsys):
    make_study(tmp_path, n=3)
    base = ["--study", "demo", "--storage", storage(tmp_path)]
    assert report.main(base + ["--final-max-epochs", "9"]) == 2
    assert "only apply with --final-seeds" in capsys.readouterr().err
    fake = FakeTrain()
    assert report.main(base + ["--final-seeds", "1", "--final-patience", "0"], train_fn=fake) == 2
    assert "--final-patience must be at least 1, got 0" in capsys.readouterr().err and not fake.calls


def test_final_tables_hold_mean_std_interval_and_tests_against_the_default(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=FakeTrain(), rule=RULE)
    text = final_section(res)
    best = res.candidates[0]
    maps = [r["test/map"] for r in res.metrics[best.key]]
    s = summarize(maps)
    assert f"{s.mean:.4f} ± {s.std:.4f}" in text and f"[{s.lo:.4f}, {s.hi:.4f}]" in text
    for column in ("MAP", "P@1", "P@5", "P@10", "R@1", "R@5", "R@10", "NDCG@10"):
        assert f" {column} " in text
    assert "### Against the default, seeds and users counted (test MAP)" in text
    assert "95% confidence interval of the mean (t, 2 dof)" in text  # from 3 seeds, not with 2
    assert "Kendall's tau between the ranking on validation at convergence and the ranking on test" in text


def test_a_tau_taken_where_runs_hit_the_cap_says_so(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=FakeTrain(), rule=RULE)
    assert "runs were still improving" not in final_section(res)
    key = res.candidates[0].key
    res.converged[key] = [dataclasses.replace(run, stop_reason="budget") for run in res.converged[key]]
    assert ("Kendall's tau between the ranking on validation at convergence (taken at the 30-epoch "
            "cap, where 3 of 9 runs were still improving) and the ranking on test") in final_section(res)


def test_without_a_default_trial_the_defaults_are_trained_under_their_own_key(tmp_path):
    study = make_study(tmp_path, n=6, default=False)
    res = run_final(StudyView.of(study), top_k=1, seeds=1, train_fn=FakeTrain(), rule=RULE)
    assert [c.key for c in res.candidates][-1] == "default"
    assert converge_key("default", 0, RULE, res.fingerprint) in study.user_attrs
    text = final_section(res)
    assert "With 1 seed no seed-level verdict is possible" in text
    assert re.search(r"\| defaults \(not a trial\) +\| n/a ", text)  # no value at the budget


class ReversedOnTest(FakeTrain):
    """Validation as FakeTrain; on test every user's AP is reflected, so the configurations that
    lead on validation trail on test, user by user."""

    def __call__(self, model_config, train_config, data_config, protocol="test", stopping=None):
        result = super().__call__(model_config, train_config, data_config, protocol, stopping)
        if protocol == "test":
            result.user_ap = 0.5 - result.user_ap
        return result


def ahead_of_the_default(res) -> list[str]:
    default = np.mean([c.value for c in res.converged[res.default().key]])
    return [c.label for c in res.candidates
            if not c.is_default and np.mean([r.value for r in res.converged[c.key]]) > default]


def test_configs_that_lead_on_validation_but_trail_on_test_are_named_in_a_warning(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=ReversedOnTest(), rule=RULE)
    ahead = ahead_of_the_default(res)
    assert ahead  # the hand-made study's top trials lead the default on validation
    text = final_section(res)
    warning = re.search(r"\*\*Validation and test disagree: (.*?) leads? the default", text)
    assert warning and warning.group(1).split(", ") == ahead
    best = StudyView.of(study).ranked()[0].number
    reproduce = reproduce_section(StudyView.of(study), res)
    assert f"**On test, trial {best} is worse than the default**" in reproduce


def test_configs_that_lead_on_both_raise_no_warning(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=3, train_fn=FakeTrain(), rule=RULE)
    assert ahead_of_the_default(res)
    text = final_section(res)
    assert "better than the default" in text
    assert "disagree" not in text and "No configuration here is better" not in text
    assert "is worse than the default**" not in reproduce_section(StudyView.of(study), res)


class EqualOnTest(FakeTrain):
    """Validation as FakeTrain; on test every configuration gives each user the same AP."""

    def __call__(self, model_config, train_config, data_config, protocol="test", stopping=None):
        result = super().__call__(model_config, train_config, data_config, protocol, stopping)
        if protocol == "test":
            result.user_ap = np.linspace(0.1, 0.5, len(result.user_ap))
        return result


def test_when_no_config_beats_the_default_on_test_the_section_says_so(tmp_path):
    study = make_study(tmp_path, n=12, value=default_last)
    res = run_final(StudyView.of(study), top_k=2, seeds=2, train_fn=EqualOnTest(), rule=RULE)
    text = final_section(res)
    assert "No configuration here is better than the default on test" in text and "disagree" not in text


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
    res = run_final(StudyView.of(study), top_k=1, seeds=2, train_fn=caser_train_fn(),
                    rule=Convergence(max_epochs=2, patience=1, min_delta=0.0))
    took = time.perf_counter() - start
    assert res.trained == 8  # the best trial and the default, 2 seeds, converge + test each
    for key, runs in res.tested.items():
        for conv, run in zip(res.converged[key], runs):
            assert 1 <= conv.epoch <= 2 and conv.stop_reason in ("patience", "budget")
            assert run.epochs == conv.epoch
            assert 0.0 <= run.metrics["test/map"] <= 1.0 and set(TEST_METRICS) <= set(run.metrics)
            assert len(run.users) == len(run.user_ap) > 0
    text = final_section(res)
    assert "Per-user paired tests against the default" in text and "Holm p" in text
    print(f"8 real trainings took {took:.1f} s")


def test_a_worker_that_dies_mid_training_is_one_line_not_a_hang(tmp_path):
    """A pool replaces a dead worker and loses its job: without the check the report would wait
    for that result forever. The alarm turns such a hang into a failure of this test."""
    import signal

    def hung(signum, frame):
        raise AssertionError("the final evaluation still waits for a dead worker's result")

    study = make_study(tmp_path, n=3, value=default_last, extra_states=False)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        with pytest.raises(StudyError) as info:
            run_final(StudyView.of(study), top_k=1, seeds=1, train_fn=KillsItsProcess(), rule=RULE,
                      jobs=2, threads=1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(r"a final-evaluation worker process was stopped by SIGKILL; the finished "
                        r"runs are cached: run the same command again to go on", message)
    assert not any(k.startswith("final/") and k != "final_write_check" for k in study.user_attrs)


def test_the_parallel_final_evaluation_gives_the_serial_ones_numbers(tmp_path):
    """Two worker processes (one torch thread each) train what one process trains alone (one
    thread): the same runs, the same numbers, every result stored by the parent."""
    import torch

    from search.report.final import caser_train_fn

    rule = Convergence(max_epochs=3, patience=1, min_delta=0.0)
    results = []
    for jobs, name in ((1, "serial"), (2, "parallel")):
        study = make_study(tmp_path, name=name, n=3, value=default_last, extra_states=False)
        study.set_user_attr("data", {"spec": "synthetic:users=60,items=100,interactions=900"})
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            res = run_final(StudyView.of(study), top_k=1, seeds=2, train_fn=caser_train_fn(), rule=rule,
                            jobs=jobs, threads=1)
        finally:
            torch.set_num_threads(threads)
        assert res.trained == 8 and res.cached == 0
        stored = {k[len("final/"):]: v for k, v in study.user_attrs.items() if k.startswith("final/")}
        results.append((res.converged, res.tested, stored))
    assert results[0] == results[1]
