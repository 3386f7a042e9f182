"""The report's plots read right: whole epochs and trial numbers, log-scale labels that never
run into each other, and categorical choices such as d drawn as categories."""
from __future__ import annotations

import itertools

import optuna
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.report.plots import curves_figure, history_figure, slice_figure
from search.report.view import StudyView

D_CHOICES = [8, 16, 32, 50, 64, 128]


def small_study(lrs: list[float]) -> StudyView:
    """A few two-epoch trials (so an automatic axis would tick at 0.5 steps) and one pruned."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("metric", "val/map")
    dists = {"L": IntDistribution(1, 3), "d": CategoricalDistribution(D_CHOICES),
             "lr": FloatDistribution(1e-5, 1e-1, log=True), "l2": FloatDistribution(1e-9, 1e-1, log=True)}
    for i, lr in enumerate(lrs):
        value = 0.05 + 0.01 * i
        params = {"L": 1 + i % 3, "d": [50, 128, 32][i % 3], "lr": lr, "l2": 10.0 ** -(8 - 2 * i)}
        study.add_trial(create_trial(value=value, params=params, distributions=dists,
                                     intermediate_values={0: value / 2, 1: value}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"L": 2, "d": 8, "lr": lrs[0], "l2": 1e-3},
                                 distributions=dists, intermediate_values={0: 0.01}))
    return StudyView.of(study)


def visible_ticks(axis) -> list[float]:
    low, high = sorted(axis.get_view_interval())
    return [t for t in axis.get_majorticklocs() if low <= t <= high]


@pytest.mark.parametrize("figure", [lambda v: history_figure(v), lambda v: curves_figure(v, 3)],
                         ids=["history by trial number", "curves by epoch"])
def test_trial_and_epoch_axes_tick_whole_numbers_only(figure):
    ax = figure(small_study([1.2e-3, 2.5e-3, 1.7e-3])).axes[0]
    ticks = visible_ticks(ax.xaxis)
    assert len(ticks) >= 2 and all(t == int(t) for t in ticks), ticks


@pytest.mark.parametrize("lrs", [[1.2e-3, 2.5e-3, 1.7e-3], [1.1e-4, 9.9e-3, 2e-3], [2e-5, 5e-2, 3e-4]],
                         ids=["within a decade", "two decades", "three decades"])
def test_log_axis_labels_are_few_and_never_overlap(lrs):
    fig = slice_figure(small_study(lrs))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for name in ("lr", "l2"):
        ax = next(a for a in fig.axes if a.get_xlabel() == name)
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        assert 2 <= len(labels) <= 4, (name, [t.get_text() for t in labels])
        boxes = [t.get_window_extent(renderer) for t in labels]
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), (name, [t.get_text() for t in labels])


def test_categorical_numbers_are_drawn_as_categories_with_every_choice():
    fig = slice_figure(small_study([1.2e-3, 2.5e-3, 1.7e-3]))
    ax = next(a for a in fig.axes if a.get_xlabel() == "d")
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in D_CHOICES]
    assert list(ax.get_xticks()) == list(range(len(D_CHOICES)))  # evenly spaced: 50 is not near 64
    low, high = ax.get_xlim()
    assert low < 0 and high > len(D_CHOICES) - 1  # unsampled 8 and 16 are shown too
    assert sorted(ax.collections[0].get_offsets()[:, 0]) == [2, 3, 5]  # 32, 50, 128 at their places
