"""The search space: suggestions stay inside every entry, infeasible trials are pruned with a
reason before any training, and malformed entries are StudyErrors naming the file and the key."""
from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from search.data import check_space_fits, prepare_data
from search.errors import StudyError
from search.objective import make_objective
from search.options import SweepOptions
from search.space import Infeasible, check_feasible, parse_space, suggest
from search.runner import run_sweep
from search.study import count_finished, open_study
from search.studyfile import load_study_spec

DEFAULT = load_study_spec("default")


def within(dim, value) -> bool:
    if dim.kind == "categorical":
        return value in dim.choices
    if dim.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return False
    return dim.low <= value <= dim.high


@pytest.mark.parametrize("study", ["default", "ml100k", "paper"])
def test_every_sampler_draw_stays_inside_every_entry(study):
    spec = load_study_spec(study)
    sampler = optuna.samplers.RandomSampler(seed=3)
    trials = optuna.create_study(sampler=sampler)
    trials.optimize(lambda t: float(len(suggest(t, spec.space))), n_trials=60)
    for trial in trials.trials:
        assert set(trial.params) == set(spec.space)
        for name, value in trial.params.items():
            assert within(spec.space[name], value), (name, value)


@pytest.mark.parametrize("edge", ["low", "high"])
def test_fixed_trial_at_the_bounds_returns_the_bounds(edge):
    space = DEFAULT.space
    values = {n: (d.choices[0 if edge == "low" else -1] if d.kind == "categorical"
                  else getattr(d, edge)) for n, d in space.items()}
    assert suggest(FixedTrial(values), space) == values


def test_fixed_trial_outside_a_range_is_flagged_against_the_entry_bounds():
    values = {n: (d.choices[0] if d.kind == "categorical" else d.low) for n, d in DEFAULT.space.items()}
    values["L"] = DEFAULT.space["L"].high + 1
    with pytest.warns(UserWarning, match=r"value 11 of the parameter 'L' is out of the range.*high=10"):
        suggest(FixedTrial(values), DEFAULT.space)


def test_int_entries_suggest_ints_and_log_floats_stay_positive():
    space, _ = parse_space({"L": {"int": [1, 10]}, "lr": {"float": [1e-5, 1e-1], "log": True}}, "x.toml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: float(suggest(t, space)["L"]), n_trials=30)
    assert all(isinstance(t.params["L"], int) for t in study.trials)
    lrs = [t.params["lr"] for t in study.trials]
    assert all(1e-5 <= lr <= 1e-1 for lr in lrs)
    assert min(lrs) < 1e-3 < max(lrs)  # log-uniform: both decades below and above the middle


# -- infeasible configurations ----------------------------------------------------------------


def test_feasibility_follows_the_model_not_the_median_sequence(small_study):
    """Issue 13 item 5: the original trains any L and T by left-padding short sequences, so only
    a model that cannot be built (no features) or held in memory is infeasible."""
    spec, data = small_study
    with pytest.raises(Infeasible, match="nv = nh = 0"):
        check_feasible({"nv": 0, "nh": 0}, data)
    median = int(np.median(data.split.train.lengths))
    check_feasible({"L": median + 20, "T": 5, "nv": 1, "nh": 2}, data)  # mostly padding: trains
    with pytest.raises(Infeasible, match=r"^infeasible: L=3000, .* needs about .* lower space\.L"):
        check_feasible({"L": 3000, "nv": 1, "nh": 2}, data)
    check_feasible({"nv": 1, "nh": 0, "L": 50, "T": 50}, None)


@pytest.fixture
def small_study(study_file, tmp_path):
    path = study_file(space={"L": "{ int = [1, 3000] }", "T": "{ int = [1, 5] }",
                             "nv": "{ int = [0, 4] }", "nh": "{ int = [0, 8] }"})
    spec = load_study_spec(str(path))
    return spec, prepare_data(spec)


def test_infeasible_trials_are_pruned_with_their_reason_never_train_and_never_count(small_study, tmp_path):
    spec, data = small_study
    options = SweepOptions(n_trials=2, runs_dir=tmp_path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'tiny.db'}", options)
    study.enqueue_trial({"L": 1, "T": 1, "nv": 0, "nh": 0})
    study.enqueue_trial({"L": 3000, "T": 1, "nv": 2, "nh": 2})
    study.enqueue_trial({"L": 30, "T": 5, "nv": 2, "nh": 2})  # longer than any sequence: trains
    assert run_sweep(spec, study, data, options, lambda line: None) == 2
    infeasible = study.trials[1:3]
    assert [t.state for t in infeasible] == [TrialState.PRUNED, TrialState.PRUNED]
    assert infeasible[0].user_attrs["reason"] == "infeasible: nv = nh = 0 leaves no convolutional features"
    assert infeasible[1].user_attrs["reason"].startswith("infeasible: L=3000, T=1, d=50, nv=2, nh=2")
    for trial in infeasible:
        assert "epochs_run" not in trial.user_attrs
        assert not (tmp_path / "tiny" / f"trial_{trial.number:04d}").exists()
    # The defaults and the long window trained; the infeasible two did not count toward 2.
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, *[TrialState.PRUNED] * 2, TrialState.COMPLETE]
    assert count_finished(study) == 2


def test_the_objective_prunes_an_infeasible_fixed_trial(small_study, tmp_path):
    spec, data = small_study
    trial = FixedTrial({"L": 2, "T": 1, "nv": 0, "nh": 0})
    with pytest.raises(optuna.TrialPruned, match="nv = nh = 0"):
        make_objective(spec, data, SweepOptions(n_trials=1, runs_dir=tmp_path), print)(trial)
    assert trial.user_attrs["reason"].startswith("infeasible: nv = nh = 0")


def test_a_space_that_can_never_train_is_refused_before_the_sweep(study_file, small_study):
    _, data = small_study
    for space, message in (
        ({"L": 3000, "nh": 16}, r"tiny\.toml: even the smallest configuration of the space \(L=3000, .*lower space\.L"),
        ({"L": 3000, "nh": "{ int = [4, 16] }", "d": "{ choices = [8, 64] }"}, r"\(L=3000, T=3, d=8, nv=4, nh=4"),
        ({"nv": 0, "nh": 0}, r"tiny\.toml: nv = nh = 0 in every configuration"),
        ({"nv": "{ int = [0, 0] }", "nh": "{ choices = [0] }"}, "nv = nh = 0 in every configuration"),
    ):
        spec = load_study_spec(str(study_file(space=space)))
        with pytest.raises(StudyError, match=message):
            check_space_fits(spec, data)
    for fits in ({"L": "{ int = [20, 30] }", "T": 3},  # every window longer than the median: fine
                 {"L": "{ int = [1, 3000] }", "nh": 16},  # the large ones are pruned one by one
                 {"L": 3000, "nh": "{ int = [0, 16] }"},  # nh = 0 fits
                 {"nv": "{ int = [0, 2] }", "nh": 0}):
        check_space_fits(load_study_spec(str(study_file(space=fits))), data)


# -- malformed entries ----------------------------------------------------------------------

MALFORMED = {
    "bounds not numbers": ("L", '{ int = ["a", 3] }'),
    "float bounds for an int": ("L", "{ int = [1.5, 3] }"),
    "float range for an int parameter": ("d", "{ float = [8, 64] }"),
    "float choice for an int parameter": ("L", "{ choices = [1.5, 2] }"),
    "boolean bound": ("nh", "{ int = [true, 8] }"),
    "one bound": ("L", "{ int = [1] }"),
    "two kinds": ("L", "{ int = [1, 3], choices = [1, 2] }"),
    "unknown option": ("L", "{ int = [1, 3], logg = true }"),
    "empty choices": ("d", "{ choices = [] }"),
    "low above high": ("L", "{ int = [9, 2] }"),
    "log with low zero": ("lr", "{ float = [0.0, 1e-2], log = true }"),
    "log not a boolean": ("lr", '{ float = [1e-4, 1e-2], log = "false" }'),
    "zero step": ("nh", "{ int = [0, 64], step = 0 }"),
    "step with log": ("lr", "{ float = [1e-4, 1e-2], log = true, step = 1e-4 }"),
    "unknown parameter": ("momentum", "{ float = [0.1, 0.9] }"),
    "unsearchable parameter": ("epochs", "{ int = [1, 9] }"),
    "impossible dropout": ("dropout", "{ float = [0.0, 1.5] }"),
    "impossible fixed dropout": ("dropout", "1.5"),
    "impossible fixed L": ("L", "0"),
    "negative filters": ("nv", "{ int = [-1, 4] }"),
    "unknown activation": ("ac_fc", '{ choices = ["relu", "swish"] }'),
    "string for a number": ("lr", '"fast"'),
    "zero lr": ("lr", "{ float = [0.0, 1e-2] }"),
}


@pytest.mark.parametrize("name, entry", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_entry_names_the_file_and_the_key(study_file, name, entry):
    path = study_file(name="broken", space={name: entry})
    with pytest.raises(StudyError) as caught:
        load_study_spec(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: space.{name}:"), message
    assert "\n" not in message


def test_a_plain_value_fixes_a_parameter_and_aliases_are_canonical():
    space, fixed = parse_space({"ac_fc": {"choices": ["identity", "sigmoid"]}, "nv": 0, "dropout": 0.25},
                               "x.toml")
    assert space["ac_fc"].choices == ("iden", "sigm")
    assert fixed == {"nv": 0, "dropout": 0.25}
    assert math.isclose(DEFAULT.space["lr"].low, 1e-4) and DEFAULT.space["lr"].log
