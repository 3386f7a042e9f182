"""Section 5, the final evaluation as markdown: at the budget against at convergence, test metrics
(mean, std, t-interval), the per-user paired tests against the default with Holm's correction and
effect sizes, and the per-seed tests beside them. Formats `search.report.final`'s results only.
"""
from __future__ import annotations

import math

from search.report import fmt
from search.report.convergence import convergence_section
from search.report.final import Candidate, FinalResults, TEST_METRICS
from search.report.paired import CONFIDENCE, compare_users, holm, matched, mean_per_user
from search.report.stats import ALPHA, compare, summarize
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
                        user_tests(res), _seed_tests(res)])


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
    parts += [f"### 95% confidence interval of the mean (t, {n - 1} dof)", fmt.table(ci_rows)]
    if n < 2:
        parts.append("One seed gives no spread: run with `--final-seeds 2` or more for intervals.")
    return "\n\n".join(parts)


def user_tests(res: FinalResults) -> str:
    """Per-user AP of each configuration against the default's, averaged over the same seeds."""
    head = "### Per-user paired tests against the default (test AP, users as the unit)"
    default = res.default()
    base = _per_user(res, default)
    others = [c for c in res.candidates if c is not default]
    if not others:
        return f"{head}\n\nOnly the default was evaluated."
    if not base or not all(_per_user(res, c) for c in others):
        return (f"{head}\n\nNot available: some test runs recorded no per-user AP (cached by an "
                "older report); run with `--refresh` to retrain them.")
    comparisons = [compare_users(*matched(_per_user(res, c), base)) for c in others]
    adjusted = holm([c.wilcoxon_p for c in comparisons])
    pct = f"{CONFIDENCE:.0%}"
    rows = []
    for cand, c, p_holm in zip(others, comparisons, adjusted):
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
            "verdict": _verdict(c.diff, p_holm),
        })
    tail = (
        f"Each user's AP is averaged over seeds {', '.join(map(str, res.seeds))}, the same for "
        "every configuration, and paired with the same user's under the default. Wilcoxon "
        "signed-rank, two-sided; users with no difference (ties) drop out of it. Holm's "
        f"correction covers the {len(others)} comparisons, so a Holm p below {ALPHA} holds for "
        "all of them together. Rank-biserial: from -1 (the default is better for every user) "
        "to 1 (the configuration is), its interval a seeded bootstrap over users."
    )
    return "\n\n".join([head, fmt.table(rows), tail])


def _per_user(res: FinalResults, cand: Candidate) -> dict[int, float]:
    runs = res.tested.get(cand.key, [])
    if not runs or any(not t.users for t in runs):
        return {}
    return mean_per_user([(t.users, t.user_ap) for t in runs])


def _verdict(diff: float, p: float) -> str:
    if p != p or p >= ALPHA:
        return "no significant difference"
    return "better than the default" if diff > 0 else "worse than the default"


def _seed_tests(res: FinalResults) -> str:
    default = res.default()
    base = [r["test/map"] for r in res.metrics.get(default.key, [])]
    rows = []
    for cand in res.candidates:
        if cand is default:
            continue
        runs = [r["test/map"] for r in res.metrics.get(cand.key, [])]
        c = compare(runs, base)
        rows.append(
            {
                "config": cand.label,
                "MAP": fmt.number(summarize(runs).mean),
                "Δ MAP vs default": f"{c.diff:+.4f}",
                "Welch p": _p(c.welch_p),
                "Wilcoxon p (paired)": _p(c.wilcoxon_p),
                "note": c.note,
            }
        )
    head = (f"### Per-seed tests: MAP against the default ({default.label}, MAP "
            f"{fmt.number(summarize(base).mean)})")
    if not rows:
        return f"{head}\n\nOnly the default was evaluated."
    tail = (
        f"Seeds as the unit: p < {ALPHA} reads as a real difference at the 5% level, one test per "
        "row and no correction for testing several configs. With few seeds these tests are weak; "
        "the per-user tests above use every test user."
    )
    return "\n\n".join([head, fmt.table(rows), tail])


def _p(p: float) -> str:
    return "n/a" if p != p else f"{p:.3g}"
