"""Hand-made studies for the report tests: trials added with `create_trial`, no training; and
a cheap stand-in for the final evaluation's training."""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import TrialState, create_trial
from sqlalchemy import event

ACTS = ["relu", "tanh", "sigm", "iden"]
SPACE = {
    "L": IntDistribution(1, 10),
    "T": IntDistribution(1, 3),
    "d": IntDistribution(8, 128, log=True),
    "nv": IntDistribution(1, 8),
    "nh": IntDistribution(4, 32),
    "ac_conv": CategoricalDistribution(ACTS),
    "ac_fc": CategoricalDistribution(ACTS),
    "dropout": FloatDistribution(0.0, 0.7),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "l2": FloatDistribution(1e-8, 1e-3, log=True),
    "neg_samples": IntDistribution(1, 10),
    "batch_size": CategoricalDistribution([128, 256, 512, 1024]),
}
DEFAULTS = {
    "L": 5, "T": 3, "d": 50, "nv": 4, "nh": 16, "ac_conv": "relu", "ac_fc": "relu",
    "dropout": 0.5, "lr": 1e-3, "l2": 1e-6, "neg_samples": 3, "batch_size": 512,
}
VAL = ["val/prec@1", "val/prec@5", "val/prec@10", "val/recall@1", "val/recall@5",
       "val/recall@10", "val/ndcg@10", "val/hit@10"]
MAX_EPOCHS = 10


def storage(tmp_path: Path, name: str = "demo") -> str:
    return f"sqlite:///{tmp_path / f'{name}.db'}"


def rdb(tmp_path: Path, name: str = "demo") -> RDBStorage:
    """The SQLite storage of `storage()`, without fsync: adding 70 trials takes 0.2 s, not 6."""
    rdb_storage = RDBStorage(storage(tmp_path, name))

    def no_sync(conn: Any, _record: Any) -> None:
        cursor = conn.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    event.listen(rdb_storage.engine, "connect", no_sync)
    rdb_storage.engine.dispose()  # connections opened before the listener keep syncing
    return rdb_storage


def sample(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dist in SPACE.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = rng.choice(dist.choices)
        elif dist.log:
            x = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
            out[name] = int(round(x)) if isinstance(dist, IntDistribution) else x
        elif isinstance(dist, IntDistribution):
            out[name] = rng.randint(dist.low, dist.high)
        else:
            out[name] = rng.uniform(dist.low, dist.high)
    return out


def default_value(p: dict[str, Any], rng: random.Random) -> float:
    """A metric that lr and ac_conv drive, plus a little of everything else."""
    v = 0.12 - 0.02 * (math.log10(p["lr"]) + 2.5) ** 2 + (0.02 if p["ac_conv"] == "relu" else 0)
    return v + 0.002 * rng.random()


def attrs(value: float, epochs: int, number: int, is_default: bool = False) -> dict[str, Any]:
    a: dict[str, Any] = {
        "val/map": value, "best_epoch": max(1, epochs - 1), "epochs_run": epochs,
        "wall_time_s": 3.0 * epochs, "num_params": 10_000 + number, "is_default": is_default,
    }
    a.update({m: value * (1 + 0.1 * i) for i, m in enumerate(VAL)})
    return a


def curve(value: float, epochs: int) -> dict[int, float]:
    return {e: value * (e + 1) / epochs for e in range(epochs)}


def make_study(
    tmp_path: Path,
    name: str = "demo",
    n: int = 24,
    seed: int = 0,
    value: Callable[[dict[str, Any], random.Random], float] = default_value,
    pruned_every: int = 3,
    default: bool = True,
    extra_states: bool = True,
) -> optuna.Study:
    """A study like the sweep writes: a default trial first, then n sampled trials, about a
    third pruned; with extra_states also one failed, one running and one waiting trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=rdb(tmp_path, name),
                                direction="maximize")
    study.set_user_attr("metric", "val/map")
    study.set_user_attr("direction", "maximize")
    study.set_user_attr("data", {"spec": "synthetic", "split": "ratio", "seed": 0})
    study.set_user_attr("max_epochs", MAX_EPOCHS)
    study.set_user_attr("fixed", {"epochs": MAX_EPOCHS})
    study.set_user_attr("study_file", f"studies/{name}.toml")
    rng = random.Random(seed)
    trials = [(DEFAULTS, True)] if default else []
    trials += [(sample(rng), False) for _ in range(n)]
    for i, (params, is_default) in enumerate(trials):
        v = value(params, rng)
        if i % pruned_every == pruned_every - 1 and not is_default:
            epochs = 1 + i % 4
            study.add_trial(create_trial(
                state=TrialState.PRUNED, params=params, distributions=SPACE,
                user_attrs={"epochs_run": epochs, "wall_time_s": 3.0 * epochs,
                            "reason": "pruned by median"},
                intermediate_values=curve(v * 0.6, epochs)))
        else:
            study.add_trial(create_trial(
                value=v, params=params, distributions=SPACE,
                user_attrs=attrs(v, MAX_EPOCHS, i, is_default),
                intermediate_values=curve(v, MAX_EPOCHS)))
    if extra_states:
        study.add_trial(create_trial(state=TrialState.FAIL, params=sample(rng),
                                     distributions=SPACE, user_attrs={"reason": "CUDA OOM"}))
        study.add_trial(create_trial(state=TrialState.RUNNING, params=sample(rng),
                                     distributions=SPACE))
        study.add_trial(create_trial(state=TrialState.WAITING))
    return study


class FakeTrain:
    """The final evaluation's train function, without training: counts calls, and its numbers
    depend on lr, epochs and seed only, so runs are reproducible.

    Validation (converging): the metric rises towards a plateau and then slowly falls, `curve(lr)`
    giving (plateau, epochs to get most of the way there); the stopping rule is applied epoch by epoch as
    Lightning's EarlyStopping would. Test: every test metric and each of `users` users' AP
    follow the curve at the epochs trained, plus per-user noise that depends on the seed only
    (the same users are easy or hard under every config, so runs pair up).
    """

    def __init__(self, curve: Callable[[float], tuple[float, float]] | None = None,
                 users: int = 40) -> None:
        self.calls: list[tuple[float, int, int]] = []
        self.protocols: list[str] = []
        self.curve = curve or (lambda lr: (0.1 + 0.01 * math.log10(lr), 3.0))
        self.users = users

    def value(self, lr: float, seed: int, epoch: int) -> float:
        plateau, speed = self.curve(lr)
        # Rises, peaks near epoch 3 x speed, then slowly overfits.
        return plateau * (1 - math.exp(-epoch / speed) - epoch / (20 * speed)) + 0.001 * seed

    def __call__(self, model_config, train_config, data_config, protocol="test", stopping=None):
        import numpy as np

        from caser.train import FitResult
        from search.report.final import TEST_METRICS

        lr, seed = train_config.lr, train_config.seed
        self.calls.append((lr, seed, train_config.epochs))
        self.protocols.append(protocol)
        if protocol == "validation":
            history, best, waited, reason = [], -math.inf, 0, "budget"
            for epoch in range(1, train_config.epochs + 1):
                v = self.value(lr, seed, epoch)
                history.append({"epoch": epoch, "train/loss": 1.0 / epoch, "val/map": v})
                if stopping is not None and stopping.patience is not None:
                    if v > best + stopping.min_delta:
                        best, waited = v, 0
                    else:
                        waited += 1
                        if waited >= stopping.patience:
                            reason = "patience"
                            break
            return FitResult(metrics={"val/map": history[-1]["val/map"]}, history=history,
                             stop_reason=reason)
        base = self.value(lr, seed, train_config.epochs)
        noise = np.random.default_rng(seed).normal(0.0, 0.02, self.users)
        ap = np.clip(base + noise + 0.05 * np.sin(np.arange(self.users)), 0.0, 1.0)
        return FitResult(metrics={m: base * (1 + i / 10) for i, m in enumerate(TEST_METRICS)},
                         eval_users=np.arange(100, 100 + self.users), user_ap=ap,
                         stop_reason="budget")


def record_settings(study: optuna.Study, patience: int | None = 3, seed: int = 0) -> None:
    """The study attributes a sweep with stopping rules records (older studies lack them)."""
    study.set_user_attr("patience", patience)
    study.set_user_attr("min_delta", 0.001)
    study.set_user_attr("seed", seed)
    study.set_user_attr("sampler", {"name": "tpe", "args": {"seed": seed, "multivariate": True}})
    study.set_user_attr("pruner", {"name": "hyperband",
                                   "options": {"min_resource": 1, "max_resource": MAX_EPOCHS,
                                               "reduction_factor": 3}})


def add_trials_without(study: optuna.Study, param: str, n: int, seed: int = 3) -> None:
    """n complete trials from a part of the space that lacks `param` (a conditional one)."""
    rng = random.Random(seed)
    for _ in range(n):
        params = {k: v for k, v in sample(rng).items() if k != param}
        study.add_trial(create_trial(value=rng.random() / 10, params=params,
                                     distributions={k: SPACE[k] for k in params}))


def write_events(path: Path, seed: int = 0, users: int = 30, items: int = 40,
                 per_user: int = 12) -> Path:
    """A small data file (user, item, time per line); another seed gives other data in the same
    file, as an edit in place would."""
    rng = random.Random(seed)
    path.write_text("".join(f"{u}\t{rng.randrange(items)}\t{t}\n"
                            for u in range(users) for t in range(per_user)))
    return path


def record_data(study: optuna.Study, path: Path) -> str:
    """Record `path` as the study's data with its fingerprint, as sweep.py does; returns it."""
    from caser.config import DataConfig
    from caser.data_module import PreparedData
    from caser.datasets import load_split
    from search.data import data_fingerprint

    config = DataConfig(spec=str(path))
    fingerprint = data_fingerprint(PreparedData(load_split(config)))
    study.set_user_attr("data", {"spec": str(path), "format": "auto", "holdout": "ratio",
                                 "seed": 0})
    study.set_user_attr("data_fingerprint", fingerprint)
    return fingerprint


class KillsItsProcess:
    """A train_fn for worker processes that dies as an out-of-memory kill would: SIGKILL, no
    result, no exception for the pool to pass on."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
