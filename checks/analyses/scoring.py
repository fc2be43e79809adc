"""Metric names of the project file (DESIGN §3) computed from labels, predictions and probabilities.

One place for every step that scores something: the baseline, the metrics step, slice tests.
"""

from __future__ import annotations

import math

# The metric table lives in vocab.py; re-exported here for callers that score and rank in one place.
from ..vocab import HIGHER_IS_BETTER, NEEDS_PROBABILITIES, higher_is_better  # noqa: F401


def score(metric: str, y_true, pred=None, proba=None, n_classes: int | None = None) -> float | None:
    """The metric's value, or None when it cannot be computed (e.g. roc_auc without probabilities,
    or a single class present). Classification labels are class indices 0..C-1.

    Computed with numpy, with scikit-learn's definitions (tests/test_scoring.py compares the two on
    random inputs): the baseline scores dozens of one-feature models, and scikit-learn's input
    validation cost more than the arithmetic, besides a second of import time for the data step."""
    import numpy as np

    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return None
    if pred is None and proba is not None:
        proba = np.asarray(proba, dtype=float)
        pred = proba.argmax(axis=1) if proba.ndim == 2 else (proba >= 0.5).astype(int)
    if metric in ("rmse", "mae", "r2"):
        p = np.asarray(pred, dtype=float).reshape(-1)
        ok = np.isfinite(p) & np.isfinite(y_true.astype(float))
        if not ok.any():
            return None
        yt, p = y_true[ok].astype(float), p[ok]
        if metric == "rmse":
            return float(math.sqrt(np.mean((yt - p) ** 2)))
        if metric == "mae":
            return float(np.mean(np.abs(yt - p)))
        return _r2(yt, p) if len(yt) > 1 else None
    pred = np.asarray(pred)
    if metric == "accuracy":
        return float((pred == y_true).mean())
    if metric == "error_rate":
        return float((pred != y_true).mean())
    labels = list(range(n_classes)) if n_classes else sorted(set(y_true.tolist()) | set(pred.tolist()))
    if metric == "balanced_accuracy":
        present = [c for c in labels if (y_true == c).any()]
        recalls = [float((pred[y_true == c] == c).mean()) for c in present]
        return float(np.mean(recalls)) if recalls else None
    if metric in ("f1_macro", "f1_weighted"):
        return _f1(y_true, pred, weighted=metric == "f1_weighted")
    if proba is None:
        return None
    proba = np.asarray(proba, dtype=float)
    if metric == "log_loss":
        clipped = np.clip(proba, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        return _log_loss(y_true, clipped, labels)
    if metric == "roc_auc":
        if len(set(y_true.tolist())) < 2:
            return None
        if proba.shape[1] == 2:
            return _binary_auc(y_true == max(y_true.tolist()), proba[:, 1])
        present = sorted(set(y_true.tolist()))
        if len(present) < proba.shape[1]:
            return None  # ovr AUC needs every class present
        if not np.allclose(proba.sum(axis=1), 1.0):
            from sklearn import metrics as skm  # raises scikit-learn's own message for non-probabilities

            return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
        return float(np.mean([_binary_auc(y_true == c, proba[:, i]) for i, c in enumerate(labels)]))
    raise ValueError(f"unknown metric {metric!r}")


def _r2(y, p) -> float:
    """Coefficient of determination; a constant target scores 1.0 when predicted exactly, else 0.0
    (scikit-learn's force_finite convention)."""
    import numpy as np

    residual = float(np.sum((y - p) ** 2))
    total = float(np.sum((y - np.mean(y)) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def _f1(y_true, pred, weighted: bool) -> float:
    """F1 per label present in y_true or pred (0 where undefined), averaged plainly or by support."""
    import numpy as np

    labels, codes = np.unique(np.concatenate([y_true, pred]), return_inverse=True)
    t, p = codes[:len(y_true)], codes[len(y_true):]
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k).astype(float)
    support = np.bincount(t, minlength=k).astype(float)
    predicted = np.bincount(p, minlength=k).astype(float)
    denominator = support + predicted  # = 2tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    if weighted:
        return float(np.sum(f1 * support) / np.sum(support))
    return float(np.mean(f1))


def _log_loss(y_true, proba, labels) -> float:
    import numpy as np

    index = {c: i for i, c in enumerate(labels)}
    try:
        columns = np.array([index[c] for c in y_true.tolist()])
    except KeyError as exc:
        raise ValueError(f"y_true contains a label not in labels: {exc}") from None
    return float(-np.mean(np.log(proba[np.arange(len(columns)), columns])))


def _binary_auc(positive, scores) -> float | None:
    """Area under the ROC curve: the Mann-Whitney U statistic with average ranks for ties."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    if not np.all(np.isfinite(scores)):
        raise ValueError("Input contains NaN or infinity")  # as scikit-learn: no AUC from broken scores
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    average_rank = (starts + ends + 1) / 2.0  # ranks are 1-based; a tie group shares its mean rank
    ranks = np.empty(len(ordered))
    ranks[order] = np.repeat(average_rank, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
