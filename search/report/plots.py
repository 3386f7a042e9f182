"""Section 6, plots: optimisation history, importances, validation curves, slice plots (PNG).

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so no global backend or
state is touched (the Agg canvas is what `savefig` uses for PNG) and plots from one report
cannot leak into another.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO, Sequence

from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from search.report import PLOT_FILES
from search.report.files import Writer, write_files
from search.report.importance import EVALUATORS, Importances
from search.report.view import StudyView

DPI = 110
MAX_LOG_TICKS = 4  # labels on a 3-inch log axis that never touch
# PNG metadata without the matplotlib version keeps files byte-stable across upgrades.
METADATA = {"Software": None}


def _plain(text: object) -> str:
    """A study's text (its name, a parameter, a choice) as matplotlib draws it literally: a `$`
    pair would start mathtext, and a name like `a$\\x$` would fail the whole report."""
    return str(text).replace("$", r"\$")


def _png(fig: Figure) -> Writer:
    def write(f: BinaryIO) -> None:
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(f, format="png", dpi=DPI, metadata=METADATA)

    return write


def history_figure(view: StudyView) -> Figure:
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
           title=f"Optimisation history: {_plain(view.name)}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def importance_figure(imp: Importances) -> Figure | None:
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
    ax.set_yticks(range(len(names)), [_plain(n) for n in names])
    ax.set(xlabel="normalised importance", title=f"Hyperparameter importances "
           f"({imp.n_complete} complete trials)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def curves_figure(view: StudyView, top_k: int) -> Figure:
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
           title=f"Validation curves: top {len(top)} trial{'s' if len(top) != 1 else ''} vs pruned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def slice_figure(view: StudyView) -> Figure | None:
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
            # Every choice at its own place, sampled or not: numbers like d's are labels here.
            order = [str(c) for c in dist.choices]
            xs = [order.index(str(p[0])) for p in pts]
            ax.set_xticks(range(len(order)), [_plain(c) for c in order])
            ax.set_xlim(-0.5, len(order) - 0.5)
        else:
            xs = [p[0] for p in pts]
            if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
                ax.set_xscale("log")
            elif isinstance(dist, IntDistribution):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        sc = ax.scatter(xs, [p[1] for p in pts], c=[p[2] for p in pts], cmap="viridis", s=12)
        if ax.get_xscale() == "log":
            _log_ticks(ax.xaxis, xs)
        ax.set_xlabel(_plain(name))
        if i % cols == 0:
            ax.set_ylabel(view.metric)
        ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=fig.axes, label="trial number", shrink=0.8, ticks=MaxNLocator(integer=True))
    return fig


def _log_ticks(axis: Axis, values: Sequence[float]) -> None:
    """At most MAX_LOG_TICKS labelled ticks on a log axis, so labels never run into each other:
    the roundest values in view (powers of ten, else 1-3, 1-2-5 or 1..9 times them, thinned),
    else the smallest and largest value; labels short (3e-4), minor ticks unlabelled."""
    ticks = _log_tick_values(*axis.get_view_interval()) or sorted({min(values), max(values)})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda x, _: _short(x)))
    axis.set_minor_formatter(NullFormatter())


def _log_tick_values(low: float, high: float) -> list[float]:
    if low <= 0:
        return []
    decades = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
    for subs in ((1,), (1, 3), (1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**e for e in decades for m in subs if low <= m * 10.0**e <= high]
        if len(ticks) >= 2:
            return ticks[:: math.ceil(len(ticks) / MAX_LOG_TICKS)]
    return []


def _short(x: float) -> str:
    """1e-05 -> 1e-5, 0.00025 -> 2.5e-4, 0.01 -> 1e-2, 0.5 -> 0.5, 128 -> 128."""
    if x == 0 or 0.1 <= abs(x) < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def write_plots(view: StudyView, imp: Importances, top_k: int, out_dir: Path) -> dict[str, Path]:
    """Every plot into out_dir, all of them or none (`files.write_files`); returns
    {title: path} for the ones that had data."""
    figures = {
        "Optimisation history": (history_figure(view), out_dir / PLOT_FILES["history"]),
        "Hyperparameter importances": (importance_figure(imp), out_dir / PLOT_FILES["importances"]),
        "Validation curves": (curves_figure(view, top_k), out_dir / PLOT_FILES["curves"]),
        "Slice plot": (slice_figure(view), out_dir / PLOT_FILES["slice"]),
    }
    drawn = {title: (fig, path) for title, (fig, path) in figures.items() if fig is not None}
    write_files({path: _png(fig) for fig, path in drawn.values()})
    return {title: path for title, (_, path) in drawn.items()}
