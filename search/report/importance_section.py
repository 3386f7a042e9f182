"""Section 3, hyperparameter importances, with what a reader needs to trust them: the trials
each evaluator used, bootstrap intervals, their rank agreement, and a plain sentence when they
disagree or an interval is wide.
"""
from __future__ import annotations

import math

from search.report import fmt
from search.report.importance import EVALUATORS, FANOVA_SEED, MIN_TRIALS, Importances, agreement
from search.report.importance_bootstrap import ImportanceBootstrap

AGREE = 0.5  # Kendall's tau below this: the evaluators are said to disagree
WIDE = 0.25  # a 95% interval wider than this (importances sum to 1) is called wide
# Samplers that spread trials over the space, as fANOVA's forest assumes, by the name a study
# records ("random", as sweep.py's --sampler spells it) or Optuna's class name; the others
# (TPE, GP, CMA-ES, ...) concentrate them where the metric is good.
SPREADING_SAMPLERS = ("random", "qmc", "grid", "bruteforce")


def importance_section(imp: Importances, boot: ImportanceBootstrap | None = None,
                       noise_note: str = "") -> str:
    """noise_note: a sentence on how many of the trials lie within the default's seed spread
    (`search.report.noise.noise_note`), which the importances then partly measure."""
    head = "## Hyperparameter importances"
    basis = (
        f"Estimated from {imp.n_complete} complete trials of {imp.n_finished} finished; "
        "pruned and failed trials have no final value and are not used."
    )
    if imp.n_finished and imp.n_complete < imp.n_finished / 2:
        basis += (
            f" Most trials were pruned ({imp.n_finished - imp.n_complete} of {imp.n_finished}),"
            " so the estimate rests on the survivors, which are already the better region."
        )
    if imp.n_complete < MIN_TRIALS:
        return "\n\n".join(
            [head, f"Too few complete trials ({imp.n_complete}; need {MIN_TRIALS}) to estimate "
             "importances."]
        )
    used = []
    if "PED-ANOVA" in imp.used:
        used.append(f"PED-ANOVA {imp.used['PED-ANOVA']} (its top 10%: {imp.n_top})")
    if "fANOVA" in imp.used:
        used.append(f"fANOVA {imp.used['fANOVA']} (those holding every parameter it scores)")
    if used:
        basis += " Trials each evaluator used: " + "; ".join(used) + "."
    intervals = boot.intervals if boot is not None else {}
    rows = []
    ranks = {
        name: {p: i + 1 for i, p in enumerate(sorted(v, key=lambda p: (-v[p], p)))}
        for name, v in imp.values.items()
    }
    for param in imp.order():
        row = {"parameter": fmt.text(param)}
        for name in EVALUATORS:
            if name in imp.values:
                # fANOVA scores only the parameters every trial has (none of a conditional one).
                value = imp.values[name].get(param)
                row[name] = f"{value:.3f}" if value is not None else "n/a"
                if intervals.get(name):
                    ci = intervals[name].get(param)
                    row[f"{name} 95% interval"] = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a"
                row[f"{name} rank"] = str(ranks[name].get(param, ""))
        rows.append(row)
    top = imp.n_top
    notes = [
        "PED-ANOVA: how much each parameter's distribution in the top 10% of trials "
        f"({top} here) differs from all of them; fANOVA: share of the metric's variance a "
        f"seeded random forest (seed {FANOVA_SEED}) attributes to each parameter alone. "
        "Both are normalised to sum to 1."
    ]
    if boot is not None and boot.done:
        done = max(boot.done.values())
        notes.append(
            f"95% interval: the 2.5th to 97.5th percentile over {done} bootstrap resamples of the "
            f"complete trials (drawn with replacement, seed {boot.seed}; `--importance-bootstrap` "
            "sets the count). It shows how much the estimate moves with the sample of trials; it "
            "need not contain the estimate, since a resample holds only about 63% distinct trials."
        )
    if top < 5:
        notes.append(
            f"Only {top} trial(s) in PED-ANOVA's top 10%: rough until about 50 complete trials."
        )
    if any("n/a" in (row.get(name) for name in EVALUATORS) for row in rows):
        notes.append("n/a: fANOVA scores only the parameters that every complete trial has, "
                     "so not those of a conditional part of the space.")
    notes += _trust_sentences(imp, intervals)
    if noise_note:
        notes.append(noise_note)
    for name, err in imp.errors.items():
        notes.append(f"{name} could not run: {fmt.text(err)}")
    return "\n\n".join([head, basis, fmt.table(rows) if rows else "(no parameters)", *notes])


def _trust_sentences(imp: Importances,
                     intervals: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    """Plain sentences when the evaluators disagree or an interval is wide."""
    out = []
    agree = agreement(imp)
    if agree.n >= 2:
        tau = "undefined" if math.isnan(agree.tau) else f"{agree.tau:.2f}"
        out.append(f"Rank agreement between PED-ANOVA and fANOVA: Kendall's tau {tau} over "
                   f"{agree.n} parameters (1: the same order, 0: unrelated, -1: reversed).")
        firsts = [fmt.text(agree.first.get(name)) for name in EVALUATORS]
        if (math.isnan(agree.tau) or agree.tau < AGREE) or firsts[0] != firsts[1]:
            which = (f"PED-ANOVA ranks {firsts[0]} first, fANOVA {firsts[1]}"
                     if firsts[0] != firsts[1]
                     else f"both rank {firsts[0]} first, but order the others differently")
            out.append(
                f"**The two evaluators disagree** ({which}). They answer different questions: PED-ANOVA, which settings the "
                "best 10% of trials share; fANOVA, how much of the metric's variance over all "
                "complete trials each parameter explains, through a random forest that assumes "
                "the trials are spread over the whole space. " + _sampler_sentence(imp.sampler)
            )
    wide = [
        f"{name} {fmt.text(p)} [{lo:.2f}, {hi:.2f}]"
        for name in EVALUATORS
        for p, (lo, hi) in sorted(intervals.get(name, {}).items())
        if hi - lo > WIDE
    ]
    if wide:
        out.append(
            f"**Wide intervals** (wider than {WIDE}): {'; '.join(wide)}. Resampling the trials "
            "moves these importances a lot: with this many complete trials their ranks are rough, "
            "and a difference between the evaluators may be noise."
        )
    for name in EVALUATORS:
        order = sorted(imp.values.get(name, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        ci = intervals.get(name, {})
        if len(order) >= 2 and order[0][0] in ci and order[1][0] in ci:
            (first, _), (second, _) = order[0], order[1]
            if ci[first][0] <= ci[second][1]:
                out.append(f"{name}'s first place is not settled: the intervals of "
                           f"{fmt.text(first)} and {fmt.text(second)} overlap.")
    return out


def _sampler_sentence(stored: str | None) -> str:
    if stored is None:
        return ("The study did not record its sampler; if it was TPE (Optuna's default), its "
                "trials crowd into the region it found good, which breaks fANOVA's assumption.")
    sampler = fmt.text(stored)  # as the study recorded it
    if stored.lower().removesuffix("sampler") in SPREADING_SAMPLERS:
        return (f"This study's sampler, {sampler}, spreads trials over the space as fANOVA "
                "assumes, so its answer describes the whole space; PED-ANOVA's, the best trials.")
    return (f"This study's sampler, {sampler}, concentrates trials where the metric is good, "
            "which breaks fANOVA's assumption of spread-out samples: read fANOVA as a "
            "description of the region sampled, and PED-ANOVA for which settings the best "
            "trials share.")
