"""Step 1, problem definition: what is predicted, which classes, which metric, what a trivial model scores."""

from __future__ import annotations

from .context import RunContext
from .findings import PlotSpec, Series, fail, info, passed, warn
from .registry import check

REGRESSION_LOSSES = ("mse", "l1", "huber")
CLASSIFICATION_LOSSES = ("cross_entropy", "nll", "bce", "bce_with_logits")
# Beyond this max/min class-count ratio, imbalance is "severe" in the class-imbalance literature
# (He & Garcia, "Learning from Imbalanced Data", 2009, treat 1:10 and beyond as strong imbalance;
# we warn from 1:20 so that ordinary skew stays quiet).
IMBALANCE_WARN_RATIO = 20.0
# Fewer training examples than this for a class makes its metrics unreliable.
MIN_EXAMPLES_PER_CLASS = 10


def _target_profile(ctx: RunContext) -> dict:
    import numpy as np
    import pandas as pd

    y = ctx.raw_splits["train"][ctx.target].dropna()
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    profile = {"dtype": str(y.dtype), "distinct": int(y.nunique()), "numeric": bool(numeric)}
    if numeric:
        values = np.asarray(y, dtype=float)
        profile["integral"] = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        profile["min"], profile["max"] = float(values.min()), float(values.max()) if len(values) else 0.0
    return profile


@check("problem.task_type", title="The task, the target and the loss agree")
def task_type(ctx: RunContext):
    profile = _target_profile(ctx)
    loss = ctx.config.loss
    declared = ctx.config.task
    evidence = {"declared_task": declared, "inferred_task": ctx.inferred_task, "loss": loss, "target": profile}
    looks_like_indices = (profile["numeric"] and profile.get("integral") and profile["distinct"] <= 10
                          and profile.get("min") == 0)
    if declared == "regression" and not profile["numeric"]:
        return fail("task is regression but the target holds text labels",
                    detail=f"Target '{ctx.target}' has dtype {profile['dtype']} with {profile['distinct']} "
                           f"distinct values; a regression model cannot fit strings.",
                    fix="Set [project] task = \"classification\" and a classification loss, or fix the target column.",
                    evidence=evidence)
    if declared == "classification" and ctx.inferred_task == "regression" and not ctx.config.classes:
        return fail("task is classification but the target looks continuous",
                    detail=f"Target '{ctx.target}' has {profile['distinct']} distinct non-integer values.",
                    fix="Use task = \"regression\" with an mse/l1/huber loss, or bin the target into classes.",
                    evidence=evidence)
    if loss in REGRESSION_LOSSES and ctx.task == "classification":
        status = fail if (not profile["numeric"] or looks_like_indices) and declared != "regression" else warn
        return status(f"a {loss} loss on a target that looks like class labels",
                      detail=f"Target '{ctx.target}' has {profile['distinct']} distinct values "
                             f"({profile['dtype']}); a regression loss treats class 2 as 'twice' class 1 and "
                             f"predicts values between classes.",
                      fix="Use cross_entropy with one output per class (or bce_with_logits for two classes); "
                          "if the target really is a number, set [project] task = \"regression\".",
                      evidence=evidence)
    if loss in CLASSIFICATION_LOSSES and ctx.task == "regression":
        return fail(f"a {loss} loss on a continuous target",
                    detail=f"Target '{ctx.target}' has {profile['distinct']} distinct values from "
                           f"{profile.get('min')} to {profile.get('max')}; a classification loss needs class labels.",
                    fix="Use mse, l1 or huber for a continuous target.", evidence=evidence)
    what = (f"classification into {len(ctx.classes)} classes" if ctx.is_classification else "regression")
    source = "declared" if declared else "inferred from the target"
    return passed(f"{what} on '{ctx.target}' ({source}), loss {ctx.loss_name}", evidence=evidence)


@check("problem.class_balance", title="Classes per split")
def class_balance(ctx: RunContext):
    from .findings import SkipCheck

    if not ctx.is_classification:
        raise SkipCheck("regression task: class balance does not apply")
    classes = [str(c) for c in ctx.classes]
    counts = {}
    for name in ctx.splits:
        y = ctx.y(name)
        counts[name] = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    train_counts = counts["train"]
    nonzero = [v for v in train_counts.values() if v > 0]
    ratio = (max(nonzero) / min(nonzero)) if nonzero else float("inf")
    absent_train = [c for c, v in train_counts.items() if v == 0]
    absent_valid = [c for c, v in counts["valid"].items() if v == 0]
    rare = [c for c, v in train_counts.items() if 0 < v < MIN_EXAMPLES_PER_CLASS]
    evidence = {"counts": counts, "imbalance_ratio": round(ratio, 2), "absent_in_train": absent_train,
                "absent_in_valid": absent_valid, "rare_in_train": rare}
    plot = PlotSpec(kind="bar", title="examples per class", x_label="class", y_label="rows",
                    series=[Series(name, classes, [counts[name][c] for c in classes]) for name in counts])
    if absent_train:
        return warn(f"{len(absent_train)} declared class(es) never appear in train: {', '.join(absent_train[:5])}",
                    detail="The model cannot learn a class it never sees; its output for that class only "
                           "wastes probability mass.",
                    fix="Check [data] classes against the labels, or collect examples of the missing classes.",
                    evidence=evidence, plots=[plot])
    if ratio >= IMBALANCE_WARN_RATIO or rare:
        smallest = min(train_counts, key=train_counts.get)
        return warn(f"classes are strongly imbalanced (largest/smallest = {ratio:.0f}x)",
                    detail=f"Smallest class '{smallest}' has {train_counts[smallest]} training rows. Above "
                           f"{IMBALANCE_WARN_RATIO:.0f}x, accuracy is dominated by the large classes"
                           + (f"; classes with fewer than {MIN_EXAMPLES_PER_CLASS} rows: {', '.join(rare)}" if rare else "")
                           + ".",
                    fix="Judge with balanced_accuracy or f1_macro, and consider class weights or resampling.",
                    evidence=evidence, plots=[plot])
    if absent_valid:
        return info(f"class(es) {', '.join(absent_valid[:5])} have no validation rows",
                    detail="Per-class validation metrics for these classes cannot be computed.",
                    evidence=evidence, plots=[plot])
    return passed(f"{len(classes)} classes, largest/smallest = {ratio:.1f}x in train", evidence=evidence,
                  plots=[plot])
