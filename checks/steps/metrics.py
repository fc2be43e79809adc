"""Step 6, metrics: how good is the model, compared with what, and where does it stand on train, valid and test.

Predictions come from analyses/predictions.py (a predictions file, the checkpoint, or the reference
model). Every verdict that compares two numbers allows for sampling noise: bootstrap intervals for
metrics, two-proportion z-tests for per-class recall, a simulated null for calibration error. Each check
measures (`_measure_*(ctx)` -> a small dataclass) and then judges (`*_verdict(m)` -> Finding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..analyses.baselines import BaselineRef, baseline_numbers
from ..analyses.evaluation import labelled, metric_value, per_class_table, standard_error, summary_numbers
from ..analyses.predictions import model_outputs
from ..analyses.stats import (FDR, N_BOOTSTRAP, ONE_SIDED_Z, benjamini_hochberg, confusion_counts,
                              expected_calibration_error, two_proportion_p)
from ..engine.context import RunContext
from ..engine.registry import check
from ..findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, skipped, warn
from ..vocab import BOUNDED_METRICS, REGRESSION_METRICS, higher_is_better
from ..wording import cut_list, num, pct, plural, signed

# Generalisation gap on a [0, 1] score (accuracy-like, or R² for regression). Andrew Ng's bias/variance
# recipe ("Machine Learning Yearning", ch. 20-24) reads a train/dev gap of ~10 points as high variance;
# we warn from 0.15 so the usual few points of a well-regularised model stay quiet, and fail from 0.30,
# where validation quality is clearly being thrown away.
GAP_WARN = 0.15
GAP_FAIL = 0.30
# Underfitting: on its own training data the model recovers less than this share of the distance from
# the trivial baseline to a perfect score (skill score, Murphy 1988), e.g. R² < 0.2.
UNDERFIT_SKILL = 0.20
# A class's recall is "far below the rest" when it trails the pooled recall of the other classes by
# this much (absolute) and the gap is significant after BH correction.
RECALL_GAP_WARN = 0.30
# A class with at least this many validation rows that is never predicted is a failure; with fewer rows
# never predicting it can happen by chance for a rare class.
MIN_SUPPORT_NEVER_PREDICTED = 10
# Swapped classes: each class of the pair is predicted as the other for most of its rows.
SWAP_RATE = 0.5
MIN_SUPPORT_SWAP = 10
# Collapse (metrics.confusion): a class counts as predicted when the model outputs it on at least a tenth as
# many rows as the class has; fewer is a model that has all but stopped outputting it (a collapsed model's
# stray outputs), not a weak class, which metrics.per_class judges.
PREDICTED_SHARE = 0.1
# Expected calibration error, top-label, 15 equal-width bins (Guo et al., "On Calibration of Modern
# Neural Networks", ICML 2017). Their uncalibrated networks range 0.04-0.17; after temperature scaling
# about 0.01. We warn from 0.10 (clearly mis-calibrated) and only beyond the ECE a perfectly calibrated
# model of the same confidences would show by chance (95th percentile of a simulated null).
ECE_BINS = 15
ECE_WARN = 0.10
# Valid -> test drop on a bounded score: warn from 0.05 beyond noise, fail from 0.15 (a drop that size
# between two samples of the same distribution points to leakage into valid or a different test set).
# For error metrics (rmse, mae, log_loss) the same thresholds apply to the relative increase.
SPLIT_DROP_WARN = 0.05
SPLIT_DROP_FAIL = 0.15


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _combined_se(ctx: RunContext, metric: str, a: str, b: str) -> float:
    """Standard error of the difference of the metric between two independent splits."""
    return ((standard_error(ctx, metric, a) or 0.0) ** 2 + (standard_error(ctx, metric, b) or 0.0) ** 2) ** 0.5


@check("metrics.summary", title="Metrics on train, valid and test")
def summary(ctx: RunContext):
    numbers = summary_numbers(ctx)
    metric, splits = ctx.metric, numbers["splits"]
    parts = [f"{name} {_fmt(v['metrics'].get(metric))}" for name, v in splits.items()]
    lines = [f"Predictions: {numbers['source']}."]
    for name, v in splits.items():
        shown = ", ".join(f"{m} {_fmt(x)}" for m, x in v["metrics"].items())
        lines.append(f"{name} ({v['rows']} rows): {shown}")
    for split, what in numbers["missing"].items():
        lines.append(f"No {split} metrics: {what.splitlines()[-1]}")
    names = [m for m in next(iter(splits.values()))["metrics"] if m in BOUNDED_METRICS]
    plot = PlotSpec(kind="bar", title="metrics per split", x_label="metric", y_label="value",
                    series=[Series(name, names, [v["metrics"].get(m) for m in names]) for name, v in splits.items()])
    return passed(f"{metric}: " + ", ".join(parts), detail="\n".join(lines), evidence=numbers, plots=[plot])


# --- metrics.vs_baseline -------------------------------------------------------------------------
@dataclass
class VsBaselineMeasure:
    metric: str
    model: float                  # the model's score on valid
    standard_error: float         # bootstrap s.e. of that score
    baseline: BaselineRef
    predictions: str              # where the predictions came from

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    @property
    def margin(self) -> float:
        return ONE_SIDED_Z * self.standard_error

    def better_by(self, reference: float) -> float:
        """Positive when the model is better than the reference score."""
        return (1 if self.higher_is_better else -1) * (self.model - reference)


def _measure_vs_baseline(ctx: RunContext) -> VsBaselineMeasure:
    outputs = model_outputs(ctx)
    metric = ctx.metric
    model = metric_value(ctx, metric, outputs.get("valid"))
    if model is None:
        raise SkipCheck(f"{metric} cannot be computed on the valid split with these predictions "
                        f"(e.g. roc_auc/log_loss need probabilities)")
    return VsBaselineMeasure(metric, model, standard_error(ctx, metric, "valid") or 0.0, baseline_numbers(ctx),
                             outputs.source)


def vs_baseline_verdict(m: VsBaselineMeasure) -> Finding:
    metric, model, margin = m.metric, m.model, m.margin
    majority, single = m.baseline.majority, m.baseline.best_single_feature or None
    single_score = single.get("score") if isinstance(single, dict) else None
    evidence = {"metric": metric, "higher_is_better": m.higher_is_better, "model": model,
                "standard_error": m.standard_error, "noise_margin": margin, "majority": majority,
                "best_single_feature": single, "baseline_source": m.baseline.computed_by, "predictions": m.predictions}
    bars = [("model", model), ("mean" if metric in REGRESSION_METRICS else "majority", majority)]
    if single_score is not None:
        bars.append((f"best feature: {single.get('feature')}", single_score))
    plot = PlotSpec(kind="bar", title=f"{metric} on valid: model vs baselines", x_label="predictor",
                    y_label=metric, series=[Series(metric, [b[0] for b in bars], [b[1] for b in bars])])
    if majority is not None and m.better_by(majority) <= margin:
        regression = metric in REGRESSION_METRICS
        trivial = "the training mean" if regression else "the majority class"
        return fail(f"the model is no better than predicting {trivial}: {metric} {model:.4g} vs "
                    f"{majority:.4g}",
                    detail=f"On the valid split the model scores {metric} = {model:.4g}; an input-independent "
                           f"predictor scores {majority:.4g}. The model must beat it by more than sampling noise "
                           f"({ONE_SIDED_Z} x bootstrap standard error = {margin:.3g}); "
                           + (f"it beats it by only {num(m.better_by(majority), 3)}" if m.better_by(majority) > 0
                              else f"it trails it by {num(-m.better_by(majority), 3)}" if m.better_by(majority) < 0
                              else "it scores exactly the same")
                           + f". Predictions: {m.predictions}.",
                    fix="Go back to the sanity step: check that inputs reach the model (features not all zero, "
                        "labels aligned with rows), that the model can overfit a tiny batch, and the learning "
                        "rate." + (" Check that the target is scaled (or the output layer can reach its range)."
                                   if regression else " On imbalanced data, judge with "
                                   "balanced_accuracy/f1_macro and use class weights."),
                    evidence=evidence, plots=[plot])
    if single_score is not None and m.better_by(single_score) < -margin:
        return fail(f"the model is worse than a one-feature rule on '{single.get('feature')}': {metric} "
                    f"{model:.4g} vs {single_score:.4g}",
                    detail=f"The best single-feature baseline (problem.baseline) scores {metric} = {single_score:.4g}; "
                           f"the model scores {model:.4g}, behind it by more than the noise margin {margin:.3g}. "
                           f"A model that sees every feature, including that one, is losing information.",
                    fix="Check feature preprocessing (scaling, encoding, featurize fitted on train and applied the "
                        "same way to valid), that the model trains long enough (training.underfitting), and its "
                        "learning rate; compare with a simple model on all features.",
                    evidence=evidence, plots=[plot])
    if single_score is not None and m.better_by(single_score) <= margin:
        # Within noise of one feature: fine when that feature really carries the task, so only noted.
        return info(f"the model is not clearly better than a one-feature rule on '{single.get('feature')}' "
                    f"({metric} {model:.4g} vs {single_score:.4g})",
                    detail=f"Difference {m.better_by(single_score):+.3g}, within the noise margin {margin:.3g}; it "
                           f"does beat the {'mean' if metric in REGRESSION_METRICS else 'majority'} baseline ({_fmt(majority)}). Either that feature carries the "
                           f"task or the other features are not being used.",
                    fix="If other features should help, check how they are encoded and scaled; otherwise a "
                        "simpler model on that feature may be the better choice.",
                    evidence=evidence, plots=[plot])
    ref = single_score if single_score is not None else majority
    return passed(f"{metric} {model:.4g} beats the best baseline ({_fmt(ref)}) beyond noise (±{margin:.2g})",
                  evidence=evidence, plots=[plot])


@check("metrics.vs_baseline", title="The model beats trivial baselines")
def vs_baseline(ctx: RunContext):
    return vs_baseline_verdict(_measure_vs_baseline(ctx))


# --- metrics.generalization_gap ------------------------------------------------------------------
def gap_metric(ctx: RunContext) -> str:
    """A bounded score to read the gap on: the configured one when bounded, else accuracy / R²."""
    if ctx.metric in BOUNDED_METRICS:
        return ctx.metric
    return "accuracy" if ctx.is_classification else "r2"


def _train_baseline(ctx: RunContext, metric: str) -> float | None:
    """The input-independent baseline on train for the gap metric (what a constant predictor scores)."""
    import numpy as np

    if not ctx.is_classification:
        return 0.0 if metric == "r2" else None
    y = ctx.y("train")
    y = y[y >= 0]
    if len(y) == 0:
        return None
    counts = np.bincount(y, minlength=len(ctx.classes))
    if metric == "accuracy":
        return float(counts.max() / counts.sum())
    if metric == "balanced_accuracy":
        return 1.0 / max(1, int((counts > 0).sum()))
    if metric == "roc_auc":
        return 0.5
    from ..analyses.scoring import score

    return score(metric, y, pred=np.full(len(y), int(counts.argmax())), n_classes=len(ctx.classes))


@dataclass
class GapMeasure:
    metric: str                   # a bounded score (gap_metric)
    train: float
    valid: float
    noise_se: float               # s.e. of the train - valid difference
    baseline: float | None        # a constant predictor's score on train
    predictions: str
    memorises_by_design: bool     # a scikit-learn estimator (forests, boosting, k-NN fit train near-perfectly)

    @property
    def gap(self) -> float:
        return self.train - self.valid

    @property
    def train_skill(self) -> float | None:
        """Share of the distance from the baseline to a perfect score (1.0) that the train score covers."""
        if self.baseline is None or self.baseline >= 1.0:
            return None
        return (self.train - self.baseline) / (1.0 - self.baseline)


def _measure_gap(ctx: RunContext) -> GapMeasure:
    outputs = model_outputs(ctx)
    valid, train = outputs.get("valid"), outputs.get("train")
    metric = gap_metric(ctx)
    v, t = metric_value(ctx, metric, valid), metric_value(ctx, metric, train)
    if v is None or t is None:
        raise SkipCheck(f"{metric} cannot be computed on both splits")
    return GapMeasure(metric, t, v, _combined_se(ctx, metric, "valid", "train"), _train_baseline(ctx, metric),
                      outputs.source, ctx.model_kind == "sklearn")


def generalization_gap_verdict(m: GapMeasure) -> Finding:
    metric, t, v, gap, se, base, train_skill = m.metric, m.train, m.valid, m.gap, m.noise_se, m.baseline, m.train_skill
    evidence = {"metric": metric, "train": t, "valid": v, "gap": gap, "noise_se": se, "warn_gap": GAP_WARN,
                "fail_gap": GAP_FAIL, "baseline": base, "train_skill": train_skill,
                "underfit_skill": UNDERFIT_SKILL, "predictions": m.predictions}
    plot = PlotSpec(kind="bar", title=f"{metric}: train vs valid", x_label="split", y_label=metric,
                    series=[Series(metric, ["train", "valid"], [t, v])])
    if gap >= GAP_WARN and gap - ONE_SIDED_Z * se > 0:
        # Tree ensembles and other scikit-learn estimators fit their training rows almost perfectly by
        # design (a random forest's train score says little), so their gap is worth a look, never a fail.
        status = fail if gap >= GAP_FAIL and not m.memorises_by_design else warn
        note = (" Many scikit-learn estimators (forests, boosted trees, k-NN) score near-perfectly on their own "
                "training rows by construction; compare valid scores across settings rather than reading the gap "
                "alone." if m.memorises_by_design else "")
        return status(f"overfitting: {metric} {t:.3f} on train vs {v:.3f} on valid (gap {gap:.3f})",
                      detail=f"The model does {gap:.3f} better on the rows it was trained on than on held-out rows "
                             f"(warn from {GAP_WARN}, fail from {GAP_FAIL} for neural networks; noise s.e. "
                             f"{se:.3f}). It has learned details of the training rows that do not carry over.{note}",
                      fix="Regularise: more training data or augmentation, weight decay / L2, dropout, a smaller "
                          "model, early stopping on the validation loss; for trees, limit depth or leaf size. "
                          "Also rule out train/valid coming from different distributions (data.drift).",
                      evidence=evidence, plots=[plot])
    if train_skill is not None and train_skill < UNDERFIT_SKILL:
        return warn(f"underfitting: even on train the model reaches only {metric} {t:.3f} (baseline {base:.3f})",
                    detail=(f"On its own training rows the model covers {pct(train_skill)} of the distance from the "
                            f"trivial baseline ({base:.3f}) to a perfect score" if train_skill > 0 else
                            f"On its own training rows the model does no better than the trivial baseline "
                            f"({base:.3f})") + f" (warn below {UNDERFIT_SKILL:.0%} of the way to a perfect score); "
                           f"valid is {v:.3f}. Both are poor: the model is not fitting the data.",
                    fix="Train longer or with a better learning rate (training.lr_range), use a larger model, "
                        "check that the features carry signal (scaling, encoding), and that labels line up "
                        "with their rows.",
                    evidence=evidence, plots=[plot])
    return passed(f"train {metric} {t:.3f}, valid {v:.3f} (gap {signed(gap)})", evidence=evidence, plots=[plot])


@check("metrics.generalization_gap", title="Train vs valid: over- or underfitting")
def generalization_gap(ctx: RunContext):
    return generalization_gap_verdict(_measure_gap(ctx))


# --- metrics.per_class ---------------------------------------------------------------------------
@dataclass
class PerClassMeasure:
    table: dict[str, dict]        # class -> support, predicted, correct, precision, recall, f1 (valid)


def per_class_verdict(m: PerClassMeasure) -> Finding:
    import numpy as np

    table = m.table
    names = list(table)
    support = np.array([table[c]["support"] for c in names])
    correct = np.array([table[c]["correct"] for c in names])
    predicted = np.array([table[c]["predicted"] for c in names])
    rest_n, rest_k = support.sum() - support, correct.sum() - correct
    pvals = two_proportion_p(correct, support, rest_k, rest_n)
    present = support > 0
    q = np.ones(len(names))
    q[present] = benjamini_hochberg(pvals[present])
    recall = np.where(support > 0, correct / np.maximum(support, 1), np.nan)
    rest_recall = np.where(rest_n > 0, rest_k / np.maximum(rest_n, 1), np.nan)
    never = [c for i, c in enumerate(names) if support[i] > 0 and predicted[i] == 0]
    never_big = [c for c in never if table[c]["support"] >= MIN_SUPPORT_NEVER_PREDICTED]
    weak = [c for i, c in enumerate(names) if present[i] and c not in never
            and rest_recall[i] - recall[i] >= RECALL_GAP_WARN and q[i] < FDR]
    evidence = {"per_class": table, "never_predicted": never, "weak_recall": weak,
                "rest_recall": {c: (None if np.isnan(rest_recall[i]) else float(rest_recall[i])) for i, c in enumerate(names)},
                "q_values": {c: float(q[i]) for i, c in enumerate(names)}, "recall_gap_warn": RECALL_GAP_WARN,
                "fdr": FDR, "min_support_never_predicted": MIN_SUPPORT_NEVER_PREDICTED}
    plot = PlotSpec(kind="bar", title="recall per class (valid)", x_label="class", y_label="recall",
                    series=[Series("recall", names, [None if np.isnan(r) else float(r) for r in recall])])
    describe = lambda c: f"'{c}' ({table[c]['support']} rows, recall {table[c]['recall']:.2f})"  # noqa: E731
    fix = ("Check that the class is represented in train (problem.class_balance), use class weights or "
           "resampling, judge with balanced_accuracy/f1_macro, and look at its rows for label errors "
           "(data.label_issues); a class the model never outputs can also mean the output layer is too small "
           "or the class order differs between training and [data] classes.")
    if never_big or never:
        status = fail if never_big else info
        return status(f"{plural(len(never), 'class')} never predicted: {cut_list(never, 6)}",
                      detail=f"The model never outputs {cut_list([describe(c) for c in never], 6)} on the valid "
                             f"split. A class with at least {MIN_SUPPORT_NEVER_PREDICTED} rows that is never "
                             f"predicted means the model has given up on it."
                             + (f" Also weak: {cut_list([describe(c) for c in weak], 6)}." if weak else ""),
                      fix=fix, evidence=evidence, plots=[plot])
    if weak:
        return warn(f"recall far below the other classes for {cut_list(weak, 6)}",
                    detail=f"{cut_list([describe(c) + f' vs {rest_recall[names.index(c)]:.2f} on the rest' for c in weak], 6, '; ')}. "
                           f"Flagged when a class trails the other classes' recall by at least {RECALL_GAP_WARN} "
                           f"and a two-proportion z-test stays significant after Benjamini-Hochberg (q < {FDR}).",
                    fix=fix, evidence=evidence, plots=[plot])
    if not present.any():
        return skipped("no labelled valid rows to score per class", evidence=evidence)
    worst = names[int(np.nanargmin(recall))]
    return passed(f"every class is predicted; lowest recall {describe(worst)}", evidence=evidence, plots=[plot])


@check("metrics.per_class", title="Every class is learned", needs=("classification",))
def per_class(ctx: RunContext):
    return per_class_verdict(PerClassMeasure(per_class_table(ctx, model_outputs(ctx).get("valid"))))


# --- metrics.confusion ---------------------------------------------------------------------------
@dataclass
class ConfusionMeasure:
    classes: list[str]
    matrix: Any                   # (C, C) counts on valid, rows = true, columns = predicted

    @property
    def predicted(self) -> list[str]:
        """Classes the model really outputs: on at least PREDICTED_SHARE as many rows as the class has
        (and at least once). A collapsed model's stray one or two other outputs do not count."""
        import numpy as np

        cm = np.asarray(self.matrix)
        given, support = cm.sum(axis=0), cm.sum(axis=1)
        return [c for c, g, n in zip(self.classes, given, support) if g >= max(1.0, PREDICTED_SHARE * n)]

    @property
    def supported(self) -> list[str]:
        """Classes with enough valid rows that never predicting them cannot be chance."""
        import numpy as np

        return [c for c, n in zip(self.classes, np.asarray(self.matrix).sum(axis=1)) if n >= MIN_SUPPORT_NEVER_PREDICTED]

    @property
    def collapsed(self) -> bool:
        """One class for every row, or fewer than half of the well-supported classes ever output, while
        other classes have enough rows: a model that has stopped discriminating."""
        predicted, supported = set(self.predicted), self.supported
        if not set(supported) - predicted:
            return False
        return len(predicted) <= 1 or len(predicted) < len(supported) / 2


def _collapse_verdict(m: ConfusionMeasure, evidence: dict, plot: PlotSpec) -> Finding:
    import numpy as np

    predicted, supported = m.predicted, m.supported
    missing = [c for c in supported if c not in predicted]
    given = np.asarray(m.matrix).sum(axis=0)
    top = int(given.argmax())
    share = given[top] / max(given.sum(), 1)
    what = (f"'{m.classes[top]}' for {pct(share, 0 if share in (0, 1) else 1)} of the valid rows"
            if len(predicted) <= 1 else f"only {len(predicted)} of {len(m.classes)} classes ({cut_list(predicted, 6)})")
    return fail(f"the model predicts {what}",
                detail=f"{plural(len(missing), 'class')} with at least {MIN_SUPPORT_NEVER_PREDICTED} valid rows "
                       f"each are predicted on fewer than {PREDICTED_SHARE:.0%} as many rows as they have: "
                       f"{cut_list(missing, 6)}. A model that outputs one "
                       f"class (or fewer than half of the classes) has collapsed: the usual causes are an output "
                       f"activation before the loss, a learning rate that saturated the output layer, inputs that "
                       f"do not reach the model, or heavy class imbalance.",
                fix="Check sanity.overfit_small_batch and architecture.output_layer first, then the learning rate "
                    "(training.lr_range) and class balance (problem.class_balance: class weights or resampling).",
                evidence=evidence, plots=[plot])


def confusion_verdict(m: ConfusionMeasure) -> Finding:
    import numpy as np

    cm, names = np.asarray(m.matrix), m.classes
    n = len(names)
    rows = cm.sum(axis=1)
    rate = cm / np.maximum(rows[:, None], 1)
    off = [(int(cm[i, j]), i, j) for i in range(n) for j in range(n) if i != j and cm[i, j] > 0]
    off.sort(reverse=True)
    pairs = [{"true": names[i], "predicted": names[j], "count": c, "share_of_true": float(rate[i, j])}
             for c, i, j in off[:10]]
    swapped = [[names[i], names[j]] for i in range(n) for j in range(i + 1, n)
               if rows[i] >= MIN_SUPPORT_SWAP and rows[j] >= MIN_SUPPORT_SWAP
               and rate[i, j] > SWAP_RATE and rate[j, i] > SWAP_RATE]
    evidence = {"classes": names, "matrix": cm.tolist(), "most_confused": pairs, "swapped": swapped,
                "predicted_classes": m.predicted, "supported_classes": m.supported,
                "min_support": MIN_SUPPORT_NEVER_PREDICTED, "predicted_share": PREDICTED_SHARE}
    shown = 25
    plot = PlotSpec(kind="heatmap", title="confusion matrix (valid; rows = true, columns = predicted)",
                    x_label="predicted", y_label="true", matrix=cm[:shown, :shown].tolist(),
                    row_labels=names[:shown], col_labels=names[:shown])
    if not cm.sum():
        return skipped("no labelled valid rows to build a confusion matrix from", evidence=evidence)
    if m.collapsed:
        return _collapse_verdict(m, evidence, plot)
    if swapped:
        a, b = swapped[0]
        return fail(f"classes '{a}' and '{b}' look swapped: each is mostly predicted as the other",
                    detail=f"More than {SWAP_RATE:.0%} of '{a}' rows are predicted '{b}' and vice versa. Two "
                           f"classes that the model confuses both ways this much are usually a label-order "
                           f"mix-up, not a hard pair.",
                    fix="Compare the class order used to build the training targets with [data] classes (and "
                        "with how predictions are written); re-map the labels consistently.",
                    evidence=evidence, plots=[plot])
    if not pairs:
        return passed("no confusions on the valid split", evidence=evidence, plots=[plot])
    top = "; ".join(f"'{p['true']}' -> '{p['predicted']}' {p['count']} ({p['share_of_true']:.0%})" for p in pairs[:3])
    return passed(f"most confused: {top}", evidence=evidence, plots=[plot])


@check("metrics.confusion", title="Confusion matrix and the most confused pairs", needs=("classification",))
def confusion(ctx: RunContext):
    y, pred, _ = labelled(model_outputs(ctx).get("valid"))
    return confusion_verdict(ConfusionMeasure([str(c) for c in ctx.classes], confusion_counts(y, pred, len(ctx.classes))))


# --- metrics.calibration -------------------------------------------------------------------------
@dataclass
class CalibrationMeasure:
    ece: float                    # top-label expected calibration error on valid
    null_ece_95: float            # 95th percentile of the ECE of a perfectly calibrated model, same confidences
    mean_confidence: float
    accuracy: float
    bin_confidence: list[float] = field(default_factory=list)   # per non-empty bin
    bin_accuracy: list[float] = field(default_factory=list)
    bin_counts: list[int] = field(default_factory=list)

    @property
    def direction(self) -> str:
        return "over-confident" if self.mean_confidence > self.accuracy else "under-confident"


def _measure_calibration(ctx: RunContext) -> CalibrationMeasure:
    import numpy as np

    so = model_outputs(ctx).get("valid")
    if so.proba is None:
        raise SkipCheck("needs class probabilities: add prob_<class> columns to the predictions file "
                        "(or a model with predict_proba)")
    y, pred, proba = labelled(so)
    if len(pred) == 0:
        raise SkipCheck("no labelled valid rows to measure calibration on")
    conf = proba[np.arange(len(pred)), pred]
    correct = (pred == y).astype(float)
    ece, counts, conf_sum, acc_sum = expected_calibration_error(conf, correct, ECE_BINS)
    rng = np.random.default_rng(ctx.seed)
    # The null: labels drawn as if the stated confidences were exactly right.
    sims = min(N_BOOTSTRAP, max(20, 2_000_000 // max(len(conf), 1)))
    null = expected_calibration_error(conf, rng.random((sims, len(conf))) < conf, ECE_BINS)[0]
    used = counts > 0
    return CalibrationMeasure(float(ece), float(np.quantile(null, 0.95)), float(conf.mean()), float(correct.mean()),
                              (conf_sum[used] / counts[used]).tolist(), (acc_sum[used] / counts[used]).tolist(),
                              counts[used].astype(int).tolist())


def calibration_verdict(m: CalibrationMeasure) -> Finding:
    ece, null95, mean_conf, accuracy, direction = m.ece, m.null_ece_95, m.mean_confidence, m.accuracy, m.direction
    evidence = {"ece": ece, "bins": ECE_BINS, "warn_above": ECE_WARN, "null_ece_95": null95,
                "mean_confidence": mean_conf, "accuracy": accuracy, "direction": direction,
                "bin_confidence": m.bin_confidence, "bin_accuracy": m.bin_accuracy, "bin_counts": m.bin_counts}
    plot = PlotSpec(kind="line", title="reliability diagram (valid)", x_label="confidence", y_label="accuracy",
                    series=[Series("model", m.bin_confidence, m.bin_accuracy),
                            Series("perfect calibration", [0, 1], [0, 1])])
    if ece > ECE_WARN and ece > null95:
        return warn(f"{direction}: expected calibration error {ece:.3f} (mean confidence {mean_conf:.3f}, "
                    f"accuracy {accuracy:.3f})",
                    detail=f"Top-label ECE over {ECE_BINS} equal-width bins (Guo et al. 2017) is {ece:.3f}; warn "
                           f"above {ECE_WARN} when it also exceeds the {null95:.3f} a perfectly calibrated model "
                           f"would show on this many rows by chance. Probabilities from this model should not be "
                           f"read as likelihoods (thresholds, risk scores, log-loss suffer).",
                    fix="Fit a temperature on the validation logits (temperature scaling, Guo et al. 2017) or use "
                        "isotonic/Platt calibration; less overfitting (weight decay, early stopping, label "
                        "smoothing) also reduces over-confidence.",
                    evidence=evidence, plots=[plot])
    return passed(f"ECE {ece:.3f} (mean confidence {mean_conf:.3f}, accuracy {accuracy:.3f})",
                  evidence=evidence, plots=[plot])


@check("metrics.calibration", title="Predicted probabilities match observed accuracy", needs=("classification",))
def calibration(ctx: RunContext):
    return calibration_verdict(_measure_calibration(ctx))


# --- metrics.split_consistency -------------------------------------------------------------------
@dataclass
class SplitConsistencyMeasure:
    metric: str
    valid: float
    test: float
    standard_error: float         # s.e. of the valid - test difference

    @property
    def drop(self) -> float:
        """Positive when test is worse than valid."""
        return (self.valid - self.test) if higher_is_better(self.metric) else (self.test - self.valid)


def _measure_split_consistency(ctx: RunContext) -> SplitConsistencyMeasure:
    outputs = model_outputs(ctx)
    valid, test = outputs.get("valid"), outputs.get("test")
    metric = ctx.metric
    v, t = metric_value(ctx, metric, valid), metric_value(ctx, metric, test)
    if v is None or t is None:
        raise SkipCheck(f"{metric} cannot be computed on both valid and test")
    return SplitConsistencyMeasure(metric, v, t, _combined_se(ctx, metric, "valid", "test"))


def split_consistency_verdict(m: SplitConsistencyMeasure) -> Finding:
    metric, v, t, se, drop = m.metric, m.valid, m.test, m.standard_error, m.drop
    bounded = metric in BOUNDED_METRICS
    size = drop if bounded else drop / max(abs(v), 1e-12)
    z = drop / se if se > 0 else (float("inf") if drop > 0 else 0.0)
    evidence = {"metric": metric, "valid": v, "test": t, "drop": drop, "relative": not bounded, "effect": size,
                "z": z, "standard_error": se, "warn_drop": SPLIT_DROP_WARN, "fail_drop": SPLIT_DROP_FAIL}
    plot = PlotSpec(kind="bar", title=f"{metric}: valid vs test", x_label="split", y_label=metric,
                    series=[Series(metric, ["valid", "test"], [v, t])])
    what = f"{size:.3f}" if bounded else pct(size)
    if size >= SPLIT_DROP_WARN and z > ONE_SIDED_Z:
        status = fail if size >= SPLIT_DROP_FAIL else warn
        return status(f"test is worse than valid: {metric} {v:.4g} -> {t:.4g} (drop {what})",
                      detail=f"The drop from valid to test is {what} (warn from {SPLIT_DROP_WARN}, fail from "
                             f"{SPLIT_DROP_FAIL}{'' if bounded else ' relative'}), "
                             + (f"z = {z:.1f} against the bootstrap noise of both splits."
                                if math.isfinite(z) else "with no bootstrap noise at all in either split.")
                             + " Two samples of the same distribution should agree within noise.",
                      fix="Look for validation rows that leak from train (data.split_overlap), model selection "
                          "tuned on valid too many times, or a test set from a different time/source "
                          "(data.drift); re-split or collect a fresh validation set.",
                      evidence=evidence, plots=[plot])
    return passed(f"valid {metric} {v:.4g}, test {t:.4g} (within noise or better)", evidence=evidence, plots=[plot])


@check("metrics.split_consistency", title="Valid and test agree", needs=("test",))
def split_consistency(ctx: RunContext):
    return split_consistency_verdict(_measure_split_consistency(ctx))
