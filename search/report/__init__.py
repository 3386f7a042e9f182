"""The study report: a snapshot of an Optuna study rendered as markdown, one module per section.

`search.report.render.render(study, ...)` is pure (study in, markdown out); `report.py` at the
repository root is the CLI around it:  python report.py --study default --out REPORT.md

Nothing is imported here, so that `report.py --help` and its one-line errors need not load
matplotlib, scipy and scikit-learn first.
"""

DEFAULT_TOP_K = 5  # how many of the best complete trials the report shows (and retrains)
DEFAULT_IMPORTANCE_BOOTSTRAP = 20  # resamples of the trials for the importance intervals
