"""errors.regressions: what got worse since the previous run, row by row against the previous predictions
file, else metric by metric against the previous saved run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analyses.predictions import model_outputs, previous_outputs
from ...analyses.slices import MAX_CATEGORY_VALUES, MIN_SLICE_ROWS, column_kinds, plain_value
from ...analyses.where import SliceError, evaluate_where
from ...analyses.stats import (FDR, ONE_SIDED_Z, benjamini_hochberg, mcnemar_two_sided_p, mcnemar_worse_p,
                               paired_bootstrap_interval, paired_worse_p)
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, RowTable, Series, SkipCheck, fail, info, passed, warn
from .rows import SHOWN_EXAMPLES, label_name, row_key_columns, row_values
from ...wording import cut_list

# Regressions: a class or slice counts as worse when McNemar's test on its flipped rows is significant
# after BH and its accuracy fell by at least 5 points (smaller moves are within what retraining with a
# new seed produces); for regression targets, a 5% higher mean absolute error.
REGRESSION_MIN_DROP = 0.05
REGRESSION_MIN_REL = 0.05


@check("errors.regressions", title="What got worse since the previous run")
def regressions(ctx: RunContext):
    previous = previous_outputs(ctx)
    if previous is not None:
        return _regressions_from_predictions(ctx, previous)
    return _regressions_from_history(ctx)


# --- against the previous predictions, row by row ------------------------------------------------
def _segments(ctx: RunContext, frame) -> list[tuple[str, Any]]:
    """Segments compared between runs: the project's [[slices]] and every frequent categorical value."""
    segs = []
    for spec in ctx.config.slices:
        try:
            segs.append((f"slice '{spec.name}'", evaluate_where(frame, spec.where)))
        except SliceError:
            continue
    _, cats, _ = column_kinds(frame, ctx.numeric_columns, ctx.categorical_columns, [])
    for c in cats:
        counts = frame[c].value_counts(dropna=True)
        for value in counts.index[:MAX_CATEGORY_VALUES]:
            if counts[value] >= MIN_SLICE_ROWS:
                segs.append((f"{c} == {plain_value(value)!r}", (frame[c] == value).to_numpy()))
    return segs


@dataclass
class RowComparison:
    """The previous and the current predictions on the same labelled valid rows."""

    test: str                     # the statistical test, for the finding's text
    unit: str                     # what is compared per segment: accuracy or mean absolute error
    stats: list[dict]             # per class / segment: rows, previous, current, drop, p (and q once corrected)
    got_worse: int                # rows
    got_better: int
    overall_p: float
    previous_all: float           # the unit over all rows
    current_all: float
    worse_effect: float           # > 0: worse overall (accuracy points, or relative MAE)
    examples: list[dict] = field(default_factory=list)  # rows that got worse


def _compare_classification(ctx: RunContext, frame, rows, y, was, now) -> RowComparison:
    import numpy as np

    now_ok, was_ok = now == y, was == y
    worse_rows, better_rows = was_ok & ~now_ok, ~was_ok & now_ok
    groups = [(f"class '{c}'", y == i) for i, c in enumerate(ctx.classes)] + _segments(ctx, frame)
    stats = []
    for name, mask in groups:
        n = int(mask.sum())
        if n == 0:
            continue
        b, c = int((worse_rows & mask).sum()), int((better_rows & mask).sum())
        stats.append({"segment": name, "rows": n, "right_to_wrong": b, "wrong_to_right": c,
                      "previous": float(was_ok[mask].mean()), "current": float(now_ok[mask].mean()),
                      "drop": float(was_ok[mask].mean() - now_ok[mask].mean()),
                      "p": float(mcnemar_worse_p(b, c))})
    got_worse, got_better = int(worse_rows.sum()), int(better_rows.sum())
    examples = [{"row": int(rows[i]), "label": label_name(ctx, int(y[i])), "previous": label_name(ctx, int(was[i])),
                 "current": label_name(ctx, int(now[i])), "values": row_values(ctx, ctx.valid, int(rows[i]))}
                for i in np.flatnonzero(worse_rows)[:SHOWN_EXAMPLES]]
    return RowComparison("McNemar's exact test on the rows that flipped", "accuracy", stats, got_worse, got_better,
                         float(mcnemar_worse_p(got_worse, got_better)), float(was_ok.mean()), float(now_ok.mean()),
                         was_ok.mean() - now_ok.mean(), examples)


def _compare_regression(ctx: RunContext, frame, rows, y, was, now) -> RowComparison:
    import numpy as np

    now_err, was_err = np.abs(now - y), np.abs(was - y)
    d = now_err - was_err
    stats = []
    for name, mask in _segments(ctx, frame):
        n = int(mask.sum())
        if n < 2:
            continue
        before, after = float(was_err[mask].mean()), float(now_err[mask].mean())
        stats.append({"segment": name, "rows": n, "previous": before, "current": after,
                      "drop": (after - before) / max(before, 1e-12), "p": paired_worse_p(d[mask])})
    examples = [{"row": int(rows[i]), "target": float(y[i]), "previous": float(was[i]), "current": float(now[i]),
                 "values": row_values(ctx, ctx.valid, int(rows[i]))}
                for i in np.argsort(-d, kind="stable")[:SHOWN_EXAMPLES] if d[i] > 0]
    return RowComparison("a paired z-test on per-row absolute errors", "mean absolute error", stats,
                         int((d > 0).sum()), int((d < 0).sum()), paired_worse_p(d), float(was_err.mean()),
                         float(now_err.mean()), (now_err.mean() - was_err.mean()) / max(was_err.mean(), 1e-12),
                         examples)


@dataclass
class PredictionRegressions:
    is_classification: bool
    compared_with: str            # the previous predictions file
    metric: str
    current: float | None         # the metric over all rows, now and before
    previous: float | None
    comparison: RowComparison
    slice_comparison: list[dict] = field(default_factory=list)  # per weak slice and [[slices]] test
    row_table: RowTable | None = None   # the rows that went from right to wrong (issue 18)

    @property
    def min_drop(self) -> float:
        return REGRESSION_MIN_DROP if self.is_classification else REGRESSION_MIN_REL

    @property
    def worse_segments(self) -> list[dict]:
        """Segments worse beyond noise (BH-corrected) and by at least min_drop, worst first."""
        return sorted([s for s in self.comparison.stats if s["q"] < FDR and s["drop"] >= self.min_drop],
                      key=lambda s: -s["drop"])


def _measure_prediction_regressions(ctx: RunContext, prev) -> PredictionRegressions:
    import numpy as np

    from ...analyses.scoring import score

    cur = model_outputs(ctx).get("valid")
    keep = cur.labelled
    frame = ctx.valid.loc[keep].reset_index(drop=True)
    y, now, was = cur.y_true[keep], cur.pred[keep], prev.pred[keep]
    compare = _compare_classification if ctx.is_classification else _compare_regression
    comparison = compare(ctx, frame, np.flatnonzero(keep), y, was, now)
    q = benjamini_hochberg([s["p"] for s in comparison.stats]) if comparison.stats else []
    for s, qv in zip(comparison.stats, q):
        s["q"] = float(qv)
    n_classes = len(ctx.classes) or None
    m_now = score(ctx.metric, y, pred=now, proba=cur.proba[keep] if cur.proba is not None else None,
                  n_classes=n_classes)
    m_before = score(ctx.metric, y, pred=was, proba=prev.proba[keep] if prev.proba is not None else None,
                     n_classes=n_classes)
    m = PredictionRegressions(ctx.is_classification, str(ctx.config.previous_predictions), ctx.metric,
                              m_now, m_before, comparison)
    m.slice_comparison = _slice_comparison(ctx, keep, y, was, now)
    m.row_table = _worse_rows(ctx, np.flatnonzero(keep), y, was, now)
    return m


# --- previous vs current on each weak slice and [[slices]] test (the seed's step 5) ----------------------
def _named_slices(ctx: RunContext, keep) -> list[tuple[str, str, Any]]:
    """(kind, name, mask over the labelled valid rows) of each [[slices]] test and each weak slice of the
    current model (errors.weak_slices' cached analysis)."""
    import numpy as np

    from ...analyses.slices import weak_slice_analysis

    out = []
    for spec in ctx.config.slices:
        try:
            out.append(("slice test", spec.name, np.asarray(evaluate_where(ctx.valid, spec.where))[keep]))
        except SliceError:
            continue
    try:
        a = weak_slice_analysis(ctx)
    except (SkipCheck, ImportError, ValueError):  # no slices to show: the [[slices]] tests still are
        return out
    where = np.flatnonzero(keep)
    for found, mask in zip(a.slices, a.masks):
        full = np.zeros(len(keep), dtype=bool)
        full[a.positions[mask]] = True
        out.append(("weak slice", found["description"], full[where]))
    return out


def _slice_comparison(ctx: RunContext, keep, y, was, now) -> list[dict]:
    """Both models' score on each named slice, the difference and its significance: McNemar's exact
    two-sided test on the rows that flipped (classification), else a bootstrap interval of the change in
    mean absolute error. Weak slices are chosen for the current model's errors, so they are shown, never
    judged: only the [[slices]] tests (chosen before either model) enter the verdict, through _segments."""
    import numpy as np

    rows = []
    for kind, name, mask in _named_slices(ctx, keep):
        n = int(mask.sum())
        if n == 0:
            continue
        row = {"kind": kind, "slice": name, "rows": n}
        if ctx.is_classification:
            was_ok, now_ok = (was == y)[mask], (now == y)[mask]
            b, c = int((was_ok & ~now_ok).sum()), int((~was_ok & now_ok).sum())
            row.update(measure="accuracy", previous=float(was_ok.mean()), current=float(now_ok.mean()),
                       right_to_wrong=b, wrong_to_right=c, test="McNemar exact, two-sided",
                       p=float(mcnemar_two_sided_p(b, c)))
        else:
            d = np.abs(now - y)[mask] - np.abs(was - y)[mask]
            low, high = paired_bootstrap_interval(d, ctx.seed)
            row.update(measure="mean absolute error", previous=float(np.abs(was - y)[mask].mean()),
                       current=float(np.abs(now - y)[mask].mean()), test="bootstrap 95% interval of the change",
                       interval=[low, high], significant=bool(low > 0 or high < 0))
        row["difference"] = row["current"] - row["previous"]
        if ctx.is_classification:
            row["significant"] = row["p"] < FDR
        rows.append(row)
    return rows


def _worse_rows(ctx: RunContext, rows, y, was, now) -> RowTable | None:
    """Rows the current model gets wrong and the previous one got right (classification), or whose
    absolute error grew (regression), the largest growth first."""
    import numpy as np

    if ctx.is_classification:
        picked = np.flatnonzero((was == y) & (now != y))
        label = {"label": [label_name(ctx, int(v)) for v in y[picked]],
                 "previous": [label_name(ctx, int(v)) for v in was[picked]],
                 "current": [label_name(ctx, int(v)) for v in now[picked]], "is_regression": [True] * len(picked)}
    else:
        growth = np.abs(now - y) - np.abs(was - y)
        picked = np.flatnonzero(growth > 0)
        picked = picked[np.argsort(-growth[picked], kind="stable")]
        label = {"label": y[picked].astype(float), "previous": was[picked].astype(float),
                 "current": now[picked].astype(float), "is_regression": [True] * len(picked),
                 "regression_score": growth[picked]}
    if not len(picked):
        return None
    cols = {"position": rows[picked].tolist()}
    cols.update(row_key_columns(ctx, ctx.valid, rows[picked], split="valid"))
    cols.update(label)
    return RowTable.from_columns(cols)


def _slice_plot(m: "PredictionRegressions") -> PlotSpec:
    shown = m.slice_comparison[:12]
    unit = shown[0]["measure"] if shown else "accuracy"
    names = [f"{s['slice']}" for s in shown]
    return PlotSpec(kind="bar", title=f"{unit} per slice: previous vs current model", x_label="slice", y_label=unit,
                    series=[Series("previous", names, [s["previous"] for s in shown]),
                            Series("current", names, [s["current"] for s in shown])])


def _slice_listing(m: "PredictionRegressions") -> str:
    def sig(s):
        if "p" in s:
            return f"p = {s['p']:.2g}, {s['right_to_wrong']} right->wrong, {s['wrong_to_right']} wrong->right"
        return f"95% interval of the change [{s['interval'][0]:+.3g}, {s['interval'][1]:+.3g}]"

    lines = [f"- {s['kind']} {s['slice']}: {s['measure']} {s['previous']:.3g} -> {s['current']:.3g} "
             f"({s['difference']:+.3g}; {s['rows']} rows; {sig(s)})" for s in m.slice_comparison[:12]]
    return ("\nPrevious vs current on each slice (weak slices are the current model's: shown, not judged):\n"
            + "\n".join(lines)) if lines else ""


def prediction_regressions_verdict(m: PredictionRegressions) -> Finding:
    c, metric, worse, min_drop = m.comparison, m.metric, m.worse_segments, m.min_drop
    delta = None if m.current is None or m.previous is None else m.current - m.previous
    overall_worse = c.overall_p < FDR and c.worse_effect > 0
    evidence = {"compared_with": m.compared_with, "metric": metric, "current": m.current,
                "previous": m.previous, "delta": delta, "got_worse": c.got_worse, "got_better": c.got_better,
                "overall_p": c.overall_p, "test": c.test, "worse_segments": worse, "segments_tested": len(c.stats),
                "fdr": FDR, "min_drop": min_drop, "flipped_examples": c.examples,
                "slice_comparison": m.slice_comparison}
    shown = ["all"] + [s["segment"] for s in worse[:8]]
    plot = PlotSpec(kind="bar", title=f"{c.unit}: previous vs current", x_label="segment", y_label=c.unit,
                    series=[Series("previous", shown, [c.previous_all] + [s["previous"] for s in worse[:8]]),
                            Series("current", shown, [c.current_all] + [s["current"] for s in worse[:8]])])
    plots = [plot] + ([_slice_plot(m)] if m.slice_comparison else [])
    slice_text = _slice_listing(m)
    moved = f"{c.got_worse} row(s) got worse, {c.got_better} got better"
    listing = "\n".join(f"- {s['segment']}: {c.unit} {s['previous']:.3g} -> {s['current']:.3g} "
                        f"({s['rows']} rows, q = {s['q']:.2g})" for s in worse[:8])
    delta_text = f"{metric} {m.previous:.4g} -> {m.current:.4g}" if delta is not None else f"{metric} n/a"
    if overall_worse or worse:
        what = ("overall" if overall_worse else "") + (" and " if overall_worse and worse else "") + \
               (f"in {len(worse)} segment(s): {cut_list([s['segment'] for s in worse], 3)}" if worse else "")
        return fail(f"regression {what} ({delta_text})",
                    detail=f"Compared with the previous predictions: {moved}; {c.test}, one-sided, "
                           f"p = {c.overall_p:.2g} overall. A class or segment counts as worse when its test "
                           f"stays significant after Benjamini-Hochberg (q < {FDR}) and it lost at least "
                           f"{min_drop:.0%} {'accuracy' if m.is_classification else 'relative MAE'}.\n{listing}"
                           + slice_text,
                    fix="Diff the two runs' changes (data, features, hyper-parameters) and read the flipped rows "
                        "listed in the evidence; add a [[slices]] test for the segment that regressed so CI "
                        "catches it next time.",
                    evidence=evidence, plots=plots, rows=m.row_table)
    return passed(f"no regression against the previous predictions ({delta_text}; {moved})",
                  detail=f"{c.test}: p = {c.overall_p:.2g} overall; no class or segment worse beyond noise "
                         f"({len(c.stats)} tested)." + slice_text, evidence=evidence, plots=plots,
                  rows=m.row_table)


def _regressions_from_predictions(ctx: RunContext, prev) -> Finding:
    return prediction_regressions_verdict(_measure_prediction_regressions(ctx, prev))


# --- against the previous saved run, metric by metric --------------------------------------------
def _previous_summary(ctx: RunContext) -> tuple[dict, dict]:
    """(the previous saved run, its metrics.summary finding), or SkipCheck saying what is missing."""
    from ...io.state import load_previous_run

    run = load_previous_run(ctx.root)
    if run is None:
        raise SkipCheck("needs something to compare with: [artifacts] previous_predictions = \"...\", or a "
                        "previous `mltriage check` run saved in .mltriage/runs/")
    old = next((f for f in run.get("findings", []) if isinstance(f, dict) and f.get("check") == "metrics.summary"
                and _summary_shape_ok(f.get("evidence"))), None)
    if old is None:
        raise SkipCheck("the previous saved run has no metrics.summary numbers to compare with (run the metrics "
                        "step too), and no [artifacts] previous_predictions is set")
    return run, old


def _counts_ok(row) -> bool:
    number = (int, float)
    return (isinstance(row, dict) and isinstance(row.get("support"), number) and row["support"] > 0
            and isinstance(row.get("correct"), number) and not isinstance(row.get("correct"), bool))


def _summary_shape_ok(evidence) -> bool:
    """Whether a saved metrics.summary evidence has the shape this check reads (a run file is data from
    disk: a damaged or hand-edited one is skipped, never a crash)."""
    if not isinstance(evidence, dict) or not isinstance(evidence.get("splits"), dict):
        return False
    valid = evidence["splits"].get("valid")
    if not isinstance(valid, dict) or not isinstance(valid.get("metrics"), dict):
        return False
    per_class = evidence.get("per_class", {})
    return isinstance(per_class, dict) and isinstance(per_class.get("valid", {}), dict)


def _regressions_from_history(ctx: RunContext) -> Finding:
    import math

    from ...analyses.evaluation import standard_error, summary_numbers

    run, old = _previous_summary(ctx)
    model_outputs(ctx)  # a predict that returns no scores is reported once (skipped here), not re-raised
    now = summary_numbers(ctx)
    metric = ctx.metric
    before = (old["evidence"]["splits"].get("valid") or {}).get("metrics", {}).get(metric)
    if not isinstance(before, (int, float)) or isinstance(before, bool):
        before = None  # a damaged saved run
    after = now["splits"]["valid"]["metrics"].get(metric)
    if before is None or after is None:
        raise SkipCheck(f"the previous run has no valid-split {metric} to compare with")
    hib = now["higher_is_better"]
    # Same rows scored twice: the difference is at most as noisy as two independent estimates.
    se = (standard_error(ctx, metric, "valid") or 0.0) * math.sqrt(2)
    worse_by = (before - after) if hib else (after - before)
    rows_then = old["evidence"]["splits"]["valid"].get("rows")
    rows_then = rows_then if isinstance(rows_then, int) and not isinstance(rows_then, bool) else None
    classes = _class_recall_drops(old["evidence"].get("per_class", {}).get("valid", {}),
                                  now.get("per_class", {}).get("valid", {}))
    evidence = {"compared_with": "previous saved run", "run_started": run.get("started"), "metric": metric,
                "previous": before, "current": after, "worse_by": worse_by, "noise_se": se,
                "rows_previous": rows_then, "rows_current": now["splits"]["valid"]["rows"],
                "worse_classes": classes, "fdr": FDR, "min_drop": REGRESSION_MIN_DROP}
    plot = PlotSpec(kind="bar", title=f"{metric}: previous run vs now", x_label="run", y_label=metric,
                    series=[Series(metric, ["previous", "current"], [before, after])])
    same_rows = rows_then == now["splits"]["valid"]["rows"]
    caveat = "" if same_rows else f" Note: the valid split had {rows_then} rows then and {evidence['rows_current']} now."
    overall = worse_by > ONE_SIDED_Z * se and worse_by > 0
    # A model mltriage trained until the time budget ran out stops at a different step on every run:
    # a difference is then partly mltriage's own doing, so it is reported without a warning.
    cut_short = bool(now.get("budget_limited") or old["evidence"].get("budget_limited"))
    evidence["budget_limited"] = cut_short
    if overall or classes:
        parts = ([f"{metric} {before:.4g} -> {after:.4g}"] if overall else []) + \
                [f"class '{c['class']}' recall {c['previous']:.2f} -> {c['current']:.2f}" for c in classes[:3]]
        status = info if cut_short else warn
        if cut_short:
            caveat += (" The reference model was stopped by the time budget in one of the two runs, so part of "
                       "the difference may come from training for a different number of steps.")
        return status(f"worse than the previous run: {'; '.join(parts)}",
                      detail=f"Compared with the metrics.summary of the previous saved run (no per-row previous "
                             f"predictions, so flipped rows cannot be listed). Overall: worse by {worse_by:.4g} "
                             f"(flag beyond {ONE_SIDED_Z} x {se:.3g}). Classes flagged when recall fell by at "
                             f"least {REGRESSION_MIN_DROP} and a two-proportion test stays significant after BH.{caveat}",
                      fix="Diff what changed since that run (data, code, hyper-parameters). Set "
                          "[artifacts] previous_predictions to the earlier predictions file to see which rows flipped"
                          + ("; raise [budget] seconds so training finishes its epochs." if cut_short else "."),
                      evidence=evidence, plots=[plot])
    return passed(f"no regression against the previous run ({metric} {before:.4g} -> {after:.4g})",
                  detail=caveat.strip(), evidence=evidence, plots=[plot])


def _class_recall_drops(before: dict, after: dict) -> list[dict]:
    from ...analyses.stats import two_proportion_p

    rows = []
    for c, now in after.items():
        then = before.get(c)
        if not _counts_ok(then) or not _counts_ok(now):  # a damaged saved run: that class is not compared
            continue
        p = float(two_proportion_p(now["correct"], now["support"], then["correct"], then["support"]))
        rows.append({"class": c, "previous": then["correct"] / then["support"],
                     "current": now["correct"] / now["support"], "p": p})
    q = benjamini_hochberg([r["p"] for r in rows]) if rows else []
    return [dict(r, q=float(qv)) for r, qv in zip(rows, q)
            if qv < FDR and r["previous"] - r["current"] >= REGRESSION_MIN_DROP]
