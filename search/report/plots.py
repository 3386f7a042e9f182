"""Section 6, plots: optimisation history, importances, validation curves, slice plots (PNG).

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so no global backend or
state is touched (the Agg canvas is what `savefig` uses for PNG) and plots from one report
cannot leak into another.
"""
from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from search.report.importance import EVALUATORS, Importances
from search.report.view import StudyView

DPI = 110
# PNG metadata without the matplotlib version keeps files byte-stable across upgrades.
METADATA = {"Software": None}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata=METADATA)
    return path


def history_plot(view: StudyView, path: Path) -> Path:
    """Each complete trial's value by trial number, pruned trials' last value, best so far."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    done = sorted(view.ranked(), key=lambda t: t.number)
    pruned = [t for t in view.by_state(TrialState.PRUNED) if t.intermediate_values]
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
            marker="x", color="0.6", s=18, label="pruned (last reported value)",
        )
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, color="tab:blue",
               label="complete")
    best, xs, ys = None, [], []
    for t in done:
        if best is None or (t.value > best if view.maximize else t.value < best):
            best = t.value
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    default = view.default_trial()
    if default is not None and default.value is not None:
        ax.scatter([default.number], [default.value], marker="*", s=140, color="tab:orange",
                   zorder=3, label="default config")
    ax.set(xlabel="trial number", ylabel=view.metric,
           title=f"Optimisation history: {view.name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def importance_plot(imp: Importances, path: Path) -> Path | None:
    """Horizontal bars, both evaluators side by side per parameter, most important on top."""
    if not imp.values:
        return None
    names = imp.order()[::-1]
    fig = Figure(figsize=(7, 0.45 * len(names) + 1.5))
    ax = fig.add_subplot()
    height = 0.8 / len(EVALUATORS)
    for i, name in enumerate(e for e in EVALUATORS if e in imp.values):
        vals = [imp.values[name].get(p, 0.0) for p in names]
        ax.barh([k + (i - 0.5) * height for k in range(len(names))], vals, height=height,
                label=name)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="normalised importance", title=f"Hyperparameter importances "
           f"({imp.n_complete} complete trials)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def curves_plot(view: StudyView, top_k: int, path: Path) -> Path:
    """Per-epoch validation curves: the top K trials in colour against pruned ones in grey."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    top = view.ranked()[:top_k]
    for k, t in enumerate(view.by_state(TrialState.PRUNED)):
        steps = sorted(t.intermediate_values)
        ax.plot([s + 1 for s in steps], [t.intermediate_values[s] for s in steps], color="0.7",
                lw=0.8, label="pruned" if k == 0 else None)
    for t in top:
        steps = sorted(t.intermediate_values)
        ax.plot([s + 1 for s in steps], [t.intermediate_values[s] for s in steps], lw=1.8,
                marker="o", ms=3, label=f"trial {t.number}")
    ax.set(xlabel="epoch", ylabel=view.metric,
           title=f"Validation curves: top {len(top)} trials vs pruned")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def slice_plot(view: StudyView, path: Path) -> Path | None:
    """The metric against each sampled parameter, one panel each, colour = trial number."""
    names = view.param_names()
    done = view.ranked()
    if not names or not done:
        return None
    dists = view.distributions()
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    # tight_layout fights the shared colorbar; the constrained engine places it.
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows), layout="constrained")
    fig.suptitle(f"Slice plot: {view.metric} per hyperparameter (complete trials)")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        pts = [(t.params[name], t.value, t.number) for t in done if name in t.params]
        dist = dists.get(name)
        if isinstance(dist, CategoricalDistribution):
            order = [str(c) for c in dist.choices]
            xs = [order.index(str(p[0])) for p in pts]
            ax.set_xticks(range(len(order)), order)
        else:
            xs = [p[0] for p in pts]
            if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
                ax.set_xscale("log")
            elif isinstance(dist, IntDistribution):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        sc = ax.scatter(xs, [p[1] for p in pts], c=[p[2] for p in pts], cmap="viridis", s=12)
        ax.set_xlabel(name)
        if i % cols == 0:
            ax.set_ylabel(view.metric)
        ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=fig.axes, label="trial number", shrink=0.8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=METADATA)
    return path


def write_plots(view: StudyView, imp: Importances, top_k: int, out_dir: Path) -> dict[str, Path]:
    """Every plot into out_dir; returns {title: path} for the ones that had data."""
    made = {
        "Optimisation history": history_plot(view, out_dir / "history.png"),
        "Hyperparameter importances": importance_plot(imp, out_dir / "importances.png"),
        "Validation curves": curves_plot(view, top_k, out_dir / "curves.png"),
        "Slice plot": slice_plot(view, out_dir / "slice.png"),
    }
    return {title: p for title, p in made.items() if p is not None}
