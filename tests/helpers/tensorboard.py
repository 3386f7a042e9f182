"""TensorBoard's own reader over a trial's run directory, and the HParams entry it holds."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def read_run(run_dir: Path):
    """An EventAccumulator over one trial's run directory, nothing sampled away."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    kinds = ("compressedHistograms", "images", "audio", "scalars", "histograms", "tensors")
    accumulator = EventAccumulator(str(run_dir), size_guidance={k: 0 for k in kinds})
    accumulator.Reload()
    return accumulator


def hparams_of(accumulator) -> tuple[list[str], dict[str, Any]]:
    """(hyperparameter keys declared by the run's HParams experiment, the session's values)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")
    keys: list[str] = []
    values: dict[str, Any] = {}
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("experiment"):
            keys = [info.name for info in data.experiment.hparam_infos]
        if data.HasField("session_start_info"):
            for name, value in data.session_start_info.hparams.items():
                values[name] = getattr(value, value.WhichOneof("kind"))
    return keys, values
