"""Fixtures shared by the tests (builders and runners are in tests/helpers/).

    def test_x(study_file, tmp_path):
        path = study_file(space={"lr": "{ float = [1e-4, 1e-2], log = true }"}, max_epochs=2)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.helpers.postgres import postgres_url  # noqa: F401  (a fixture: a throwaway PostgreSQL server)
from tests.helpers.studies import study_toml


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
    """`sweep.main(argv)` in this process: (exit code, stderr). Fast: no interpreter start-up.
    With `--workers 1` unless the test gives --workers (the default is the usable cores)."""
    import sweep

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        argv = [str(a) for a in args]
        # One process, as the tests expect, unless a test asks for workers.
        code = sweep.main(argv if "--workers" in argv else ["--workers", "1", *argv])
        return code, capsys.readouterr().err

    return run
