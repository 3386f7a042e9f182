"""The last section: the exact `python -m caser.train ...` command that retrains the study's best
trial on train+validation and evaluates it on test, for the epoch count picked at convergence
when the final evaluation ran (the study's best epoch within its budget otherwise). Left out when
the recommendation is that trial's configuration: its command is under the recommendation.

The command is shell code built from stored settings: each argument must reach the shell as one
word, as stored, and the code block must end where the command does (`fmt.code_block`).
"""
from __future__ import annotations

import shlex
from dataclasses import replace

# caser.arguments, not caser.train: the same command line without importing torch.
from caser.arguments import command_line
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.final import FinalResults, reproduce_epochs
from search.report.recommendation import Recommendation
from search.report.seed_level import WORSE
from search.report.summary import NOT_RECORDED
from search.report.verdicts import test_level
from search.report.view import StudyView
from search.run_dirs import trial_dir_name

UNQUOTED = ("a stored setting of the study holds shell syntax (a space, a quote, `;`, `$`), "
            "so it cannot be shown as a command to paste")


def reproduce_section(view: StudyView, final: FinalResults | None = None,
                      recommended: Recommendation | None = None) -> str:
    ranked = view.ranked()
    head = "## Reproduce the study's best trial"
    if not ranked:
        return f"{head}\n\nNo complete trial."
    best = ranked[0]
    try:
        model_config, train_config = view.configs(best)
        data_config = view.data_config()
    except StudyError as exc:
        return f"{head}\n\nNo command: {fmt.text(exc)}."
    if recommended is not None and _same(recommended, model_config, train_config):
        return ""
    converged = reproduce_epochs(final, trial_dir_name(best.number)) if final is not None else None
    budget_epoch = int(best.user_attrs.get(record.BEST_EPOCH) or train_config.epochs)
    epochs = converged or budget_epoch
    command = command_line(model_config, replace(train_config, epochs=epochs), data_config,
                           protocol="test")
    if not _one_word_each(command):
        return f"{head}\n\nNo command: {UNQUOTED}."
    if converged is not None:
        picked = ", ".join(str(c.epoch) for c in final.converged[trial_dir_name(best.number)])
        lead = (
            f"Trial {best.number} ({view.metric} {best.value:.4f} at epoch {budget_epoch} of the "
            f"study's budget), retrained on train+validation for {fmt.count(epochs, 'epoch')}, "
            "the median of "
            f"the epochs picked on validation at convergence ({picked}), and evaluated on test:"
        )
    else:
        lead = (
            f"Trial {best.number} ({view.metric} {best.value:.4f} at epoch {epochs}), retrained on "
            "train+validation and evaluated on test:"
        )
    parts = [head, lead, fmt.code_block(command, "bash")]
    if final is not None:
        cand = next((c for c in final.candidates if c.key == trial_dir_name(best.number)), None)
        level = test_level(final, cand) if cand is not None else None
        if level is not None and level.verdict == WORSE:
            parts.append(f"**On test, trial {best.number} is worse than the default** (seeds and users "
                         "counted): this command reproduces the study's finding, not an improvement on "
                         "the original settings.")
    if converged is None:
        budget = (fmt.count(view.max_epochs, "epoch") if view.max_epochs is not None
                  else NOT_RECORDED)
        parts.append(
            f"The epoch count is the trial's best within the study's budget ({budget}); "
            "`report.py --final-seeds S` picks it at convergence instead."
        )
    return "\n\n".join(parts)


def _same(recommended: Recommendation, model_config, train_config) -> bool:
    """Whether the recommendation is this configuration (its seed and epochs aside)."""
    neutral = {"seed": 0, "epochs": 1}
    return (recommended.model_config == model_config
            and replace(recommended.train_config, **neutral) == replace(train_config, **neutral))


def _one_word_each(command: str) -> bool:
    """True when every argument of `command` is quoted for a shell as `shlex.quote` would: a stored
    setting that `command_line` leaves unquoted (it quotes only the data path) and that holds a
    space, `;` or `$(...)` would otherwise run as shell code when the reader pastes the command."""
    try:
        return shlex.join(shlex.split(command)) == command
    except ValueError:  # an unbalanced quote
        return False
