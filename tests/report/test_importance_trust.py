"""Importances a reader can trust: seeded bootstrap intervals over trials (the same every time),
Kendall's tau between the evaluators (checked against scipy), the trials each used, plain
sentences when they disagree or an interval is wide, and Ctrl-C during the bootstrap ending
report.py in one line, writing nothing."""
from __future__ import annotations

import math
import re
import signal
import subprocess
import sys

import pytest
from scipy import stats as sps

from search.report.importance import Importances, agreement, compute_importances
from search.report.importance_section import importance_section
from search.report.importance_bootstrap import ImportanceBootstrap, bootstrap_importances
from search.report.view import StudyView

from tests.helpers import ROOT
from tests.helpers.report_studies import SPACE, add_trials_without, make_study, record_settings, storage


def lr_only(p, rng):
    """lr alone moves the metric; the rest add noise a thousand times smaller."""
    return -((math.log10(p["lr"]) + 3) ** 2) + 1e-4 * rng.random()


def test_bootstrap_is_deterministic_with_its_seed_and_moves_with_another(tmp_path):
    view = StudyView.of(make_study(tmp_path, n=14, value=lr_only, pruned_every=10**6,
                                   extra_states=False))
    first = bootstrap_importances(view, resamples=2, seed=0)
    assert first.done == {"PED-ANOVA": 2, "fANOVA": 2}
    assert bootstrap_importances(view, resamples=2, seed=0) == first
    assert bootstrap_importances(view, resamples=2, seed=1).intervals != first.intervals
    for name, per_param in first.intervals.items():
        assert set(per_param) == set(SPACE), name
        assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in per_param.values())
    text = importance_section(compute_importances(view), first)
    assert "PED-ANOVA 95% interval" in text and "fANOVA 95% interval" in text
    assert "over 2 bootstrap resamples of the complete trials (drawn with replacement, seed 0" in text


def test_kendall_tau_between_the_evaluators_is_scipys():
    ped = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    fan = {"a": 0.1, "b": 0.6, "c": 0.2, "d": 0.1}
    agree = agreement(Importances(10, 10, values={"PED-ANOVA": ped, "fANOVA": fan}))
    expected = sps.kendalltau([0.5, 0.3, 0.15, 0.05], [0.1, 0.6, 0.2, 0.1]).statistic
    assert agree.tau == pytest.approx(expected) and agree.n == 4
    assert agree.first == {"PED-ANOVA": "a", "fANOVA": "b"}


@pytest.mark.parametrize("sampler, phrase", [
    ("tpe", "This study's sampler, tpe, concentrates trials where the metric is good, which "
            "breaks fANOVA's assumption of spread-out samples"),
    ("TPESampler", "This study's sampler, TPESampler, concentrates trials"),
    ("random", "This study's sampler, random, spreads trials over the space as fANOVA assumes"),
    ("QMCSampler", "This study's sampler, QMCSampler, spreads trials"),
    (None, "The study did not record its sampler"),
])
def test_disagreeing_evaluators_get_a_sentence_naming_the_sampler(sampler, phrase):
    imp = Importances(20, 30, n_top=2, sampler=sampler,
                      values={"PED-ANOVA": {"nh": 0.5, "ac_fc": 0.1, "d": 0.4},
                              "fANOVA": {"nh": 0.1, "ac_fc": 0.7, "d": 0.2}},
                      used={"PED-ANOVA": 20, "fANOVA": 20})
    text = re.sub(r"\s+", " ", importance_section(imp))
    assert "**The two evaluators disagree** (PED-ANOVA ranks nh first, fANOVA ac_fc)" in text
    assert phrase in text
    assert "Trials each evaluator used: PED-ANOVA 20 (its top 10%: 2); fANOVA 20" in text


def test_evaluators_agreeing_only_on_the_first_parameter_are_said_to_disagree_on_the_rest():
    imp = Importances(20, 20, n_top=2, values={
        "PED-ANOVA": {"lr": 0.5, "a": 0.2, "b": 0.15, "c": 0.1, "d": 0.05},
        "fANOVA": {"lr": 0.5, "a": 0.05, "b": 0.1, "c": 0.15, "d": 0.2}})
    assert "(both rank lr first, but order the others differently)" in importance_section(imp)


def test_agreeing_evaluators_with_narrow_intervals_get_no_warning():
    values = {"lr": 0.8, "d": 0.15, "L": 0.05}
    imp = Importances(50, 50, n_top=5, values={"PED-ANOVA": values, "fANOVA": dict(values)})
    boot = ImportanceBootstrap(requested=5, done={"PED-ANOVA": 5, "fANOVA": 5}, intervals={
        name: {"lr": (0.7, 0.9), "d": (0.1, 0.2), "L": (0.0, 0.1)} for name in ("PED-ANOVA", "fANOVA")})
    text = importance_section(imp, boot)
    assert "Kendall's tau 1.00 over 3 parameters" in text
    assert "disagree" not in text and "Wide intervals" not in text and "not settled" not in text


def test_a_wide_interval_and_an_unsettled_first_place_are_said():
    values = {"lr": 0.5, "d": 0.4, "L": 0.1}
    imp = Importances(12, 12, n_top=2, values={"PED-ANOVA": values, "fANOVA": dict(values)})
    boot = ImportanceBootstrap(requested=5, done={"PED-ANOVA": 5, "fANOVA": 5}, intervals={
        "PED-ANOVA": {"lr": (0.1, 0.8), "d": (0.2, 0.6), "L": (0.0, 0.2)},
        "fANOVA": {"lr": (0.45, 0.55), "d": (0.35, 0.42), "L": (0.05, 0.15)}})
    text = importance_section(imp, boot)
    assert "**Wide intervals** (wider than 0.25): PED-ANOVA d [0.20, 0.60]; PED-ANOVA lr [0.10, 0.80]" in text
    assert "PED-ANOVA's first place is not settled: the intervals of lr and d overlap." in text
    assert "fANOVA's first place" not in text


def test_fanova_counts_only_the_trials_holding_every_parameter(tmp_path):
    study = make_study(tmp_path, n=8, pruned_every=10**6, extra_states=False)  # 9 complete
    add_trials_without(study, "nv", 4)
    imp = compute_importances(StudyView.of(study))
    assert imp.used == {"PED-ANOVA": 13, "fANOVA": 13}  # fANOVA drops nv, not the trials
    assert "nv" not in imp.values["fANOVA"]


def test_ctrl_c_during_the_bootstrap_is_one_line_and_writes_nothing(tmp_path):
    study = make_study(tmp_path, n=12, extra_states=False)
    record_settings(study)
    out = tmp_path / "REPORT.md"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "report.py"), "--study", "demo", "--storage", storage(tmp_path),
         "--out", str(out), "--no-plots", "--importance-bootstrap", "10000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # printed just before the resampling starts
    assert "10000 bootstrap resamples" in line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == ["report.py: interrupted (Ctrl-C): no report written"]
    assert not out.exists()
