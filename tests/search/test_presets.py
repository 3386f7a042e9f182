"""Presets: a named dataset brings the paper's cold-start filter unless a minimum is given (0 too),
from the command line, a study file or code; the study stores the filter actually applied."""
from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from caser.arguments import add_config_arguments, add_data_arguments, command_line, configs_from_args
from caser.config import DataConfig, ModelConfig, TrainConfig, with_current_data_names
from caser.datasets import load_sequences
from caser.filtering import kcore
from caser.readers import read_interactions
from search.errors import StudyError
from search.options import SweepOptions
from search.study import open_study
from search.storage import storage_url
from search.studyfile import load_study_spec

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOML = (ROOT / "studies" / "default.toml").read_text()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Each test's own cache; the publishers replaced by a port nothing listens on."""
    monkeypatch.setenv("CASER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CASER_MIRROR", "http://127.0.0.1:9/")


def study_file(tmp_path: Path, data_lines: str, name: str = "presets") -> Path:
    default_data = re.compile(r'^spec = "synthetic"\nholdout = "ratio".*\n', re.MULTILINE)
    assert default_data.search(DEFAULT_TOML)
    path = tmp_path / f"{name}.toml"
    path.write_text(default_data.sub(lambda _: data_lines + '\nholdout = "ratio"\n', DEFAULT_TOML))
    return path


def cli_data(*argv: str) -> DataConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    add_data_arguments(parser)
    return configs_from_args(parser.parse_args(list(argv)))[2]


# --- the config -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec, preset", [("ml-1m", 5), ("gowalla", 15), ("ml-100k", 0),
                                          ("synthetic", 0), ("some/file.txt", 0)])
def test_a_named_dataset_brings_its_preset_and_asdict_names_it(spec, preset):
    data = DataConfig(spec=spec)
    assert (data.min_user_interactions, data.min_item_interactions) == (preset, preset)
    assert asdict(data)["min_user_interactions"] == preset  # what a study stores


def test_a_given_minimum_wins_over_the_preset_zero_included():
    data = DataConfig(spec="gowalla", min_user_interactions=0, min_item_interactions=3)
    assert (data.min_user_interactions, data.min_item_interactions) == (0, 3)
    half = DataConfig(spec="ml-1m", min_item_interactions=0)
    assert (half.min_user_interactions, half.min_item_interactions) == (5, 0)


def test_an_identity_stored_before_presets_still_matches():
    # Studies stored before presets hold integer minimums; ml-100k has no preset.
    stored = {"spec": "ml-100k", "format": "auto", "split": "ratio", "train_frac": 0.7,
              "val_frac": 0.1, "min_user_interactions": 0, "min_item_interactions": 0, "seed": 0}
    assert asdict(DataConfig(spec="ml-100k")) == with_current_data_names(stored)
    assert DataConfig(**with_current_data_names(stored)) == DataConfig(spec="ml-100k")


def test_another_spec_renews_preset_minimums_and_keeps_given_ones():
    assert DataConfig(spec="ml-1m").with_spec("gowalla").min_user_interactions == 15
    assert DataConfig(spec="gowalla").with_spec("other.txt").min_item_interactions == 0
    kept = DataConfig(spec="ml-100k", min_user_interactions=0, holdout="loo").with_spec("gowalla")
    assert (kept.min_user_interactions, kept.min_item_interactions, kept.holdout) == (0, 15, "loo")


# --- command line and study file ------------------------------------------------------------


def test_the_command_line_takes_the_preset_unless_a_minimum_is_typed():
    assert cli_data("--data", "ml-1m").min_user_interactions == 5
    typed = cli_data("--data", "ml-1m", "--min-user-interactions", "0")
    assert (typed.min_user_interactions, typed.min_item_interactions) == (0, 5)


def test_the_retrain_command_spells_out_the_filter_applied():
    command = command_line(ModelConfig(), TrainConfig(), DataConfig(spec="gowalla"))
    assert "--min-user-interactions 15 --min-item-interactions 15" in command
    plain = command_line(ModelConfig(), TrainConfig(), DataConfig(spec="ml-100k"))
    assert "--min-user-interactions" not in plain


def test_a_study_file_takes_the_preset_unless_it_gives_a_minimum(tmp_path):
    bare = load_study_spec(str(study_file(tmp_path, 'spec = "gowalla"')))
    assert bare.data.min_user_interactions == 15
    zero = load_study_spec(str(study_file(tmp_path, 'spec = "gowalla"\nmin_user_interactions = 0', "zero")))
    assert (zero.data.min_user_interactions, zero.data.min_item_interactions) == (0, 15)


def test_data_given_on_the_command_line_brings_its_own_preset(tmp_path):
    # The default study gives no minimum: --data gowalla is filtered as gowalla is.
    assert load_study_spec("default").with_overrides(data_spec="gowalla").data.min_user_interactions == 15
    zero = load_study_spec(str(study_file(tmp_path, 'spec = "ml-1m"\nmin_user_interactions = 0')))
    moved = zero.with_overrides(data_spec="gowalla").data
    assert (moved.min_user_interactions, moved.min_item_interactions) == (0, 15)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats: known
def test_a_study_never_resumes_on_data_filtered_otherwise(tmp_path):
    (tmp_path / "runs").mkdir()
    url = storage_url("presets", None, tmp_path / "runs")
    preset = load_study_spec(str(study_file(tmp_path, 'spec = "ml-1m"')))
    study = open_study(preset, url, SweepOptions(n_trials=1, runs_dir=tmp_path / "runs"))
    stored = study.user_attrs["data"]
    assert (stored["spec"], stored["min_user_interactions"]) == ("ml-1m", 5)  # a name, not a path
    open_study(preset, url, SweepOptions(n_trials=1, runs_dir=tmp_path / "runs"))  # the same data resumes
    unfiltered = load_study_spec(str(study_file(tmp_path, 'spec = "ml-1m"\nmin_user_interactions = 0')))
    with pytest.raises(StudyError, match=r"was run on other data \(min_user_interactions 5 -> 0\)"):
        open_study(unfiltered, url, SweepOptions(n_trials=1, runs_dir=tmp_path / "runs"))


# --- loading --------------------------------------------------------------------------------


def ratings_dat(users: int, items: int, rare: int) -> bytes:
    """`users` users rating all of `items` items, then `rare` users with 2 ratings of rare items."""
    lines = [f"{u}::{i}::4::{1000 * u + i}" for u in range(1, users + 1) for i in range(1, items + 1)]
    lines += [f"{900 + r}::{500 + r}::3::{r}\n{900 + r}::1::3::{r + 1}" for r in range(rare)]
    return ("\n".join(lines) + "\n").encode()


def test_ml1m_from_the_cache_is_filtered_with_the_preset_or_the_given_minimum(tmp_path):
    folder = tmp_path / "cache" / "ml-1m"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_bytes(ratings_dat(users=6, items=7, rare=3))
    raw = read_interactions(folder / "ratings.dat")
    filtered = load_sequences(DataConfig(spec="ml-1m"))
    expected = kcore(raw, 5, 5)
    assert filtered.to_lists() == expected.to_lists() and filtered.num_users == 6
    assert filtered.num_events == 6 * 7 < raw.num_events
    unfiltered = load_sequences(DataConfig(spec="ml-1m", min_user_interactions=0, min_item_interactions=0))
    assert unfiltered.num_events == raw.num_events == 6 * 7 + 3 * 2


def test_gowalla_from_the_cache_is_filtered_with_its_preset_of_15(tmp_path):
    folder = tmp_path / "cache" / "gowalla"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = [f"{u}\t2010-10-{1 + (s % 28):02d}T{s % 24:02d}:00:{s % 60:02d}Z\t1.0\t2.0\t{loc}"
             for u in range(16) for s, loc in enumerate(rng.permutation(16))]
    lines += [f"99\t2010-10-01T00:00:0{k}Z\t1.0\t2.0\t{k}" for k in range(5)]  # a user with 5
    (folder / "loc-gowalla_totalCheckins.txt").write_text("\n".join(lines) + "\n")
    seqs = load_sequences(DataConfig(spec="gowalla"))
    assert seqs.num_users == 16 and seqs.num_events == 16 * 16
    assert 99 not in seqs.user_ids.tolist()
    assert load_sequences(DataConfig(spec="gowalla", min_user_interactions=0,
                                     min_item_interactions=0)).num_events == 16 * 16 + 5
