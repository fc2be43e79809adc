"""errors.weak_slices and errors.slice_tests: segments of the valid split where the model errs more, found
automatically or named by the project's [[slices]] unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.predictions import model_outputs
from ...analyses.slices import (MAX_SLICE_SHARE, MIN_SLICE_ROWS, REPORT_RATIO, WARN_EXCESS, WARN_RATIO,
                                weak_slice_analysis)
from ...analyses.where import ALLOWED_SUMMARY, SliceError, evaluate_where
from ...analyses.stats import FDR
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, RowTable, Series, errored, fail, info, passed, skipped, warn
from ...vocab import REGRESSION_METRICS
from ...wording import cut_list
from .rows import label_name, row_key_columns


# --- errors.weak_slices --------------------------------------------------------------------------
@dataclass
class WeakSlicesMeasure:
    binary: bool                  # 0/1 errors (classification), else absolute errors
    rows: int
    mean_error: float
    candidates: int               # segments generated
    tested: int                   # segments large enough to test
    slices: list[dict] = field(default_factory=list)  # significant ones, worst first, duplicates dropped
    seconds: float = 0.0
    row_table: RowTable | None = None  # the rows of each slice (issue 18)

    @property
    def measure(self) -> str:
        return "error rate" if self.binary else "mean absolute error"


def _measure_weak_slices(ctx: RunContext) -> WeakSlicesMeasure:
    a = weak_slice_analysis(ctx)  # shared with errors.similar_unlabeled and errors.regressions
    r = a.result
    m = WeakSlicesMeasure(a.binary, r["rows"], r["mean_error"], r["candidates"], r["tested"], a.slices, a.seconds)
    m.row_table = _slice_rows(ctx, a)
    return m


def _slice_rows(ctx: RunContext, a):
    """The rows of every weak slice (a row in two slices is listed under each): slice id and description,
    position in the valid split, id column, text, label, prediction, correct (or the absolute error)."""
    import numpy as np

    if not a.slices:
        return None
    so = model_outputs(ctx).get("valid")
    picks = [(k, a.positions[mask]) for k, mask in enumerate(a.masks)]
    pos = np.concatenate([p for _, p in picks]) if picks else np.array([], dtype=np.int64)
    sid = np.concatenate([np.full(len(p), k + 1) for k, p in picks])
    cols = {"slice": [int(k) for k in sid], "slice_description": [a.slices[k - 1]["description"] for k in sid],
            "position": [int(p) for p in pos]}
    cols.update(row_key_columns(ctx, ctx.valid, pos, split="valid"))
    y, pred = so.y_true[pos], so.pred[pos]
    if ctx.is_classification:
        cols["label"] = [label_name(ctx, int(v)) for v in y]
        cols["prediction"] = [label_name(ctx, int(v)) for v in pred]
        cols["correct"] = [bool(v) for v in (y == pred)]
    else:
        cols["label"], cols["prediction"] = y.astype(float), pred.astype(float)
        cols["absolute_error"] = np.abs(pred - y.astype(float))
    return RowTable.from_columns(cols)


def weak_slices_verdict(m: WeakSlicesMeasure) -> Finding:
    what, binary, slices, mean = m.measure, m.binary, m.slices, m.mean_error
    evidence = {"measure": what, "rows": m.rows, "mean_error": mean,
                "candidates": m.candidates, "tested": m.tested, "slices": slices,
                "min_rows": MIN_SLICE_ROWS, "fdr": FDR, "report_ratio": REPORT_RATIO,
                "warn_ratio": WARN_RATIO, "warn_excess": WARN_EXCESS if binary else None,
                "seconds": round(m.seconds, 3)}
    plot = PlotSpec(kind="bar", title=f"{what} per slice (valid)", x_label="slice", y_label=what,
                    series=[Series(what, ["all rows"] + [s["description"] for s in slices],
                                   [mean] + [s["error"] for s in slices])])
    method = (f"{m.tested} candidate segments (categorical values, quintile ranges, text keywords and "
              f"length, k-means clusters) with at least {MIN_SLICE_ROWS} rows were each tested against the other "
              f"rows (one-sided z-test, Benjamini-Hochberg at {FDR}).")
    listing = "\n".join(f"- {s['description']}: {s['size']} rows, {what} {s['error']:.3g} vs {s['rest_error']:.3g} "
                        f"on the other rows ({s['ratio']:.1f}x, q = {s['q']:.2g})" for s in slices)
    if m.tested == 0:
        # Nothing was compared, so "no weak segment" would be a pass on no evidence.
        return skipped(f"no segment of the valid split was large enough to test ({m.rows} rows)",
                       detail=f"A segment is tested when it holds at least {MIN_SLICE_ROWS} rows and at most "
                              f"{MAX_SLICE_SHARE:.0%} of the split; of {m.candidates} candidate segments none "
                              f"qualified among {m.rows} labelled valid rows, so no slice was compared with the "
                              f"rest. Give the valid split more rows (a few hundred at least).",
                       evidence=evidence)
    # A slice that is one class ("label == 3", tensor projects) is listed, but metrics.per_class judges classes.
    severe = [s for s in slices if s["severe"] and not s.get("class_slice")]
    classes = [s for s in slices if s.get("class_slice")]
    per_class_note = (f" Slices that are one class ({cut_list([s['description'] for s in classes], 3)}) are listed "
                      f"but not judged here: metrics.per_class judges each class's recall against the others."
                      if classes else "")
    fix = ("Look at the rows of the top slice: is it rare in train (collect or up-weight it), are its labels noisy, "
           "does it need a feature the model lacks? Then pin it with a [[slices]] unit test so it cannot regress.")
    if severe:
        top = severe[0]
        return warn(f"{len(severe)} weak slice(s); worst: {top['description']} ({top['size']} rows, {what} "
                    f"{top['error']:.3g} vs {mean:.3g})",
                    detail=f"Warn when a slice's {what} is at least {WARN_RATIO:.0f}x that of the other rows"
                           + (f" and {WARN_EXCESS:.2f} above it" if binary else "") + f".{per_class_note} {method}\n{listing}",
                    fix=fix, evidence=evidence, plots=[plot], rows=m.row_table)
    judged = [s for s in slices if not s.get("class_slice")]
    if judged:
        return info(f"{len(judged)} slice(s) modestly above the average {what}; top: {judged[0]['description']} "
                    f"({judged[0]['error']:.3g} vs {mean:.3g})",
                    detail=f"None reaches {WARN_RATIO:.0f}x the other rows' {what}"
                           + (" (of the slices judged here)" if classes else "")
                           + f".{per_class_note} {method}\n{listing}", fix=fix,
                    evidence=evidence, plots=[plot], rows=m.row_table)
    if classes:
        top = classes[0]
        return info(f"the segments that err more are whole classes; top: {top['description']} ({top['size']} rows, "
                    f"{what} {top['error']:.3g} vs {mean:.3g}); metrics.per_class judges classes",
                    detail=f"No segment other than a class errs significantly more than average.{per_class_note} "
                           f"{method}\n{listing}", fix=fix, evidence=evidence, plots=[plot], rows=m.row_table)
    return passed(f"no segment errs significantly more than average ({m.tested} tested)",
                  detail=method, evidence=evidence, plots=[plot])


@check("errors.weak_slices", title="Segments where the model errs far more than average")
def weak_slices(ctx: RunContext):
    return weak_slices_verdict(_measure_weak_slices(ctx))


# --- errors.slice_tests --------------------------------------------------------------------------
def run_slice_test(ctx: RunContext, spec, so) -> dict:
    """One [[slices]] unit test -> the result dict errors.slice_tests reports (and JUnit reads)."""
    from ...analyses.scoring import higher_is_better, score

    result = {"name": spec.name, "where": spec.where, "metric": spec.metric, "min": spec.min, "max": spec.max,
              "size": 0, "value": None}
    bound = " and ".join(x for x in ((f">= {spec.min}" if spec.min is not None else ""),
                                     (f"<= {spec.max}" if spec.max is not None else "")) if x)
    applies = (spec.metric in REGRESSION_METRICS) != ctx.is_classification
    if not applies:
        return dict(result, status="error", title=f"metric {spec.metric} does not apply to a {ctx.task} task",
                    detail=f"[[slices]] '{spec.name}' asks for {spec.metric}; use "
                           + ("accuracy, balanced_accuracy, f1_macro, f1_weighted or error_rate" if ctx.is_classification
                              else "rmse, mae or r2") + ".")
    try:
        mask = evaluate_where(ctx.valid, spec.where)
    except SliceError as exc:
        return dict(result, status="error", title=f"bad where-expression: {exc}",
                    detail=f"[[slices]] '{spec.name}': where = \"{spec.where}\": {exc}. The expression is "
                           f"parsed, never run as code, over the valid split's columns "
                           f"({cut_list(ctx.valid.columns, 12)}); it may use {ALLOWED_SUMMARY}.")
    rows = mask & so.labelled
    size = int(rows.sum())
    result["size"] = size
    if size == 0:
        return dict(result, status="error", title="the slice is empty",
                    detail=f"[[slices]] '{spec.name}': where = \"{spec.where}\" selects no labelled row of the "
                           f"valid split ({len(mask)} rows), so the test cannot pass or fail. Check the column "
                           f"names and values in the expression.")
    proba = so.proba[rows] if so.proba is not None else None
    value = score(spec.metric, so.y_true[rows], pred=so.pred[rows], proba=proba,
                  n_classes=len(ctx.classes) or None)
    result["value"] = value
    if value is None:
        return dict(result, status="error", title=f"{spec.metric} cannot be computed on this slice",
                    detail=f"[[slices]] '{spec.name}' has {size} rows but {spec.metric} is undefined on them "
                           f"(e.g. r2 needs two rows with different targets).")
    low = spec.min is not None and value < spec.min
    high = spec.max is not None and value > spec.max
    verdict = "fail" if low or high else "pass"
    note = "" if higher_is_better(spec.metric) or spec.max is not None else " (note: lower is better for this metric)"
    return dict(result, status=verdict,
                title=f"{spec.metric} {value:.4g} on {size} rows ({'required' if verdict == 'fail' else 'meets'} {bound})",
                detail=f"[[slices]] '{spec.name}' (where {spec.where}): {spec.metric} = {value:.4g} over {size} "
                       f"valid rows; threshold {bound}{note}.")


@check("errors.slice_tests", title="The project's slice unit tests", needs=("slices",))
def slice_tests(ctx: RunContext):
    outputs = model_outputs(ctx)
    so = outputs.get("valid")
    results = [run_slice_test(ctx, spec, so) for spec in ctx.config.slices]
    failed = [r for r in results if r["status"] == "fail"]
    broken = [r for r in results if r["status"] == "error"]
    evidence = {"slices": results, "predictions": outputs.source}
    names = [r["name"] for r in results]
    plot = PlotSpec(kind="bar", title="slice tests: metric value per slice", x_label="slice", y_label="value",
                    series=[Series("value", names, [r["value"] for r in results]),
                            Series("threshold", names, [r["min"] if r["min"] is not None else r["max"] for r in results])])
    listing = "\n".join(f"- {r['status'].upper()} {r['name']}: {r['title']}" for r in results)
    if failed:
        return fail(f"{len(failed)} of {len(results)} slice test(s) fail: {cut_list([r['name'] for r in failed], 5)}",
                    detail=f"Each [[slices]] test compares its metric on its rows of the valid split with its "
                           f"threshold.\n{listing}",
                    fix="Look at the failing slice's rows and mistakes (errors.confident_mistakes, "
                        "errors.weak_slices): add or up-weight training examples like them, fix their labels, or "
                        "add the feature they need. Lower a threshold only if the requirement itself was wrong.",
                    evidence=evidence, plots=[plot])
    if broken:
        return errored(f"{len(broken)} slice test(s) could not run: {cut_list([r['name'] for r in broken], 5)}",
                       detail=listing,
                       fix="Fix the where-expression (a pandas-style expression over the valid split's columns, e.g. "
                           "text.str.contains(' not ') or age >= 65) or the metric of the named slice.",
                       evidence=evidence, plots=[plot])
    return passed(f"all {len(results)} slice test(s) pass", detail=listing, evidence=evidence, plots=[plot])
