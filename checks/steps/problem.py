"""Step 1, problem definition: what is predicted, which classes, which metric, what a trivial model scores."""

from __future__ import annotations

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, fail, info, passed, warn
from ..engine.registry import check
from ..analyses.baselines import SINGLE_FEATURE_LEAVES, baseline_scores

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
        profile["integral"] = bool(len(values) and np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        if len(values):
            finite = values[np.isfinite(values)]
            profile["min"] = float(finite.min()) if len(finite) else None
            profile["max"] = float(finite.max()) if len(finite) else None
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
    from ..findings import SkipCheck

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


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@check("problem.baseline", title="What a trivial model scores")
def baseline(ctx: RunContext):
    from ..findings import SkipCheck

    b = baseline_scores(ctx)
    if b["valid_rows_used"] == 0:
        raise SkipCheck("no labelled validation rows to score a baseline on")
    best = b["best_single_feature"]
    evidence = {k: v for k, v in b.items() if k != "per_feature"}
    evidence["top_single_features"] = b["per_feature"][:10]
    what = ("predicting the training majority class" if ctx.is_classification
            else f"predicting the training {'median' if b['metric'] == 'mae' else 'mean'}")
    top = [r for r in b["per_feature"] if r["score"] is not None][:10]
    plots = []
    if top:
        plots.append(PlotSpec(kind="bar", title=f"valid {b['metric']}: constant vs one-feature models",
                              x_label="model", y_label=b["metric"],
                              series=[Series(b["metric"], ["constant"] + [r["feature"] for r in top],
                                             [b["majority"] if b["majority"] is not None else 0.0]
                                             + [r["score"] for r in top])]))
    sample_note = (f" Single-feature models were fitted on {b['train_rows_used']:,} sampled training rows and "
                   f"scored on {b['valid_rows_used']:,} of {b['valid_rows_labelled']:,} validation rows."
                   if b["sampled"] else "")
    one = (f"the best one-feature model (a {SINGLE_FEATURE_LEAVES}-bin step function of '{best['feature']}') scores "
           f"{_fmt(best['score'])}" if best["feature"] is not None
           else "no raw column supports a one-feature model (free text needs the project's featurize)")
    detail = (f"On the validation split, {what} scores {b['metric']} = {_fmt(b['majority'])}; {one}. A trained "
              f"model has to beat these clearly to be worth its complexity." + sample_note)
    if b["majority"] is None:
        return info(f"{b['metric']} cannot be computed for a constant predictor on this validation split",
                    detail=detail + f" {b['metric']} is undefined here (e.g. a single class present, or it "
                                    f"needs probabilities that vary).", evidence=evidence, plots=plots)
    title = f"constant predictor: {b['metric']} {_fmt(b['majority'])}"
    if best["feature"] is not None:
        title += f"; best single feature '{best['feature']}': {_fmt(best['score'])}"
    return passed(title, detail=detail, evidence=evidence, plots=plots)


# --- metric choice -------------------------------------------------------------------------------
# Majority share beyond which accuracy mostly measures the prior: a model that ignores the minority
# classes already scores >= 90% (Provost 2000; He & Garcia 2009 on evaluating under imbalance).
ACCURACY_MAJORITY_SHARE = 0.9
# ROC AUC estimated from fewer positives than this per class has a standard error above ~0.1
# (Hanley & McNeil 1982), so per-class AUCs are mostly noise.
AUC_MIN_POSITIVES = 10
# R^2 on fewer validation rows than this swings by tenths between resamples; the usual small-sample
# rule of thumb (n >= 30) for a stable estimate of a variance ratio.
R2_MIN_ROWS = 30


def _metric_problems(ctx: RunContext) -> tuple[list[dict], dict]:
    import numpy as np

    metric = ctx.metric
    problems, evidence = [], {"metric": metric, "declared": ctx.config.metric}
    if ctx.is_classification:
        n_classes = len(ctx.classes)
        y_train = ctx.y("train")
        train_counts = np.bincount(y_train[y_train >= 0], minlength=n_classes)
        y_valid = ctx.y("valid")
        valid_counts = np.bincount(y_valid[y_valid >= 0], minlength=n_classes)
        total = max(int(train_counts.sum()), 1)
        majority_share = float(train_counts.max() / total)
        nonzero = train_counts[train_counts > 0]
        ratio = float(nonzero.max() / nonzero.min()) if len(nonzero) else 0.0
        evidence.update(majority_share=round(majority_share, 4), imbalance_ratio=round(ratio, 2),
                        valid_counts={str(c): int(v) for c, v in zip(ctx.classes, valid_counts)})
        if metric == "accuracy" and (majority_share >= ACCURACY_MAJORITY_SHARE or ratio >= IMBALANCE_WARN_RATIO):
            problems.append({
                "status": "warn", "use": "balanced_accuracy or f1_macro",
                "title": f"accuracy hides the minority classes: the majority class is {majority_share:.0%} of train",
                "detail": f"A model that always predicts the majority class scores about {majority_share:.0%} "
                          f"accuracy (largest/smallest class = {ratio:.0f}x). Gains on the small classes barely "
                          f"move accuracy, so it cannot tell a useful model from a trivial one."})
        if metric == "roc_auc":
            small = [str(c) for c, v in zip(ctx.classes, valid_counts) if v < AUC_MIN_POSITIVES]
            if small:
                problems.append({
                    "status": "warn", "use": "f1_macro or log_loss (or more validation data)",
                    "title": f"roc_auc rests on fewer than {AUC_MIN_POSITIVES} validation rows for class(es) "
                             f"{', '.join(small[:5])}",
                    "detail": f"AUC needs positives of every class; with fewer than {AUC_MIN_POSITIVES} "
                              f"(absent classes make it undefined) the estimate moves by 0.1 or more "
                              f"from a single row" + (", and one-vs-rest averaging gives that noisy class the "
                                                      "same weight as the large ones" if n_classes > 2 else "")
                              + "."})
        if metric in ("f1_macro", "balanced_accuracy"):
            absent = [str(c) for c, v in zip(ctx.classes, valid_counts) if v == 0]
            if absent:
                problems.append({
                    "status": "info", "use": None,
                    "title": f"{metric} ignores class(es) {', '.join(absent[:5])}: no validation rows",
                    "detail": "Classes absent from the validation split do not enter the average, so the "
                              "score says nothing about them."})
    else:
        y_valid = ctx.y("valid")
        n_valid = int(np.isfinite(y_valid).sum())
        evidence["valid_rows"] = n_valid
        if metric == "r2" and n_valid < R2_MIN_ROWS:
            problems.append({
                "status": "warn", "use": "rmse or mae, estimated with cross-validation",
                "title": f"r2 on only {n_valid} validation rows",
                "detail": f"R^2 divides by the variance of the validation targets; with fewer than "
                          f"{R2_MIN_ROWS} rows that variance is itself a rough guess, so the score swings "
                          f"widely between splits."})
    if ctx.config.metric is None:
        problems.append({"status": "info", "use": None,
                         "title": f"no metric set; judging with {metric}",
                         "detail": f"[project] metric is not set, so mltriage uses {metric}. Name the "
                                   f"metric the model is judged by so that every step reports it."})
    return problems, evidence


@check("problem.metric_choice", title="The metric can see the problem")
def metric_choice(ctx: RunContext):
    problems, evidence = _metric_problems(ctx)
    evidence["problems"] = [p["title"] for p in problems]
    worst = next((p for p in problems if p["status"] == "warn"), None)
    if worst:
        return warn(worst["title"], detail=" ".join(p["detail"] for p in problems),
                    fix=f"Set [project] metric to {worst['use']}, and keep {ctx.metric} only as a secondary number.",
                    evidence=evidence)
    if problems:
        return info(problems[0]["title"], detail=" ".join(p["detail"] for p in problems),
                    fix="Set [project] metric explicitly.", evidence=evidence)
    return passed(f"{ctx.metric} suits this {ctx.task} task", evidence=evidence)
