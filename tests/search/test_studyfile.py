"""Study files: the built-in ones load, every mistake is a StudyError naming the file and the key,
and overrides replace exactly what they name."""
from __future__ import annotations

import re

import optuna
import pytest

from caser.config import DataConfig
from search.errors import StudyError
from search.strategy import HyperbandOverEpochs, SuccessiveHalvingOverEpochs, make_pruner
from search.studyfile import PRUNERS, load_study_spec
from tests.helpers.studies import TINY_DATA, study_toml


@pytest.mark.parametrize("name", ["default", "ml100k", "paper"])
def test_the_built_in_studies_load(name):
    spec = load_study_spec(name)
    assert spec.name == name and spec.metric == "val/map" and spec.direction == "maximize"
    assert {"L", "T", "lr"} <= set(spec.space)


def test_a_file_is_read_with_its_stem_as_the_study_name(study_file):
    spec = load_study_spec(str(study_file(name="mine", max_epochs=4, sampler="qmc", seed=5)))
    assert (spec.name, spec.max_epochs, spec.sampler, spec.pruner, spec.seed) == ("mine", 4, "qmc", "none", 5)
    assert spec.data == DataConfig(spec=TINY_DATA)


def test_overrides_replace_only_what_they_name(study_file):
    spec = load_study_spec(str(study_file()))
    changed = spec.with_overrides(data_spec="synthetic", sampler="tpe", pruner="median", max_epochs=9,
                                  seed=3)
    assert (changed.data.spec, changed.sampler, changed.pruner, changed.max_epochs, changed.seed) == (
        "synthetic", "tpe", "median", 9, 3)
    assert changed.data.train_frac == spec.data.train_frac and changed.space == spec.space
    assert spec.with_overrides(data_spec=None, seed=None) == spec
    with pytest.raises(StudyError, match="max_epochs"):
        spec.with_overrides(max_epochs=0)


def test_a_study_file_may_still_say_split_for_holdout(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(study_toml().replace("[data]", "[data]\nsplit = 'loo'"))
    assert load_study_spec(str(path)).data.holdout == "loo"
    path.write_text(study_toml().replace("[data]", "[data]\nsplit = 'loo'\nholdout = 'loo'"))
    with pytest.raises(StudyError, match=r"old\.toml: data: split is the earlier name of holdout"):
        load_study_spec(str(path))


def test_a_study_spec_cannot_be_changed_in_place():
    spec = load_study_spec("default")
    with pytest.raises(TypeError):
        spec.space["L"] = spec.space["T"]
    with pytest.raises(TypeError):
        spec.fixed["L"] = 3
    with pytest.raises(TypeError):
        spec.pruner_options["median"]["n_startup_trials"] = 1


MISTAKES = {
    "not toml": (study_toml().replace("[data]", "[data"), "not valid TOML"),
    "unknown table": (study_toml() + "\n[trainer]\nx = 1\n", "unknown table(s) trainer"),
    "unknown study key": (study_toml(epochs=3), "unknown key study.epochs"),
    "unknown data key": (study_toml().replace("[data]", "[data]\nsplitt = 'loo'"), "unknown key data.splitt"),
    "bad data value": (study_toml().replace("[data]", "[data]\ntrain_frac = 1.5"), "data:"),
    "bad metric": (study_toml(metric="val/auc"), "study.metric 'val/auc'"),
    "bad direction": (study_toml(direction="up"), "study.direction"),
    "bad sampler": (study_toml(sampler="grid"), "study.sampler 'grid'"),
    "bad pruner": (study_toml(pruner="asha"), "study.pruner 'asha'"),
    "zero epochs": (study_toml(max_epochs=0), "study.max_epochs"),
    "unknown pruner table": (study_toml(pruners={"asha": {"x": 1}}), "pruners.asha"),
    "value for a table": ("study = 3\n", "study must be a table"),
    "seed not a number": (study_toml(seed="abc"), "study.seed must be a whole number"),
    "negative seed": (study_toml(seed=-1), "study.seed must be a whole number"),
    "data value of the wrong type": (study_toml().replace("[data]", "[data]\nmin_user_interactions = '5'"),
                                     "data.min_user_interactions must be a whole number, got '5'"),
    "data format not a string": (study_toml().replace("[data]\nspec", "[data]\nformat = 5\nspec"),
                               "data.format must be a string"),
    "bound not finite": (study_toml(space={"lr": "{ float = [nan, 0.1] }"}), "space.lr: float bounds must be finite"),
}


@pytest.mark.parametrize("text, expected", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_names_the_file_and_the_key(tmp_path, text, expected):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(StudyError) as caught:
        load_study_spec(str(path))
    assert str(caught.value).startswith(f"{path}:") and expected in str(caught.value)


def test_an_unknown_study_lists_the_built_in_ones():
    with pytest.raises(StudyError, match="no study file .*nope.toml; built-in studies: default, ml100k, paper"):
        load_study_spec("nope")


def test_a_wrong_pruner_option_names_the_table(study_file):
    spec = load_study_spec(str(study_file(pruner="median", pruners={"median": {"n_startup": 2}})))
    with pytest.raises(StudyError, match=r"tiny\.toml: pruners\.median:"):
        make_pruner(spec)


PRUNER_CASES = [
    ("median", {"n_startup_trials": 2}, optuna.pruners.MedianPruner),
    ("percentile", {"percentile": 25.0}, optuna.pruners.PercentilePruner),
    ("successive_halving", {"min_resource": 1, "reduction_factor": 3}, SuccessiveHalvingOverEpochs),
    ("hyperband", {"reduction_factor": 2}, HyperbandOverEpochs),
    ("none", {}, optuna.pruners.NopPruner),
]


def test_the_pruner_cases_cover_every_name_a_study_may_use():
    assert sorted(name for name, _, _ in PRUNER_CASES) == sorted(PRUNERS)


def test_the_percentile_pruner_needs_no_table():
    # `--pruner percentile` on a study file without [pruners.percentile] (ml100k, paper).
    spec = load_study_spec("ml100k").with_overrides(pruner="percentile")
    assert make_pruner(spec)._percentile == 25.0


@pytest.mark.parametrize("name,options,kind", PRUNER_CASES)
def test_every_pruner_is_built_with_its_table(study_file, name, options, kind):
    spec = load_study_spec(str(study_file(pruner=name, pruners={name: options} if options else {})))
    pruner = make_pruner(spec)
    assert type(pruner) is kind
    for key, value in options.items():
        assert getattr(pruner, f"_{key}") == value


@pytest.mark.parametrize("name,options,message", [
    ("median", {"n_startup_trials": "five"}, "pruners.median.n_startup_trials must be a whole number >= 0, got 'five'"),
    ("median", {"n_startup_trials": -1}, "pruners.median.n_startup_trials must be a whole number >= 0, got -1"),
    ("median", {"n_warmup_steps": -2}, "pruners.median.n_warmup_steps must be a whole number >= 0, got -2"),
    ("median", {"interval_steps": 0}, "pruners.median.interval_steps must be a whole number >= 1, got 0"),
    ("median", {"n_startup_trials": 2.5}, "pruners.median.n_startup_trials must be a whole number >= 0, got 2.5"),
    ("percentile", {"percentile": 150.0}, "pruners.percentile.percentile must be a number from 0 to 100, got 150.0"),
    ("percentile", {"percentile": "x"}, "pruners.percentile.percentile must be a number from 0 to 100, got 'x'"),
    ("successive_halving", {"reduction_factor": 1}, "pruners.successive_halving.reduction_factor must be a whole number >= 2, got 1"),
    ("successive_halving", {"min_resource": 0}, "pruners.successive_halving.min_resource must be a whole number >= 1 or \"auto\", got 0"),
    ("hyperband", {"min_resource": 0}, "pruners.hyperband.min_resource must be a whole number >= 1, got 0"),
    ("hyperband", {"reduction_factor": 1}, "pruners.hyperband.reduction_factor must be a whole number >= 2, got 1"),
    ("hyperband", {"min_resource": 5, "max_resource": 2},
     "pruners.hyperband.min_resource 5 is above max_resource 2: no rung fits"),
    ("hyperband", {"min_resource": 5}, "pruners.hyperband.min_resource 5 is above max_resource 3"),
])
def test_a_pruner_setting_that_cannot_work_names_its_key(study_file, name, options, message):
    path = study_file(pruner=name, pruners={name: options}, max_epochs=3)
    with pytest.raises(StudyError, match=rf"tiny\.toml: {re.escape(message)}"):
        make_pruner(load_study_spec(str(path)))


def test_a_bad_table_of_a_pruner_the_study_does_not_use_is_refused_too(study_file):
    path = study_file(pruner="median", pruners={"hyperband": {"reduction_factor": "three"}})
    with pytest.raises(StudyError, match=r"pruners\.hyperband\.reduction_factor must be a whole number >= 2"):
        make_pruner(load_study_spec(str(path)))
