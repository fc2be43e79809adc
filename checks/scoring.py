"""Metric names of the project file (DESIGN §3) computed from labels, predictions and probabilities.

One place for every step that scores something: the baseline, the metrics step, slice tests.
"""

from __future__ import annotations

import math

HIGHER_IS_BETTER = {
    "accuracy": True, "balanced_accuracy": True, "f1_macro": True, "f1_weighted": True, "roc_auc": True,
    "r2": True, "log_loss": False, "rmse": False, "mae": False, "error_rate": False,
}
NEEDS_PROBABILITIES = ("roc_auc", "log_loss")


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER[metric]


def score(metric: str, y_true, pred=None, proba=None, n_classes: int | None = None) -> float | None:
    """The metric's value, or None when it cannot be computed (e.g. roc_auc without probabilities,
    or a single class present). Classification labels are class indices 0..C-1."""
    import numpy as np
    from sklearn import metrics as skm

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
            return float(math.sqrt(skm.mean_squared_error(yt, p)))
        if metric == "mae":
            return float(skm.mean_absolute_error(yt, p))
        return float(skm.r2_score(yt, p)) if len(yt) > 1 else None
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
        average = "macro" if metric == "f1_macro" else "weighted"
        present = sorted(set(y_true.tolist()) | set(pred.tolist()))
        return float(skm.f1_score(y_true, pred, labels=present, average=average, zero_division=0))
    if proba is None:
        return None
    proba = np.asarray(proba, dtype=float)
    if metric == "log_loss":
        clipped = np.clip(proba, 1e-15, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        return float(skm.log_loss(y_true, clipped, labels=labels))
    if metric == "roc_auc":
        if len(set(y_true.tolist())) < 2:
            return None
        if proba.shape[1] == 2:
            return float(skm.roc_auc_score(y_true, proba[:, 1]))
        present = sorted(set(y_true.tolist()))
        if len(present) < proba.shape[1]:
            return None  # ovr AUC needs every class present
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    raise ValueError(f"unknown metric {metric!r}")
