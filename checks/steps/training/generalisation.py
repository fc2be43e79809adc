"""training.overfitting, training.underfitting, training.early_stopping: the per-epoch train and
validation curves against each other and against the loss of a trivial model."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.curves import epoch_curves, finite_series, patience_that_works, trivial_loss, valid_rise
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, SkipCheck, fail, info, passed, warn
from .common import loss_plots

OVERFIT_RISE_WARN = 0.10       # valid loss 10% above its best while train still falls
OVERFIT_RISE_FAIL = 0.50
OVERFIT_MIN_AFTER = 2          # ... over at least 2 points after the best one
UNDERFIT_LEVEL = 0.6           # final train loss >= 60% of the trivial (predict-the-prior) loss
UNDERFIT_FLAT = 0.05           # ... and improved < 5% over the last half of the run
EARLY_STOP_MIN_WASTE = 3       # epochs after the best one before suggesting early stopping
EARLY_STOP_WORSE = 0.05        # final valid loss 5% worse than the best
STILL_FALLING = 0.01           # the last step of the valid loss fell more than 1%: more epochs may help


@dataclass
class ValidCurve:
    """The finite points of the validation loss, its best one, and whether the end is really worse."""

    source: str
    index_name: str                # "epoch" | "step"
    xs: list[float]
    valid: list[float]
    rise_test: dict                # analyses.curves.valid_rise(): evidence, so a dict
    from_probe: bool = False

    @property
    def best(self) -> int:
        return min(range(len(self.valid)), key=self.valid.__getitem__)


def _valid_curve(src, c) -> ValidCurve:
    xs, valid = finite_series(c, "valid_loss")
    best = min(range(len(valid)), key=valid.__getitem__)
    return ValidCurve(src.label, c.index_name, xs, valid, valid_rise(src, best, valid, OVERFIT_RISE_WARN),
                      from_probe=src.probe is not None)


# --- overfitting -------------------------------------------------------------------------------------
@dataclass
class OverfitMeasure:
    curve: ValidCurve
    train_at_best: float | None    # the training loss at the best validation point
    final_train: float | None


def _measure_overfitting(src, c) -> OverfitMeasure:
    curve = _valid_curve(src, c)
    txs, train = finite_series(c, "train_loss")
    train_at = dict(zip(txs, train))
    return OverfitMeasure(curve, train_at.get(curve.xs[curve.best]), train[-1] if train else None)


@check("training.overfitting", title="Validation loss does not turn up while training loss falls")
def overfitting(ctx: RunContext):
    src, c = epoch_curves(ctx)
    finding = overfitting_verdict(_measure_overfitting(src, c))
    finding.plots = loss_plots(c)
    return finding


def overfitting_verdict(m: OverfitMeasure) -> Finding:
    v, idx = m.curve, m.curve.index_name
    best, test = v.best, v.rise_test
    final, lowest = v.valid[-1], v.valid[best]
    rise, after = test["relative_rise"], test["after_best"]
    train_best, train_end = m.train_at_best, m.final_train
    train_fell = train_best is not None and train_end is not None and train_end < train_best
    evidence = {"source": v.source, "best_" + idx: v.xs[best], "best_valid_loss": lowest,
                "final_valid_loss": final, "relative_rise": rise, "points_after_best": after,
                "train_loss_at_best": train_best, "final_train_loss": train_end, **test}
    msg = (f"In {v.source}, the validation loss was lowest ({lowest:.4g}) at {idx} {v.xs[best]:g} and "
           f"ended at {final:.4g} ({100 * rise:+.0f}%) {after} {idx}(s) later"
           + (f", while the training loss kept falling ({train_best:.4g} -> {train_end:.4g})." if train_fell
              else ".")
           + f" Threshold: a rise of {100 * OVERFIT_RISE_WARN:.0f}% over at least {OVERFIT_MIN_AFTER} {idx}s "
             f"while training loss falls, beyond noise ({test['noise_test']}).")
    fix = ("Stop at the best epoch (early stopping, keep the best checkpoint), add regularisation (weight "
           "decay, dropout, data augmentation), get more data, or use a smaller model.")
    turned_up = after >= OVERFIT_MIN_AFTER and train_fell and rise >= OVERFIT_RISE_WARN
    if turned_up and not test["significant"]:
        return info(f"validation loss is {100 * rise:.0f}% above its best, but within the noise of its changes", detail=msg,
                    fix=fix, evidence=evidence)
    if turned_up:
        status = fail if rise >= OVERFIT_RISE_FAIL else warn
        return status(f"overfitting from {idx} {v.xs[best]:g}: valid loss up {100 * rise:.0f}% while "
                      f"train loss falls", detail=msg, fix=fix, evidence=evidence)
    return passed(f"validation loss does not turn up (best at {idx} {v.xs[best]:g} of {v.xs[-1]:g})",
                  detail=msg, evidence=evidence)


# --- underfitting ------------------------------------------------------------------------------------
@dataclass
class UnderfitMeasure:
    source: str
    train: list[float]             # finite training loss per point, at least 3
    final_valid: float | None
    trivial: float | None          # the loss of predicting the prior, when it can be known
    from_probe: bool = False


def _measure_underfitting(ctx: RunContext, src, c) -> UnderfitMeasure:
    _, train = finite_series(c, "train_loss")
    if len(train) < 3:
        raise SkipCheck(f"{src.label} has fewer than 3 points of training loss per {c.index_name}")
    _, valid = finite_series(c, "valid_loss")
    trivial = trivial_loss(ctx) if not src.from_log or ctx.config.loss else None
    return UnderfitMeasure(src.label, train, valid[-1] if valid else None, trivial, src.probe is not None)


@check("training.underfitting", title="Training loss gets well below the trivial level")
def underfitting(ctx: RunContext):
    src, c = epoch_curves(ctx, need_valid=False)
    finding = underfitting_verdict(_measure_underfitting(ctx, src, c))
    finding.plots = loss_plots(c)
    return finding


def underfitting_verdict(m: UnderfitMeasure) -> Finding:
    train, trivial = m.train, m.trivial
    reference = trivial if trivial is not None else train[0]
    level = train[-1] / reference if reference else math.nan
    half = train[len(train) // 2]
    recent = (half - train[-1]) / abs(half) if half else 0.0
    gap = (m.final_valid - train[-1]) / abs(train[-1]) if m.final_valid is not None and train[-1] else None
    evidence = {"source": m.source, "final_train_loss": train[-1], "final_valid_loss": m.final_valid,
                "reference_loss": reference, "reference_is_trivial": trivial is not None,
                "level_vs_reference": level, "improvement_over_last_half": recent, "valid_train_gap": gap}
    ref_txt = (f"the loss of predicting the training prior ({reference:.4g})" if trivial is not None
               else f"its first value ({reference:.4g})")
    msg = (f"In {m.source}, the training loss ended at {train[-1]:.4g}, {100 * level:.0f}% of {ref_txt}, and "
           f"improved {100 * recent:.1f}% over the second half of the run. Thresholds: still at "
           f"{100 * UNDERFIT_LEVEL:.0f}% or more of the reference and improving less than "
           f"{100 * UNDERFIT_FLAT:.0f}% means the model is not fitting the training data.")
    if level >= UNDERFIT_LEVEL and recent < UNDERFIT_FLAT:
        return warn(f"underfitting: training loss is high ({100 * level:.0f}% of the reference) and flat",
                    detail=msg, fix="Train longer, raise the learning rate (training.lr_range), add capacity "
                                    "(wider/deeper layers), and reduce regularisation (dropout, weight decay).",
                    evidence=evidence)
    if level >= UNDERFIT_LEVEL:
        return info(f"training loss is still high ({100 * level:.0f}% of the reference) but falling",
                    detail=msg + (" The probe is short; your full run may get further." if m.from_probe else ""),
                    fix="Train for more epochs, or raise the learning rate.", evidence=evidence)
    return passed(f"training loss fell to {100 * level:.0f}% of the reference", detail=msg, evidence=evidence)


# --- early stopping ----------------------------------------------------------------------------------
@check("training.early_stopping", title="Training stops near the best epoch")
def early_stopping(ctx: RunContext):
    src, c = epoch_curves(ctx)
    finding = early_stopping_verdict(_valid_curve(src, c))
    finding.plots = loss_plots(c)
    return finding


def early_stopping_verdict(v: ValidCurve) -> Finding:
    idx, valid, best = v.index_name, v.valid, v.best
    wasted = len(valid) - 1 - best
    worse = (valid[-1] - valid[best]) / abs(valid[best]) if valid[best] else 0.0
    patience = patience_that_works(valid)
    evidence = {"source": v.source, "best_" + idx: v.xs[best], "last_" + idx: v.xs[-1],
                "points_after_best": wasted, "final_vs_best": worse, "suggested_patience": patience,
                "rise_beyond_noise": v.rise_test["significant"], "noise_test": v.rise_test["noise_test"]}
    msg = (f"In {v.source}, the validation loss was best at {idx} {v.xs[best]:g} ({valid[best]:.4g}); "
           f"the run went on to {idx} {v.xs[-1]:g} and ended {100 * worse:+.1f}% from the best.")
    if patience is not None and wasted >= EARLY_STOP_MIN_WASTE:
        msg += (f" Stopping after {patience} {idx}(s) without improvement (and restoring the best "
                f"weights) would have kept a loss within 1% of the best.")
    fix = (f"Use early stopping on the validation loss with patience {patience or 3} and restore the best "
           f"weights (Keras EarlyStopping(restore_best_weights=True), Lightning EarlyStopping + ModelCheckpoint), "
           f"or keep the checkpoint of the best {idx}.")
    if v.from_probe:
        msg += " (The probe ran the configured number of epochs or as many as fit its share of the budget.)"
    if wasted >= EARLY_STOP_MIN_WASTE and worse >= EARLY_STOP_WORSE and v.rise_test["significant"]:
        return warn(f"trained {wasted} {idx}(s) past the best one; the final model is "
                    f"{100 * worse:.0f}% worse", detail=msg, fix=fix, evidence=evidence)
    if wasted >= EARLY_STOP_MIN_WASTE:
        return info(f"no improvement over the last {wasted} {idx}(s)", detail=msg,
                    fix=f"Early stopping with patience {patience or 3} would save that time.", evidence=evidence)
    if wasted == 0 and len(valid) >= 3 and valid[-2] - valid[-1] > STILL_FALLING * abs(valid[-1]):
        return info(f"validation loss was still falling at the last {idx}",
                    detail=msg + " More epochs may help.", fix="Train longer (with early stopping to stop at the best).",
                    evidence=evidence)
    return passed(f"training stopped near the best {idx} ({v.xs[best]:g} of {v.xs[-1]:g})", detail=msg,
                  evidence=evidence)
