"""caser's command line: the command that rebuilds a configuration names every flag and parses
back to the same configs, and the earlier flag names still work."""
from __future__ import annotations

import argparse
import json
import re
import shlex

import pytest

from caser.arguments import add_config_arguments, add_data_arguments, command_line, configs_from_args
from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.metric_names import metric_names
from tests.helpers.studies import TINY_DATA


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_data_arguments(p)
    add_config_arguments(p)
    return p


def test_the_reproduce_command_line_names_every_flag():
    command = command_line(ModelConfig(), TrainConfig(), DataConfig(spec="ml-100k"))
    for flag in ("--data ml-100k", "--L 5", "--T 3", "--d 50", "--nv 4", "--nh 16",
                 "--ac-conv relu", "--ac-fc relu", "--dropout 0.5", "--lr 0.001", "--l2 1e-06",
                 "--neg-samples 3", "--batch-size 512", "--epochs 20", "--seed 1234",
                 "--protocol test"):
        assert flag in command


def test_the_command_line_parses_back_to_the_same_configs():
    configs = (ModelConfig(L=3, nh=0, ac_fc="tanh"), TrainConfig(lr=0.02, seed=7),
               DataConfig(spec="some file.txt", holdout="loo", min_user_interactions=5))
    words = shlex.split(command_line(*configs, protocol="validation"))
    assert words[:3] == ["python", "-m", "caser.train"] and words[-2:] == ["--protocol", "validation"]
    assert configs_from_args(parser().parse_args(words[3:-2])) == configs


@pytest.mark.parametrize("flag", ["--protocol", "--split"])
def test_protocol_is_the_flag_and_split_its_earlier_name(flag, capsys):
    from caser.train import main

    assert main(["--data", TINY_DATA, "--epochs", "1", "--d", "8", flag, "test", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(metrics) == sorted(metric_names("test"))  # trained on train+validation, scored on test


@pytest.mark.parametrize("argv, line", [
    (["--seed", "-5"], "error: --seed must be from 0 to 4294967295, got -5"),
    (["--seed", str(2**32)], "error: --seed must be from 0 to 4294967295, got 4294967296"),
    (["--data-seed", "-1"], "error: --data-seed must be from 0 up, got -1"),
    (["--min-user-interactions", "-1"], "error: --min-user-interactions must be from 0 up, got -1"),
    (["--min-item-interactions", "-2"], "error: --min-item-interactions must be from 0 up, got -2"),
    (["--L", "0"], "error: --L: L must be at least 1, got 0"),
    (["--batch-size", "0"], "error: --batch-size: batch_size must be >= 1, got 0"),
    (["--neg-samples", "0"], "error: --neg-samples: neg_samples must be >= 1, got 0"),
    (["--epochs", "0"], "error: --epochs: epochs must be >= 1, got 0"),
    (["--dropout", "1"], "error: --dropout: dropout must be in [0, 1), got 1.0"),
    (["--lr", "0"], "error: --lr: lr must be > 0, got 0.0"),
    (["--l2", "nan"], "error: --l2: l2 must be a finite number, got nan"),
    (["--nv", "-1"], "error: --nv: nv and nh must be >= 0, got nv=-1, nh=16"),
    (["--nv", "0", "--nh", "0"], "error: --nv, --nh: nv = nh = 0 leaves Caser with no "
                                 "convolutional features"),
    (["--ac-conv", "foo"], "error: --ac-conv: unknown activation 'foo'; choose from iden, relu, tanh, sigm"),
    (["--train-frac", "2"], "error: --train-frac: need 0 < train_frac, 0 <= val_frac and train_frac + "
                            "val_frac <= 1, got 2.0 and 0.1"),
    (["--train-frac", "0.5", "--val-frac", "0.6"],
     "error: --train-frac, --val-frac: need 0 < train_frac, 0 <= val_frac and train_frac + "
     "val_frac <= 1, got 0.5 and 0.6"),
    (["--holdout", "x"], "error: --holdout: holdout must be 'ratio' or 'loo', got 'x'"),
    (["--patience", "0"], "error: --patience: patience must be >= 1 (or unset to train the whole "
                          "budget), got 0"),
    (["--min-delta", "-1"], "error: --min-delta: min_delta must be "),  # caser.stopping's wording
])
def test_every_impossible_flag_value_is_one_line_naming_the_flag(argv, line, capsys):
    """Issue 24 defect 20: `--seed -5` printed numpy's "-5 is not in bounds" (after loading the
    data), `--data-seed -1` "expected non-negative integer", and `--min-user-interactions -1`
    trained unfiltered: none named the flag."""
    from caser.train import main

    assert main(["--data", TINY_DATA, "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line) and (err[0] == line or line.endswith(" "))


@pytest.mark.parametrize("bad, says", [
    ({"seed": -1}, "seed (of the synthetic data) must be from 0 up, got -1"),
    ({"min_user_interactions": -1}, "min_user_interactions must be from 0 up (0: no filter), got -1"),
    ({"min_item_interactions": -2}, "min_item_interactions must be from 0 up (0: no filter), got -2"),
])
def test_data_configs_refuse_negative_seeds_and_minimums(bad, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        DataConfig(**bad)


def test_train_configs_refuse_seeds_numpy_cannot_take():
    with pytest.raises(ValueError, match=re.escape("seed must be from 0 to 4294967295, got 4294967296")):
        TrainConfig(seed=2**32)
    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1


def test_every_argument_of_the_command_reaches_the_shell_as_one_word():
    hostile = "x; touch /tmp/pwned $(id) `id` 'q'"
    line = command_line(ModelConfig(ac_conv="relu"), TrainConfig(), DataConfig(spec=hostile))
    words = shlex.split(line)
    assert words[:5] == ["python", "-m", "caser.train", "--data", hostile]
    assert shlex.join(words) == line
