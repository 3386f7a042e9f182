"""report.py as users run it: errors are one line and exit code 2 (through a real
subprocess), --help names every flag, --out writes markdown with plots linked beside it."""
from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest

import report

from tests.helpers import ROOT
from tests.helpers.report_studies import FakeTrain, make_study, rdb, storage


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "report.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_study_name_lists_the_studies_that_exist(tmp_path):
    for name in ("alpha", "beta"):
        optuna.create_study(study_name=name, storage=rdb(tmp_path, "shared"))
    proc = run_cli("--study", "gamma", "--storage", storage(tmp_path, "shared"))
    assert_one_line_error(proc, "no study 'gamma'", "alpha, beta")


def test_missing_storage_is_one_line(tmp_path):
    proc = run_cli("--study", "nowhere", "--storage", storage(tmp_path, "nowhere"))
    assert_one_line_error(proc, "no storage at", "nowhere.db")


def test_study_without_complete_trial_is_one_line(tmp_path):
    make_study(tmp_path, name="fresh", n=2, pruned_every=1, default=False)
    proc = run_cli("--study", "studies/fresh.toml", "--storage", storage(tmp_path, "fresh"))
    assert_one_line_error(proc, "'fresh' has no complete trial yet", "2 pruned")


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--study", "--storage", "--out", "--plots", "--no-plots", "--top",
                 "--final-seeds", "--final-epochs", "--final-max-epochs", "--final-patience",
                 "--importance-bootstrap", "--refresh"):
        assert flag in text


def test_study_file_path_names_the_study_by_its_stem():
    assert report.study_name("studies/ml100k.toml") == "ml100k"
    assert report.study_name("ml100k.toml") == "ml100k"
    assert report.study_name("default") == "default"


def test_out_writes_markdown_and_plots_beside_it(tmp_path, capsys):
    make_study(tmp_path, name="demo", n=12)
    out = tmp_path / "reports" / "REPORT.md"
    code = report.main(["--study", "demo", "--storage", storage(tmp_path), "--out", str(out),
                        "--top", "2", "--importance-bootstrap", "0"])
    assert code == 0 and capsys.readouterr().out == ""
    text = out.read_text()
    for png in ("history", "importances", "curves", "slice"):
        assert (out.parent / "plots" / f"{png}.png").stat().st_size > 10_000
        assert f"](plots/{png}.png)" in text


def test_stdout_without_plots_and_twice_the_same(tmp_path, capsys):
    make_study(tmp_path, name="demo", n=12)
    args = ["--study", "demo", "--storage", storage(tmp_path), "--importance-bootstrap", "2"]
    assert report.main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("# Caser hyperparameter study: demo") and "## Plots" not in first
    assert "over 2 bootstrap resamples" in first  # the intervals are seeded: same both times
    assert report.main(args) == 0
    assert capsys.readouterr().out == first


def test_refresh_without_final_seeds_is_refused(tmp_path, capsys):
    assert report.main(["--refresh", "--storage", storage(tmp_path)]) == 2
    assert "only apply with --final-seeds" in capsys.readouterr().err


# -- output paths (issue 16 defect 8): one line each, before any plot is written --------------


@pytest.fixture
def demo(tmp_path):
    make_study(tmp_path, name="demo", n=12)
    (tmp_path / "afile").write_text("a regular file\n")
    (tmp_path / "adir").mkdir()
    return ["--study", "demo", "--storage", storage(tmp_path)]


@pytest.mark.parametrize("case, args, says", [
    ("--out naming a folder", ["--out", "{tmp}/adir"], "--out {tmp}/adir is a folder"),
    ("--out under a file", ["--out", "{tmp}/afile/REPORT.md"], "--out {tmp}/afile/REPORT.md: cannot write"),
    ("--out read-only", ["--out", "/sys/REPORT.md", "--plots", "{tmp}/plots"], "--out /sys/REPORT.md: cannot write"),
    ("--plots naming a file", ["--out", "{tmp}/REPORT.md", "--plots", "{tmp}/afile"], "--plots {tmp}/afile is a file"),
    ("--plots naming --out", ["--out", "{tmp}/X/R.md", "--plots", "{tmp}/X/./R.md"],
     "--out {tmp}/X/R.md and --plots {tmp}/X/R.md name the same path"),
    ("--out naming a plot", ["--out", "{tmp}/p/history.png", "--plots", "{tmp}/p"],
     "--out {tmp}/p/history.png is where --plots {tmp}/p puts a plot"),
])
def test_an_unusable_output_path_is_one_line_before_any_plot(demo, tmp_path, capsys, case, args, says):
    if case == "--out read-only" and not os.path.isdir("/sys"):
        pytest.skip("no read-only /sys here")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = report.main(demo + [a.format(tmp=tmp_path) for a in args])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith("report.py: error: ") and says.format(tmp=tmp_path) in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no plots, no report, no folder


# -- a write that fails partway (issue 24 defect 10): a full disk, here a file-size limit --------


def run_cli_with_file_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """report.py with every file it writes capped at `limit` bytes: a write past it fails with
    EFBIG as a full disk fails with ENOSPC (SIGXFSZ ignored, so the write fails, not the process)."""
    import resource
    import signal

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, str(ROOT / "report.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, preexec_fn=cap)


def test_a_report_that_cannot_be_written_whole_leaves_the_previous_one_as_it_was(tmp_path):
    make_study(tmp_path, name="demo", n=12)
    out = tmp_path / "REPORT.md"
    out.write_text("the previous report\n")
    proc = run_cli_with_file_limit(4096, "--study", "demo", "--storage", storage(tmp_path),
                                   "--out", str(out), "--no-plots", "--importance-bootstrap", "0")
    assert_one_line_error(proc, f"--out {out}: cannot write there (File too large)")
    assert out.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["REPORT.md", "demo.db"]  # no temporary


def test_a_plot_that_cannot_be_written_is_named_and_leaves_no_plots_folder(tmp_path):
    make_study(tmp_path, name="demo", n=12)
    out = tmp_path / "new" / "REPORT.md"
    proc = run_cli_with_file_limit(4096, "--study", "demo", "--storage", storage(tmp_path),
                                   "--out", str(out), "--importance-bootstrap", "0")
    assert_one_line_error(proc, f"cannot write {out.parent / 'plots' / 'history.png'}: File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.db"]  # no plots, no folder


def test_plots_replace_the_previous_ones_whole_or_not_at_all(tmp_path):
    make_study(tmp_path, name="demo", n=12)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "history.png").write_bytes(b"previous")
    proc = run_cli_with_file_limit(40_000, "--study", "demo", "--storage", storage(tmp_path),
                                   "--out", str(tmp_path / "REPORT.md"), "--importance-bootstrap", "0")
    assert proc.returncode == 2 and "File too large" in proc.stderr, proc.stderr
    assert [p.name for p in plots.iterdir()] == ["history.png"]
    assert (plots / "history.png").read_bytes() == b"previous"


def test_a_report_that_fails_after_its_plots_takes_its_new_plots_folder_with_it(tmp_path):
    plots = tmp_path / "new" / "plots"
    plots.mkdir(parents=True)
    (plots / "history.png").write_bytes(b"drawn by this run")
    (tmp_path / "afile").write_text("a regular file\n")
    with pytest.raises(OSError):
        report.write_report(tmp_path / "afile" / "REPORT.md", "# report\n", [plots, plots.parent])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_report_named_by_a_link_is_written_where_the_link_points(tmp_path, capsys):
    make_study(tmp_path, name="demo", n=12)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "REPORT.md").write_text("the previous report\n")
    link = tmp_path / "REPORT.md"
    link.symlink_to(tmp_path / "shared" / "REPORT.md")
    assert report.main(["--study", "demo", "--storage", storage(tmp_path), "--out", str(link),
                        "--no-plots", "--importance-bootstrap", "0"]) == 0
    assert link.is_symlink() and link.read_text().startswith("# Caser hyperparameter study: demo")


def test_the_report_and_its_plots_get_the_permissions_of_any_new_file(tmp_path, capsys):
    make_study(tmp_path, name="demo", n=12)
    out = tmp_path / "REPORT.md"
    assert report.main(["--study", "demo", "--storage", storage(tmp_path), "--out", str(out),
                        "--importance-bootstrap", "0"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for path in (out, tmp_path / "plots" / "history.png"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


@pytest.mark.parametrize("content, says", [
    ("x\ny\n", "JSONDecodeError: Expecting value"),  # not JSON (a last line alone reads as cut)
    ("{}\n{}\n", "KeyError: 'op_code'"),  # JSON, but not Optuna's operations
    ("[1]\n[2]\n", "TypeError"),
])
def test_a_journal_file_that_is_not_one_is_one_line(tmp_path, content, says):
    journal = tmp_path / "bad.journal"
    journal.write_text(content)
    proc = run_cli("--storage", str(journal))
    assert_one_line_error(proc, f"--storage {journal}: not an Optuna journal file", says)


def test_a_refused_report_leaves_no_folder_it_created(tmp_path, capsys):
    study = make_study(tmp_path, name="demo", n=12)
    study.set_user_attr("data", {"spec": str(tmp_path / "gone.tsv")})  # refused after loading
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for name in ("nowhere", "demo"):
        code = report.main(["--study", name, "--storage", storage(tmp_path), "--out",
                            str(tmp_path / "new" / "deep" / "REPORT.md"), "--final-seeds", "1"],
                           train_fn=FakeTrain())
        assert code == 2 and "report.py: error: " in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
