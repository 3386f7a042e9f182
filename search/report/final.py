"""Section 5, the final evaluation: retrain the top K configs and the default on train+validation
for seeds 0..S-1 (the same seeds for every config, so runs pair up), evaluate on test once.

Per-seed metrics are cached in the study's user attributes under
`final/trial_0007/seed_0/epochs_12`, so a second report retrains nothing; `refresh` retrains.
The training function is injectable: tests pass a cheap fake, the CLI passes `caser_train_fn`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, TextIO

from caser.config import DataConfig, ModelConfig, TrainConfig, configs_from_params
from caser.metric_names import metric_names
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.best import shown_trials
from search.report.stats import ALPHA, compare, summarize
from search.report.view import StudyView, short_metric
from search.run_dirs import trial_dir_name

# (model config, train config with seed and epochs set, data config) -> {"test/map": ..., ...}
TrainFn = Callable[[ModelConfig, TrainConfig, DataConfig], Mapping[str, float]]
TEST_METRICS = tuple(metric_names("test"))
CACHE_PREFIX = "final/"


@dataclass
class Candidate:
    """One configuration to retrain: `key` names it in the cache (`trial_0007` or `default`)."""

    key: str
    label: str
    model_config: ModelConfig
    train_config: TrainConfig
    epochs: int
    is_default: bool


@dataclass
class FinalResults:
    seeds: list[int]
    candidates: list[Candidate]
    metrics: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # key -> per seed
    trained: int = 0
    cached: int = 0


def cache_key(key: str, seed: int, epochs: int) -> str:
    return f"{CACHE_PREFIX}{key}/seed_{seed}/epochs_{epochs}"


def candidates(view: StudyView, top_k: int, final_epochs: int | None = None) -> list[Candidate]:
    """The top K complete trials and the default (its trial, else the defaults with `fixed`)."""
    out = []
    fallback_epochs = view.max_epochs or TrainConfig().epochs
    for trial in shown_trials(view, top_k):
        model_config, train_config = view.configs(trial)
        is_default = view.is_default(trial)
        epochs = final_epochs or int(trial.user_attrs.get(record.BEST_EPOCH) or fallback_epochs)
        label = f"trial {trial.number}" + (" (default)" if is_default else "")
        key = trial_dir_name(trial.number)  # the trial's name in TensorBoard too
        out.append(Candidate(key, label, model_config, train_config, epochs, is_default))
    if not any(c.is_default for c in out):
        model_config, train_config = configs_from_params(view.fixed)
        epochs = final_epochs or fallback_epochs
        out.append(Candidate("default", "defaults (not a trial)", model_config, train_config, epochs, True))
    return out


def run_final(
    view: StudyView,
    top_k: int,
    seeds: int,
    train_fn: TrainFn,
    final_epochs: int | None = None,
    refresh: bool = False,
    progress: TextIO | None = None,
) -> FinalResults:
    """Train what is not cached (everything with `refresh`), store it, return all results.

    progress: where to write a line per training (report.py passes stderr); None is silent.
    """
    if seeds < 1:
        raise StudyError(f"--final-seeds must be at least 1, got {seeds}")
    if view.study is None:
        raise StudyError("the final evaluation needs the study itself, to cache its results")
    data = view.data_config()
    cands = candidates(view, top_k, final_epochs)
    results = FinalResults(seeds=list(range(seeds)), candidates=cands)
    todo = [
        (c, s)
        for c in cands
        for s in results.seeds
        if refresh or cache_key(c.key, s, c.epochs) not in view.user_attrs
    ]
    done = 0
    for cand in cands:
        per_seed = []
        for seed in results.seeds:
            key = cache_key(cand.key, seed, cand.epochs)
            if not refresh and key in view.user_attrs:
                per_seed.append(dict(view.user_attrs[key]))
                results.cached += 1
                continue
            done += 1
            start = time.perf_counter()
            if progress:
                print(
                    f"[final {done}/{len(todo)}] {cand.label}, seed {seed}, "
                    f"{cand.epochs} epochs ...",
                    file=progress,
                    flush=True,
                )
            train_config = replace(cand.train_config, seed=seed, epochs=cand.epochs)
            metrics = {k: float(v) for k, v in train_fn(cand.model_config, train_config, data).items()}
            view.study.set_user_attr(key, metrics)
            view.user_attrs[key] = metrics
            per_seed.append(metrics)
            results.trained += 1
            if progress:
                took = time.perf_counter() - start
                print(f"    test/map {metrics.get('test/map', float('nan')):.4f} ({took:.1f} s)",
                      file=progress, flush=True)
        results.metrics[cand.key] = per_seed
    return results


def caser_train_fn() -> TrainFn:
    """Train with `caser.train.fit(..., protocol="test")`, loading each data split once."""
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from caser.train import fit

    prepared: dict[DataConfig, PreparedData] = {}  # windows and evaluation sets built once

    def train_fn(model_config: ModelConfig, train_config: TrainConfig, data_config: DataConfig) -> Mapping[str, float]:
        if data_config not in prepared:
            prepared[data_config] = PreparedData(load_split(data_config))
        return fit(model_config, train_config, prepared[data_config], protocol="test").metrics

    return train_fn


def final_section(res: FinalResults) -> str:
    """Mean +/- std, 95% t-intervals per test metric, and MAP tests against the default."""
    n = len(res.seeds)
    present = {k for runs in res.metrics.values() for run in runs for k in run}
    metrics = [m for m in TEST_METRICS if m in present]
    head = (
        f"## Final evaluation on test ({n} seed{'s' if n != 1 else ''}: "
        f"{', '.join(map(str, res.seeds))}; trained on train+validation)"
    )
    # How many runs came from the cache goes to stderr, not here: the markdown must not change
    # between a first run and a cached second one.
    lead = (
        "Each configuration is retrained with the same seeds for the epochs its trial chose "
        "(best epoch, unless --final-epochs) and evaluated once on test. Per-seed results are "
        "cached in the study's user attributes (`final/<trial>/seed_<s>/epochs_<e>`)."
    )
    mean_rows, ci_rows = [], []
    for cand in res.candidates:
        runs = res.metrics.get(cand.key, [])
        head_cells = {"config": cand.label, "epochs": str(cand.epochs)}
        mean_row, ci_row = dict(head_cells), dict(head_cells)
        for m in metrics:
            s = summarize([r[m] for r in runs if m in r])
            std = f" ± {s.std:.4f}" if s.n > 1 else ""
            mean_row[short_metric(m)] = f"{s.mean:.4f}{std}"
            ci_row[short_metric(m)] = f"[{s.lo:.4f}, {s.hi:.4f}]" if s.n > 1 else "n/a"
        mean_rows.append(mean_row)
        ci_rows.append(ci_row)
    parts = [head, lead, "### Mean ± std", fmt.table(mean_rows)]
    parts += [f"### 95% confidence interval of the mean (t, {n - 1} dof)", fmt.table(ci_rows)]
    if n < 2:
        parts.append("One seed gives no spread: run with `--final-seeds 2` or more for intervals.")
    parts.append(_tests(res))
    return "\n\n".join(parts)


def _tests(res: FinalResults) -> str:
    default = next(c for c in res.candidates if c.is_default)
    base = [r["test/map"] for r in res.metrics.get(default.key, [])]
    rows = []
    for cand in res.candidates:
        if cand is default:
            continue
        runs = [r["test/map"] for r in res.metrics.get(cand.key, [])]
        c = compare(runs, base)
        rows.append(
            {
                "config": cand.label,
                "MAP": fmt.number(summarize(runs).mean),
                "Δ MAP vs default": f"{c.diff:+.4f}",
                "Welch p": _p(c.welch_p),
                "Wilcoxon p (paired)": _p(c.wilcoxon_p),
                "note": c.note,
            }
        )
    head = f"### MAP against the default ({default.label}, MAP {fmt.number(summarize(base).mean)})"
    if not rows:
        return f"{head}\n\nOnly the default was evaluated."
    tail = (
        f"p < {ALPHA} reads as a real difference at the 5% level, one test per row and no "
        "correction for testing several configs."
    )
    return "\n\n".join([head, fmt.table(rows), tail])


def _p(p: float) -> str:
    return "n/a" if p != p else f"{p:.3g}"
