"""Names, paths and stored attributes reach the report as text, never as markup (issue 24,
defect 4): a study, a data path, a parameter, a sampler or a reason holding HTML or markdown
renders literally, tables keep their columns, and the reproduce command stays inside its fence
and is quoted for a shell."""
from __future__ import annotations

import shlex

import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

import report
from search.report.render import render
from search.report.view import StudyView

from tests.helpers.markdown import SEPARATOR, cells, parse_fences, tables
from tests.helpers.report_studies import DEFAULTS, SPACE, attrs, curve, make_study, storage

NAME = "x<img src=x onerror=alert(1)>|y"
# Markup of every kind GitHub renders, and a mathtext error for matplotlib ($\x$).
PAYLOAD = "<img src=x onerror=alert(1)>*em*_u_`c`[l](x)$\\x$~s~\\"
RAW = ("<img", "*em*", "_u_", "`c`", "[l](", "$\\x$", "~s~")  # none may reach the markdown
# A data path whose newline and backtick runs would close a ``` fence and start a heading.
SPEC = "data <img src=x>\n```\n# after the fence\r````` x.tsv"


def hostile_study(tmp_path):
    """A study as the sweep writes it, with hostile text in every stored place the report shows."""
    study = make_study(tmp_path, name=NAME, n=12, extra_states=False)
    study.set_user_attr("data", {"spec": SPEC, "holdout": "ratio", "seed": 0})
    study.set_user_attr("sampler", {"name": PAYLOAD, "args": {PAYLOAD: PAYLOAD}})
    study.set_user_attr("pruner", {"name": PAYLOAD, "options": PAYLOAD})
    odd = CategoricalDistribution([PAYLOAD, "plain"])
    study.add_trial(create_trial(  # another program's parameter: its name and value
        value=0.001, params={**DEFAULTS, f"p{PAYLOAD}": PAYLOAD},
        distributions={**SPACE, f"p{PAYLOAD}": odd},
        user_attrs={**attrs(0.001, 10, 90), "val/prec@5": PAYLOAD, "stop_reason": PAYLOAD},
        intermediate_values=curve(0.001, 10)))
    study.add_trial(create_trial(state=TrialState.FAIL, params=DEFAULTS, distributions=SPACE,
                                 user_attrs={"reason": PAYLOAD}))
    return study


def test_names_paths_and_stored_text_render_as_literal_text_and_the_command_stays_fenced(
        tmp_path, capsys):
    hostile_study(tmp_path)
    out, plots = tmp_path / "REPORT.md", tmp_path / "plots <b>(1)"
    code = report.main(["--study", NAME, "--storage", storage(tmp_path, NAME), "--out", str(out),
                        "--plots", str(plots), "--top", "50", "--importance-bootstrap", "0"])
    assert code == 0, capsys.readouterr().err
    markdown = out.read_bytes().decode()  # as written: no newline translation
    outside, blocks = parse_fences(markdown)
    text = "\n".join(outside)
    for raw in RAW:
        assert raw not in text, raw
    assert outside[0] == "# Caser hyperparameter study: x&lt;img src=x onerror=alert(1)&gt;|y"
    assert "# after the fence" not in outside
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") >= 8  # every planted place shows it
    for table in tables(markdown):
        assert SEPARATOR.match(table[1]), table[:2]
        assert all(cells(row) == cells(table[0]) for row in table), table
    summary = tables(markdown)[0]
    assert cells(summary[0]) == 2 and any("data &lt;img src=x&gt;" in row for row in summary)
    # One fenced block, closed where the command ends: as a shell reads it, the data path is one
    # argument, exactly as stored, and the command ends with its last flag.
    assert [(b.info, b.closed) for b in blocks] == [("bash", True)]
    argv = shlex.split(blocks[0].body)
    assert argv[:3] == ["python", "-m", "caser.train"] and argv[-2:] == ["--protocol", "test"]
    assert argv[argv.index("--data") + 1] == SPEC
    assert [p.name for p in sorted(plots.iterdir())] == [
        "curves.png", "history.png", "importances.png", "slice.png"]
    assert "![Slice plot](plots%20%3Cb%3E%281%29/slice.png)" in outside  # one link, percent-quoted


def test_a_study_whose_metric_the_sweep_never_writes_is_refused_in_one_line(tmp_path, capsys):
    study = make_study(tmp_path, n=4, extra_states=False)
    study.set_user_attr("metric", "val/map <img src=x>")
    assert report.main(["--study", "demo", "--storage", storage(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["report.py: error: study 'demo' records the metric 'val/map <img src=x>', not one "
                   "of Caser's validation metrics (val/map, val/prec@1, val/prec@5, val/prec@10, "
                   "val/recall@1, val/recall@5, val/recall@10, val/ndcg@10, val/hit@10)"]


@pytest.mark.parametrize("key, value", [("min_user_interactions", "1 $(touch pwned)"),
                                        ("seed", "0;touch pwned")])
def test_a_stored_setting_never_becomes_shell_syntax_in_the_command(tmp_path, key, value):
    study = make_study(tmp_path, n=4, extra_states=False)
    study.set_user_attr("data", {"spec": "synthetic", "holdout": "ratio", "seed": 0, key: value})
    markdown = render(StudyView.of(study))
    _, blocks = parse_fences(markdown)
    for block in blocks:  # the value is one argument, as stored, or there is no command at all
        assert value in shlex.split(block.body), block.body
    assert blocks or "No command:" in markdown
