"""caser's command line: the command that rebuilds a configuration names every flag and parses
back to the same configs, and the earlier flag names still work."""
from __future__ import annotations

import argparse
import json
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
