"""Section 7, reproduce: the exact `python -m caser.train ...` command that retrains the best
trial on train+validation for its best epoch and evaluates it on test."""
from __future__ import annotations

from dataclasses import replace

# caser.arguments, not caser.train: the same command line without importing torch.
from caser.arguments import command_line
from search import record
from search.errors import StudyError
from search.report.view import StudyView


def reproduce_section(view: StudyView) -> str:
    ranked = view.ranked()
    head = "## Reproduce the best trial"
    if not ranked:
        return f"{head}\n\nNo complete trial."
    best = ranked[0]
    try:
        model_config, train_config = view.configs(best)
    except StudyError as exc:
        return f"{head}\n\nNo command: {exc}."
    epochs = int(best.user_attrs.get(record.BEST_EPOCH) or train_config.epochs)
    train_config = replace(train_config, epochs=epochs)
    command = command_line(model_config, train_config, view.data_config(), protocol="test")
    lead = (
        f"Trial {best.number} ({view.metric} {best.value:.4f} at epoch {epochs}), retrained on "
        "train+validation and evaluated on test:"
    )
    return "\n\n".join([head, lead, f"```bash\n{command}\n```"])
