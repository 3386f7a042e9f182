"""The report's answer: which configuration to use, in one sentence, and why.

The rule (issue 23): the best configuration whose lead over the default on validation holds at the
seed level at convergence, else the default. A lead holds when the seed-level interval of the
difference of the converged validation values excludes 0 (`search.report.seed_level`, from 3
seeds). Once the final evaluation scored test, the sentence says whether test confirms the
choice: the seed-level interval of the test MAP difference (seeds and users counted). A choice
that test finds worse than the default is not recommended: the report then recommends the
default and says why (a veto towards the status quo, never a choice made on test).

Without a final evaluation at convergence the answer is provisional: the study's values are one
seed each at its budget, and the only measure of noise is the default's own seeds (the noise
floor, `search.report.noise`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from optuna.trial import FrozenTrial

# caser.arguments, not caser.train: the command line without importing torch.
from caser.arguments import command_line
from caser.config import ModelConfig, TrainConfig
from search import record
from search.errors import StudyError
from search.report import fmt
from search.report.convergence import cap_caveat, converged_mean
from search.report.final import Candidate, FinalResults, reproduce_epochs
from search.report.noise import ABOVE, BELOW, NoiseFloor
from search.report.seed_level import BETTER, MIN_SEEDS, WORSE, SeedLevel
from search.report.verdicts import test_level, validation_levels
from search.report.view import StudyView


@dataclass(frozen=True)
class Recommendation:
    """What to use: its configuration and epoch count (None: unknown), and why."""

    label: str
    model_config: ModelConfig | None  # None: the trial is not a Caser configuration (`unusable`)
    train_config: TrainConfig | None
    epochs: int | None  # the converged epoch count, else the trial's best epoch at the budget
    sentence: str  # the recommendation and its reason, one sentence
    notes: tuple[str, ...] = ()  # what could mislead: test's word, provisional status
    at_convergence: bool = False  # `epochs` was picked at convergence, not at the study's budget
    unusable: str = ""  # why no command can retrain it


def _fmt(level: SeedLevel) -> str:
    return f"{level.diff:+.4f}, 95% interval [{level.lo:+.4f}, {level.hi:+.4f}]"


def recommendation_section(view: StudyView, final: FinalResults | None, noise: NoiseFloor | None) -> str:
    """The report's answer as markdown: the sentence, what could mislead, and the command."""
    rec = recommend(view, final, noise)
    parts = ["## Recommendation", f"**{rec.sentence}**", *rec.notes]
    try:
        if rec.model_config is None:
            raise StudyError(rec.unusable)
        command, lead = _command(view, rec)
    except StudyError as exc:
        return "\n\n".join([*parts, f"No command: {fmt.text(exc)}."])
    return "\n\n".join([*parts, lead, fmt.code_block(command, "bash")])


def _command(view: StudyView, rec: Recommendation) -> tuple[str, str]:
    """The command that retrains the recommendation and its lead-in; StudyError when the study's
    stored settings are not Caser's."""
    epochs = rec.epochs or view.max_epochs or rec.train_config.epochs
    how = ("the median of the epochs picked on validation at convergence" if rec.at_convergence
           else "the study's budget" if not rec.epochs
           else f"its best epoch within the study's budget; `report.py --final-seeds {MIN_SEEDS}` picks it "
                "at convergence instead")
    command = command_line(rec.model_config, replace(rec.train_config, epochs=epochs), view.data_config(),
                           protocol="test")
    return command, f"Retrained on train+validation for {fmt.count(epochs, 'epoch')} ({how}) and scored on test:"


def recommend(view: StudyView, final: FinalResults | None, noise: NoiseFloor | None) -> Recommendation:
    """The recommendation (see the module docstring)."""
    if final is not None and final.rule is not None and len(final.seeds) >= MIN_SEEDS:
        return _at_convergence(final)
    if final is not None and final.rule is not None:
        return _best_converged(final)
    provisional = _provisional(view, noise)
    if final is None:
        note = ("Provisional: the study's values are one seed each at its budget, on validation. "
                f"`report.py --final-seeds {MIN_SEEDS}` retrains the candidates to convergence with "
                "several seeds and scores test.")
    elif final.rule is None:
        note = ("Provisional: the final evaluation trained fixed epochs (`--final-epochs`), not to "
                "convergence, so it cannot decide; run it without `--final-epochs`.")
        return replace(provisional, notes=(*provisional.notes, note,
                                           *_test_at_fixed_epochs(final, provisional.label)))
    return replace(provisional, notes=(*provisional.notes, note))


def _test_at_fixed_epochs(res: FinalResults, label: str) -> list[str]:
    """What test says of the provisional choice at the fixed epoch count, with its seed-level
    interval: evidence a researcher can use, said as what it is (one epoch count for every
    configuration, which a faster or slower learner can win or lose at convergence)."""
    cand = next((c for c in res.candidates if c.label == label and not c.is_default), None)
    level = test_level(res, cand) if cand is not None and len(res.seeds) >= MIN_SEEDS else None
    if level is None:
        return []
    epochs = res.tested[cand.key][0].epochs
    word = {BETTER: "better than", WORSE: "worse than"}.get(level.verdict, "not distinguishable from")
    return [f"On test at the fixed {fmt.count(epochs, 'epoch')}, {label} is {word} the default "
            f"(test MAP {_fmt(level)}, {len(res.seeds)} seeds and the users counted); at one epoch "
            "count for every configuration, not at each one's convergence."]


def _best_converged(res: FinalResults) -> Recommendation:
    """With fewer seeds than a seed-level verdict needs: the best at convergence, provisionally."""
    sign = 1.0 if res.maximize else -1.0
    ranked = sorted((c for c in res.candidates if not math.isnan(converged_mean(res, c))),
                    key=lambda c: -sign * converged_mean(res, c))
    best, default = ranked[0], res.default()
    value = f"{res.metric} {converged_mean(res, best):.4f}"
    if best is default:
        sentence = f"Use the default: it leads every configuration on validation at convergence ({value})."
    else:
        sentence = (f"Provisionally, {best.label}: it leads on validation at convergence ({value}, the "
                    f"default {converged_mean(res, default):.4f}).")
    note = (f"Provisional: the final evaluation ran {fmt.count(len(res.seeds), 'seed')}; whether a lead "
            f"holds at the seed level needs {MIN_SEEDS} or more (`--final-seeds {MIN_SEEDS}`).")
    return _of(res, best, sentence, (note,))


def _at_convergence(res: FinalResults) -> Recommendation:
    levels = validation_levels(res)
    sign = 1.0 if res.maximize else -1.0
    by_value = sorted((c for c in res.candidates if not c.is_default and not math.isnan(converged_mean(res, c))),
                      key=lambda c: -sign * converged_mean(res, c))
    holding = [c for c in by_value if levels[c.key].verdict == BETTER]
    default = res.default()
    metric = res.metric
    if not holding:
        closest = by_value[0] if by_value else None
        why = (f" (the closest, {closest.label}: {_fmt(levels[closest.key])} on {metric})"
               if closest is not None else "")
        sentence = (f"Use the default: no configuration's lead over it on validation at convergence "
                    f"holds at the seed level{why}.")
        return _of(res, default, sentence, tuple(_test_of_default(res)))
    chosen = holding[0]
    level = test_level(res, chosen)
    sentence = (f"Use {chosen.label}: its lead over the default on validation at convergence holds at "
                f"the seed level ({_fmt(levels[chosen.key])} on {metric}, {len(res.seeds)} seeds)")
    if level is None:
        return _of(res, chosen, sentence + ".",
                   ("Test cannot confirm it: its runs kept no per-user AP (`--refresh` retrains them).",))
    if level.verdict == WORSE:
        sentence = (f"Use the default: {chosen.label} leads it on validation at convergence at the "
                    f"seed level ({_fmt(levels[chosen.key])} on {metric}), but test contradicts that: "
                    f"it is worse than the default on test MAP ({_fmt(level)}, seeds and users counted).")
        return _of(res, default, sentence, ("Validation and test disagree: validation does not measure "
                                            "what this study's test measures (see the protocol in the "
                                            "summary).",))
    if level.verdict == BETTER:
        sentence += f", and test confirms it (test MAP {_fmt(level)}, seeds and users counted)."
    else:
        sentence += (f"; test does not confirm it: its test MAP lead ({_fmt(level)}) is within what "
                     "retraining with other seeds moves.")
    return _of(res, chosen, sentence)


def _of(res: FinalResults, cand: Candidate, sentence: str, notes: tuple[str, ...] = ()) -> Recommendation:
    capped = cap_caveat(res)
    return Recommendation(cand.label, cand.model_config, cand.train_config, reproduce_epochs(res, cand.key),
                          sentence, (*notes, capped) if capped else notes, at_convergence=True)


def _test_of_default(res: FinalResults) -> list[str]:
    """Whether test agrees that nothing beats the default."""
    better = []
    for cand in res.candidates:
        level = None if cand.is_default else test_level(res, cand)
        if level is not None and level.verdict == BETTER:
            better.append(f"{cand.label} ({_fmt(level)})")
    if not better:
        return ["Test agrees: no configuration is better than the default on test MAP at the seed level."]
    return [f"On test, {', '.join(better)} {'is' if len(better) == 1 else 'are'} better than the default "
            "at the seed level, but not on validation: choosing on that would be choosing on test."]


def _provisional(view: StudyView, noise: NoiseFloor | None) -> Recommendation:
    ranked = [t for t in view.ranked() if not record.is_replica(t)]
    default = view.default_trial()
    if not ranked:
        return _bare_default(view, "Use the default: no trial is complete.")
    best = ranked[0]
    if default is not None and best.number == default.number:
        return _of_trial(view, best, "the default", "Use the default: no trial of the study beat it.")
    place = noise.place(best.value) if noise is not None else None
    good = ABOVE if view.maximize else BELOW
    value = f"{view.metric} {best.value:.4f}"
    if place is None:
        return _of_trial(view, best, f"trial {best.number}",
                         f"Provisionally, trial {best.number}, the study's best ({value}); whether its "
                         "lead over the default is more than seed noise is unknown: the default "
                         "trained with fewer than 2 seeds.")
    lo, hi = noise.band()
    spread = f"[{lo:.4f}, {hi:.4f}] over {noise.n} seeds"
    if place == good:
        return _of_trial(view, best, f"trial {best.number}",
                         f"Provisionally, trial {best.number}: its {value} lies beyond what another "
                         f"seed of the default would reach ({spread}).")
    sentence = (f"Use the default: the study's best, trial {best.number} ({value}), lies within what "
                f"another seed of the default would reach ({spread}).")
    return _of_trial(view, default, "the default", sentence) if default else _bare_default(view, sentence)


def _of_trial(view: StudyView, trial: FrozenTrial, label: str, sentence: str) -> Recommendation:
    epochs = trial.user_attrs.get(record.BEST_EPOCH)
    try:
        model_config, train_config = view.configs(trial)
    except StudyError as exc:  # another program's study, a stored value of the wrong type
        return Recommendation(label, None, None, None, sentence, unusable=str(exc))
    return Recommendation(label, model_config, train_config, None if epochs is None else int(epochs), sentence)


def _bare_default(view: StudyView, sentence: str) -> Recommendation:
    try:
        model_config, train_config = view.default_configs()
    except StudyError as exc:
        return Recommendation("the default", None, None, None, sentence, unusable=str(exc))
    return Recommendation("the default", model_config, train_config, None, sentence)
