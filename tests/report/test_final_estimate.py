"""The final evaluation's time, said before it starts: each job at its whole epoch budget at its
configuration's pace in the sweep, a test run on train+validation that much slower an epoch."""
from __future__ import annotations

import io

import pytest

from caser.config import DataConfig, ModelConfig, TrainConfig
from search.report.final import Convergence
from search.report.final_estimate import bound_s, estimate_line, growth
from search.report.final_plan import run_final
from search.report.final_runs import Job
from search.report.view import StudyView

from tests.helpers.report_studies import DEFAULTS, FakeTrain, default_value, make_study

FORWARD = DataConfig(spec="synthetic", train_frac=0.6, val_frac=0.2)


def job(kind: str, key: str, epochs: int) -> Job:
    return Job(kind, key, 0, ModelConfig(), TrainConfig(epochs=epochs), FORWARD)


def test_a_bound_counts_each_convergence_run_with_its_test_run_on_more_data():
    jobs = [job("converge", "a", 10), job("converge", "b", 10), job("test", "a", 5)]
    # growth 0.8 / 0.6: a converge job is 1 + 4/3 runs of its epochs, a test job 4/3.
    expected = (10 * 2.0 * (7 / 3) + 10 * 1.0 * (7 / 3) + 5 * 2.0 * (4 / 3)) / 2
    assert bound_s(jobs, {"a": 2.0, "b": 1.0}, 2, FORWARD) == pytest.approx(expected)
    assert bound_s(jobs, {"a": 2.0}, 2, FORWARD) is None  # b never ran in the sweep


def test_growth_is_the_test_runs_extra_data():
    assert growth(FORWARD) == pytest.approx(4 / 3)
    assert growth(DataConfig(spec="synthetic")) == pytest.approx(0.8 / 0.7)
    assert growth(DataConfig(spec="synthetic", holdout="loo")) == 1.0


def test_the_line_says_a_bound_and_its_flag_for_convergence_and_an_estimate_for_fixed_epochs():
    converge = estimate_line([job("converge", "a", 500)] * 3, {"a": 3.0}, 2, FORWARD)
    assert converge == ("[final] 6 trainings on 2 processes: at most about 87.5 min at the sweep's "
                        "pace, if every run trains to its 500-epoch cap (most stop sooner; "
                        "--final-max-epochs lowers the cap)")
    fixed = estimate_line([job("test", "a", 100)], {"a": 3.0}, 1, FORWARD)
    assert fixed == "[final] 1 training on 1 process: about 6.7 min at the sweep's pace"


def test_the_report_says_it_before_the_first_training(tmp_path):
    study = make_study(tmp_path, n=6, extra_states=False,  # the default last: outside the top 1
                       value=lambda p, rng: 0.01 if p == DEFAULTS else default_value(p, rng))
    progress = io.StringIO()
    run_final(StudyView.of(study), top_k=1, seeds=2, train_fn=FakeTrain(), progress=progress,
              rule=Convergence(max_epochs=20, patience=2, min_delta=0.0))
    lines = progress.getvalue().splitlines()
    # Every trial of make_study took 3 s an epoch; 2 configurations x 2 seeds converge, then test.
    assert lines[0].startswith("[final] 8 trainings on 1 process: at most about ")
    assert lines[1].startswith("[final 1/8]")
