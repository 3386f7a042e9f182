"""Builders and runners shared by the tests (fixtures stay in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHARED_DATA = ROOT.parent / "shared" / "data"  # real data for optional checks: tests skip without it
