"""Early stopping: the rule's semantics on a real training, and its refusals."""
from __future__ import annotations

import pytest

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.datasets import load_split
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from caser.stopping import BUDGET, PATIENCE, StoppingRule, stop_reason
from caser.train import fit, main
from tests.helpers.studies import TINY_DATA

SMALL = ModelConfig(d=8, nv=1, nh=2)


def _best_run_then_stall(history: list[dict[str, float]], patience: int, min_delta: float) -> bool:
    """True when the last `patience` epochs did not beat the best before them by > min_delta."""
    values = [row["val/map"] for row in history]
    best_before = max(values[:-patience])
    return all(v <= best_before + min_delta for v in values[-patience:])


def test_patience_ends_a_training_once_the_metric_stalls():
    split = load_split(DataConfig(spec=TINY_DATA))
    # A learning rate this high learns in a few epochs and then wanders: it must stop early.
    result = fit(SMALL, TrainConfig(epochs=40, lr=0.05), split, stopping=StoppingRule(patience=2))
    assert result.stop_reason == PATIENCE
    assert result.epochs_run < 40
    assert _best_run_then_stall(result.history, 2, 0.0)
    # ...and not one epoch sooner: before the last epoch the rule was not yet met.
    assert not _best_run_then_stall(result.history[:-1], 2, 0.0)


def test_a_huge_min_delta_stops_after_patience_plus_one_evaluations():
    split = load_split(DataConfig(spec=TINY_DATA))
    result = fit(SMALL, TrainConfig(epochs=10), split, stopping=StoppingRule(patience=3, min_delta=1.0))
    assert (result.epochs_run, result.stop_reason) == (4, PATIENCE)


def test_without_a_rule_the_whole_budget_trains():
    result = fit(SMALL, TrainConfig(epochs=3), load_split(DataConfig(spec=TINY_DATA)))
    assert (result.epochs_run, result.stop_reason) == (3, BUDGET)


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 2, "min_delta": -0.1},
                                    {"patience": 2, "min_delta": float("nan")},
                                    {"patience": 1, "min_delta": float("inf")}, {"mode": "up"}])
def test_impossible_rules_are_refused(kwargs):
    with pytest.raises(ValueError):
        StoppingRule(**kwargs)


def test_early_stopping_on_the_test_protocol_is_refused():
    with pytest.raises(ValueError, match="validation protocol"):
        fit(SMALL, TrainConfig(epochs=2), load_split(DataConfig(spec=TINY_DATA)), "test",
            stopping=StoppingRule(patience=1))


def test_the_command_line_stops_early_and_says_why(capsys):
    assert main(["--data", TINY_DATA, "--d", "8", "--nv", "1", "--nh", "2", "--epochs", "10",
                 "--patience", "1", "--min-delta", "1"]) == 0
    out = capsys.readouterr().out
    assert " 2 epochs in " in out and "(ended by patience)" in out


def test_the_command_line_refuses_an_infinite_min_delta_in_one_line(capsys):
    # Every training would stop after its first epoch, for a reason the README did not list.
    assert main(["--data", TINY_DATA, "--d", "8", "--nv", "1", "--nh", "2", "--epochs", "3",
                 "--patience", "1", "--min-delta", "inf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: min_delta must be a finite number >= 0, got inf", err


def test_patience_that_ends_a_training_at_its_first_epoch_is_patience():
    # Lightning records a stop at epoch 0 as stopped_epoch 0, the value of "never stopped".
    rule = StoppingRule(patience=1).callback()
    rule.stopped_epoch, rule.stopping_reason = 0, EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert stop_reason(rule, 1, 10) == PATIENCE
    assert stop_reason(StoppingRule(patience=1).callback(), 10, 10) == BUDGET
