"""Statistics the verdicts share: bootstrap intervals of a metric, confusion-matrix metrics, multiple-
testing correction, the one-sided tests used to say "worse beyond noise", and calibration error."""

from __future__ import annotations

N_BOOTSTRAP = 200          # resamples for metric intervals (Efron & Tibshirani: 200 suffice for standard errors)
ONE_SIDED_Z = 1.645        # 95% one-sided normal quantile: "better/worse beyond noise" at the 5% level
FDR = 0.05                 # Benjamini–Hochberg false discovery rate for many per-class / per-slice tests


def confusion_counts(y, pred, n_classes: int):
    import numpy as np

    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def metric_from_confusion(metric: str, cm):
    """Confusion-matrix metrics, vectorised over leading axes (cm: (..., C, C), rows = true)."""
    import numpy as np

    cm = np.asarray(cm, dtype=float)
    total = cm.sum(axis=(-2, -1))
    diag = np.diagonal(cm, axis1=-2, axis2=-1)
    rows, cols = cm.sum(axis=-1), cm.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return diag.sum(axis=-1) / total
        if metric == "balanced_accuracy":
            return np.nanmean(np.where(rows > 0, diag / rows, np.nan), axis=-1)
        f1 = np.where(rows + cols > 0, 2 * diag / (rows + cols), np.nan)
        if metric == "f1_macro":
            return np.nanmean(f1, axis=-1)
        if metric == "f1_weighted":
            return np.nansum(np.nan_to_num(f1) * rows, axis=-1) / total
    raise ValueError(metric)


CONFUSION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")


def bootstrap_scores(metric: str, y, pred, proba, n_classes: int | None, seed: int,
                     n_boot: int = N_BOOTSTRAP):
    """Bootstrap distribution of a metric over rows. Confusion-matrix metrics resample the confusion
    cells (a multinomial draw, independent of the row count); the others resample rows."""
    import numpy as np

    from .scoring import score

    rng = np.random.default_rng(seed)
    n = len(y)
    if n == 0:
        return np.array([])
    if metric in CONFUSION_METRICS and n_classes:
        cm = confusion_counts(np.asarray(y), np.asarray(pred), n_classes).reshape(-1)
        draws = rng.multinomial(n, cm / cm.sum(), size=n_boot).reshape(n_boot, n_classes, n_classes)
        return metric_from_confusion(metric, draws)
    if metric in ("mae", "rmse", "r2", "error_rate"):
        yt, p = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
        out = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            e = yt[idx] - p[idx]
            if metric == "mae":
                out[b] = np.abs(e).mean()
            elif metric == "rmse":
                out[b] = np.sqrt((e ** 2).mean())
            elif metric == "error_rate":
                out[b] = (e != 0).mean()
            else:
                ss = ((yt[idx] - yt[idx].mean()) ** 2).sum()
                out[b] = 1 - (e ** 2).sum() / ss if ss > 0 else np.nan
        return out
    # log_loss / roc_auc: row resampling through scoring.score (fewer resamples on big splits).
    reps = n_boot if n * max(n_classes or 1, 1) <= 500_000 else max(30, n_boot // 5)
    values = []
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        v = score(metric, y[idx], pred=pred[idx], proba=proba[idx] if proba is not None else None,
                  n_classes=n_classes)
        if v is not None:
            values.append(v)
    return np.array(values, dtype=float)


# --- tests for "worse beyond noise" over many classes or segments ------------------------------
def benjamini_hochberg(pvalues):
    """BH-adjusted p-values (q-values), same order as given."""
    import numpy as np

    p = np.asarray(pvalues, dtype=float)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def two_proportion_p(k1, n1, k2, n2):
    """One-sided p-value that proportion 1 is below proportion 2 (pooled two-proportion z-test)."""
    import numpy as np
    from scipy.stats import norm

    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    pooled = (k1 + k2) / np.maximum(n1 + n2, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n1, 1) + 1 / np.maximum(n2, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (k2 / np.maximum(n2, 1) - k1 / np.maximum(n1, 1)) / se, 0.0)
    return norm.sf(z)


# --- paired tests: the same rows scored by two runs -------------------------------------------
def mcnemar_worse_p(right_to_wrong, wrong_to_right):
    """One-sided exact McNemar p-value that more rows flipped right->wrong than wrong->right."""
    import numpy as np
    from scipy.stats import binom

    b = np.asarray(right_to_wrong, dtype=float)
    c = np.asarray(wrong_to_right, dtype=float)
    n = b + c
    return np.where(n > 0, binom.sf(b - 1, np.maximum(n, 1), 0.5), 1.0)


def paired_worse_p(d):
    """One-sided p-value that the mean of paired differences d (current - previous error) is above 0."""
    import numpy as np
    from scipy.stats import norm

    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return 1.0
    se = d.std(ddof=1) / np.sqrt(len(d))
    return float(norm.sf(d.mean() / se)) if se > 0 else (0.0 if d.mean() > 0 else 1.0)


# --- calibration ----------------------------------------------------------------------------
def expected_calibration_error(confidence, correct, bins: int):
    """Top-label ECE with equal-width bins (Guo et al. 2017), and the per-bin table. Vectorised over
    leading axes of `correct` (for a simulated null)."""
    import numpy as np

    confidence = np.asarray(confidence, dtype=float)
    idx = np.clip((confidence * bins).astype(int), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins).astype(float)
    conf_sum = np.bincount(idx, weights=confidence, minlength=bins)
    correct = np.asarray(correct, dtype=float)
    if correct.ndim == 1:
        acc_sum = np.bincount(idx, weights=correct, minlength=bins)
    else:
        onehot = np.zeros((len(idx), bins))
        onehot[np.arange(len(idx)), idx] = 1.0
        acc_sum = correct @ onehot
    ece = np.abs(acc_sum - conf_sum).sum(axis=-1) / max(len(confidence), 1)
    return ece, counts, conf_sum, acc_sum


def mcnemar_two_sided_p(right_to_wrong, wrong_to_right):
    """Two-sided exact McNemar p-value (binomial test of the discordant pairs at 1/2; McNemar 1947,
    exact form as in Fagerland et al. 2013): is either model better on the same rows?"""
    import numpy as np
    from scipy.stats import binom

    b = np.asarray(right_to_wrong, dtype=float)
    c = np.asarray(wrong_to_right, dtype=float)
    n = b + c
    p = 2 * binom.cdf(np.minimum(b, c), np.maximum(n, 1), 0.5)
    return np.where(n > 0, np.minimum(p, 1.0), 1.0)


def paired_bootstrap_interval(d, seed: int, n_boot: int = N_BOOTSTRAP, level: float = 0.95):
    """Percentile bootstrap interval of the mean of paired differences d (Efron & Tibshirani 1993,
    ch. 13): (low, high), or (nan, nan) for fewer than two pairs."""
    import numpy as np

    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(n_boot)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
