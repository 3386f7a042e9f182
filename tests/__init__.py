"""The tests, grouped by area: caser/ (the recommender), search/ (studies, trials, storages),
report/ (the report's sections), cli/ (sweep.py and report.py as users run them); shared
builders and runners in helpers/, fixtures in conftest.py.

    python -m pytest -q                  # all (a few minutes on 2 cores)
    python -m pytest -q -m "not slow"    # without the multi-process sweeps
"""
