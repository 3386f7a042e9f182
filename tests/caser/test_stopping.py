"""Early stopping: the rule's semantics on a real training, and its refusals."""
from __future__ import annotations

import pytest

import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.datasets import load_split
from caser.stopping import BUDGET, PATIENCE, StoppingRule, stop_epoch, stop_reason
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
    assert err[-1] == "error: --min-delta: min_delta must be a finite number >= 0, got inf", err


def test_patience_that_ends_a_training_at_its_first_epoch_is_patience():
    rule = StoppingRule(patience=1, warmup=0)
    callback = rule.callback()
    callback.exhausted = callback.tracker.update(0.1) or True  # as after a stop at the first epoch
    assert stop_reason(callback, 1, 10) == PATIENCE
    assert stop_reason(rule.callback(), 10, 10) == BUDGET


def lightning_stop(curve: list[float], patience: int, min_delta: float, mode: str = "max") -> int:
    """After how many values Lightning's EarlyStopping ends a training on `curve`."""
    early = EarlyStopping(monitor="m", patience=patience, min_delta=min_delta, mode=mode)
    for n, value in enumerate(curve, start=1):
        if early._evaluate_stopping_criteria(torch.tensor(value, dtype=torch.float64))[0]:
            return n
    return len(curve)


def test_without_its_new_settings_the_rule_is_lightnings_early_stopping():
    rng = np.random.default_rng(0)
    for _ in range(300):
        curve = list(np.cumsum(rng.normal(0.001, 0.004, 60)))
        patience, delta, mode = int(rng.integers(1, 12)), float(rng.choice([0.0, 0.001, 0.003])), rng.choice(["max", "min"])
        rule = StoppingRule(patience=patience, min_delta=delta, mode=mode)
        assert stop_epoch(rule, curve) == lightning_stop(curve, patience, delta, mode)


def test_a_relative_min_delta_asks_the_same_share_on_any_scale():
    curve = [0.1, 0.2, 0.3, 0.3015, 0.303, 0.3045, 0.306]  # 0.5% gains once it has flattened
    rule = StoppingRule(patience=2, rel_delta=0.011)
    assert stop_epoch(rule, curve) == 5  # two evaluations without a gain of 1.1% over 0.3
    assert stop_epoch(rule, [v / 100 for v in curve]) == 5  # the same on a 100 times smaller scale
    # An absolute min_delta that suits one scale cuts the early rise on the other.
    assert stop_epoch(StoppingRule(patience=2, min_delta=0.0033), curve) == 5
    assert stop_epoch(StoppingRule(patience=2, min_delta=0.0033), [v / 100 for v in curve]) == 3


def test_patience_grows_with_the_epoch_of_the_best():
    late_best = [0.01 * n for n in range(1, 41)] + [0.3] * 15  # best at evaluation 40
    assert stop_epoch(StoppingRule(patience=5), late_best) == 45
    assert stop_epoch(StoppingRule(patience=5, patience_growth=0.25), late_best) == 50  # 10 = 40 / 4
    early_best = [0.3] + [0.2] * 20
    assert stop_epoch(StoppingRule(patience=5, patience_growth=0.25), early_best) == 6  # never below 5


def test_no_stop_before_the_warmup():
    noisy_start = [0.009, 0.008, 0.0085, 0.0083, 0.0079, 0.0082, 0.0081, 0.008] + [0.01 * n for n in range(1, 5)]
    assert stop_epoch(StoppingRule(patience=5), noisy_start) == 6
    assert stop_epoch(StoppingRule(patience=5, warmup=10), noisy_start) == len(noisy_start)


@pytest.mark.parametrize("kwargs", [{"rel_delta": -0.1}, {"rel_delta": 1.0}, {"patience_growth": 1.5},
                                    {"warmup": -1}, {"rel_delta": float("nan")}])
def test_impossible_refinements_are_refused(kwargs):
    with pytest.raises(ValueError):
        StoppingRule(patience=3, **kwargs)


def test_the_rule_state_survives_a_checkpoint_round_trip():
    rule = StoppingRule(patience=3, rel_delta=0.01, patience_growth=0.2, warmup=4)
    curve = list(np.cumsum(np.random.default_rng(1).normal(0.002, 0.004, 50)))
    whole = stop_epoch(rule, curve)
    first = rule.callback()
    for value in curve[:7]:
        first.tracker.update(value)
    resumed = rule.callback()
    resumed.load_state_dict(first.state_dict())
    for n, value in enumerate(curve[7:], start=8):
        if resumed.tracker.update(value):
            break
    assert n == whole
