"""TensorBoard for a sweep: one run per trial, `runs/<study>/trial_0007/`, and its HParams entry.

Lightning's TensorBoardLogger writes the per-epoch curves (x axis: epoch). The HParams entry is
written once a trial has ended, so that it can carry the trial's state; every trial lists the
same hyperparameter keys (all config fields plus `state`) and the same metric keys
(`best/val/map`, ...: the validation metrics at the trial's best epoch).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from torch.utils.tensorboard.summary import hparams

from caser.metric_names import metric_names
from search.run_dirs import trial_dir, trial_dir_name


def trial_logger(runs_dir: Path, study_name: str, number: int) -> TensorBoardLogger:
    """The logger of the trial's run, `trial_dir(runs_dir, study_name, number)`."""
    return TensorBoardLogger(
        save_dir=str(runs_dir), name=study_name, version=trial_dir_name(number), default_hp_metric=False
    )


def write_hparams(
    logger: TensorBoardLogger, params: Mapping[str, Any], state: str, best: Mapping[str, float], best_epoch: int
) -> None:
    """The trial's HParams entry: params + state, and its best metrics as `best/<name>` scalars."""
    hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in params.items()}
    hp["state"] = state
    metric_keys = {f"best/{name}": best.get(name, float("nan")) for name in metric_names("val")}
    experiment = logger.experiment
    for key, value in metric_keys.items():
        if key[len("best/"):] in best:
            experiment.add_scalar(key, value, best_epoch)
    exp, ssi, sei = hparams(hp, metric_keys)
    if state == "FAIL":  # torch always writes STATUS_SUCCESS: the dashboard's Status column
        _set_status(sei, api_pb2.STATUS_FAILURE)
    writer = experiment._get_file_writer()  # the hparams plugin summaries go in the run's own file
    for summary in (exp, ssi, sei):
        writer.add_summary(summary)
    experiment.flush()


def _set_status(session_end: Any, status: int) -> None:
    """Rewrite the status in a session-end summary made by torch's `hparams`."""
    metadata = session_end.value[0].metadata.plugin_data
    data = plugin_data_pb2.HParamsPluginData.FromString(metadata.content)
    data.session_end_info.status = status
    metadata.content = data.SerializeToString()


def log_inherited(logger: TensorBoardLogger, rows: list[dict[str, float]]) -> None:
    """A resumed trial's run starts with the epochs its checkpoint held (their loss and
    validation metrics, as the dead original logged them), so the run shows the whole curve,
    as the study does."""
    for row in rows:
        for name, value in row.items():
            if name == "train/loss" or name.startswith("val/"):
                logger.experiment.add_scalar(name, value, int(row["epoch"]))
    logger.experiment.flush()


def mark_dead_run(runs_dir: Path, study_name: str, number: int, params: Mapping[str, Any]) -> None:
    """A FAIL HParams entry in the run of a trial whose worker died: it never wrote one. Each
    retry marks the trial it retries, so a chain of dead trials is marked one by one."""
    if trial_dir(runs_dir, study_name, number).is_dir():
        write_hparams(trial_logger(runs_dir, study_name, number), params, "FAIL", {}, 0)
