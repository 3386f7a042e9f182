"""Shared fixtures for the sweep tests: tiny study files, the sweep CLI in-process and as users
run it, and TensorBoard's own reader over a trial's run directory.

    def test_x(study_file, tmp_path):
        path = study_file(space={"lr": "{ float = [1e-4, 1e-2], log = true }"}, max_epochs=2)
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = "synthetic:users=60,items=100,interactions=900"  # ~600 training events, 1 batch


def toml_value(value: Any) -> str:
    """A Python value as TOML; strings that already hold TOML (`"{ int = [1, 3] }"`) pass as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.lstrip().startswith(("{", "[", '"')) else f'"{value}"'
    return repr(value)


def study_toml(
    space: dict[str, Any] | None = None,
    pruners: dict[str, dict[str, Any]] | None = None,
    data: str = TINY_DATA,
    **study: Any,
) -> str:
    """A study file's text: [study] keys from **study (max_epochs 1, random sampler, no pruner
    unless given), [pruners.*], [data] spec, and a [space] of raw TOML values."""
    keys = {"max_epochs": 1, "sampler": "random", "pruner": "none", "seed": 0, **study}
    lines = ["[study]", *(f"{k} = {toml_value(v)}" for k, v in keys.items())]
    for name, options in (pruners or {}).items():
        lines += ["", f"[pruners.{name}]", *(f"{k} = {toml_value(v)}" for k, v in options.items())]
    lines += ["", "[data]", f"spec = {toml_value(data)}", "", "[space]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (space or {"lr": "{ float = [1e-4, 1e-2], log = true }"}).items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def study_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny study TOML (see `study_toml`); `name` is the study's name (the file's stem)."""

    def write(name: str = "tiny", folder: Path | None = None, **kwargs: Any) -> Path:
        path = (folder or tmp_path / "studies") / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(study_toml(**kwargs))
        return path

    return write


@pytest.fixture
def sweep_main(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """`sweep.main(argv)` in this process: (exit code, stderr). Fast: no interpreter start-up."""
    import sweep

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = sweep.main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run


def sweep_cli(*args: Any) -> subprocess.Popen:
    """`python sweep.py ARGS` from the repository root, as users run it (started, not awaited)."""
    return subprocess.Popen(
        [sys.executable, "sweep.py", *(str(a) for a in args)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(procs: Sequence[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str]]:
    """Wait for CLI runs started together (they overlap: ~4 s of imports each): (code, stderr)."""
    errs = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, err) for p, err in zip(procs, errs)]


def load_study(storage: str | Path, name: str = "tiny"):
    """The stored study (an SQLite path or URL), for asserting on its trials."""
    import optuna

    url = storage if str(storage).startswith("sqlite:") else f"sqlite:///{storage}"
    return optuna.load_study(study_name=name, storage=str(url))


def read_run(run_dir: Path):
    """TensorBoard's own reader over one trial's run directory, nothing sampled away."""
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
