"""The model's outputs turned into numbers: metrics per split, per-class tables and their standard
errors, computed once per run for the metrics and errors steps."""

from __future__ import annotations

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..vocab import CLASSIFICATION_METRICS, NEEDS_PROBABILITIES, higher_is_better
from .predictions import model_outputs
from .stats import bootstrap_scores


def labelled(so):
    """(y, pred, proba) restricted to rows whose label is known."""
    keep = so.labelled
    proba = so.proba[keep] if so.proba is not None else None
    return so.y_true[keep], so.pred[keep], proba


def metric_value(ctx: RunContext, metric: str, so) -> float | None:
    from .scoring import score

    y, pred, proba = labelled(so)
    return score(metric, y, pred=pred, proba=proba, n_classes=len(ctx.classes) or None)


def metrics_for_task(ctx: RunContext, has_proba: bool) -> list[str]:
    """The metrics that fit the task, the configured one first."""
    if ctx.is_classification:
        names = [m for m in CLASSIFICATION_METRICS if has_proba or m not in NEEDS_PROBABILITIES]
    else:
        names = ["mae", "rmse", "r2"]
    metric = ctx.metric
    return [metric] + [m for m in names if m != metric]


def per_class_table(ctx: RunContext, so) -> dict[str, dict]:
    y, pred, _ = labelled(so)
    table = {}
    for i, c in enumerate(ctx.classes):
        support, predicted = int((y == i).sum()), int((pred == i).sum())
        tp = int(((y == i) & (pred == i)).sum())
        table[str(c)] = {"support": support, "predicted": predicted, "correct": tp,
                         "precision": tp / predicted if predicted else None,
                         "recall": tp / support if support else None,
                         "f1": 2 * tp / (support + predicted) if support + predicted else None}
    return table


@analysis
def standard_error(ctx: RunContext, metric: str, split: str) -> float | None:
    """Bootstrap standard error of the metric on a split."""
    import numpy as np

    so = model_outputs(ctx).get(split)
    y, pred, proba = labelled(so)
    draws = bootstrap_scores(metric, y, pred, proba, len(ctx.classes) or None, ctx.seed)
    draws = draws[np.isfinite(draws)]
    return float(draws.std(ddof=1)) if len(draws) > 2 else None


@analysis
def summary_numbers(ctx: RunContext) -> dict:
    """Every split's metrics and per-class table: the evidence of metrics.summary (also read by
    errors.regressions from the previous run)."""
    outputs = model_outputs(ctx)
    splits, per_class = {}, {}
    for name, so in outputs.splits.items():
        names = metrics_for_task(ctx, so.proba is not None)
        splits[name] = {"rows": int(so.labelled.sum()),
                        "metrics": {m: metric_value(ctx, m, so) for m in names}}
        if ctx.is_classification:
            per_class[name] = per_class_table(ctx, so)
    return {"metric": ctx.metric, "higher_is_better": higher_is_better(ctx.metric), "source": outputs.source,
            "source_kind": outputs.kind, "budget_limited": outputs.budget_limited,
            "splits": splits, "per_class": per_class, "missing": dict(outputs.missing)}
