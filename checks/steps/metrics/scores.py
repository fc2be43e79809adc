"""Step 6, metrics: the model's scores: on each split, against trivial baselines, train vs valid
(over- or underfitting) and valid vs test.

Every verdict that compares two numbers allows for sampling noise (bootstrap standard errors of the
metric on each split). Each check measures (`_measure_*(ctx)` -> a small dataclass) and then judges
(`*_verdict(m)` -> Finding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.baselines import BaselineRef, baseline_numbers, train_baseline
from ...analyses.evaluation import metric_value, standard_error, summary_numbers
from ...analyses.metric_plots import bar, metrics_per_split, summary_plots
from ...analyses.predictions import model_outputs
from ...analyses.stats import ONE_SIDED_Z
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, SkipCheck, fail, info, passed, warn
from ...vocab import BOUNDED_METRICS, REGRESSION_METRICS, higher_is_better
from ...wording import num, pct, signed
from .cut_short import on_probe

# Generalisation gap on a [0, 1] score (accuracy-like, or R² for regression). Andrew Ng's bias/variance
# recipe ("Machine Learning Yearning", ch. 20-24) reads a train/dev gap of ~10 points as high variance;
# we warn from 0.15 so the usual few points of a well-regularised model stay quiet, and fail from 0.30,
# where validation quality is clearly being thrown away.
GAP_WARN = 0.15
GAP_FAIL = 0.30
# Underfitting: on its own training data the model recovers less than this share of the distance from
# the trivial baseline to a perfect score (skill score, Murphy 1988), e.g. R² < 0.2.
UNDERFIT_SKILL = 0.20
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
    try:  # regression residuals, or binary ROC / precision-recall / threshold sweep (issue 18)
        plots, drawn = summary_plots(ctx, model_outputs(ctx).get("valid"), metric)
    except SkipCheck:
        plots, drawn = [], {}
    evidence = {**numbers, "plots_from": drawn} if drawn else numbers
    return passed(f"{metric}: " + ", ".join(parts), detail="\n".join(lines), evidence=evidence,
                  plots=[metrics_per_split(splits, names)] + plots)


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
    plot = bar(f"{metric} on valid: model vs baselines", "predictor", metric, metric, [b[0] for b in bars],
               [b[1] for b in bars])
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
    return on_probe(vs_baseline_verdict(_measure_vs_baseline(ctx)), model_outputs(ctx))


# --- metrics.generalization_gap ------------------------------------------------------------------
def gap_metric(ctx: RunContext) -> str:
    """A bounded score to read the gap on: the configured one when bounded, else accuracy / R²."""
    if ctx.metric in BOUNDED_METRICS:
        return ctx.metric
    return "accuracy" if ctx.is_classification else "r2"


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
    return GapMeasure(metric, t, v, _combined_se(ctx, metric, "valid", "train"), train_baseline(ctx, metric),
                      outputs.source, ctx.model_kind == "sklearn")


def generalization_gap_verdict(m: GapMeasure) -> Finding:
    metric, t, v, gap, se, base, train_skill = m.metric, m.train, m.valid, m.gap, m.noise_se, m.baseline, m.train_skill
    evidence = {"metric": metric, "train": t, "valid": v, "gap": gap, "noise_se": se, "warn_gap": GAP_WARN,
                "fail_gap": GAP_FAIL, "baseline": base, "train_skill": train_skill,
                "underfit_skill": UNDERFIT_SKILL, "predictions": m.predictions}
    plot = bar(f"{metric}: train vs valid", "split", metric, metric, ["train", "valid"], [t, v])
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
    return on_probe(generalization_gap_verdict(_measure_gap(ctx)), model_outputs(ctx))


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
    plot = bar(f"{metric}: valid vs test", "split", metric, metric, ["valid", "test"], [v, t])
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
