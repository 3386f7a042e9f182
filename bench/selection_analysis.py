"""The tables of `bench/selection.py`: recorded learning curves replayed under each factor of a
selection that does not hold on test.

    python bench/selection.py --out runs/selection --analyse

Each factor changes one thing against today's final evaluation (the paper's validation, the
study's stopping rule, the picked epoch count retrained on train+validation):
- the validation horizon: forward chaining, validation scoring 20% like test;
- retraining: test scored by the train-only model instead of one retrained on train+validation;
- the epoch count: the best epoch on test (an oracle no selection has) instead of the picked one;
- the stopping rule's min_delta: 0 instead of the study's.
For each, every configuration's validation and test MAP (means over seeds) against the default's,
and Kendall's tau between the validation ranking and the test ranking over all configurations.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scipy import stats

from caser.stopping import StoppingRule, stop_epoch
from search.report.seed_level import seed_means_level

STUDY_RULE = StoppingRule(patience=10, min_delta=0.001)  # the default study's rule before issue 23


def picked_epoch(curve: Sequence[float], rule: StoppingRule) -> int:
    """The 1-based epoch the final evaluation picks on `curve` under `rule`: the best value of
    the epochs the rule lets it run, the first on ties."""
    run = curve[:stop_epoch(rule, list(curve))]
    return 1 + max(range(len(run)), key=lambda i: (run[i], -i))


def at(curve: Sequence[float], epoch: int) -> float:
    """The curve's value after `epoch` epochs (its last one when it ended sooner)."""
    return curve[min(epoch, len(curve)) - 1]


@dataclass(frozen=True)
class Measured:
    """One configuration under one factor: validation and test MAP per seed, epochs per seed."""

    val: list[float]
    test: list[float]
    epochs: list[int]


Factor = Callable[[dict[str, Any]], tuple[float, float, int]]  # runs of one seed -> (val, test, epochs)


def _paper(runs: dict[str, Any], rule: StoppingRule = STUDY_RULE, test_of: str = "retrained") -> tuple[float, float, int]:
    curve = runs["paper"]["curve"]
    e = picked_epoch(curve, rule)
    if test_of == "retrained":
        test = at(runs["test"]["curve"], e)
    elif test_of == "train-only":
        test = at(runs["paper"]["test_from_train_only"], e)
    else:  # the oracle: the best epoch on test
        test = max(runs["test"]["curve"])
    return curve[e - 1], test, e


def _forward(runs: dict[str, Any], rule: StoppingRule = STUDY_RULE) -> tuple[float, float, int]:
    curve = runs["forward"]["curve"]
    e = picked_epoch(curve, rule)
    return curve[e - 1], at(runs["test"]["curve"], e), e


FACTORS: dict[str, Factor] = {
    "today: paper validation (70% -> next 10%), min_delta 0.001, retrained for the picked epochs": _paper,
    "validation horizon: forward chaining (60% -> next 20%), as test's": _forward,
    "no retraining: the train-only model scores test": lambda r: _paper(r, test_of="train-only"),
    "epoch count: the best epoch on test (oracle)": lambda r: _paper(r, test_of="oracle"),
    "stopping rule: min_delta 0": lambda r: _paper(r, rule=StoppingRule(patience=10)),
}


def measure(stored: dict[str, Any], seeds: int, factor: Factor) -> dict[str, Measured]:
    out = {}
    for config in stored["configs"]:
        rows = []
        for seed in range(seeds):
            runs = {arm: stored["runs"].get(f"{config['key']}/{arm}/seed_{seed}") for arm in ("paper", "forward", "test")}
            if all(runs.values()):
                rows.append(factor(runs))
        if rows:
            out[config["key"]] = Measured([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return out


def kendall(measured: dict[str, Measured]) -> float:
    keys = list(measured)
    if len(keys) < 3:
        return math.nan
    tau = stats.kendalltau([statistics.fmean(measured[k].val) for k in keys],
                           [statistics.fmean(measured[k].test) for k in keys]).statistic
    return float(tau)


def _mean_sd(values: list[float]) -> str:
    sd = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4f}{sd}"


def analyse(stored: dict[str, Any], seeds: int) -> str:
    """Markdown: per factor, each configuration against the default, and a summary."""
    labels = {c["key"]: c["label"] for c in stored["configs"]}
    default = next(c["key"] for c in stored["configs"] if c["is_default"])
    detail = ["| factor | config | val MAP | test MAP | val / default | test / default | test Δ (95% interval over seeds) | epochs |",
              "|---|---|---|---|---|---|---|---|"]
    summary = ["| factor | configs | Kendall tau (val vs test) | lead on val, behind on test |", "|---|---|---|---|"]
    for name, factor in FACTORS.items():
        measured = measure(stored, seeds, factor)
        if default not in measured:
            continue
        base_val, base_test = (statistics.fmean(measured[default].val), statistics.fmean(measured[default].test))
        reversed_ = []
        for key, m in measured.items():
            val, test = statistics.fmean(m.val), statistics.fmean(m.test)
            level = seed_means_level(m.test, measured[default].test)
            interval = (f"{level.diff:+.4f} [{level.lo:+.4f}, {level.hi:+.4f}]"
                        if key != default and level.lo == level.lo else "")
            detail.append(f"| {name} | {labels[key]} | {_mean_sd(m.val)} | {_mean_sd(m.test)} | "
                          f"{val / base_val:.3f} | {test / base_test:.3f} | {interval} | "
                          f"{', '.join(map(str, m.epochs))} |")
            if key != default and val > base_val and test < base_test:
                reversed_.append(labels[key])
        summary.append(f"| {name} | {len(measured)} | {kendall(measured):.2f} | {', '.join(reversed_) or 'none'} |")
    seeds_seen = sorted({run["seed"] for run in stored["runs"].values()})
    head = f"Seeds {', '.join(map(str, seeds_seen))}; means over seeds, ± the seeds' standard deviation."
    return "\n\n".join([head, "\n".join(summary), "\n".join(detail)]) + "\n"
