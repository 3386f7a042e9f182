"""The report's sections on hand-made studies: counts, best table, edges, importances, effects,
reproduce command, valid markdown, determinism. No training anywhere."""
from __future__ import annotations

import math
import re
import statistics

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from search.errors import StudyError
from search.report.render import render
from search.report.view import StudyView
from search.report.best import edge_flags, shown_trials, still_rising
from search.report.effects import effect_rows
from search.report.importance import compute_importances
from search.report.importance_section import importance_section

from tests.helpers.markdown import SEPARATOR, cells, tables
from tests.helpers.report_studies import DEFAULTS, SPACE, make_study, rdb


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> optuna.Study:
    return make_study(tmp_path_factory.mktemp("study"), n=30)


@pytest.fixture(scope="module")
def markdown(study) -> str:
    return render(study, top_k=3, storage="sqlite:///runs/demo.db")


def test_every_table_is_valid_markdown(markdown):
    found = tables(markdown)
    assert len(found) >= 6
    for table in found:
        assert SEPARATOR.match(table[1]), table[:2]
        width = cells(table[0])
        assert all(cells(row) == width for row in table), table


def test_render_is_deterministic(study, markdown):
    assert render(study, top_k=3, storage="sqlite:///runs/demo.db") == markdown


def test_summary_counts_states_and_the_compute_pruning_saved(study, markdown):
    view = StudyView.of(study)
    finished = view.by_state(TrialState.COMPLETE) + view.by_state(TrialState.PRUNED)
    trained = sum(t.user_attrs.get("epochs_run", len(t.intermediate_values)) for t in finished)
    saved = 1 - trained / (10 * len(finished))
    n_complete = len(view.by_state(TrialState.COMPLETE))
    n_pruned = len(view.by_state(TrialState.PRUNED))
    states = f"({n_complete} complete, {n_pruned} pruned, 1 failed, 1 running, 1 waiting)"
    assert states in markdown
    assert f"{trained} of {10 * len(finished)}" in markdown
    assert f"| compute saved by pruning | {100 * saved:.1f}%" in re.sub(r" +", " ", markdown)
    assert "still going: 1 running and 1 waiting" in markdown
    # The failed trial is not finished: no budget, no saving (issue 16, defect 4).
    assert "| failed trials | 1 (1 CUDA OOM; 0 epochs trained, not counted above) |" in re.sub(r" +", " ", markdown)


def test_storage_password_is_never_printed(study):
    from search.storage import redact

    text = render(study, storage=redact("postgresql://me:secret@db/optuna"))
    assert "secret" not in text and r"me:\*\*\*@db" in text  # renders as me:***@db


def test_best_table_lists_top_k_in_order_with_every_parameter_and_metric(study, markdown):
    best = StudyView.of(study).ranked()[:3]
    hp = next(t for t in tables(markdown) if "ac_conv" in t[0])
    for name in SPACE:
        assert f" {name} " in hp[0]
    for rank, (row, trial) in enumerate(zip(hp[2:], best), start=1):
        assert row.startswith(f"| {rank} ")
        assert f" {trial.number} " in row
    metrics = next(t for t in tables(markdown) if "NDCG@10" in t[0])
    for col in ("MAP", "P@1", "P@5", "P@10", "R@1", "R@5", "R@10", "best epoch", "parameters"):
        assert f" {col} " in metrics[0]
    assert f"{best[0].value:.4f}" in metrics[2]


def test_default_trial_is_shown_and_marked_even_outside_top_k(tmp_path):
    # The default scores worst here, so only the "always show it" rule brings it in.
    study = make_study(tmp_path, n=12, value=lambda p, rng: 0.0 if p == DEFAULTS else rng.random())
    view = StudyView.of(study)
    assert view.default_trial().number not in [t.number for t in view.ranked()[:2]]
    shown = shown_trials(view, 2)
    assert len(shown) == 3 and shown[-1].user_attrs["is_default"]
    assert "| 0 (default) |" in re.sub(r" +", " ", render(study, top_k=2))


def test_trials_the_budget_ended_while_still_improving_are_named(tmp_path):
    study = optuna.create_study(storage=rdb(tmp_path), study_name="rising", direction="maximize")
    study.set_user_attr("metric", "val/map")
    study.set_user_attr("max_epochs", 100)
    dists = {"lr": SPACE["lr"]}
    # (value, stop reason, best epoch, epochs run): budget-ended at its best, patience-ended,
    # budget-ended long after its best, and an older record without a reason at its best.
    for v, reason, best, ran in [(0.9, "budget", 100, 100), (0.8, "patience", 60, 70),
                                 (0.7, "budget", 50, 100), (0.6, None, 95, 100)]:
        attrs = {"best_epoch": best, "epochs_run": ran, "val/map": v}
        if reason:
            attrs["stop_reason"] = reason
        study.add_trial(create_trial(value=v, params={"lr": 1e-3 * (1 + v)}, distributions=dists,
                                     user_attrs=attrs))
    view = StudyView.of(study)
    assert [t.number for t in still_rising(view, view.ranked())] == [0, 3]
    text = re.sub(r"\s+", " ", render(study, top_k=4))
    assert "Still improving when the budget ended them:** trials 0, 3 (best epoch 100 of 100, 95 of 100)" in text


def test_best_value_at_the_edge_of_its_range_is_flagged(tmp_path):
    study = optuna.create_study(storage=rdb(tmp_path), study_name="edge", direction="maximize")
    dists = {"lr": SPACE["lr"], "L": SPACE["L"]}
    for lr, L, v in [(1e-2, 5, 0.9), (1e-3, 4, 0.5), (1e-4, 6, 0.1)]:
        study.add_trial(create_trial(value=v, params={"lr": lr, "L": L}, distributions=dists))
    flags = {r["parameter"]: r["flag"] for r in edge_flags(StudyView.of(study))}
    assert "HIGH edge" in flags["lr"] and flags["L"] == ""


def test_the_one_parameter_that_matters_ranks_first_under_both_evaluators(tmp_path):
    def value(p, rng):
        # lr alone moves the metric; the rest add noise a thousand times smaller.
        return -((math.log10(p["lr"]) + 3) ** 2) + 1e-4 * (p["d"] / 128 + rng.random())

    study = make_study(tmp_path, n=70, value=value, pruned_every=10**6, extra_states=False)
    imp = compute_importances(StudyView.of(study))
    assert imp.n_complete == 71 and not imp.errors
    for name in ("PED-ANOVA", "fANOVA"):
        assert max(imp.values[name], key=imp.values[name].get) == "lr", name
    row = next(line for line in importance_section(imp).splitlines() if line.startswith("| lr "))
    assert re.sub(r" +", " ", row).count("| 1 |") == 2


def test_importances_say_so_with_too_few_complete_trials(tmp_path):
    study = make_study(tmp_path, n=1, default=True, extra_states=False)
    text = render(study)
    assert "Too few complete trials (2; need 3)" in text


def test_importances_warn_when_most_trials_were_pruned(tmp_path):
    study = make_study(tmp_path, n=20, pruned_every=2, default=False, extra_states=False)
    for epochs in (1, 2):
        study.add_trial(create_trial(state=TrialState.PRUNED, params={"L": 3},
                                     distributions={"L": SPACE["L"]},
                                     intermediate_values={e: 0.01 for e in range(epochs)}))
    text = importance_section(compute_importances(StudyView.of(study)))
    assert "Most trials were pruned" in text


def test_effects_group_categoricals_per_value_with_best_and_median(study):
    view = StudyView.of(study)
    rows = [r for r in effect_rows(view) if r["parameter"] == "ac_conv"]
    for row in rows:
        values = [t.value for t in view.ranked() if t.params["ac_conv"] == row["value"]]
        assert row["trials"] == str(len(values))
        assert row["best"] == f"{max(values):.4f}"
        assert row["median"] == f"{statistics.median(values):.4f}"
    assert sum(int(r["trials"]) for r in rows) == len(view.ranked())


def test_effects_bin_continuous_parameters_by_quantile(study):
    rows = [r for r in effect_rows(StudyView.of(study)) if r["parameter"] == "lr"]
    assert len(rows) == 4 and all(".." in r["value"] for r in rows)


def test_reproduce_command_holds_every_config_field_and_the_best_epoch(study, markdown):
    best = StudyView.of(study).ranked()[0]
    command = re.search(r"```bash\n(.*)\n```", markdown).group(1)
    assert command.startswith("python -m caser.train")
    assert f"--epochs {best.user_attrs['best_epoch']}" in command
    assert f"--ac-conv {best.params['ac_conv']}" in command and command.endswith("--protocol test")


def test_study_without_complete_trial_is_a_study_error(tmp_path):
    study = optuna.create_study(storage=rdb(tmp_path), study_name="empty")
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"L": 3},
                                 distributions={"L": SPACE["L"]}, intermediate_values={0: 0.1}))
    with pytest.raises(StudyError, match="no complete trial yet \\(1 pruned\\)"):
        render(study)


def test_rendering_never_changes_the_study(study):
    before = [(t.number, t.state, t.value, t.user_attrs) for t in study.get_trials()]
    attrs_before = dict(study.user_attrs)
    render(study)
    assert [(t.number, t.state, t.value, t.user_attrs) for t in study.get_trials()] == before
    assert study.user_attrs == attrs_before
