"""sweep.py and report.py as users run them: flags, one-line errors, exit codes."""
