"""Every bad input to sweep.py gives one line, a non-zero exit, no training, an untouched study.

Each case runs `sweep.main(argv)` in this process (imports once, so the file stays fast) next
to an existing study in `runs/default.db`, and the table of messages is docs/bad_inputs.md:
the test fails when a message changes; `UPDATE_DOCS=1 python -m pytest tests/cli/test_bad_inputs.py`
rewrites the table.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import optuna
import pytest

import sweep
from search.options import SweepOptions
from search.storage import storage_url
from search.study import open_study
from search.studyfile import load_study_spec
from tests.helpers import ROOT
from tests.helpers.studies import TINY_DATA

DOC = ROOT / "docs" / "bad_inputs.md"
BEGIN, END = "<!-- table: tests/cli/test_bad_inputs.py -->", "<!-- end of table -->"
DEFAULT_TOML = (ROOT / "studies" / "default.toml").read_text()

# Heartbeats and the retry callback are experimental in Optuna 5; the warning is known.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# (case, extra arguments); files named here are written by `inputs` below.
CASES = [
    ("missing data file", ["--data", "{tmp}/nope.txt"]),
    ("empty data file", ["--data", "{tmp}/empty.txt"]),
    ("malformed data file", ["--data", "{tmp}/garbage.txt"]),
    ("unknown dataset name", ["--data", "ml-99m"]),
    ("unknown study file", ["--study", "nosuchstudy"]),
    ("malformed study file", ["--study", "{tmp}/broken.toml"]),
    ("unreachable storage", ["--storage", "postgresql://u:p@127.0.0.1:1/db"]),
    ("mistyped storage URL", ["--storage", "notadb://x"]),
    ("SQLite file that is not a database", ["--storage", "sqlite:///{tmp}/notes.db"]),
    ("study exists with another direction", ["--study", "{tmp}/other/default.toml"]),
    ("study exists with another metric", ["--study", "{tmp}/metric/default.toml"]),
    ("--trials 0", ["--trials", "0"]),
    ("--trials negative", ["--trials", "-3"]),
    ("--workers 0", ["--workers", "0"]),
    ("runs dir under a regular file", ["--runs-dir", "{tmp}/afile/runs"]),
    ("study exists on other data", ["--data", "synthetic:users=300,items=200,interactions=5000"]),
    ("journal file in a missing folder", ["--storage", "{tmp}/nodir/study.journal"]),
    ("--seed negative", ["--seed", "-1"]),
    ("new study over an earlier study's runs", ["--storage", "sqlite:///{tmp}/fresh.db"]),
    ("a split that holds nothing out", ["--study", "{tmp}/noval.toml"]),
    ("--worker-index past the seeds", ["--worker-index", "2147483647", "--workers", "2"]),
    ("empty search space", ["--study", "{tmp}/empty.toml"]),
    ("space with fewer configurations than --trials", ["--study", "{tmp}/two.toml", "--trials", "5"]),
    ("in-memory storage", ["--storage", "sqlite:///:memory:"]),
    ("in-memory storage, short form", ["--storage", "sqlite://"]),
    ("--timeout 0", ["--timeout", "0"]),
    ("--timeout negative", ["--timeout", "-5"]),
    ("--timeout nan", ["--timeout", "nan"]),
    ("--timeout inf", ["--timeout", "inf"]),
    ("nv = nh = 0 fixed", ["--study", "{tmp}/nofeatures.toml"]),
    ("nv and nh ranges that only reach 0", ["--study", "{tmp}/zeros.toml"]),
    ("--max-epochs 0", ["--max-epochs", "0"]),
    ("unknown data format for synthetic data", ["--study", "{tmp}/parquet.toml"]),
    ("a window too large for memory", ["--study", "{tmp}/huge.toml"]),
    ("read-only database", ["--storage", "sqlite:///file:{tmp}/runs/default.db?mode=ro&uri=true"]),
    ("study named `..` (a file `...toml`)", ["--study", "{tmp}/...toml"]),
    ("--patience negative", ["--patience", "-1"]),
    ("--min-delta negative", ["--min-delta", "-0.5"]),
    ("--min-delta nan", ["--min-delta", "nan"]),
    ("--min-delta inf", ["--min-delta", "inf"]),
    ("--checkpoint-interval negative", ["--checkpoint-interval", "-1"]),
    ("pruner option of the wrong type", ["--study", "{tmp}/five/default.toml"]),
    ("Hyperband rungs above the budget", ["--study", "{tmp}/hyperband/default.toml", "--pruner", "hyperband"]),
    ("study exists with another --max-epochs", ["--max-epochs", "3"]),
    ("study exists with another --patience", ["--patience", "2"]),
    ("study exists with another --min-delta", ["--min-delta", "0.01"]),
    ("study exists with another --pruner", ["--pruner", "median"]),
    ("study exists with other pruner options", ["--study", "{tmp}/rungs/default.toml"]),
    ("study exists with another --sampler", ["--sampler", "random"]),
    ("study exists with another --seed", ["--seed", "5"]),
    ("data that is a FIFO", ["--data", "{tmp}/pipe"]),
    ("data that is a folder", ["--data", "{tmp}/adir"]),
    ("a comment line first", ["--data", "{tmp}/comment.txt"]),
    ("a byte that is not UTF-8", ["--data", "{tmp}/latin1.txt"]),
    ("--rel-delta of 1 or more", ["--rel-delta", "1.5"]),
    ("--patience-growth above 1", ["--patience-growth", "2"]),
    ("--warmup negative", ["--warmup", "-3"]),
    ("--default-seeds negative", ["--default-seeds", "-1"]),
    ("--train-frac and --val-frac above 1 together", ["--train-frac", "0.8", "--val-frac", "0.3"]),
    ("study exists with another validation protocol", ["--train-frac", "0.7", "--val-frac", "0.1"]),
    ("study exists with another --rel-delta", ["--rel-delta", "0.01"]),
    ("study exists with other --default-seeds", ["--default-seeds", "4"]),
]

# What the message must say, for the cases where another refusal could come first.
SAYS = {
    "empty search space": "[space] searches nothing",
    "space with fewer configurations than --trials": "only 2 configurations",
    "in-memory storage": "in-memory",
    "in-memory storage, short form": "in-memory",
    "--timeout 0": "--timeout must be",
    "--timeout nan": "--timeout must be",
    "nv = nh = 0 fixed": "nv = nh = 0",
    "nv and nh ranges that only reach 0": "nv = nh = 0",
    "--max-epochs 0": "error: --max-epochs must be at least 1",
    "unknown data format for synthetic data": "parquet",
    "a window too large for memory": "lower space.L",
    "read-only database": "intact",
    "--patience negative": "error: --patience must be",
    "--min-delta negative": "error: --min-delta must be",
    "--min-delta nan": "error: --min-delta must be",
    "--min-delta inf": "error: --min-delta must be",
    "--rel-delta of 1 or more": "error: --rel-delta must be",
    "--patience-growth above 1": "error: --patience-growth must be",
    "--warmup negative": "error: --warmup must be",
    "--default-seeds negative": "error: --default-seeds must be",
    "--train-frac and --val-frac above 1 together": "--train-frac, --val-frac",
    "study exists with another validation protocol": "other data",
    "study exists with another --rel-delta": "rel_delta",
    "study exists with other --default-seeds": "default_seeds",
    "pruner option of the wrong type": "pruners.median.n_startup_trials must be a whole number",
    "Hyperband rungs above the budget": "pruners.hyperband.min_resource 2 is above max_resource 1",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bad files, plus an existing study with one finished trial in <tmp>/runs/default.db."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty.txt").write_text("")
    (tmp / "garbage.txt").write_text("this is not\x00 a ratings file\n{]\n")
    (tmp / "broken.toml").write_text("[study\nmetric = \n")
    (tmp / "notes.db").write_text("shopping list: milk, eggs\n" * 50)
    (tmp / "afile").write_text("a regular file, not a folder\n")
    os.mkfifo(tmp / "pipe")
    (tmp / "adir").mkdir()
    (tmp / "comment.txt").write_text("# user item\n1 2\n1 3\n")
    (tmp / "latin1.txt").write_bytes(b"1 2 5 100\n1 3 4 101\n2 \xff 3 102\n")
    for folder, old, new in (("other", 'direction = "maximize"', 'direction = "minimize"'),
                             ("metric", 'metric = "val/map"', 'metric = "val/recall@10"'),
                             ("rungs", "min_resource = 3", "min_resource = 2"),
                             ("five", "n_startup_trials = 5 ", 'n_startup_trials = "five" '),
                             ("hyperband", "min_resource = 1 ", "min_resource = 2 ")):
        assert old in DEFAULT_TOML, old
        (tmp / folder).mkdir()
        (tmp / folder / "default.toml").write_text(DEFAULT_TOML.replace(old, new))
    (tmp / "empty.toml").write_text(DEFAULT_TOML[: DEFAULT_TOML.index("[space]") + len("[space]\n")])
    (tmp / "two.toml").write_text(DEFAULT_TOML[: DEFAULT_TOML.index("[space]")] + '[space]\nac_fc = { choices = ["relu", "tanh"] }\n')
    (tmp / "nofeatures.toml").write_text(_with_space(nv="0", nh="0"))
    (tmp / "zeros.toml").write_text(_with_space(nv="{ int = [0, 0] }", nh="{ choices = [0] }"))
    (tmp / "huge.toml").write_text(_with_space(L="2000", nh="16"))
    (tmp / "parquet.toml").write_text(DEFAULT_TOML.replace('holdout = "ratio"', 'format = "parquet"\nholdout = "ratio"'))
    no_validation = re.sub(r"^val_frac = [0-9.]+", "val_frac = 0.0", DEFAULT_TOML, count=1, flags=re.MULTILINE)
    assert no_validation != DEFAULT_TOML
    (tmp / "noval.toml").write_text(no_validation)
    (tmp / "...toml").write_text(DEFAULT_TOML)
    spec = load_study_spec("default").with_overrides(data_spec=TINY_DATA, max_epochs=1)  # as every run
    runs = tmp / "runs"
    runs.mkdir()
    study = open_study(spec, storage_url("default", None, runs), SweepOptions(n_trials=2, runs_dir=runs))
    study.add_trial(optuna.trial.create_trial(value=0.05, params={}, distributions={}))
    (runs / "default" / "trial_0000").mkdir(parents=True)  # the existing study's run
    return tmp


def _with_space(**entries: str) -> str:
    """The default study with these [space] lines replaced (`L = { int = [1, 10] }` -> `L = 2000`)."""
    lines = [
        f"{line.split(' = ')[0]} = {entries[line.split(' = ')[0]]}" if line.split(" = ")[0] in entries else line
        for line in DEFAULT_TOML.splitlines()
    ]
    return "\n".join(lines) + "\n"


def run_case(args: list[str], tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    argv = ["--data", TINY_DATA, "--max-epochs", "1", "--trials", "2", "--runs-dir", str(tmp / "runs")]
    code = sweep.main(argv + [a.format(tmp=tmp) for a in args])
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0].replace(str(tmp), "<tmp>").replace(str(ROOT), "<repo>")
    return code, re.sub(r"[\d.]+ [GM]B available", "<free memory> available", line)  # the machine's


def fingerprint(tmp: Path) -> tuple[str, list[str]]:
    """The study file's bytes and what is under runs/ (no trial dirs: nothing trained)."""
    db = tmp / "runs" / "default.db"
    return hashlib.sha256(db.read_bytes()).hexdigest(), sorted(p.name for p in db.parent.iterdir())


def test_every_bad_input_gives_one_line_and_leaves_the_study_alone(
    inputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(inputs)
    rows = []
    for case, args in CASES:
        code, line = run_case(args, inputs, capsys)
        assert code != 0, f"{case}: exit 0 with {line!r}"
        assert line.startswith("error: "), f"{case}: {line!r}"
        assert SAYS.get(case, "") in line, f"{case}: {line!r}"
        assert fingerprint(inputs) == before, f"{case} changed the study or trained"
        assert not (inputs / "fresh.db").exists(), f"{case} created a storage"
        shown = " ".join(a.replace("{tmp}", "<tmp>") for a in args)
        rows.append(f"| {case} | `{shown}` | {code} | {_cell(line)} |")
    table = "\n".join(["| input | arguments | exit | message |", "|---|---|---|---|", *rows])
    text = DOC.read_text()
    if os.environ.get("UPDATE_DOCS") == "1":
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    else:
        assert table in text, f"docs/bad_inputs.md is stale; UPDATE_DOCS=1 rewrites it:\n{table}"


def _cell(line: str) -> str:
    """The message as a markdown table cell: pipes escaped, code-like bits left readable."""
    return re.sub(r"\|", r"\\|", line)
