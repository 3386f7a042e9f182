"""The final evaluation: retrain the top K configs and the default to convergence, then score test
once. A study's budget ranks configurations by how fast they learn (issue 14); this is where the
report asks how good they get.

For each configuration and each seed 0..S-1 (the same seeds for every config, so runs pair up):
1. converge: train on train, validate every epoch, and stop by the stopping rule (the study's
   patience and min_delta, else `DEFAULT_PATIENCE`) within a generous budget; the best validation
   epoch is the epoch count picked. The default gets exactly this, never the sweep's curtailment.
2. test: train on train+validation for the picked epoch count and score test once, keeping
   every test user's AP for the paired tests.
`final_epochs` skips step 1 and trains every config that many epochs.

Results are cached in the study's user attributes, one key per step, seed and data
(`final/trial_0007/seed_0/converge_max60_p5_d0/data_<fingerprint>`,
`final/trial_0007/seed_0/epochs_23/data_<fingerprint>`), written as each finishes: a second
report, or one after Ctrl-C, trains only what is missing. The data is the study's own, checked by
the fingerprint of its prepared split as the sweep checks it (`study_data`); a study from before
fingerprints has nothing to check against, so the key's fingerprint keeps results trained on a
file since edited from being read as its. Entries from before the key held the data are not read:
nothing in them says which data they were trained on, and a retraining costs less than a wrong
number.
The training function is injectable: tests pass a cheap fake, the CLI passes `caser_train_fn`.
The runs themselves are planned, read from the cache, trained and stored by
`search.report.final_plan.run_final`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.metric_names import metric_names
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.best import shown_trials
from search.report.final_estimate import pace
from search.report.final_runs import CaserTrain, Converged, Tested
from search.report.view import StudyView
from search.run_dirs import trial_dir_name

# (model config, train config with seed and epochs set, data config, protocol, stopping rule or
# None) -> caser.train.FitResult (metrics, history, stop_reason, eval_users, user_ap are read).
TrainFn = Callable[..., Any]
TEST_METRICS = tuple(metric_names("test"))
CACHE_PREFIX = "final/"
DATA_TAG = "/data_"  # the cache key's last segment: the data's fingerprint, abridged
FINGERPRINT_CHARS = 16  # of the sha256: 64 bits tell one data file from another
DEFAULT_PATIENCE = 5  # when the study recorded no stopping rule of its own
BUDGET_FACTOR = 5  # the final budget: this many times the study's ...
MIN_FINAL_EPOCHS = 50  # ... and never fewer epochs than this


@dataclass(frozen=True)
class Convergence:
    """How the final evaluation trains to convergence: the budget and the stopping rule
    (`caser.stopping.StoppingRule`'s settings)."""

    max_epochs: int
    patience: int
    min_delta: float
    source: str = "given"  # where the patience comes from, for the report's sentence
    rel_delta: float = 0.0
    patience_growth: float = 0.0
    warmup: int = 0

    def tag(self) -> str:
        extra = "".join(f"_{short}{value:g}" for short, value in
                        (("r", self.rel_delta), ("g", self.patience_growth), ("w", self.warmup)) if value)
        return f"max{self.max_epochs}_p{self.patience}_d{self.min_delta:g}{extra}"

    def stopping(self, metric: str, maximize: bool) -> Any:
        from caser.stopping import StoppingRule  # lightning: only when something trains

        return StoppingRule(monitor=metric, patience=self.patience, min_delta=self.min_delta,
                            mode="max" if maximize else "min", rel_delta=self.rel_delta,
                            patience_growth=self.patience_growth, warmup=self.warmup)

    def describe(self, metric: str) -> str:
        return (f"{self.stopping(metric, True).describe()} ({self.source}), at most "
                f"{fmt.count(self.max_epochs, 'epoch')}")


def convergence_rule(view: StudyView, max_epochs: int | None = None,
                     patience: int | None = None) -> Convergence:
    """The study's stopping rule (or the given/default patience) under a generous budget."""
    attrs = view.user_attrs
    study_patience = attrs.get(record.PATIENCE)
    if patience is not None:
        chosen, source = patience, "patience from --final-patience"
    elif study_patience is not None:
        chosen, source = study_patience, "the study's rule"
    else:
        chosen, source = DEFAULT_PATIENCE, "the report's default patience: the study recorded none"
    budget = max_epochs or max(BUDGET_FACTOR * (view.max_epochs or 0), MIN_FINAL_EPOCHS)
    if budget < 1:
        raise StudyError(f"--final-max-epochs must be at least 1, got {budget}")
    if chosen < 1:
        raise StudyError(f"--final-patience must be at least 1, got {chosen}")
    return Convergence(int(budget), int(chosen), float(attrs.get(record.MIN_DELTA) or 0.0), source,
                       float(attrs.get(record.REL_DELTA) or 0.0), float(attrs.get(record.PATIENCE_GROWTH) or 0.0),
                       int(attrs.get(record.WARMUP) or 0))


@dataclass
class Candidate:
    """One configuration to retrain: `key` names it in the cache (`trial_0007` or `default`)."""

    key: str
    label: str
    model_config: ModelConfig
    train_config: TrainConfig
    is_default: bool
    budget_value: float | None = None  # the trial's value at the study's budget
    budget_epoch: int | None = None  # and its best epoch there
    pace: float | None = None  # its seconds per epoch in the sweep (final_estimate.pace)


@dataclass
class FinalResults:
    seeds: list[int]
    candidates: list[Candidate]
    metric: str = "val/map"
    maximize: bool = True
    rule: Convergence | None = None  # None: fixed epochs (`final_epochs`)
    study_budget: int | None = None
    fingerprint: str = ""  # the data's, as in the cache keys
    converged: dict[str, list[Converged]] = field(default_factory=dict)  # key -> per seed
    tested: dict[str, list[Tested]] = field(default_factory=dict)  # key -> per seed
    trained: int = 0
    cached: int = 0

    @property
    def metrics(self) -> dict[str, list[dict[str, float]]]:
        """Test metrics per config key, per seed."""
        return {k: [t.metrics for t in runs] for k, runs in self.tested.items()}

    def default(self) -> Candidate:
        return next(c for c in self.candidates if c.is_default)


@dataclass(frozen=True)
class StudyData:
    """The study's data as the final evaluation trains on it: its config, the fingerprint of its
    prepared split (`search.data.data_fingerprint`) and the prepared data itself."""

    config: DataConfig
    fingerprint: str
    prepared: Any = field(default=None, repr=False)  # caser.data_module.PreparedData


def study_data(view: StudyView) -> StudyData:
    """Load the study's data; a StudyError, before anything trains, when it is not the data the
    study ran on (a file changed in place since the sweep), as a resumed sweep refuses it."""
    from caser.data_module import PreparedData  # torch: only for a final evaluation
    from caser.datasets import load_split
    from search.data import data_fingerprint

    config = view.data_config()
    prepared = PreparedData(load_split(config))
    fingerprint = data_fingerprint(prepared)
    known = view.user_attrs.get(record.DATA_FINGERPRINT)
    if known is not None and known != fingerprint:
        raise StudyError(f"study {view.name!r} was run on other data: {config.spec} has changed "
                         "since (its prepared split differs from the one the study ran on); "
                         "restore the data to run the final evaluation")
    return StudyData(config, fingerprint, prepared)


def converge_key(key: str, seed: int, rule: Convergence, fingerprint: str) -> str:
    return f"{CACHE_PREFIX}{key}/seed_{seed}/converge_{rule.tag()}{_data_tag(fingerprint)}"


def cache_key(key: str, seed: int, epochs: int, fingerprint: str) -> str:
    return f"{CACHE_PREFIX}{key}/seed_{seed}/epochs_{epochs}{_data_tag(fingerprint)}"


def _data_tag(fingerprint: str) -> str:
    return f"{DATA_TAG}{fingerprint[:FINGERPRINT_CHARS]}"


def unkeyed_entries(user_attrs: dict[str, Any]) -> int:
    """Cached results from before the cache key named the data: never read (module docstring)."""
    return sum(k.startswith(CACHE_PREFIX) and DATA_TAG not in k for k in user_attrs)


def candidates(view: StudyView, top_k: int) -> list[Candidate]:
    """The top K complete trials and the default (its trial, else the defaults with `fixed`)."""
    out = []
    for trial in shown_trials(view, top_k):
        model_config, train_config = view.configs(trial)
        is_default = view.is_default(trial)
        label = f"trial {trial.number}" + (" (default)" if is_default else "")
        key = trial_dir_name(trial.number)  # the trial's name in TensorBoard too
        best_epoch = trial.user_attrs.get(record.BEST_EPOCH)
        out.append(Candidate(key, label, model_config, train_config, is_default, trial.value,
                             int(best_epoch) if best_epoch is not None else None, pace(trial)))
    if not any(c.is_default for c in out):
        model_config, train_config = view.default_configs()
        out.append(Candidate("default", "defaults (not a trial)", model_config, train_config,
                             True))
    return out


def reproduce_epochs(res: FinalResults, key: str) -> int | None:
    """The converged epoch count for a config: the median over seeds of the epochs picked on
    validation (rounded down to a picked count on an even split); None without convergence."""
    runs = res.converged.get(key) if res.rule is not None else None
    if not runs:
        return None
    return int(statistics.median_low(c.epoch for c in runs))


def caser_train_fn(data: StudyData | None = None) -> TrainFn:
    """Train with `caser.train.fit`, loading each data split once (`data`: already loaded)."""
    return CaserTrain(data.config, data.prepared) if data is not None else CaserTrain()
