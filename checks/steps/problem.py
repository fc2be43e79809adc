"""Step 1, problem definition: what is predicted, which classes, which metric, what a trivial model scores.

Each check measures (`_measure_*(ctx)` -> a small dataclass) and then judges (`*_verdict(m)` -> Finding),
so that the thresholds below are unit-tested on planted numbers without building a project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..analyses.baselines import SINGLE_FEATURE_LEAVES, Baseline, baseline_scores
from ..analyses.exact_counts import class_counts, counted_splits, exact_counts
from ..engine.context import RunContext
from ..engine.registry import check
from ..findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ..vocab import loss_info
from ..wording import cut_list

# Beyond this max/min class-count ratio, imbalance is "severe" in the class-imbalance literature
# (He & Garcia, "Learning from Imbalanced Data", 2009, treat 1:10 and beyond as strong imbalance;
# we warn from 1:20 so that ordinary skew stays quiet).
IMBALANCE_WARN_RATIO = 20.0
# Fewer training examples than this for a class makes its metrics unreliable.
MIN_EXAMPLES_PER_CLASS = 10
# Integer targets read as class indices: 0-based with at most this many distinct values.
INDEX_LIKE_MAX_DISTINCT = 10


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# --- problem.task_type ---------------------------------------------------------------------------
@dataclass
class TaskTypeMeasure:
    target: str
    declared: str | None          # [project] task, if set
    inferred: str                 # what the target column looks like
    task: str                     # the task the run uses (declared, else inferred)
    loss: str | None              # [model] loss as written
    loss_name: str                # the loss the run uses (written, else the task's default)
    n_classes: int
    classes_declared: bool        # [data] classes is set
    profile: dict                 # dtype, distinct, numeric, integral, min, max of the train target

    @property
    def loss_task(self) -> str | None:
        """The task the written loss is for; None for a project's own loss function (or none written)."""
        loss = loss_info(self.loss) if self.loss else None
        return loss.task if loss else None

    @property
    def looks_like_indices(self) -> bool:
        p = self.profile
        return bool(p["numeric"] and p.get("integral") and p["distinct"] <= INDEX_LIKE_MAX_DISTINCT
                    and p.get("min") == 0)


def _target_profile(ctx: RunContext) -> dict:
    import numpy as np
    import pandas as pd

    if ctx.is_tensor and ctx.target_kind == "sequence":  # a language model's targets: every position's id
        y = pd.Series(ctx.sequence_tokens("train"))
    else:
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


def _measure_task_type(ctx: RunContext) -> TaskTypeMeasure:
    return TaskTypeMeasure(target=ctx.target, declared=ctx.config.task, inferred=ctx.inferred_task, task=ctx.task,
                           loss=ctx.config.loss, loss_name=ctx.loss_name,
                           n_classes=len(ctx.classes) if ctx.is_classification else 0,
                           classes_declared=bool(ctx.config.classes), profile=_target_profile(ctx))


def task_type_verdict(m: TaskTypeMeasure) -> Finding:
    profile, loss, declared = m.profile, m.loss, m.declared
    evidence = {"declared_task": declared, "inferred_task": m.inferred, "loss": loss, "target": profile}
    if declared == "regression" and not profile["numeric"]:
        return fail("task is regression but the target holds text labels",
                    detail=f"Target '{m.target}' has dtype {profile['dtype']} with {profile['distinct']} "
                           f"distinct values; a regression model cannot fit strings.",
                    fix="Set [project] task = \"classification\" and a classification loss, or fix the target column.",
                    evidence=evidence)
    if declared == "classification" and m.inferred == "regression" and not m.classes_declared:
        return fail("task is classification but the target looks continuous",
                    detail=f"Target '{m.target}' has {profile['distinct']} distinct non-integer values.",
                    fix="Use task = \"regression\" with an mse/l1/huber loss, or bin the target into classes.",
                    evidence=evidence)
    if m.loss_task == "regression" and m.task == "classification":
        status = fail if (not profile["numeric"] or m.looks_like_indices) and declared != "regression" else warn
        return status(f"a {loss} loss on a target that looks like class labels",
                      detail=f"Target '{m.target}' has {profile['distinct']} distinct values "
                             f"({profile['dtype']}); a regression loss treats class 2 as 'twice' class 1 and "
                             f"predicts values between classes.",
                      fix="Use cross_entropy with one output per class (or bce_with_logits for two classes); "
                          "if the target really is a number, set [project] task = \"regression\".",
                      evidence=evidence)
    if m.loss_task == "classification" and m.task == "regression":
        return fail(f"a {loss} loss on a continuous target",
                    detail=f"Target '{m.target}' has {profile['distinct']} distinct values from "
                           f"{profile.get('min')} to {profile.get('max')}; a classification loss needs class labels.",
                    fix="Use mse, l1 or huber for a continuous target.", evidence=evidence)
    what = f"classification into {m.n_classes} classes" if m.task == "classification" else "regression"
    source = "declared" if declared else "inferred from the target"
    return passed(f"{what} on '{m.target}' ({source}), loss {m.loss_name}", evidence=evidence)


@check("problem.task_type", title="The task, the target and the loss agree")
def task_type(ctx: RunContext):
    return task_type_verdict(_measure_task_type(ctx))


# --- problem.class_balance -----------------------------------------------------------------------
@dataclass
class ClassBalanceMeasure:
    classes: list[str]
    counts: dict[str, dict[str, int]]   # split -> class -> rows

    @property
    def train(self) -> dict[str, int]:
        return self.counts["train"]

    @property
    def imbalance_ratio(self) -> float:
        nonzero = [v for v in self.train.values() if v > 0]
        return (max(nonzero) / min(nonzero)) if nonzero else float("inf")


def _measure_class_balance(ctx: RunContext) -> ClassBalanceMeasure:
    classes = [str(c) for c in ctx.classes]
    exact = exact_counts(ctx)
    counts = {}
    for name in (ctx.splits if exact is None else counted_splits(exact, ctx, holdout=True)):
        if exact is not None and name in exact.rows:  # every row of the file (DuckDB/Dask)
            counts[name] = class_counts(exact, ctx, name)
            continue
        y = ctx.y(name)  # in memory (a held-out valid split is a part of the train file)
        counts[name] = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    return ClassBalanceMeasure(classes, counts)


def class_balance_verdict(m: ClassBalanceMeasure) -> Finding:
    classes, counts, train_counts, ratio = m.classes, m.counts, m.train, m.imbalance_ratio
    absent_train = [c for c, v in train_counts.items() if v == 0]
    absent_valid = [c for c, v in counts["valid"].items() if v == 0]
    rare = [c for c, v in train_counts.items() if 0 < v < MIN_EXAMPLES_PER_CLASS]
    evidence = {"counts": counts, "imbalance_ratio": round(ratio, 2), "absent_in_train": absent_train,
                "absent_in_valid": absent_valid, "rare_in_train": rare}
    plot = PlotSpec(kind="bar", title="examples per class", x_label="class", y_label="rows",
                    series=[Series(name, classes, [counts[name][c] for c in classes]) for name in counts])
    if absent_train:
        return warn(f"{len(absent_train)} declared class(es) never appear in train: {cut_list(absent_train, 5)}",
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
        return info(f"class(es) {cut_list(absent_valid, 5)} have no validation rows",
                    detail="Per-class validation metrics for these classes cannot be computed.",
                    evidence=evidence, plots=[plot])
    return passed(f"{len(classes)} classes, largest/smallest = {ratio:.1f}x in train", evidence=evidence,
                  plots=[plot])


@check("problem.class_balance", title="Classes per split")
def class_balance(ctx: RunContext):
    if not ctx.is_classification:
        raise SkipCheck("regression task: class balance does not apply")
    return class_balance_verdict(_measure_class_balance(ctx))


# --- problem.baseline ----------------------------------------------------------------------------
def baseline_verdict(b: Baseline, is_classification: bool) -> Finding:
    best = b.best_single_feature
    evidence = {k: v for k, v in b.as_dict().items() if k != "per_feature"}
    evidence["top_single_features"] = b.per_feature[:10]
    what = ("predicting the training majority class" if is_classification
            else f"predicting the training {'median' if b.metric == 'mae' else 'mean'}")
    top = [r for r in b.per_feature if r["score"] is not None][:10]
    plots = []
    if top:
        plots.append(PlotSpec(kind="bar", title=f"valid {b.metric}: constant vs one-feature models",
                              x_label="model", y_label=b.metric,
                              series=[Series(b.metric, ["constant"] + [r["feature"] for r in top],
                                             [b.majority if b.majority is not None else 0.0]
                                             + [r["score"] for r in top])]))
    sample_note = (f" Single-feature models were fitted on {b.train_rows_used:,} sampled training rows and "
                   f"scored on {b.valid_rows_used:,} of {b.valid_rows_labelled:,} validation rows."
                   if b.sampled else "")
    one = (f"the best one-feature model (a {SINGLE_FEATURE_LEAVES}-bin step function of '{best['feature']}') scores "
           f"{_fmt(best['score'])}" if best["feature"] is not None
           else "no raw column supports a one-feature model (free text needs the project's featurize)")
    detail = (f"On the validation split, {what} scores {b.metric} = {_fmt(b.majority)}; {one}. A trained "
              f"model has to beat these clearly to be worth its complexity." + sample_note)
    if b.majority is None:
        return info(f"{b.metric} cannot be computed for a constant predictor on this validation split",
                    detail=detail + f" {b.metric} is undefined here (e.g. a single class present, or it "
                                    f"needs probabilities that vary).", evidence=evidence, plots=plots)
    title = f"constant predictor: {b.metric} {_fmt(b.majority)}"
    if best["feature"] is not None:
        title += f"; best single feature '{best['feature']}': {_fmt(best['score'])}"
    return passed(title, detail=detail, evidence=evidence, plots=plots)


@check("problem.baseline", title="What a trivial model scores")
def baseline(ctx: RunContext):
    b = baseline_scores(ctx)
    if b.valid_rows_used == 0:
        raise SkipCheck("no labelled validation rows to score a baseline on")
    return baseline_verdict(b, ctx.is_classification)


# --- problem.metric_choice -----------------------------------------------------------------------
# Majority share beyond which accuracy mostly measures the prior: a model that ignores the minority
# classes already scores >= 90% (Provost 2000; He & Garcia 2009 on evaluating under imbalance).
ACCURACY_MAJORITY_SHARE = 0.9
# ROC AUC estimated from fewer positives than this per class has a standard error above ~0.1
# (Hanley & McNeil 1982), so per-class AUCs are mostly noise.
AUC_MIN_POSITIVES = 10
# R^2 on fewer validation rows than this swings by tenths between resamples; the usual small-sample
# rule of thumb (n >= 30) for a stable estimate of a variance ratio.
R2_MIN_ROWS = 30


@dataclass
class MetricChoiceMeasure:
    metric: str                   # the metric the run judges by
    declared: str | None          # [project] metric, if set
    task: str
    classes: list[str] = field(default_factory=list)
    train_counts: list[int] = field(default_factory=list)   # per class (classification)
    valid_counts: list[int] = field(default_factory=list)
    valid_rows: int = 0           # labelled validation rows (regression)

    @property
    def majority_share(self) -> float:
        return max(self.train_counts, default=0) / max(sum(self.train_counts), 1)

    @property
    def imbalance_ratio(self) -> float:
        nonzero = [v for v in self.train_counts if v > 0]
        return max(nonzero) / min(nonzero) if nonzero else 0.0


@dataclass
class MetricProblem:
    status: str                   # "warn" | "info"
    use: str | None               # the metric(s) to use instead
    title: str
    detail: str


def _measure_metric_choice(ctx: RunContext) -> MetricChoiceMeasure:
    import numpy as np

    m = MetricChoiceMeasure(metric=ctx.metric, declared=ctx.config.metric, task=ctx.task)
    if ctx.is_classification:
        n_classes = len(ctx.classes)
        y_train, y_valid = ctx.y("train"), ctx.y("valid")
        m.classes = [str(c) for c in ctx.classes]
        m.train_counts = np.bincount(y_train[y_train >= 0], minlength=n_classes).tolist()
        m.valid_counts = np.bincount(y_valid[y_valid >= 0], minlength=n_classes).tolist()
    else:
        m.valid_rows = int(np.isfinite(ctx.y("valid")).sum())
    return m


def _classification_metric_problems(m: MetricChoiceMeasure) -> list[MetricProblem]:
    problems = []
    share, ratio, n_classes = m.majority_share, m.imbalance_ratio, len(m.classes)
    if m.metric == "accuracy" and (share >= ACCURACY_MAJORITY_SHARE or ratio >= IMBALANCE_WARN_RATIO):
        problems.append(MetricProblem(
            "warn", "balanced_accuracy or f1_macro",
            f"accuracy hides the minority classes: the majority class is {share:.0%} of train",
            f"A model that always predicts the majority class scores about {share:.0%} "
            f"accuracy (largest/smallest class = {ratio:.0f}x). Gains on the small classes barely "
            f"move accuracy, so it cannot tell a useful model from a trivial one."))
    if m.metric == "roc_auc":
        small = [c for c, v in zip(m.classes, m.valid_counts) if v < AUC_MIN_POSITIVES]
        if small:
            problems.append(MetricProblem(
                "warn", "f1_macro or log_loss (or more validation data)",
                f"roc_auc rests on fewer than {AUC_MIN_POSITIVES} validation rows for class(es) "
                f"{cut_list(small, 5)}",
                f"AUC needs positives of every class; with fewer than {AUC_MIN_POSITIVES} "
                f"(absent classes make it undefined) the estimate moves by 0.1 or more "
                f"from a single row" + (", and one-vs-rest averaging gives that noisy class the "
                                        "same weight as the large ones" if n_classes > 2 else "")
                + "."))
    if m.metric in ("f1_macro", "balanced_accuracy"):
        absent = [c for c, v in zip(m.classes, m.valid_counts) if v == 0]
        if absent:
            problems.append(MetricProblem(
                "info", None, f"{m.metric} ignores class(es) {cut_list(absent, 5)}: no validation rows",
                "Classes absent from the validation split do not enter the average, so the "
                "score says nothing about them."))
    return problems


def _metric_problems(m: MetricChoiceMeasure) -> tuple[list[MetricProblem], dict]:
    evidence = {"metric": m.metric, "declared": m.declared}
    if m.task == "classification":
        problems = _classification_metric_problems(m)
        evidence.update(majority_share=round(m.majority_share, 4), imbalance_ratio=round(m.imbalance_ratio, 2),
                        valid_counts=dict(zip(m.classes, m.valid_counts)))
    else:
        problems = []
        evidence["valid_rows"] = m.valid_rows
        if m.metric == "r2" and m.valid_rows < R2_MIN_ROWS:
            problems.append(MetricProblem(
                "warn", "rmse or mae, estimated with cross-validation", f"r2 on only {m.valid_rows} validation rows",
                f"R^2 divides by the variance of the validation targets; with fewer than "
                f"{R2_MIN_ROWS} rows that variance is itself a rough guess, so the score swings "
                f"widely between splits."))
    if m.declared is None:
        problems.append(MetricProblem(
            "info", None, f"no metric set; judging with {m.metric}",
            f"[project] metric is not set, so mltriage uses {m.metric}. Name the "
            f"metric the model is judged by so that every step reports it."))
    return problems, evidence


def metric_choice_verdict(m: MetricChoiceMeasure) -> Finding:
    problems, evidence = _metric_problems(m)
    evidence["problems"] = [p.title for p in problems]
    detail = " ".join(p.detail for p in problems)
    worst = next((p for p in problems if p.status == "warn"), None)
    if worst:
        return warn(worst.title, detail=detail,
                    fix=f"Set [project] metric to {worst.use}, and keep {m.metric} only as a secondary number.",
                    evidence=evidence)
    if problems:
        return info(problems[0].title, detail=detail, fix="Set [project] metric explicitly.", evidence=evidence)
    return passed(f"{m.metric} suits this {m.task} task", evidence=evidence)


@check("problem.metric_choice", title="The metric can see the problem")
def metric_choice(ctx: RunContext):
    return metric_choice_verdict(_measure_metric_choice(ctx))
