"""The study report: a snapshot of an Optuna study rendered as markdown, one module per section.

`search.report.render.render(study, ...)` is pure (study in, markdown out); `report.py` at the
repository root is the CLI around it:  python report.py --study default --out REPORT.md

Nothing is imported here, so that `report.py --help` and its one-line errors need not load
matplotlib, scipy and scikit-learn first.
"""

DEFAULT_TOP_K = 5  # how many of the best complete trials the report shows (and retrains)
DEFAULT_IMPORTANCE_BOOTSTRAP = 20  # resamples of the trials for the importance intervals
# The PNGs in the plots folder (search/report/plots.py), named here so report.py can check that
# --out is none of them without loading matplotlib.
PLOT_FILES = {"history": "history.png", "importances": "importances.png", "curves": "curves.png",
              "slice": "slice.png"}
