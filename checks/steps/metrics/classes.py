"""Step 6, metrics: class by class: every class is learned, the confusion matrix (collapse, swapped
classes), and whether predicted probabilities match observed accuracy.

Per-class recall is compared with two-proportion z-tests under a Benjamini-Hochberg correction;
calibration error against a simulated null. Each check measures (a small dataclass) and then judges
(`*_verdict(m)` -> Finding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analyses.evaluation import labelled, per_class_table
from ...analyses.metric_plots import bar, confusion_heatmap, reliability_plots
from ...analyses.predictions import model_outputs
from ...analyses.stats import (FDR, N_BOOTSTRAP, benjamini_hochberg, confusion_counts, expected_calibration_error,
                               two_proportion_p)
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, SkipCheck, fail, info, passed, skipped, warn
from ...wording import cut_list, pct, plural
from .cut_short import on_probe

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
    plot = bar("recall per class (valid)", "class", "recall", "recall", names,
               [None if np.isnan(r) else float(r) for r in recall])
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
    outputs = model_outputs(ctx)
    return on_probe(per_class_verdict(PerClassMeasure(per_class_table(ctx, outputs.get("valid")))), outputs)


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
    plot = confusion_heatmap(cm, names)
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
    outputs = model_outputs(ctx)
    y, pred, _ = labelled(outputs.get("valid"))
    return on_probe(confusion_verdict(ConfusionMeasure([str(c) for c in ctx.classes],
                                                        confusion_counts(y, pred, len(ctx.classes)))), outputs)


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
    bin_lower: list[float] = field(default_factory=list)      # lower edge of each non-empty bin

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
                              counts[used].astype(int).tolist(), (np.flatnonzero(used) / ECE_BINS).tolist())


def calibration_verdict(m: CalibrationMeasure) -> Finding:
    ece, null95, mean_conf, accuracy, direction = m.ece, m.null_ece_95, m.mean_confidence, m.accuracy, m.direction
    evidence = {"ece": ece, "bins": ECE_BINS, "warn_above": ECE_WARN, "null_ece_95": null95,
                "mean_confidence": mean_conf, "accuracy": accuracy, "direction": direction,
                "bin_confidence": m.bin_confidence, "bin_accuracy": m.bin_accuracy, "bin_counts": m.bin_counts}
    plots = reliability_plots(m.bin_confidence, m.bin_accuracy, m.bin_counts, m.bin_lower, ECE_BINS)
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
                    evidence=evidence, plots=plots)
    return passed(f"ECE {ece:.3f} (mean confidence {mean_conf:.3f}, accuracy {accuracy:.3f})",
                  evidence=evidence, plots=plots)


@check("metrics.calibration", title="Predicted probabilities match observed accuracy", needs=("classification",))
def calibration(ctx: RunContext):
    return calibration_verdict(_measure_calibration(ctx))
