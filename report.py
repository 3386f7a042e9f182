"""Summarise a Caser hyperparameter study as markdown (the sections: search/report/).

    python report.py --study default                      # markdown to stdout, no plots
    python report.py --study studies/ml100k.toml --out REPORT.md   # plots into ./plots/
    python report.py --study ml100k --out REPORT.md --final-seeds 5

Read-only on the study except for the final evaluation's cached per-seed results; a user's
mistake is one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from search import interrupts

if __name__ == "__main__":  # before the imports below load optuna (a second): Ctrl-C is one line
    interrupts.exit_at_once("report.py")

import optuna  # noqa: E402

from caser.errors import DataError  # noqa: E402
from search.errors import StudyError  # noqa: E402
from search.report import DEFAULT_IMPORTANCE_BOOTSTRAP, DEFAULT_TOP_K, PLOT_FILES  # noqa: E402
from search.report.files import missing_folders, remove_folders, write_files  # noqa: E402
from search.report.view import StudyView  # noqa: E402
from search.storage import journal_path, load_existing_study, redact, storage_url  # noqa: E402

# render and final are imported in main, after the study loads: they pull in matplotlib, scipy and
# scikit-learn (seconds), which --help and the one-line errors should not wait for.
PLOTS_DIRNAME = "plots"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="report.py",
        description="Summarise a Caser hyperparameter study (Optuna) as markdown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--study", default="default",
                   help="study name, or a study TOML file whose stem is the name "
                        "(studies/ml100k.toml -> ml100k)")
    p.add_argument("--storage", default=None,
                   help="storage URL (sqlite:///x.db, postgresql://..., x.journal); "
                        "default: sqlite:///runs/<study>.db")
    p.add_argument("--out", type=Path, default=None,
                   help="write the markdown here instead of stdout")
    p.add_argument("--plots", type=Path, default=None,
                   help="directory for the PNG plots; default: plots/ beside --out, "
                        "and no plots when writing to stdout")
    p.add_argument("--no-plots", action="store_true", help="write no plots even with --out")
    p.add_argument("--top", type=int, default=DEFAULT_TOP_K, metavar="K",
                   help="how many of the best complete trials to show (and retrain)")
    p.add_argument("--final-seeds", type=int, default=None, metavar="S",
                   help="retrain the top K and the default config on train+validation with "
                        "seeds 0..S-1 and evaluate on test (cached in the study)")
    p.add_argument("--final-max-epochs", type=int, default=None, metavar="E",
                   help="the final retraining's budget: each config trains on train until the "
                        "stopping rule ends it or E epochs; default: 5 x the study's budget, "
                        "at least 50")
    p.add_argument("--final-patience", type=int, default=None, metavar="P",
                   help="the final retraining's patience (evaluations without improvement); "
                        "default: the study's, else 5")
    p.add_argument("--final-epochs", type=int, default=None, metavar="E",
                   help="skip convergence: retrain every config for exactly E epochs")
    p.add_argument("--final-jobs", type=int, default=None, metavar="J",
                   help="trainings of the final evaluation at once, each in a process of its own "
                        "with cores // J torch threads; default: the cores this process may use")
    p.add_argument("--importance-bootstrap", type=int, default=DEFAULT_IMPORTANCE_BOOTSTRAP,
                   metavar="B",
                   help="resamples of the complete trials for the importances' 95%% intervals "
                        "(seeded; each costs about a second; 0: no intervals)")
    p.add_argument("--refresh", action="store_true",
                   help="retrain the final evaluation even where cached results exist")
    return p.parse_args(argv)


def final_jobs(asked: int | None, injected: bool = False) -> tuple[int, int]:
    """(trainings at once, torch threads each): the usable cores shared out; a training function
    given by a caller (the tests' stand-in) runs in this process unless jobs are asked for."""
    import torch

    from search.workers import usable_cores

    cores = usable_cores()
    jobs = asked or (1 if injected else cores)
    threads = max(1, cores // jobs)
    if jobs == 1:
        torch.set_num_threads(threads)
    return jobs, threads


def study_name(arg: str) -> str:
    """`studies/ml100k.toml` -> `ml100k`; a bare name is the name."""
    path = Path(arg)
    if path.suffix == ".toml" or len(path.parts) > 1:
        return path.stem
    return arg


def plots_dir(args: argparse.Namespace) -> Path | None:
    if args.no_plots:
        return None
    if args.plots is not None:
        return args.plots
    return args.out.parent / PLOTS_DIRNAME if args.out is not None else None


def check_outputs(out: Path | None, plots: Path | None) -> None:
    """Refuse, before anything is trained or drawn, an --out or --plots that cannot be written:
    a folder named as the report, a path under a regular file, a read-only place, a file named
    as the plots folder, an --out the plots would overwrite. What the check creates (a folder, a
    probe file) it removes again."""
    if out is not None and plots is not None:
        if out.resolve() == plots.resolve():
            raise StudyError(f"--out {out} and --plots {plots} name the same path: give the plots "
                             "a folder of their own (default: plots/ beside --out)")
        if out.resolve() in {(plots / name).resolve() for name in PLOT_FILES.values()}:
            raise StudyError(f"--out {out} is where --plots {plots} puts a plot: name the report "
                             "otherwise")
    if out is not None:
        if out.is_dir():
            raise StudyError(f"--out {out} is a folder; name the markdown file, e.g. --out {out / 'REPORT.md'}")
        _probe(out, "--out", folder=False)
    if plots is not None:
        if plots.exists() and not plots.is_dir():
            raise StudyError(f"--plots {plots} is a file, not a folder; name a folder (it is created if missing)")
        _probe(plots, "--plots", folder=True)


def _probe(path: Path, flag: str, folder: bool) -> None:
    """Create `path`'s missing folders and a file in the right place, then remove what was new."""
    missing = missing_folders(path)
    directory = path if folder else path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if folder:
            tempfile.TemporaryFile(dir=directory).close()
        else:
            with open(path, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise StudyError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    finally:
        for p in missing:  # deepest first
            if p.is_dir():
                p.rmdir()
            elif p.exists():
                p.unlink()


def open_study(name: str, url: str) -> optuna.Study:
    """The study; a journal file that Optuna cannot replay (another format, an edited or
    truncated copy) is one line rather than the parser's traceback."""
    try:
        return load_existing_study(name, url)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        journal = journal_path(url)
        if journal is None:
            raise
        raise StudyError(f"--storage {journal}: not an Optuna journal file "
                         f"({type(exc).__name__}: {exc})") from None


def main(argv: Sequence[str] | None = None, train_fn: Callable | None = None) -> int:
    """Run the CLI; `train_fn` replaces caser's training in the final evaluation (tests)."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    interrupts.ready()
    try:
        final_flags = (args.final_epochs, args.final_max_epochs, args.final_patience, args.final_jobs)
        if args.final_seeds is None and (args.refresh or any(f is not None for f in final_flags)):
            raise StudyError("--refresh, --final-epochs, --final-max-epochs, --final-patience and "
                             "--final-jobs only apply with --final-seeds")
        if args.top < 1:  # before any final training, not after it
            raise StudyError(f"--top must be at least 1, got {args.top}")
        if args.importance_bootstrap < 0:
            raise StudyError("--importance-bootstrap must be 0 or more, got "
                             f"{args.importance_bootstrap}")
        for flag, value in (("--final-epochs", args.final_epochs),
                            ("--final-max-epochs", args.final_max_epochs),
                            ("--final-patience", args.final_patience),
                            ("--final-jobs", args.final_jobs)):
            if value is not None and value < 1:
                raise StudyError(f"{flag} must be at least 1, got {value}")
        check_outputs(args.out, plots_dir(args))
        name = study_name(args.study)
        url = storage_url(name, args.storage)
        view = StudyView.of(open_study(name, url), redact(url))
        view.require_complete()
        from search.report.final import (caser_train_fn, convergence_rule, study_data,
                                         unkeyed_entries)
        from search.report import fmt
        from search.report.final_plan import run_final
        from search.report.render import render

        final = None
        if args.final_seeds is not None:
            rule = convergence_rule(view, args.final_max_epochs, args.final_patience)
            data = study_data(view)  # before anything trains: the study's own data only
            if unkeyed_entries(view.user_attrs):
                print(f"final evaluation: {unkeyed_entries(view.user_attrs)} cached result(s) from "
                      "before the cache recorded its data are not reused: nothing says which data "
                      "they were trained on", file=sys.stderr)
            jobs, threads = final_jobs(args.final_jobs, injected=train_fn is not None)
            final = run_final(
                view, args.top, args.final_seeds, train_fn or caser_train_fn(data),
                final_epochs=args.final_epochs, refresh=args.refresh, progress=sys.stderr,
                rule=rule, data=data, jobs=jobs, threads=threads,
            )
            print(f"final evaluation: {fmt.count(final.trained, 'run')} trained, {final.cached} "
                  "cached", file=sys.stderr)
        link_base = args.out.parent if args.out is not None else None
        new_plots = missing_folders(plots_dir(args)) if plots_dir(args) is not None else []
        if args.importance_bootstrap:
            print(f"importances: {args.importance_bootstrap} bootstrap resamples of the "
                  "trials ...", file=sys.stderr, flush=True)
        markdown = render(view, top_k=args.top, plots_dir=plots_dir(args), link_base=link_base,
                          final=final, importance_bootstrap=args.importance_bootstrap)
    except (StudyError, DataError) as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # The markdown is written only once whole; finished final runs stay cached in the study.
        kept = ("; the final evaluation's finished runs are cached in the study: run the same "
                "command again to go on" if args.final_seeds else "")
        print(f"report.py: interrupted ({interrupts.name()}): no report written{kept}", file=sys.stderr)
        return interrupts.exit_code()
    except OSError as exc:  # a plot that cannot be written after the check (a full disk)
        print(f"report.py: error: cannot write {exc.filename or 'an output'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(markdown)
        return 0
    try:
        write_report(args.out, markdown, new_plots)
    except OSError as exc:  # checked at the start; the disk may have filled since
        print(f"report.py: error: --out {args.out}: cannot write there ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"report.py: interrupted ({interrupts.name()}): no report written", file=sys.stderr)
        return interrupts.exit_code()
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write_report(out: Path, markdown: str, new_plots: list[Path]) -> None:
    """Replace `out` with the markdown whole; when that fails, the previous report stays and the
    plots folders this run created (`new_plots`, deepest first) go: no plots without a report."""
    try:
        write_files({out: lambda f: f.write(markdown.encode("utf-8"))})
    except BaseException:
        if new_plots:
            shutil.rmtree(new_plots[0], ignore_errors=True)
            remove_folders(new_plots[1:])
        raise


if __name__ == "__main__":
    sys.exit(interrupts.run_script("report.py", main))
