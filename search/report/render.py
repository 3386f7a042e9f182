"""The report as one markdown string: every section in order, from one snapshot of the study.

Pure apart from the PNGs it writes when given `plots_dir`: the same study renders the same
markdown (importances are seeded, nothing depends on the clock). The final evaluation, which
trains, happens before (`search.report.final.run_final`); render only formats its results.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import optuna

from search.errors import StudyError
from search.report import DEFAULT_TOP_K, fmt
from search.report.best import best_section
from search.report.effects import effects_section
from search.report.final import FinalResults
from search.report.final_section import final_section
from search.report.importance import compute_importances
from search.report.importance_section import importance_section
from search.report.importance_bootstrap import bootstrap_importances
from search.report.noise import noise_floor, noise_note
from search.report.plots import write_plots
from search.report.recommendation import recommend, recommendation_section
from search.report.reproduce import reproduce_section
from search.report.summary import summary_section
from search.report.view import StudyView


def render(
    study: optuna.Study | StudyView,
    *,
    top_k: int = DEFAULT_TOP_K,
    plots_dir: Path | None = None,
    link_base: Path | None = None,
    final: FinalResults | None = None,
    storage: str = "",
    importance_bootstrap: int = 0,
) -> str:
    """The markdown report of a study; raises StudyError when it has no complete trial.

    plots_dir: where to write PNGs (none when None); links in the markdown are relative to
    link_base (the directory of the markdown file; the working directory when None).
    importance_bootstrap: resamples of the trials for the importance intervals (0: none; each
    costs a fANOVA fit, about a second, so the default keeps tests and quick looks fast).
    """
    view = study if isinstance(study, StudyView) else StudyView.of(study, storage)
    if top_k < 1:
        raise StudyError(f"--top must be at least 1, got {top_k}")
    view.require_complete()
    imp = compute_importances(view)
    noise = noise_floor(view)
    sections = [
        f"# Caser hyperparameter study: {fmt.text(view.name)}",
        summary_section(view, noise),
        recommendation_section(view, final, noise),
        best_section(view, top_k, noise),
        importance_section(imp, bootstrap_importances(view, importance_bootstrap)
                           if importance_bootstrap > 0 else None, noise_note(view, noise)),
        effects_section(view),
    ]
    if final is not None:
        sections.append(final_section(final))
    reproduce = reproduce_section(view, final, recommend(view, final, noise))
    if plots_dir is not None:  # last: a section that fails leaves no new plots behind
        sections.append(_plots_section(write_plots(view, imp, top_k, plots_dir), link_base))
    if reproduce:
        sections.append(reproduce)
    return "\n\n".join(sections) + "\n"


def _plots_section(paths: dict[str, Path], link_base: Path | None) -> str:
    base = link_base if link_base is not None else Path.cwd()
    lines = ["## Plots"]
    for title, path in paths.items():
        # Forward slashes so links work on GitHub whatever OS wrote the report; percent-quoted,
        # so that a --plots folder with spaces, parentheses or `<` stays one link.
        rel = quote(Path(os.path.relpath(path.resolve(), base.resolve())).as_posix())
        lines.append(f"### {title}\n\n![{title}]({rel})")
    return "\n\n".join(lines)
