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
    from .findings import SkipCheck

    if not ctx.is_classification:
        raise SkipCheck("regression task: class balance does not apply")
    classes = [str(c) for c in ctx.classes]
    counts = {}
    for name in ctx.splits:
        y = _labels(ctx, name)
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


# --- baselines -----------------------------------------------------------------------------------
# Single-feature models are fitted on at most this many training rows and scored on at most this
# many validation rows: a one-feature model's score is stable to about +-0.01 at these sizes.
BASELINE_TRAIN_SAMPLE = 30_000
BASELINE_VALID_SAMPLE = 20_000
# The one-feature model is a step function over this many quantile bins of the feature (plus one bin for
# missing values): a depth-6 tree's resolution, fitted in linear time with bin counts.
SINGLE_FEATURE_LEAVES = 64
# Past this many features, single-feature models are fitted on a seeded random subset of them.
MAX_SINGLE_FEATURES = 200


def _labels(ctx: RunContext, split: str):
    from .data import encoded_labels

    return encoded_labels(ctx, split)


def sample_positions(positions, cap: int, seed: int):
    """`positions` itself when it has at most `cap` entries, else a sorted seeded random subset."""
    import numpy as np

    positions = np.asarray(positions)
    if len(positions) <= cap:
        return positions
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(positions, size=cap, replace=False))


def labelled_positions(ctx: RunContext, split: str):
    """Row positions of a split whose label is usable (inside `classes`, or a finite number)."""
    import numpy as np

    y = _labels(ctx, split)
    return np.flatnonzero(y >= 0) if ctx.is_classification else np.flatnonzero(np.isfinite(y))


def encode_single_feature(ctx: RunContext, column: str, train_pos, y_train, other_values):
    """One raw column as a float vector for a one-feature model: numbers as they are (inf -> NaN),
    categories replaced by what the training rows say about them (majority class + its share for
    classification, the mean target for regression); unseen categories and missing values -> NaN.
    Returns (train_vector, [vector for each of other_values])."""
    import numpy as np
    import pandas as pd

    train_col = ctx.train[column].iloc[train_pos]
    if column in ctx.numeric_columns:
        def as_float(s):
            v = np.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
            v[~np.isfinite(v)] = np.nan
            return v
        return as_float(train_col), [as_float(s) for s in other_values]
    # Factorise train and the other splits together, then tabulate labels per category with bincount:
    # one vectorised pass instead of a groupby and a map per split.
    parts = [train_col] + list(other_values)
    joint = pd.concat([p.astype("string").reset_index(drop=True) for p in parts], ignore_index=True)
    codes, uniques = pd.factorize(joint, use_na_sentinel=True)
    k = len(uniques)
    train_codes = codes[:len(train_col)]
    known = train_codes >= 0
    if ctx.is_classification:
        n_classes = int(max(np.max(y_train, initial=0), len(ctx.classes) - 1)) + 1
        cells = train_codes[known].astype(np.int64) * n_classes + np.asarray(y_train)[known].astype(np.int64)
        counts = np.bincount(cells, minlength=k * n_classes).reshape(k, n_classes).astype(float)
        seen = counts.sum(axis=1)
        value = np.where(seen > 0, counts.argmax(axis=1) + 0.5 * counts.max(axis=1) / np.maximum(seen, 1), np.nan)
    else:
        seen = np.bincount(train_codes[known], minlength=k).astype(float)
        sums = np.bincount(train_codes[known], weights=np.asarray(y_train, dtype=float)[known], minlength=k)
        value = np.where(seen > 0, sums / np.maximum(seen, 1), np.nan)
    encoded = np.append(value, np.nan)[codes]  # code -1 (missing) picks the trailing NaN
    bounds = np.cumsum([0] + [len(p) for p in parts])
    pieces = [encoded[bounds[i]:bounds[i + 1]] for i in range(len(parts))]
    return pieces[0], pieces[1:]


def single_feature_columns(ctx: RunContext) -> list[str]:
    """Raw feature columns a one-feature model can use (free text is left to the project's featurize)."""
    import numpy as np

    from .data import text_columns

    text = set(text_columns(ctx))
    cols = [c for c in ctx.feature_columns if c not in text]
    if len(cols) > MAX_SINGLE_FEATURES:
        rng = np.random.default_rng(ctx.seed)
        cols = sorted(rng.choice(cols, size=MAX_SINGLE_FEATURES, replace=False).tolist(), key=cols.index)
    return cols


def _quantile_bins(x_train, x_valid):
    """Bin indices for train and valid on the train quantiles; NaN gets the last bin."""
    import numpy as np

    finite = x_train[~np.isnan(x_train)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, SINGLE_FEATURE_LEAVES + 1)[1:-1]))
    n_bins = len(edges) + 2

    def assign(x):
        b = np.searchsorted(edges, x, side="right")
        b[np.isnan(x)] = n_bins - 1
        return b

    return assign(x_train), assign(x_valid), n_bins


def _strength(ctx: RunContext, y_true, pred) -> float | None:
    """How well one feature predicts the label on a 0..1 scale independent of the metric: chance-
    corrected balanced accuracy for classification, R^2 for regression (clipped at 0)."""
    import numpy as np

    from .scoring import score

    if ctx.is_classification:
        present = np.unique(y_true)
        if len(present) < 2:
            return None
        bacc = score("balanced_accuracy", y_true, pred=pred)
        chance = 1.0 / len(present)
        return max(0.0, (bacc - chance) / (1.0 - chance))
    r2 = score("r2", y_true, pred=pred)
    return None if r2 is None else max(0.0, r2)


def baseline_scores(ctx: RunContext) -> dict:
    """What input-independent and one-feature models score on valid, in the project's metric.

    Cached for the run (metrics.vs_baseline reads it too). Keys: metric, higher_is_better, majority
    (the score of predicting the training majority class / mean), best_single_feature {feature, score},
    per_feature (best first, with a metric-free `strength` in 0..1), and the sample sizes used."""
    return ctx.shared("problem:baseline", lambda: _compute_baseline(ctx))


def _compute_baseline(ctx: RunContext) -> dict:
    import numpy as np
    from .scoring import higher_is_better, score

    metric = ctx.metric
    train_pos = sample_positions(labelled_positions(ctx, "train"), BASELINE_TRAIN_SAMPLE, ctx.seed)
    valid_labelled = labelled_positions(ctx, "valid")
    valid_pos = sample_positions(valid_labelled, BASELINE_VALID_SAMPLE, ctx.seed + 1)
    result = {"metric": metric, "higher_is_better": higher_is_better(metric), "majority": None,
              "best_single_feature": {"feature": None, "score": None}, "per_feature": [],
              "train_rows_used": int(len(train_pos)), "valid_rows_used": int(len(valid_pos)),
              "valid_rows_labelled": int(len(valid_labelled)),
              "sampled": bool(len(valid_pos) < len(valid_labelled)
                              or len(train_pos) < len(labelled_positions(ctx, "train")))}
    if len(train_pos) == 0 or len(valid_pos) == 0:
        return result
    y_train, y_valid = _labels(ctx, "train")[train_pos], _labels(ctx, "valid")[valid_pos]
    n_classes = len(ctx.classes) if ctx.is_classification else None

    if ctx.is_classification:
        prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
        proba = np.tile(prior, (len(y_valid), 1))
        result["majority"] = score(metric, y_valid, pred=np.full(len(y_valid), prior.argmax()), proba=proba,
                                   n_classes=n_classes)
        result["majority_class"] = str(ctx.classes[int(prior.argmax())])
    else:
        constant = float(np.median(y_train)) if metric == "mae" else float(np.mean(y_train))
        result["majority"] = score(metric, y_valid, pred=np.full(len(y_valid), constant))
        result["constant_prediction"] = constant

    valid_col = lambda c: ctx.valid[c].iloc[valid_pos]  # noqa: E731
    rows = []
    for column in single_feature_columns(ctx):
        x_train, (x_valid,) = encode_single_feature(ctx, column, train_pos, y_train, [valid_col(column)])
        if np.all(np.isnan(x_train)) or np.nanmin(x_train) == np.nanmax(x_train):
            continue
        bins_train, bins_valid, n_bins = _quantile_bins(x_train, x_valid)
        if ctx.is_classification:
            # class frequencies per bin, Laplace-smoothed so that no probability is exactly 0
            counts = np.zeros((n_bins, n_classes))
            np.add.at(counts, (bins_train, y_train), 1.0)
            proba = ((counts + 1.0) / (counts.sum(axis=1, keepdims=True) + n_classes))[bins_valid]
            pred = proba.argmax(axis=1)
            value = score(metric, y_valid, pred=pred, proba=proba, n_classes=n_classes)
        else:
            sums = np.bincount(bins_train, weights=y_train, minlength=n_bins)
            counts = np.bincount(bins_train, minlength=n_bins)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), float(np.mean(y_train)))
            pred = means[bins_valid]
            value = score(metric, y_valid, pred=pred)
        row = {"feature": column, "score": value, "strength": _strength(ctx, y_valid, pred)}
        if not ctx.is_classification and column in ctx.numeric_columns:
            row["spearman"] = _spearman(x_valid, y_valid)
        rows.append(row)
    sign = 1 if result["higher_is_better"] else -1
    scored = sorted([r for r in rows if r["score"] is not None], key=lambda r: -sign * r["score"])
    result["per_feature"] = scored + [r for r in rows if r["score"] is None]
    if scored:
        result["best_single_feature"] = {"feature": scored[0]["feature"], "score": scored[0]["score"]}
    return result


def _spearman(x, y) -> float | None:
    import numpy as np
    import pandas as pd

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return float(pd.Series(x[ok]).rank().corr(pd.Series(y[ok]).rank()))


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@check("problem.baseline", title="What a trivial model scores")
def baseline(ctx: RunContext):
    from .findings import SkipCheck

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
        y_train = _labels(ctx, "train")
        train_counts = np.bincount(y_train[y_train >= 0], minlength=n_classes)
        y_valid = _labels(ctx, "valid")
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
        y_valid = _labels(ctx, "valid")
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
