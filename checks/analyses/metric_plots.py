"""The metrics step's plots as PlotSpecs (issue 18): the bars and matrices its checks show, the reliability
diagram with its bin counts, ROC / precision-recall curves and a threshold sweep for binary classifiers,
and predicted-vs-actual and residual plots for regression.

Pure builders from arrays (unit-tested without a project), plus `summary_plots(ctx)`, which picks the
plots that fit the task for metrics.summary. numpy is imported inside functions (the step module that
imports this one must load without it).
"""

from __future__ import annotations

from typing import Any

from ..engine.context import RunContext
from ..findings import PlotSpec, Series
from .sampling import numeric_values, sample_positions, sample_range

# Points drawn per scatter: enough to see the shape and the outliers, small enough for a run's JSON.
MAX_SCATTER_POINTS = 2000
# Points kept per ROC / precision-recall curve (evenly spaced over its thresholds, both ends kept).
CURVE_POINTS = 400
# Thresholds of the sweep: every 0.02 on the positive-class probability.
SWEEP_THRESHOLDS = 51
# Metrics a threshold changes; for the others (roc_auc, log_loss) the sweep shows accuracy.
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")
# "Most shifted" follows data.drift's rule: KS D >= 0.1 (the effect size Evidently's drift monitors use by
# default on large samples) and p < 0.001 Bonferroni-corrected over the features compared.
SHIFT_EFFECT = 0.1
SHIFT_P = 1e-3
SHIFT_SAMPLE = 10_000
SHIFT_MAX_COLUMNS = 500


# --- the bars and matrices of the metrics checks -------------------------------------------------
def bar(title: str, x_label: str, y_label: str, name: str, labels: list, values: list) -> PlotSpec:
    """One series of bars (model vs baselines, train vs valid, valid vs test, recall per class)."""
    return PlotSpec(kind="bar", title=title, x_label=x_label, y_label=y_label, series=[Series(name, labels, values)])


def metrics_per_split(splits: dict[str, dict], names: list[str]) -> PlotSpec:
    return PlotSpec(kind="bar", title="metrics per split", x_label="metric", y_label="value",
                    series=[Series(split, names, [v["metrics"].get(m) for m in names]) for split, v in splits.items()])


def confusion_heatmap(cm, names: list[str], shown: int = 25) -> PlotSpec:
    return PlotSpec(kind="heatmap", title="confusion matrix (valid; rows = true, columns = predicted)",
                    x_label="predicted", y_label="true", matrix=cm[:shown, :shown].tolist(),
                    row_labels=names[:shown], col_labels=names[:shown])


def reliability_plots(bin_confidence: list[float], bin_accuracy: list[float], bin_counts: list[int],
                      bin_lower: list[float], bins: int) -> list[PlotSpec]:
    """The reliability diagram (accuracy against confidence per bin, the diagonal is perfect calibration)
    and the rows in each bin beside it: a bin of 3 rows far off the diagonal says little."""
    n = sum(bin_counts)
    diagram = PlotSpec(kind="line", title=f"reliability diagram (valid, {n:,} rows)", x_label="confidence",
                       y_label="accuracy", series=[Series("model", bin_confidence, bin_accuracy),
                                                   Series("perfect calibration", [0, 1], [0, 1])])
    width = 1.0 / bins
    labels = [f"{lo:.2f}-{min(lo + width, 1.0):.2f}" for lo in bin_lower]
    counts = PlotSpec(kind="bar", title=f"rows per confidence bin (valid, {bins} equal-width bins)",
                      x_label="confidence", y_label="rows", series=[Series("rows", labels, bin_counts)])
    return [diagram, counts]


# --- binary classification ----------------------------------------------------------------------
def _keep(n: int, limit: int = CURVE_POINTS):
    import numpy as np

    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))


def _ranked_counts(y, score):
    """(true positives, false positives, thresholds) at each distinct score, highest first."""
    import numpy as np

    y, score = np.asarray(y).astype(bool), np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each run of equal scores
    tps = np.cumsum(yy)[last].astype(float)
    return tps, (last + 1) - tps, s[last]


def roc_points(y, score):
    """(false positive rate, true positive rate, thresholds) from (0, 0) to (1, 1), as scikit-learn's
    roc_curve defines them; None when only one class is present."""
    import numpy as np

    tps, fps, thr = _ranked_counts(y, score)
    if not len(tps) or tps[-1] == 0 or fps[-1] == 0:
        return None
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thr]


def pr_points(y, score):
    """(recall, precision, thresholds), starting at recall 0 / precision 1 as scikit-learn does; None
    without positives."""
    import numpy as np

    tps, fps, thr = _ranked_counts(y, score)
    if not len(tps) or tps[-1] == 0:
        return None
    return np.r_[0.0, tps / tps[-1]], np.r_[1.0, tps / (tps + fps)], np.r_[np.inf, thr]


def area(x, y) -> float:
    """Trapezoid area under a curve given in order of x (ROC AUC)."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def operating_threshold(score, pred) -> float | None:
    """The probability threshold the given predictions use, when one separates them (the predicted
    positives all score above every predicted negative): 0.5 for an argmax; None when none does."""
    import numpy as np

    score, pred = np.asarray(score, dtype=float), np.asarray(pred).astype(bool)
    if pred.all() or not pred.any():
        return None
    low_pos, high_neg = score[pred].min(), score[~pred].max()
    if high_neg > low_pos:
        return None
    if high_neg <= 0.5 <= low_pos:
        return 0.5
    return float(f"{(low_pos + high_neg) / 2:.3g}")


def _point_name(threshold: float | None) -> str:
    return f"threshold {threshold:g}" if threshold is not None else "operating point (given predictions)"


def _curve(title: str, x_label: str, y_label: str, x, y, name: str, extra: list[Series], point: Series) -> PlotSpec:
    keep = _keep(len(x))
    return PlotSpec(kind="line", title=title, x_label=x_label, y_label=y_label,
                    series=[Series(name, x[keep], y[keep]), *extra, point], series_kind={point.name: "scatter"})


def binary_curves(y, score, pred, positive: str) -> list[PlotSpec]:
    """ROC and precision-recall curves of the positive class with the operating point marked: the
    (false positive rate, recall) and (recall, precision) the given predictions reach."""
    import numpy as np

    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    roc, pr = roc_points(y, score), pr_points(y, score)
    if roc is None or pr is None:
        return []
    name = _point_name(operating_threshold(score, pred))
    tp, fp = float((pred & y).sum()), float((pred & ~y).sum())
    tpr, fpr = tp / y.sum(), fp / (~y).sum()
    precision = tp / (tp + fp) if tp + fp else 1.0
    fprs, tprs, _ = roc
    recalls, precisions, _ = pr
    ap = float(np.sum(np.diff(recalls) * precisions[1:]))  # average precision, scikit-learn's definition
    prevalence = float(y.mean())
    return [
        _curve(f"ROC curve (valid, positive '{positive}')", "false positive rate", "true positive rate",
               fprs, tprs, f"ROC (AUC {area(fprs, tprs):.3f})", [Series("chance", [0, 1], [0, 1])],
               Series(name, [fpr], [tpr])),
        _curve(f"precision-recall curve (valid, positive '{positive}')", "recall", "precision",
               recalls, precisions, f"precision-recall (AP {ap:.3f})",
               [Series(f"chance (prevalence {prevalence:.2f})", [0, 1], [prevalence, prevalence])],
               Series(name, [tpr], [precision])),
    ]


def threshold_sweep(y, score, pred, positive: str, metric: str) -> PlotSpec:
    """Precision, recall and the project's metric (accuracy when a threshold does not change it) for
    every threshold on the positive-class probability, with the operating threshold marked."""
    import numpy as np

    from .scoring import score as metric_score

    y, score = np.asarray(y).astype(int), np.asarray(score, dtype=float)
    metric = metric if metric in THRESHOLD_METRICS else "accuracy"
    thresholds = np.linspace(0.0, 1.0, SWEEP_THRESHOLDS)
    precision, recall, values = [], [], []
    for t in thresholds:
        p = (score >= t).astype(int)
        tp, called = int((p & y).sum()), int(p.sum())
        precision.append(tp / called if called else None)
        recall.append(tp / max(int(y.sum()), 1))
        values.append(metric_score(metric, y, pred=p, n_classes=2))
    threshold = operating_threshold(score, pred)
    name = _point_name(threshold)
    at = metric_score(metric, y, pred=np.asarray(pred).astype(int), n_classes=2)
    series = [Series(metric, thresholds, values), Series(f"precision ({positive})", thresholds, precision),
              Series(f"recall ({positive})", thresholds, recall)]
    if threshold is not None:
        series.append(Series(name, [threshold], [at]))
    return PlotSpec(kind="line", title=f"threshold sweep (valid, positive '{positive}')",
                    x_label=f"threshold on P({positive})", y_label="score", series=series,
                    series_kind={name: "scatter"})


# --- regression ---------------------------------------------------------------------------------
def regression_plots(actual, predicted, feature: tuple[str, Any, str] | None = None) -> list[PlotSpec]:
    """Predicted vs actual (with the y = x line), residual vs prediction and, when given, residual vs a
    feature ((name, values, why this feature)). Residual = actual - predicted; arrays row-aligned."""
    import numpy as np

    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    residual = actual - predicted
    lo = float(min(actual.min(), predicted.min()))
    hi = float(max(actual.max(), predicted.max()))
    zero = Series("zero", [float(predicted.min()), float(predicted.max())], [0.0, 0.0])
    plots = [
        PlotSpec(kind="scatter", title=f"predicted vs actual (valid, {len(actual):,} rows)", x_label="actual",
                 y_label="predicted", series=[Series("rows", actual, predicted), Series("y = x", [lo, hi], [lo, hi])],
                 series_kind={"y = x": "line"}),
        PlotSpec(kind="scatter", title="residual vs prediction (valid)", x_label="prediction",
                 y_label="residual (actual - predicted)", series=[Series("rows", predicted, residual), zero],
                 series_kind={"zero": "line"}),
    ]
    if feature is not None:
        name, values, why = feature
        values = np.asarray(values, dtype=float)
        ok = np.isfinite(values)
        if ok.any():
            flat = Series("zero", [float(values[ok].min()), float(values[ok].max())], [0.0, 0.0])
            plots.append(PlotSpec(kind="scatter", title=f"residual vs {name} ({why})", x_label=name,
                                  y_label="residual (actual - predicted)",
                                  series=[Series("rows", values[ok], residual[ok]), flat], series_kind={"zero": "line"}))
    return plots


def _ks(a, b) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    res = ks_2samp(a, b, method="asymp")
    return float(res.statistic), float(res.pvalue)


def residual_feature(ctx: RunContext, positions, residual) -> dict | None:
    """The feature to plot the valid residuals against: the one data.drift's rule ranks most shifted
    between train and valid, else (nothing shifted) the one with the largest |corr(residual, feature)|
    (on a seeded sample of the valid rows `positions`, whose residuals `residual` holds).
    {"feature", "chosen_by": "shift" | "correlation", "ks_d" | "r"}; None for tensor projects or without
    numeric features. One column at a time: memory stays at a sample's size on wide, long tables."""
    import numpy as np

    if ctx.is_tensor or "train" not in ctx.splits or "valid" not in ctx.splits:
        return None
    texts = set(ctx.text_columns)
    columns = [c for c in ctx.feature_columns if c in ctx.numeric_columns and c not in texts][:SHIFT_MAX_COLUMNS]
    if not columns:
        return None
    train, valid = ctx.train, ctx.valid
    tpos, vpos = sample_range(len(train), SHIFT_SAMPLE, ctx.seed), sample_range(len(valid), SHIFT_SAMPLE, ctx.seed + 1)
    shifted = []
    for c in columns:
        a, b = numeric_values(train[c].iloc[tpos]), numeric_values(valid[c].iloc[vpos])
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) >= 5 and len(b) >= 5:
            d, p = _ks(a, b)
            if d >= SHIFT_EFFECT and p < SHIFT_P / len(columns):
                shifted.append((d, c))
    if shifted:
        d, c = max(shifted)
        return {"feature": c, "chosen_by": "shift", "ks_d": round(d, 4)}
    pick = sample_positions(np.arange(len(positions)), SHIFT_SAMPLE, ctx.seed)
    rows, residual = np.asarray(positions)[pick], np.asarray(residual)[pick]
    best = None
    for c in columns:
        v = numeric_values(valid[c].iloc[rows])
        ok = np.isfinite(v) & np.isfinite(residual)
        if ok.sum() >= 3 and np.std(v[ok]) > 0 and np.std(residual[ok]) > 0:
            r = float(np.corrcoef(v[ok], residual[ok])[0, 1])
            if best is None or abs(r) > abs(best[0]):
                best = (r, c)
    if best is None:
        return None
    return {"feature": best[1], "chosen_by": "correlation", "r": round(best[0], 4)}


def _feature_note(chosen: dict) -> str:
    if chosen["chosen_by"] == "shift":
        return f"most shifted: KS D {chosen['ks_d']:.2f}"
    return f"no shift; largest |r|: {chosen['r']:+.2f}"


# --- what metrics.summary shows -----------------------------------------------------------------
def summary_plots(ctx: RunContext, so, metric: str) -> tuple[list[PlotSpec], dict]:
    """The task's plots on the valid split's outputs `so` and what they were drawn from (for the
    evidence): regression residuals, or binary curves with the threshold; nothing for other tasks."""
    import numpy as np

    keep = np.flatnonzero(so.labelled)
    if not len(keep):
        return [], {}
    if not ctx.is_classification:
        keep = keep[np.isfinite(so.pred[keep])]
        if len(keep) < 2:
            return [], {}
        residual = so.y_true[keep].astype(float) - so.pred[keep].astype(float)
        drawn = sample_positions(np.arange(len(keep)), MAX_SCATTER_POINTS, ctx.seed)
        chosen = residual_feature(ctx, keep, residual)
        feature = (chosen["feature"], numeric_values(ctx.valid[chosen["feature"]].iloc[keep[drawn]]),
                   _feature_note(chosen)) if chosen else None
        plots = regression_plots(so.y_true[keep][drawn], so.pred[keep][drawn], feature)
        info = {"rows": int(len(keep)), "drawn": int(len(drawn))}
        if chosen:
            info["residual_feature"] = chosen
        return plots, info
    if so.proba is None or so.proba.shape[1] != 2 or len(ctx.classes) != 2:
        return [], {}
    y, pred, score = so.y_true[keep] == 1, so.pred[keep] == 1, so.proba[keep, 1]
    if not np.isfinite(score).all():  # a predictions file with missing probabilities: no curve to trust
        return [], {}
    positive = str(ctx.classes[1])
    plots = binary_curves(y, score, pred, positive)
    if not plots:
        return [], {}
    plots.append(threshold_sweep(y, score, pred, positive, metric))
    threshold = operating_threshold(score, pred)
    return plots, {"positive_class": positive, "operating_threshold": threshold,
                   "roc_auc": area(*roc_points(y, score)[:2])}
