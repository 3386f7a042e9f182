"""Section 5, the final evaluation as markdown: at the budget against at convergence, test metrics
(mean, std, and a t-interval from 3 seeds), each configuration against the default with seeds and
users counted (`search.report.seed_level`: the verdicts "better" and "worse"), and beside it the
per-user paired tests with Holm's correction and effect sizes, described as what they are: whether
these trained models differ on these users. Formats `search.report.final`'s results only.

Configurations picked as the best of a study on validation can lead the default there and trail
it on test (a 33-trial default study did, 2026-12-03); the section then says so in bold.
"""
from __future__ import annotations

import math

from search.report import fmt
from search.report.convergence import capped_runs, convergence_section, converged_mean
from search.report.final import Candidate, FinalResults, TEST_METRICS
from search.report.paired import (BOOTSTRAP, CONFIDENCE, UserComparison, compare_users, holm,
                                  matched, mean_per_user)
from search.report.seed_level import BETTER, MIN_SEEDS, TOO_FEW_SEEDS, WORSE
from search.report.stats import ALPHA, summarize
from search.report.verdicts import test_level, validation_test_tau
from search.report.view import short_metric


def final_section(res: FinalResults) -> str:
    """The whole section; the same results always give the same markdown (cached or not)."""
    n = len(res.seeds)
    how = "at convergence" if res.rule is not None else "with fixed epochs"
    head = (
        f"## Final evaluation on test, {how} ({n} seed{'s' if n != 1 else ''}: "
        f"{', '.join(map(str, res.seeds))}; trained on train+validation)"
    )
    # How many runs came from the cache goes to stderr, not here: the markdown must not change
    # between a first run and a cached second one.
    picked = ("the epoch count picked on validation at convergence (per seed)"
              if res.rule is not None else "the epochs given by --final-epochs")
    lead = (
        "Each configuration, the default among them, is retrained with the same seeds for "
        f"{picked} and evaluated once on test. Per-seed results are cached in the study's user "
        "attributes (`final/<trial>/seed_<s>/...`)."
    )
    return "\n\n".join([head, lead, convergence_section(res), _test_tables(res),
                        seed_level_tests(res), user_tests(res)])


def _epochs(res: FinalResults, cand: Candidate) -> str:
    epochs = [t.epochs for t in res.tested.get(cand.key, [])]
    return str(epochs[0]) if len(set(epochs)) == 1 else ", ".join(map(str, epochs))


def _test_tables(res: FinalResults) -> str:
    n = len(res.seeds)
    present = {k for runs in res.metrics.values() for run in runs for k in run}
    metrics = [m for m in TEST_METRICS if m in present]
    mean_rows, ci_rows = [], []
    for cand in res.candidates:
        runs = res.metrics.get(cand.key, [])
        head_cells = {"config": cand.label, "epochs": _epochs(res, cand)}
        mean_row, ci_row = dict(head_cells), dict(head_cells)
        for m in metrics:
            s = summarize([r[m] for r in runs if m in r])
            std = f" ± {s.std:.4f}" if s.n > 1 else ""
            mean_row[short_metric(m)] = f"{s.mean:.4f}{std}"
            ci_row[short_metric(m)] = f"[{s.lo:.4f}, {s.hi:.4f}]" if s.n > 1 else "n/a"
        mean_rows.append(mean_row)
        ci_rows.append(ci_row)
    parts = ["### Test metrics, mean ± std over seeds", fmt.table(mean_rows)]
    if n >= MIN_SEEDS:
        parts += [f"### 95% confidence interval of the mean (t, {n - 1} dof)", fmt.table(ci_rows)]
    elif n == 2:
        parts.append("Two seeds: a t-interval of the mean would have 1 degree of freedom (12.7 "
                     "standard errors wide), so none is shown; run `--final-seeds 3` or more.")
    else:
        parts.append("One seed gives no spread: run with `--final-seeds 3` or more for intervals.")
    return "\n\n".join(parts)


def seed_level_tests(res: FinalResults) -> str:
    """Each configuration's test MAP against the default's, seeds and users counted: the verdict
    on the configuration, not only on the trained models."""
    head = "### Against the default, seeds and users counted (test MAP)"
    others = [c for c in res.candidates if not c.is_default]
    if not others:
        return f"{head}\n\nOnly the default was evaluated."
    rows = []
    for cand in others:
        level = test_level(res, cand)
        rows.append({
            "config": cand.label,
            "seeds": str(level.seeds) if level else "n/a",
            "Δ MAP": f"{level.diff:+.4f}" if level else "n/a",
            "95% interval": f"[{level.lo:+.4f}, {level.hi:+.4f}]" if level and not math.isnan(level.lo) else "n/a",
            "verdict": level.verdict if level else "no per-user AP (`--refresh`)",
        })
    tail = ("The interval counts both sources of variance a researcher meets when retraining: the "
            "seeds (each configuration's spread over its own seeds) and the users (the per-user "
            "differences): a mixed model with seed and user effects, Satterthwaite's t. Better or "
            "worse than the default only where it excludes 0.")
    parts = [head, fmt.table(rows), tail]
    if len(res.seeds) < MIN_SEEDS:
        parts.append(f"With {fmt.count(len(res.seeds), 'seed')} no seed-level verdict is possible: the "
                     "spread of a configuration over its seeds cannot be judged from fewer than "
                     f"{MIN_SEEDS}; run `--final-seeds {MIN_SEEDS}` or more.")
    tau, n = validation_test_tau(res)
    if not math.isnan(tau):
        n_capped, n_runs = capped_runs(res)
        capped = (f" (taken at the {res.rule.max_epochs}-epoch cap, where {n_capped} of "
                  f"{n_runs} runs were still improving)") if n_capped else ""
        parts.append(f"Kendall's tau between the ranking on validation at convergence{capped} and the "
                     f"ranking on test: {tau:.2f} over {fmt.count(n, 'configuration')} (1: the same order).")
    return "\n\n".join(parts)


def user_tests(res: FinalResults) -> str:
    """Per-user AP of each configuration against the default's, averaged over the same seeds."""
    head = "### Per-user paired tests against the default (test AP, users as the unit)"
    what = ("These ask whether the trained models differ on these test users. They count the users, "
            "not the seeds: retrained with other seeds, a configuration can move by more than these "
            "intervals, so a small p here is not a verdict on the configuration (the table above is).")
    others = [c for c in res.candidates if c is not res.default()]
    if not others:
        return f"{head}\n\nOnly the default was evaluated."
    compared = _user_comparisons(res)
    if compared is None:
        return (f"{head}\n\nNot available: some test runs recorded no per-user AP (cached by an "
                "older report); run with `--refresh` to retrain them.")
    verdicts = _verdicts(compared)
    pct = f"{CONFIDENCE:.0%}"
    rows = []
    for cand, c, p_holm in compared:
        rows.append({
            "config": cand.label,
            "users": str(c.users),
            "ties": str(c.ties),
            "Δ AP per user": f"{c.diff:+.4f}",
            f"{pct} CI (t)": f"[{c.diff_lo:+.4f}, {c.diff_hi:+.4f}]" if c.users > 1 else "n/a",
            "rank-biserial": fmt.number(c.rank_biserial, 3) or "n/a",
            f"{pct} CI (bootstrap)": "n/a" if math.isnan(c.rb_lo)
            else f"[{c.rb_lo:+.3f}, {c.rb_hi:+.3f}]",
            "Wilcoxon p": _p(c.wilcoxon_p),
            "Holm p": _p(p_holm),
            "verdict": verdicts[cand.key],
        })
    tail = (
        f"Each user's AP is averaged over seeds {', '.join(map(str, res.seeds))}, the same for "
        "every configuration, and paired with the same user's under the default. Wilcoxon "
        "signed-rank, two-sided; users with no difference (ties) drop out of it. Holm's "
        f"correction covers the {len(others)} comparisons, so a Holm p below {ALPHA} holds for "
        "all of them together. Rank-biserial: from -1 (the default is better for every user) "
        "to 1 (the configuration is), its interval a seeded bootstrap over users."
    )
    return "\n\n".join([head, what, fmt.table(rows), tail, *_against_validation(res, others, verdicts)])


def _against_validation(res: FinalResults, others: list[Candidate], verdicts: dict[str, str]) -> list[str]:
    """A plain warning when configurations that lead the default on validation at convergence
    are worse than it on test at the seed level; a sentence when the per-user tests call them
    worse but the seeds' spread does not; and one when none is better than it on test."""
    sign = 1.0 if res.maximize else -1.0
    default_value = converged_mean(res, res.default())
    ahead = [c for c in others if sign * (converged_mean(res, c) - default_value) > 0]
    levels = {c.key: test_level(res, c) for c in others}
    seed_verdict = {k: (level.verdict if level else TOO_FEW_SEEDS) for k, level in levels.items()}
    reversed_ = [c.label for c in ahead if seed_verdict[c.key] == WORSE]
    per_user_only = [c.label for c in ahead if verdicts[c.key] == USER_WORSE and seed_verdict[c.key] != WORSE]
    out = []
    if reversed_:
        out.append(
            f"**Validation and test disagree: {', '.join(reversed_)} "
            f"{'leads' if len(reversed_) == 1 else 'lead'} the default on validation but "
            f"{'is' if len(reversed_) == 1 else 'are'} worse than it on test** (seeds and users "
            "counted). Their validation values were chosen as the best of the study's trials on the "
            "same validation data, which flatters them; none was chosen on test."
        )
    if per_user_only:
        out.append(
            f"The per-user tests call {', '.join(per_user_only)} worse than the default on test, but "
            "that difference is within what retraining with other seeds moves (or too few seeds "
            "were run to tell): it says these trained models differ, not that the configuration is "
            "worse."
        )
    if others and not any(v == BETTER for v in seed_verdict.values()):
        out.append("No configuration here is better than the default on test at the seed level.")
    return out


def _user_comparisons(res: FinalResults, bootstrap: int = BOOTSTRAP,
                      ) -> list[tuple[Candidate, UserComparison, float]] | None:
    """Each non-default configuration against the default, user by user, with its Holm-adjusted
    p; None when some test run recorded no per-user AP."""
    default = res.default()
    others = [c for c in res.candidates if c is not default]
    base = _per_user(res, default)
    if not base or not all(_per_user(res, c) for c in others):
        return None
    comparisons = [compare_users(*matched(_per_user(res, c), base), bootstrap=bootstrap) for c in others]
    return list(zip(others, comparisons, holm([c.wilcoxon_p for c in comparisons])))


def _verdicts(compared: list[tuple[Candidate, UserComparison, float]]) -> dict[str, str]:
    return {cand.key: _verdict(c.diff, p_holm) for cand, c, p_holm in compared}


def _per_user(res: FinalResults, cand: Candidate) -> dict[int, float]:
    runs = res.tested.get(cand.key, [])
    if not runs or any(not t.users for t in runs):
        return {}
    return mean_per_user([(t.users, t.user_ap) for t in runs])


USER_BETTER, USER_WORSE = "these models better", "these models worse"


def _verdict(diff: float, p: float) -> str:
    if p != p or p >= ALPHA:
        return "no significant difference"
    return USER_BETTER if diff > 0 else USER_WORSE


def _p(p: float) -> str:
    return "n/a" if p != p else f"{p:.3g}"
