"""Step 7, error analysis: which mistakes, where they concentrate, the project's slice unit tests, and
what got worse since the previous run.

Aggregate metrics hide where a model fails. Here errors are broken down by row (confident mistakes), by
automatically discovered segment (weak slices), by the segments the project names ([[slices]]), and by
change against the previous predictions (regressions). Every segment-level claim is a statistical test
with a multiple-testing correction, so a run over hundreds of candidate segments does not cry wolf.
"""

from __future__ import annotations

from typing import Any

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, SkipCheck, errored, fail, info, passed, warn
from ..analyses.evaluation import labelled
from ..analyses.stats import FDR, ONE_SIDED_Z, benjamini_hochberg, mcnemar_worse_p, paired_worse_p
from ..engine.registry import check
from ..analyses.slices import (MAX_CATEGORY_VALUES, MIN_SLICE_ROWS, REPORT_RATIO, WARN_EXCESS, WARN_RATIO, SliceError,
                               column_kinds, deduplicate_slices, discover_slices, evaluate_where, plain_value)


# Confident mistakes: wrong predictions made with probability >= 0.9. Warn when there are at least
# three times as many as the stated confidences allow and the excess is far beyond chance (z > 3).
CONFIDENT = 0.9
CONFIDENT_EXCESS_RATIO = 3.0
CONFIDENT_Z = 3.0
MIN_CONFIDENT_MISTAKES = 5
SHOWN_EXAMPLES = 10

# Regressions: a class or slice counts as worse when McNemar's test on its flipped rows is significant
# after BH and its accuracy fell by at least 5 points (smaller moves are within what retraining with a
# new seed produces); for regression targets, a 5% higher mean absolute error.
REGRESSION_MIN_DROP = 0.05
REGRESSION_MIN_REL = 0.05


# --- per-row errors ---------------------------------------------------------------------------
def row_errors(ctx: RunContext, so):
    """(keep mask over the split's rows, per-row error on kept rows): 0/1 for classification,
    absolute error for regression."""
    import numpy as np

    keep = so.labelled
    if ctx.is_classification:
        err = (so.pred[keep] != so.y_true[keep]).astype(np.float64)
    else:
        err = np.abs(so.pred[keep] - so.y_true[keep].astype(np.float64))
    return keep, err


def _outputs(ctx: RunContext):
    from ..analyses.predictions import model_outputs

    return model_outputs(ctx)


def _display(value: Any, limit: int = 100) -> Any:
    import math

    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit - 1] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row_values(ctx: RunContext, frame, row: int, limit_cols: int = 8) -> dict:
    cols = ctx.feature_columns[:limit_cols]
    return {str(c): _display(frame[c].iloc[row].item() if hasattr(frame[c].iloc[row], "item") else frame[c].iloc[row])
            for c in cols}


def _label_name(ctx: RunContext, code: int) -> str:
    return str(ctx.classes[code]) if 0 <= code < len(ctx.classes) else "?"


# --- errors.confident_mistakes ----------------------------------------------------------------
def _label_issue_flags(ctx: RunContext):
    """The data step's suspected label errors over ctx.train rows (data.label_issue_mask), or None when
    that analysis is not available."""
    import numpy as np

    try:
        from ..analyses.labels import label_issue_mask
    except ImportError:
        return None
    try:
        mask = label_issue_mask(ctx)
    except (SkipCheck, ImportError):
        return None
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.shape == (len(ctx.train),) else None


def _confident_examples(ctx: RunContext, so, flags=None) -> tuple[list[dict], Any, Any, Any]:
    """The wrong predictions of a split, most confident first (row = position in that split)."""
    import numpy as np

    rows = np.flatnonzero(so.labelled)
    y, pred, proba = labelled(so)
    conf = proba[np.arange(len(pred)), pred]
    wrong = pred != y
    order = np.flatnonzero(wrong)[np.argsort(-conf[wrong], kind="stable")]
    examples = []
    for i in order[:SHOWN_EXAMPLES]:
        row = int(rows[i])
        example = {"row": row, "label": _label_name(ctx, int(y[i])), "predicted": _label_name(ctx, int(pred[i])),
                   "confidence": float(conf[i]), "probability_of_label": float(proba[i, y[i]])}
        if flags is not None:
            example["suspected_label_issue"] = bool(flags[row])
        examples.append(example)
    return examples, conf, wrong, rows


def _describe_example(e: dict) -> str:
    mark = " [also suspected as a label error by data.label_issues]" if e.get("suspected_label_issue") else ""
    return f"row {e['row']}: label '{e['label']}', predicted '{e['predicted']}' with {e['confidence']:.3f}{mark}"


@check("errors.confident_mistakes", title="The most confident wrong predictions")
def confident_mistakes(ctx: RunContext):
    import numpy as np

    outputs = _outputs(ctx)
    so = outputs.get("valid")
    if not ctx.is_classification:
        return _largest_residuals(ctx, so)
    if so.proba is None:
        raise SkipCheck("needs class probabilities: add prob_<class> columns to the predictions file")
    examples, conf, wrong, _ = _confident_examples(ctx, so)
    for e in examples:
        e["values"] = _row_values(ctx, ctx.valid, e["row"])
    # On train, a confident mistake is a row the model could not fit even while learning from it: the
    # likeliest place for a wrong label. data.label_issues judges train rows, so marks apply there.
    train_so = outputs.splits.get("train")
    train_examples, flags = [], None
    if train_so is not None and train_so.proba is not None:
        flags = _label_issue_flags(ctx)
        train_examples = _confident_examples(ctx, train_so, flags)[0]
        for e in train_examples:
            e["values"] = _row_values(ctx, ctx.train, e["row"])
    high = conf >= CONFIDENT
    k = int((wrong & high).sum())
    expected = float((1 - conf[high]).sum())
    sd = float(np.sqrt((conf[high] * (1 - conf[high])).sum()))
    z = (k - expected) / sd if sd > 0 else (float("inf") if k > expected else 0.0)
    suspected = [e["row"] for e in train_examples if e.get("suspected_label_issue")]
    evidence = {"confident_threshold": CONFIDENT, "confident_rows": int(high.sum()), "confident_mistakes": k,
                "expected_mistakes": expected, "z": z, "warn_ratio": CONFIDENT_EXCESS_RATIO, "warn_z": CONFIDENT_Z,
                "mistakes": int(wrong.sum()), "examples": examples, "train_examples": train_examples,
                "label_issue_analysis": flags is not None, "suspected_label_issue_rows": suspected}
    plot = PlotSpec.histogram("confidence of wrong vs right predictions (valid)",
                              {"wrong": conf[wrong], "right": conf[~wrong]}, bins=20, x_label="confidence")
    lines = ["Valid split:"] + [_describe_example(e) for e in examples[:5]]
    if train_examples:
        lines += ["Train split (rows the model could not fit):"] + [_describe_example(e) for e in train_examples[:5]]
    if suspected:
        lines.append(f"{len(suspected)} of the {len(train_examples)} train rows shown are also suspected label "
                     f"errors: fix those labels rather than the model.")
    elif train_so is None:
        lines.append("(Train-split mistakes, which data.label_issues can mark as likely label errors, need "
                     "train predictions: add [model] code/build and [model] checkpoint.)")
    text = "\n".join(lines)
    if k >= MIN_CONFIDENT_MISTAKES and k >= CONFIDENT_EXCESS_RATIO * expected and z > CONFIDENT_Z:
        return warn(f"{k} wrong predictions made with confidence >= {CONFIDENT}, where ~{expected:.1f} are expected",
                    detail=f"Among {int(high.sum())} valid rows predicted with probability >= {CONFIDENT}, {k} are "
                           f"wrong; if the probabilities were right about {expected:.1f} would be (z = {z:.1f}; warn "
                           f"at {CONFIDENT_EXCESS_RATIO:.0f}x expected and z > {CONFIDENT_Z:.0f}).\n" + text,
                    fix="Read the rows: confident mistakes are often label errors (relabel them) or a systematic "
                        "gap (a missing feature, a segment absent from train). If the labels are right, the "
                        "model is over-confident: see metrics.calibration (temperature scaling, less overfitting).",
                    evidence=evidence, plots=[plot])
    title = (f"{k} mistakes with confidence >= {CONFIDENT} (~{expected:.1f} expected); top: row "
             f"{examples[0]['row']} '{examples[0]['label']}' predicted '{examples[0]['predicted']}' "
             f"({examples[0]['confidence']:.2f})" if examples else "no wrong predictions on the valid split")
    return passed(title, detail=text, evidence=evidence, plots=[plot])


def _largest_residuals(ctx: RunContext, so):
    import numpy as np

    rows = np.flatnonzero(so.labelled)
    y, pred, _ = labelled(so)
    resid = pred - y.astype(float)
    scale = float(np.std(y)) or 1.0
    order = np.argsort(-np.abs(resid), kind="stable")[:SHOWN_EXAMPLES]
    examples = [{"row": int(rows[i]), "target": float(y[i]), "predicted": float(pred[i]),
                 "error": float(resid[i]), "error_in_sd": float(resid[i] / scale),
                 "values": _row_values(ctx, ctx.valid, int(rows[i]))} for i in order]
    evidence = {"examples": examples, "target_sd": scale, "mae": float(np.abs(resid).mean())}
    plot = PlotSpec.histogram("residuals (valid)", {"prediction - target": resid}, bins=30, x_label="residual")
    top = examples[0] if examples else None
    return passed(f"largest error: row {top['row']} predicted {top['predicted']:.4g} for {top['target']:.4g} "
                  f"({top['error_in_sd']:+.1f} target s.d.)" if top else "no labelled rows",
                  evidence=evidence, plots=[plot])


@check("errors.weak_slices", title="Segments where the model errs far more than average")
def weak_slices(ctx: RunContext):
    import time

    so = _outputs(ctx).get("valid")
    keep, err = row_errors(ctx, so)
    frame = ctx.valid[ctx.feature_columns].loc[keep].reset_index(drop=True)
    binary = ctx.is_classification
    start = time.perf_counter()
    nums, _, _ = column_kinds(frame, ctx.numeric_columns, ctx.categorical_columns, ctx.text_columns)
    result = discover_slices(frame, err, ctx.numeric_columns, ctx.categorical_columns, ctx.text_columns,
                             binary=binary, seed=ctx.seed)
    slices = deduplicate_slices(frame, result, nums, ctx.seed)
    seconds = time.perf_counter() - start
    what = "error rate" if binary else "mean absolute error"
    evidence = {"measure": what, "rows": result["rows"], "mean_error": result["mean_error"],
                "candidates": result["candidates"], "tested": result["tested"], "slices": slices,
                "min_rows": MIN_SLICE_ROWS, "fdr": FDR, "report_ratio": REPORT_RATIO,
                "warn_ratio": WARN_RATIO, "warn_excess": WARN_EXCESS if binary else None,
                "seconds": round(seconds, 3)}
    mean = result["mean_error"]
    plot = PlotSpec(kind="bar", title=f"{what} per slice (valid)", x_label="slice", y_label=what,
                    series=[Series(what, ["all rows"] + [s["description"] for s in slices],
                                   [mean] + [s["error"] for s in slices])])
    method = (f"{result['tested']} candidate segments (categorical values, quintile ranges, text keywords and "
              f"length, k-means clusters) with at least {MIN_SLICE_ROWS} rows were each tested against the other "
              f"rows (one-sided z-test, Benjamini-Hochberg at {FDR}).")
    listing = "\n".join(f"- {s['description']}: {s['size']} rows, {what} {s['error']:.3g} vs {s['rest_error']:.3g} "
                        f"on the other rows ({s['ratio']:.1f}x, q = {s['q']:.2g})" for s in slices)
    severe = [s for s in slices if s["severe"]]
    fix = ("Look at the rows of the top slice: is it rare in train (collect or up-weight it), are its labels noisy, "
           "does it need a feature the model lacks? Then pin it with a [[slices]] unit test so it cannot regress.")
    if severe:
        top = severe[0]
        return warn(f"{len(severe)} weak slice(s); worst: {top['description']} ({top['size']} rows, {what} "
                    f"{top['error']:.3g} vs {mean:.3g})",
                    detail=f"Warn when a slice's {what} is at least {WARN_RATIO:.0f}x that of the other rows"
                           + (f" and {WARN_EXCESS:.2f} above it" if binary else "") + f". {method}\n{listing}",
                    fix=fix, evidence=evidence, plots=[plot])
    if slices:
        return info(f"{len(slices)} slice(s) modestly above the average {what}; top: {slices[0]['description']} "
                    f"({slices[0]['error']:.3g} vs {mean:.3g})",
                    detail=f"None reaches {WARN_RATIO:.0f}x the other rows' {what}. {method}\n{listing}", fix=fix,
                    evidence=evidence, plots=[plot])
    return passed(f"no segment errs significantly more than average ({result['tested']} tested)",
                  detail=method, evidence=evidence, plots=[plot])


REGRESSION_SLICE_METRICS = ("rmse", "mae", "r2")


def run_slice_test(ctx: RunContext, spec, so) -> dict:
    """One [[slices]] unit test -> the result dict errors.slice_tests reports (and JUnit reads)."""
    from ..analyses.scoring import higher_is_better, score

    result = {"name": spec.name, "where": spec.where, "metric": spec.metric, "min": spec.min, "max": spec.max,
              "size": 0, "value": None}
    bound = " and ".join(x for x in ((f">= {spec.min}" if spec.min is not None else ""),
                                     (f"<= {spec.max}" if spec.max is not None else "")) if x)
    applies = (spec.metric in REGRESSION_SLICE_METRICS) != ctx.is_classification
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
                           f"evaluated with pandas DataFrame.eval over the valid split's columns "
                           f"({', '.join(map(str, list(ctx.valid.columns)[:12]))}).")
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
    so = _outputs(ctx).get("valid")
    results = [run_slice_test(ctx, spec, so) for spec in ctx.config.slices]
    failed = [r for r in results if r["status"] == "fail"]
    broken = [r for r in results if r["status"] == "error"]
    evidence = {"slices": results, "predictions": _outputs(ctx).source}
    names = [r["name"] for r in results]
    plot = PlotSpec(kind="bar", title="slice tests: metric value per slice", x_label="slice", y_label="value",
                    series=[Series("value", names, [r["value"] for r in results]),
                            Series("threshold", names, [r["min"] if r["min"] is not None else r["max"] for r in results])])
    listing = "\n".join(f"- {r['status'].upper()} {r['name']}: {r['title']}" for r in results)
    if failed:
        return fail(f"{len(failed)} of {len(results)} slice test(s) fail: {', '.join(r['name'] for r in failed[:5])}",
                    detail=f"Each [[slices]] test compares its metric on its rows of the valid split with its "
                           f"threshold.\n{listing}",
                    fix="Look at the failing slice's rows and mistakes (errors.confident_mistakes, "
                        "errors.weak_slices): add or up-weight training examples like them, fix their labels, or "
                        "add the feature they need. Lower a threshold only if the requirement itself was wrong.",
                    evidence=evidence, plots=[plot])
    if broken:
        return errored(f"{len(broken)} slice test(s) could not run: {', '.join(r['name'] for r in broken[:5])}",
                       detail=listing,
                       fix="Fix the where-expression (a pandas expression over the valid split's columns, e.g. "
                           "text.str.contains(' not ') or age >= 65) or the metric of the named slice.",
                       evidence=evidence, plots=[plot])
    return passed(f"all {len(results)} slice test(s) pass", detail=listing, evidence=evidence, plots=[plot])


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


@check("errors.regressions", title="What got worse since the previous run")
def regressions(ctx: RunContext):
    from ..analyses.predictions import previous_outputs

    previous = previous_outputs(ctx)
    if previous is not None:
        return _regressions_from_predictions(ctx, previous)
    return _regressions_from_history(ctx)


def _regressions_from_predictions(ctx: RunContext, prev):
    import numpy as np

    cur = _outputs(ctx).get("valid")
    keep = cur.labelled
    rows = np.flatnonzero(keep)
    frame = ctx.valid.loc[keep].reset_index(drop=True)
    y = cur.y_true[keep]
    if ctx.is_classification:
        now_ok, was_ok = cur.pred[keep] == y, prev.pred[keep] == y
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
        overall_b, overall_c = int(worse_rows.sum()), int(better_rows.sum())
        overall_p = float(mcnemar_worse_p(overall_b, overall_c))
        test = "McNemar's exact test on the rows that flipped"
        unit = "accuracy"
    else:
        now_err, was_err = np.abs(cur.pred[keep] - y), np.abs(prev.pred[keep] - y)
        d = now_err - was_err
        worse_rows = d > 0
        stats = []
        groups = _segments(ctx, frame)
        for name, mask in groups:
            n = int(mask.sum())
            if n < 2:
                continue
            before, after = float(was_err[mask].mean()), float(now_err[mask].mean())
            stats.append({"segment": name, "rows": n, "previous": before, "current": after,
                          "drop": (after - before) / max(before, 1e-12), "p": paired_worse_p(d[mask])})
        overall_p = paired_worse_p(d)
        overall_b, overall_c = int((d > 0).sum()), int((d < 0).sum())
        test = "a paired z-test on per-row absolute errors"
        unit = "mean absolute error"
    q = benjamini_hochberg([s["p"] for s in stats]) if stats else []
    min_drop = REGRESSION_MIN_DROP if ctx.is_classification else REGRESSION_MIN_REL
    for s, qv in zip(stats, q):
        s["q"] = float(qv)
    worse = sorted([s for s in stats if s["q"] < FDR and s["drop"] >= min_drop], key=lambda s: -s["drop"])
    metric = ctx.metric
    from ..analyses.scoring import score

    n_classes = len(ctx.classes) or None
    m_now = score(metric, y, pred=cur.pred[keep], proba=cur.proba[keep] if cur.proba is not None else None,
                  n_classes=n_classes)
    m_before = score(metric, y, pred=prev.pred[keep], proba=prev.proba[keep] if prev.proba is not None else None,
                     n_classes=n_classes)
    delta = None if m_now is None or m_before is None else m_now - m_before
    if ctx.is_classification:
        flip_idx = np.flatnonzero(worse_rows)[:SHOWN_EXAMPLES]
        flipped = [{"row": int(rows[i]), "label": _label_name(ctx, int(y[i])),
                    "previous": _label_name(ctx, int(prev.pred[keep][i])),
                    "current": _label_name(ctx, int(cur.pred[keep][i])), "values": _row_values(ctx, ctx.valid, int(rows[i]))}
                   for i in flip_idx]
    else:
        grown = np.argsort(-d, kind="stable")[:SHOWN_EXAMPLES]
        flipped = [{"row": int(rows[i]), "target": float(y[i]), "previous": float(prev.pred[keep][i]),
                    "current": float(cur.pred[keep][i]), "values": _row_values(ctx, ctx.valid, int(rows[i]))}
                   for i in grown if d[i] > 0]
    overall_worse_effect = ((was_ok.mean() - now_ok.mean()) if ctx.is_classification
                            else (now_err.mean() - was_err.mean()) / max(was_err.mean(), 1e-12))
    overall_worse = overall_p < FDR and overall_worse_effect > 0
    evidence = {"compared_with": str(ctx.config.previous_predictions), "metric": metric, "current": m_now,
                "previous": m_before, "delta": delta, "got_worse": overall_b, "got_better": overall_c,
                "overall_p": overall_p, "test": test, "worse_segments": worse, "segments_tested": len(stats),
                "fdr": FDR, "min_drop": min_drop, "flipped_examples": flipped}
    plot = PlotSpec(kind="bar", title=f"{unit}: previous vs current", x_label="segment", y_label=unit,
                    series=[Series("previous", ["all"] + [s["segment"] for s in worse[:8]],
                                   [float(was_ok.mean()) if ctx.is_classification else float(was_err.mean())]
                                   + [s["previous"] for s in worse[:8]]),
                            Series("current", ["all"] + [s["segment"] for s in worse[:8]],
                                   [float(now_ok.mean()) if ctx.is_classification else float(now_err.mean())]
                                   + [s["current"] for s in worse[:8]])])
    moved = f"{overall_b} row(s) got worse, {overall_c} got better"
    listing = "\n".join(f"- {s['segment']}: {unit} {s['previous']:.3g} -> {s['current']:.3g} "
                        f"({s['rows']} rows, q = {s['q']:.2g})" for s in worse[:8])
    delta_text = f"{metric} {m_before:.4g} -> {m_now:.4g}" if delta is not None else f"{metric} n/a"
    if overall_worse or worse:
        what = ("overall" if overall_worse else "") + (" and " if overall_worse and worse else "") + \
               (f"in {len(worse)} segment(s): {', '.join(s['segment'] for s in worse[:3])}" if worse else "")
        return fail(f"regression {what} ({delta_text})",
                    detail=f"Compared with the previous predictions: {moved}; {test}, one-sided, "
                           f"p = {overall_p:.2g} overall. A class or segment counts as worse when its test "
                           f"stays significant after Benjamini-Hochberg (q < {FDR}) and it lost at least "
                           f"{min_drop:.0%} {'accuracy' if ctx.is_classification else 'relative MAE'}.\n{listing}",
                    fix="Diff the two runs' changes (data, features, hyper-parameters) and read the flipped rows "
                        "listed in the evidence; add a [[slices]] test for the segment that regressed so CI "
                        "catches it next time.",
                    evidence=evidence, plots=[plot])
    return passed(f"no regression against the previous predictions ({delta_text}; {moved})",
                  detail=f"{test}: p = {overall_p:.2g} overall; no class or segment worse beyond noise "
                         f"({len(stats)} tested).", evidence=evidence, plots=[plot])


def _regressions_from_history(ctx: RunContext):
    import math

    from ..analyses.evaluation import standard_error, summary_numbers
    from ..io.state import load_previous_run

    run = load_previous_run(ctx.root)
    if run is None:
        raise SkipCheck("needs something to compare with: [artifacts] previous_predictions = \"...\", or a "
                        "previous `mltriage check` run saved in .mltriage/runs/")
    old = next((f for f in run.get("findings", []) if f.get("check") == "metrics.summary"
                and f.get("evidence", {}).get("splits")), None)
    if old is None:
        raise SkipCheck("the previous saved run has no metrics.summary numbers to compare with (run the metrics "
                        "step too), and no [artifacts] previous_predictions is set")
    now = summary_numbers(ctx)
    metric = ctx.metric
    before = (old["evidence"]["splits"].get("valid") or {}).get("metrics", {}).get(metric)
    after = now["splits"]["valid"]["metrics"].get(metric)
    if before is None or after is None:
        raise SkipCheck(f"the previous run has no valid-split {metric} to compare with")
    hib = now["higher_is_better"]
    # Same rows scored twice: the difference is at most as noisy as two independent estimates.
    se = (standard_error(ctx, metric, "valid") or 0.0) * math.sqrt(2)
    worse_by = (before - after) if hib else (after - before)
    rows_then = old["evidence"]["splits"]["valid"].get("rows")
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
    from ..analyses.stats import two_proportion_p

    rows = []
    for c, now in after.items():
        then = before.get(c)
        if not then or not then.get("support") or not now.get("support"):
            continue
        p = float(two_proportion_p(now["correct"], now["support"], then["correct"], then["support"]))
        rows.append({"class": c, "previous": then["correct"] / then["support"],
                     "current": now["correct"] / now["support"], "p": p})
    q = benjamini_hochberg([r["p"] for r in rows]) if rows else []
    return [dict(r, q=float(qv)) for r, qv in zip(rows, q)
            if qv < FDR and r["previous"] - r["current"] >= REGRESSION_MIN_DROP]
