"""The study report: a snapshot of an Optuna study rendered as markdown, one module per section.

`render(view, ...)` is pure (study in, markdown out); `report.py` at the repository root is the
CLI around it:  python report.py --study default --out REPORT.md
"""
from __future__ import annotations

from search.report.render import render
from search.report.view import StudyView

__all__ = ["StudyView", "render"]
