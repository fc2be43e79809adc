"""Step 5, training: read the curves for the engineer and name the pathology.

Two sources of curves:
- the project's training log ([artifacts] training_log, read by logs.py), used whenever it is given;
- an instrumented probe: a short run of the project's model with its configured loss, optimizer, lr,
  batch size and train_step, within a share of the run's budget, that records per step the loss,
  per-layer gradient norms, update-to-weight ratios and the fraction of zero ReLU outputs, and per
  epoch the train/valid loss and metric.
The learning-rate range test always trains a fresh model of its own.

Every verdict on a curve is made on smoothed values and compared with the curve's own noise, so an
ordinary mini-batch loss curve of a healthy model stays quiet.
"""

from __future__ import annotations

import math

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ..engine.registry import check
from ..analyses.curves import (CurveSource, chunk_means, curve_source, ema, epoch_curves, finite_series,
                               finite_values, patience_that_works, start_and_end, trivial_loss, valid_rise, zigzag)
from ..analyses.lr_test import LR_DIVERGE_FACTOR, LR_START, LRTest, lr_range_summary, lr_range_test
from ..analyses.probe import EVAL_MAX_ROWS, Probe, probe


LR_FAIL_ABOVE_BLOWUP = 1.0     # configured lr at or beyond the lr where loss blew up -> fail
LR_TOO_LOW_DECADES = 2.0
LR_FAR_ABOVE_STEEPEST = 100.0  # configured lr two orders of magnitude above the steepest fall -> warn       # configured lr >= 2 orders of magnitude below the useful range -> warn

# --- gradients ------------------------------------------------------------------------------------
# Vanishing: Glorot & Bengio (2010) show back-propagated gradients shrinking layer by layer in deep
# sigmoid/tanh networks; a first-to-last layer gradient-norm ratio of 1e-3 or less (three orders of
# magnitude across the network) means the early layers effectively do not learn.
VANISH_RATIO_FAIL = 1e-3
VANISH_RATIO_WARN = 1e-2
# An exactly-zero gradient (below float32 noise) in a layer: nothing reaches it.
ZERO_GRAD = 1e-12
# Exploding: Pascanu, Mikolov & Bengio (2013) clip the gradient norm at thresholds of order 1-10 and
# describe explosion as norms growing by orders of magnitude. Norms 100x a typical clipping
# threshold are worth a look; 10^4 (or non-finite) means updates are dominated by a few huge steps.
EXPLODE_NORM_WARN = 1e2
EXPLODE_NORM_FAIL = 1e4
EXPLODE_GROWTH_FAIL = 1e3      # norm grew this many times from the first steps to the last
# Update-to-weight ratio ~1e-3 per step (Karpathy, CS231n "Neural Networks Part 3": ratio of update
# magnitude to parameter magnitude should be around 1e-3). Two orders of magnitude above: lr too high;
# three below: lr too low. A ratio of 1 means the weights are replaced at every step.
UPDATE_RATIO_TARGET = 1e-3
UPDATE_RATIO_HIGH = 1e-1
UPDATE_RATIO_FAIL = 1.0
UPDATE_RATIO_LOW = 1e-6

PLATEAU_DROP_FAIL = 0.02       # smoothed loss fell < 2% below where it started (and the trivial level)
PLATEAU_DROP_WARN = 0.05
PLATEAU_AT_TRIVIAL = 0.02      # ended within 2% of the loss of predicting the prior (Karpathy's "loss at
                               # init" reference: a model that learnt nothing from its inputs sits there)
DIVERGE_RISE = 0.5             # smoothed loss 50% above its start at the end, rising steadily -> fail
OSCILLATION_WARN = 0.5         # zig-zag amplitude (robust) >= 50% of the loss level's total drop...
OSCILLATION_FAIL = 1.0
OSCILLATION_MIN_FALL = 0.02    # a curve must fall 2% before its zig-zag is judged
OVERFIT_RISE_WARN = 0.10       # valid loss 10% above its best while train still falls
OVERFIT_RISE_FAIL = 0.50
UNDERFIT_LEVEL = 0.6           # final train loss >= 60% of the trivial (predict-the-prior) loss
UNDERFIT_FLAT = 0.05           # ... and improved < 5% over the last half of the run
EARLY_STOP_MIN_WASTE = 3       # epochs after the best one before suggesting early stopping
EARLY_STOP_WORSE = 0.05        # final valid loss 5% worse than the best


def _lr_plot(result: LRTest, configured: float) -> PlotSpec:
    finite = [(lr, s) for lr, s in zip(result.lrs, result.smoothed) if math.isfinite(s)]
    series = [Series("loss (raw)", result.lrs, [v if math.isfinite(v) else None for v in result.losses]),
              Series("loss (smoothed)", [p[0] for p in finite], [p[1] for p in finite])]
    if finite:
        lo, hi = min(p[1] for p in finite), max(p[1] for p in finite)
        series.append(Series(f"configured lr {configured:g}", [configured, configured], [lo, hi]))
    return PlotSpec("line", "Learning-rate range test: loss vs lr", series, x_label="learning rate",
                    y_label="training loss", x_log=True)


@check("training.lr_range", title="The learning rate sits inside the range where the loss falls",
       needs=("torch_model",))
def lr_range(ctx: RunContext):
    configured = float(ctx.config.lr)
    result = lr_range_test(ctx)
    s = lr_range_summary(result)
    s["configured_lr"] = configured
    s["seconds"] = round(result.seconds, 2)
    plots = [_lr_plot(result, configured)]
    swept = (f"Swept lr from {LR_START:g} to {s.get('swept_to') or 0:.3g} over {s['steps']} steps with the "
             f"configured {ctx.config.optimizer} optimizer on a fresh model (Smith 2017 range test; loss "
             f"smoothed with an EMA, stopped when it passed {LR_DIVERGE_FACTOR:g}x its minimum).")
    if "loss_min" not in s:
        raise SkipCheck(f"the range test ran too few steps ({s['steps']}) to read\n{swept} Raise the budget.")
    cut = result.stopped == "budget"
    if cut and (not s.get("fell") or s["lr_at_min_loss"] >= result.lrs[-4]):
        return info(f"the range test was cut by the time budget at lr {s['swept_to']:.2g}",
                    detail=f"{swept} The sweep stopped before the loss reached its lowest point, so the useful "
                           f"range cannot be read yet (loss {s['loss_start']:.4g} -> {s['loss_min']:.4g}).",
                    fix="Raise [budget] seconds (or --budget) so the sweep can reach lr 1 and beyond.",
                    evidence=s, plots=plots)
    if not s.get("fell"):
        return warn("the loss did not fall at any learning rate of the sweep",
                    detail=f"{swept} The smoothed loss went from {s['loss_start']:.4g} to at best "
                           f"{s['loss_min']:.4g} (less than 5% lower). A model that cannot lower its loss at any lr "
                           f"usually has no gradient reaching its weights (dead units, a detached graph, frozen "
                           f"parameters), a loss dominated by a bad initialisation or unscaled inputs, or inputs "
                           f"that carry no signal.",
                    fix="Check sanity.gradient_flow, architecture.dead_units and architecture.init_scale; "
                        "overfit a single batch first.",
                    evidence=s, plots=plots)
    lo, hi = s["useful_range"]
    blowup = s.get("lr_blowup")
    rng = f"The loss falls fastest near lr {s['lr_steepest']:.2g} and is lowest near {hi:.2g}"
    rng += f"; it blew up by lr {blowup:.2g}." if blowup else "; it did not blow up within the sweep."
    fix_to = f"Use an lr near {s['suggested_lr']:.2g} (a tenth of the lr of lowest loss)"
    if blowup and configured >= LR_FAIL_ABOVE_BLOWUP * blowup:
        return fail(f"lr {configured:g} is at or beyond where the loss blows up ({blowup:.2g})",
                    detail=f"{swept} {rng} The configured lr is {configured / blowup:.3g}x the lr at which "
                           f"training diverged.", fix=fix_to + ", or run the range test yourself and pick the "
                           "steep part of the curve.", evidence=s, plots=plots)
    if configured > hi and configured >= 100 * s["lr_steepest"]:
        return fail(f"lr {configured:g} is far above the useful range ({lo:.2g} to {hi:.2g})",
                    detail=f"{swept} {rng} The configured lr is past the point where the loss stopped falling and "
                           f"{configured / s['lr_steepest']:.0f}x the lr of steepest fall: updates overshoot.",
                    fix=fix_to + ".", evidence=s, plots=plots)
    if configured > hi:
        return warn(f"lr {configured:g} is above the lr where the loss stopped falling ({hi:.2g})",
                    detail=f"{swept} {rng} Past that point the loss of the sweep rises again, so training at "
                           f"lr {configured:g} is likely unstable.", fix=fix_to + ".", evidence=s, plots=plots)
    if not blowup and configured >= LR_FAR_ABOVE_STEEPEST * s["lr_steepest"]:
        # No blow-up inside the sweep usually means bounded outputs (a softmax/sigmoid head) cap the loss,
        # so the upper end of the range cannot be read; the steepest fall is then the best guide.
        return warn(f"lr {configured:g} is {configured / s['lr_steepest']:.0f}x the lr where the loss falls fastest",
                    detail=f"{swept} {rng} Good learning rates sit near the steepest part of the curve (Smith "
                           f"2017); two orders of magnitude above it, updates overshoot even when a capped loss "
                           f"hides the blow-up.",
                    fix=f"Use an lr near {s['lr_steepest']:.2g}, where the loss falls fastest (with a capped loss "
                        f"the lr of lowest loss says little).", evidence=s, plots=plots)
    decades_below = math.log10(lo / configured) if configured > 0 else math.inf
    s["decades_below_range"] = round(decades_below, 2)
    if decades_below >= LR_TOO_LOW_DECADES:
        return warn(f"lr {configured:g} is {decades_below:.1f} orders of magnitude below the useful range",
                    detail=f"{swept} {rng} The loss only starts to fall at lr {lo:.2g}; at {configured:g} "
                           f"training will crawl and may look like a plateau.", fix=fix_to + ".",
                    evidence=s, plots=plots)
    return passed(f"lr {configured:g} is inside the usable range (loss lowest near {hi:.2g})",
                  detail=f"{swept} {rng}", evidence=s, plots=plots)


def _thin(xs, ys, limit: int = 400):
    step = max(1, len(xs) // limit)
    return list(xs)[::step], list(ys)[::step]


def loss_plots(curves) -> list[PlotSpec]:
    plots = []
    if curves.has("train_loss") or curves.has("valid_loss"):
        series = [Series(name, curves.index, getattr(curves, role))
                  for name, role in (("train", "train_loss"), ("valid", "valid_loss")) if curves.has(role)]
        plots.append(PlotSpec("line", "Loss per " + curves.index_name, series, x_label=curves.index_name,
                              y_label="loss"))
    if curves.step_loss:
        xs, raw = _thin(curves.step, curves.step_loss)
        _, smooth = _thin(curves.step, ema(curves.step_loss))
        plots.append(PlotSpec("line", "Mini-batch training loss", [Series("loss", xs, raw),
                              Series("EMA-smoothed", xs, smooth)], x_label="step", y_label="loss"))
    return plots


def _no_loss(src: CurveSource):
    raise SkipCheck(f"no training loss curve in {src.label}\n{src.curves.describe_columns()}; name the loss "
                    f"column loss or train_loss so it can be read.")


@check("training.divergence", title="The loss stays finite and does not rise from the start")
def divergence(ctx: RunContext):
    src = curve_source(ctx)
    c = src.curves
    raw = list(c.step_loss) + [v for v in c.train_loss if v is not None]
    if src.probe is not None:
        raw += src.probe.train_loss
    bad = [v for v in raw if isinstance(v, float) and not math.isfinite(v)]
    plots = loss_plots(c)
    evidence = {"source": src.label, "nonfinite_values": len(bad)}
    if bad:
        at = next((i + 1 for i, v in enumerate(c.step_loss) if not math.isfinite(v)), None)
        return fail("the training loss became NaN/inf" + (f" at step {at}" if at else ""),
                    detail=f"In {src.label} the loss reached a non-finite value ({len(bad)} value(s)). The "
                           f"usual causes: a learning rate too high for the loss scale, log(0) in a hand-written "
                           f"loss, unscaled inputs or targets, or a division by a zero-sized batch.",
                    fix="Lower the learning rate (see training.lr_range), scale inputs and regression targets, "
                        "use the library's fused losses (cross_entropy on logits, bce_with_logits), and clip "
                        "gradients (torch.nn.utils.clip_grad_norm_).",
                    evidence=evidence, plots=plots)
    ends = start_and_end(src)
    if ends is None:
        _no_loss(src)
    evidence.update(ends)
    rise = (ends["end"] - ends["start"]) / abs(ends["start"]) if ends["start"] else 0.0
    evidence["relative_change"] = rise
    msg = (f"In {src.label} the {ends['series']} went from {ends['start']:.4g} to {ends['end']:.4g} "
           f"({100 * rise:+.0f}%).")
    if rise >= DIVERGE_RISE:
        return fail(f"the loss rose {100 * rise:.0f}% over training instead of falling",
                    detail=msg + f" A rise of {100 * DIVERGE_RISE:.0f}% or more means the updates make the model "
                                 f"worse: the optimizer is diverging.",
                    fix="Lower the learning rate by 10x (training.lr_range suggests a value), check the sign "
                        "of the loss, and clip gradients.", evidence=evidence, plots=plots)
    if rise >= 0.1:
        return warn(f"the loss ended {100 * rise:.0f}% above where it started",
                    detail=msg + " Training made the model worse than its untrained self; the learning rate "
                                 "is the first suspect.",
                    fix="Lower the learning rate (see training.lr_range) and rerun.",
                    evidence=evidence, plots=plots)
    return passed(f"the loss stayed finite and did not rise ({ends['start']:.3g} -> {ends['end']:.3g})",
                  detail=msg, evidence=evidence, plots=plots)


@check("training.oscillation", title="The curves fall without zig-zagging beyond their noise")
def oscillation(ctx: RunContext):
    src = curve_source(ctx)
    c = src.curves
    candidates, flat = {}, []

    def consider(name: str, values: list[float], errors: list[float] | None = None) -> None:
        # A curve that never fell beyond its noise did not learn: that is a plateau, not an oscillation.
        z = zigzag(values, errors)
        noise = 2 * max(errors) if errors else 0.0
        if z["drop"] <= max(noise, OSCILLATION_MIN_FALL * abs(values[0])):
            flat.append(name)
        else:
            candidates[name] = z

    for role, name in (("train_loss", "train loss"), ("valid_loss", "valid loss")):
        _, ys = finite_series(c, role)
        if len(ys) >= 4:
            consider(f"{name} per {c.index_name}", ys)
    _, metric = finite_series(c, "valid_metric")
    if len(metric) >= 4 and c.metric_name:
        signed = [-v for v in metric] if c.metric_higher_is_better else metric
        errors = None
        if c.metric_name in ("accuracy", "balanced_accuracy", "error_rate") and len(ctx.valid):
            # binomial standard error of an accuracy measured on the validation rows
            n = len(ctx.valid) if src.probe is None else min(len(ctx.valid), EVAL_MAX_ROWS)
            errors = [math.sqrt(max(p * (1 - p), 0.0) / n) for p in metric]
        consider(f"valid {c.metric_name} per {c.index_name}", signed, errors)
    if len(c.step_loss) >= 60:
        means, errors = chunk_means(finite_values(c.step_loss))
        consider("mini-batch loss (means of 20 chunks, moves within 2 standard errors ignored)", means, errors)
    if not candidates and flat:
        return passed("no curve fell enough to judge oscillation (see training.plateau)",
                      detail=f"In {src.label}, these curves did not fall beyond their noise: {', '.join(flat)}.",
                      evidence={"source": src.label, "flat_curves": flat}, plots=loss_plots(c))
    if not candidates:
        raise SkipCheck(f"too few points to judge oscillation in {src.label} (need 4 epochs or 60 steps)")
    worst_name, worst = max(candidates.items(), key=lambda kv: (kv[1]["reversals"] >= 2, kv[1]["index"]))
    evidence = {"source": src.label, "curves": candidates, "worst": worst_name, "flat_curves": flat}
    plots = loss_plots(c)
    msg = (f"In {src.label}, the {worst_name} rose by {worst['ups']:.3g} in total (significant rises only) "
           f"against an overall fall of {worst['drop']:.3g}, changing direction {worst['reversals']} time(s). "
           f"A curve that climbs back {100 * OSCILLATION_WARN:.0f}% or more of what it fell, more than once, "
           f"is bouncing, not converging.")
    fix = ("Lower the learning rate (training.lr_range), or use a larger batch; with momentum SGD lower the "
           "momentum; add a learning-rate schedule that decays.")
    if worst["reversals"] >= 2 and worst["index"] >= OSCILLATION_FAIL and worst["reversals"] >= 3:
        return fail(f"the {worst_name.split(' (')[0]} zig-zags: it climbs back more than it falls",
                    detail=msg, fix=fix, evidence=evidence, plots=plots)
    if worst["reversals"] >= 2 and worst["index"] >= OSCILLATION_WARN:
        return warn(f"the {worst_name.split(' (')[0]} goes up and down beyond its noise",
                    detail=msg, fix=fix, evidence=evidence, plots=plots)
    return passed("the curves fall without oscillating beyond their noise", detail=msg, evidence=evidence,
                  plots=plots)


@check("training.plateau", title="The loss moves away from its starting value")
def plateau(ctx: RunContext):
    src = curve_source(ctx)
    ends = start_and_end(src)
    if ends is None:
        _no_loss(src)
    trivial = trivial_loss(ctx) if not src.from_log or ctx.config.loss else None
    drop = (ends["start"] - ends["end"]) / abs(ends["start"]) if ends["start"] else 0.0
    evidence = {"source": src.label, **ends, "trivial_loss": trivial, "relative_drop": drop}
    if src.probe is not None:
        evidence["probe_epochs"] = len(src.probe.epochs) - 1
        evidence["dead_relu_fraction"] = {k: sum(v) / len(v) for k, v in src.probe.relu_zero.items() if v}
        if len(src.probe.epochs) < 2:
            raise SkipCheck(f"the probe did not finish one epoch within its share of the budget "
                            f"({src.probe.seconds_allowed:.1f} s); raise [budget] seconds")
    trivial_txt = (f" The loss of a model that only predicts the training prior is {trivial:.4g}."
                   if trivial is not None else "")
    at_trivial = trivial is not None and abs(ends["end"] - trivial) <= PLATEAU_AT_TRIVIAL * abs(trivial)
    evidence["at_trivial_level"] = at_trivial
    msg = (f"In {src.label} the {ends['series']} went from {ends['start']:.4g} to {ends['end']:.4g} "
           f"({100 * drop:.1f}% lower).{trivial_txt} Thresholds: less than {100 * PLATEAU_DROP_FAIL:.0f}% "
           f"lower is stuck, less than {100 * PLATEAU_DROP_WARN:.0f}% is barely moving, and ending within "
           f"{100 * PLATEAU_AT_TRIVIAL:.0f}% of the prior's loss means nothing was learnt from the inputs.")
    dead = {k: v for k, v in evidence.get("dead_relu_fraction", {}).items() if v >= 0.99}
    if dead:
        msg += f" ReLU outputs that are zero on (almost) every input: {', '.join(dead)}."
    fix = ("Overfit one small batch first (sanity.overfit_small_batch). If that fails, look for dead units, "
           "a detached graph or frozen weights; if it works, raise the learning rate (training.lr_range) and "
           "check that inputs are scaled.")
    plots = loss_plots(src.curves)
    if drop <= -0.1:
        return info(f"the loss rose ({ends['start']:.3g} -> {ends['end']:.3g}) rather than stalling: see "
                    f"training.divergence",
                    detail=msg, evidence=evidence, plots=plots)
    if drop < PLATEAU_DROP_FAIL:
        return fail(f"the loss is stuck at its starting level ({ends['start']:.4g} -> {ends['end']:.4g})",
                    detail=msg, fix=fix, evidence=evidence, plots=plots)
    if drop < PLATEAU_DROP_WARN:
        return warn(f"the loss barely moved ({100 * drop:.1f}% below its start)", detail=msg, fix=fix,
                    evidence=evidence, plots=plots)
    if at_trivial:
        return warn(f"the loss settled at the level of predicting the prior ({trivial:.4g})", detail=msg,
                    fix=fix, evidence=evidence, plots=plots)
    return passed(f"the loss fell {100 * drop:.0f}% below its starting level", detail=msg, evidence=evidence,
                  plots=plots)


# ==================================================================================================
# Gradient checks (probe only)
# ==================================================================================================
def _gradient_probe(ctx: RunContext) -> Probe:
    result = probe(ctx)
    if not result.loss:
        raise SkipCheck(f"the probe ran no training step within its {result.seconds_allowed:.1f} s share")
    if result.grads_missing:
        raise SkipCheck("the project's train_step clears the gradients before returning (.grad is None), so "
                        "they cannot be read after the step\nCall optimizer.zero_grad() at the start of the "
                        "step instead of the end to let mltriage read them.")
    return result


def _median(values) -> float:
    import numpy as np

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    return float(np.median(v)) if len(v) else math.nan


def _grad_plot(result: Probe) -> PlotSpec:
    series = []
    for name in result.layers:
        xs, ys = _thin(range(1, len(result.grad_norms[name]) + 1),
                       [max(g, 1e-20) if math.isfinite(g) else None for g in result.grad_norms[name]])
        series.append(Series(name, xs, ys))
    return PlotSpec("line", "Gradient norm per layer", series, x_label="step", y_label="gradient L2 norm",
                    y_log=True)


def _grads_cleared(result: Probe) -> bool:
    """Every gradient read as exactly zero while the weights still moved: zero_grad ran after the step."""
    all_zero = all(max(result.grad_norms[n], default=0.0) == 0.0 for n in result.layers)
    moved = _median([_median(result.update_ratios[n]) for n in result.layers])
    return all_zero and math.isfinite(moved) and moved > 1e-4


def _target_scale(ctx: RunContext) -> float:
    """1 for classification; the standard deviation of the training target (at least 1) for regression."""
    import numpy as np

    if ctx.is_classification:
        return 1.0
    y = np.asarray(ctx.y("train"), dtype=float)
    y = y[np.isfinite(y)]
    return max(1.0, float(y.std())) if len(y) else 1.0


@check("training.exploding_gradients", title="Gradient norms stay bounded", needs=("torch_model",))
def exploding_gradients(ctx: RunContext):
    result = _gradient_probe(ctx)
    scale = _target_scale(ctx)
    norms = [g / scale for g in result.total_grad_norm]
    k = max(1, len(norms) // 10)
    early, late = _median(norms[:k]), _median(norms[-k:])
    med, peak = _median(norms), max((g for g in norms if math.isfinite(g)), default=math.nan)
    growth = late / early if early > 0 else math.nan
    per_layer = {n: _median(result.grad_norms[n]) for n in result.layers}
    evidence = {"source": result.describe(), "median_norm": med, "max_norm": peak, "early_median": early,
                "late_median": late, "growth": growth, "nonfinite_steps": result.nonfinite_grad_steps,
                "per_layer_median": per_layer, "steps": len(norms), "target_scale": scale}
    plots = [_grad_plot(result)]
    scaled = (f" (divided by the regression target's standard deviation, {scale:.3g}, because the gradient "
              f"of a regression loss grows with the target's units)" if scale != 1.0 else "")
    msg = (f"In {result.describe()}, the total gradient norm (all weight tensors){scaled} had median {med:.3g}, "
           f"max {peak:.3g}, and went from {early:.3g} over the first steps to {late:.3g} over the last. "
           f"Thresholds: median above {EXPLODE_NORM_WARN:g} is worth a look and above {EXPLODE_NORM_FAIL:g} "
           f"(or growth of {EXPLODE_GROWTH_FAIL:g}x, or a non-finite norm) is explosion; gradient clipping "
           f"is usually set at 1-10 (Pascanu et al. 2013).")
    fix = ("Scale inputs (and regression targets) to unit variance, use the default initialisation, lower the "
           "learning rate, and clip the gradient norm (torch.nn.utils.clip_grad_norm_(params, 1.0)).")
    if peak == 0:
        return passed("no gradient reached the weights, so none can explode (see training.vanishing_gradients)",
                      detail=msg, evidence=evidence, plots=plots)
    if result.nonfinite_grad_steps:
        return fail(f"gradients became non-finite on {result.nonfinite_grad_steps} step(s)", detail=msg, fix=fix,
                    evidence=evidence, plots=plots)
    if med >= EXPLODE_NORM_FAIL or (math.isfinite(growth) and growth >= EXPLODE_GROWTH_FAIL):
        why = f"median {med:.3g}" if med >= EXPLODE_NORM_FAIL else f"grew {growth:.3g}x during the run"
        return fail(f"gradients explode (norm {why})", detail=msg, fix=fix, evidence=evidence, plots=plots)
    if med >= EXPLODE_NORM_WARN:
        return warn(f"gradient norms are large (median {med:.3g})", detail=msg, fix=fix, evidence=evidence,
                    plots=plots)
    return passed(f"gradient norms stay bounded (median {med:.3g}, max {peak:.3g})", detail=msg,
                  evidence=evidence, plots=plots)


@check("training.vanishing_gradients", title="Gradients reach the first layers", needs=("torch_model",))
def vanishing_gradients(ctx: RunContext):
    result = _gradient_probe(ctx)
    if _grads_cleared(result):
        raise SkipCheck("the project's train_step zeroes the gradients after optimizer.step(), so mltriage "
                        "reads zeros\nCall optimizer.zero_grad() at the start of the step instead.")
    per_layer = {n: _median(result.grad_norms[n]) for n in result.layers}
    if len(per_layer) < 1:
        raise SkipCheck("the model has no weight tensors to measure")
    first, last = result.layers[0], result.layers[-1]
    zero = [n for n, g in per_layer.items() if not g > ZERO_GRAD]
    ratio = per_layer[first] / per_layer[last] if per_layer[last] > ZERO_GRAD else math.nan
    evidence = {"source": result.describe(), "per_layer_median": per_layer, "first_layer": first,
                "last_layer": last, "first_to_last_ratio": ratio, "zero_gradient_layers": zero,
                "dead_relu_fraction": {k: sum(v) / len(v) for k, v in result.relu_zero.items() if v}}
    plots = [_grad_plot(result)]
    fix = ("Use ReLU-family activations (or tanh with Xavier init) instead of stacked sigmoids, He/Xavier "
           "initialisation, normalisation layers (BatchNorm/LayerNorm) or residual connections; make sure no "
           "layer is dead (architecture.dead_units).")
    msg = (f"In {result.describe()}, median gradient norms per layer: "
           + ", ".join(f"{n} {g:.2e}" for n, g in per_layer.items())
           + f". Thresholds: first/last ratio below {VANISH_RATIO_WARN:g} is worth a look, below "
             f"{VANISH_RATIO_FAIL:g} the early layers barely learn (gradients shrinking layer by layer, "
             f"Glorot & Bengio 2010); a norm below {ZERO_GRAD:g} means no gradient arrives at all.")
    if zero:
        dead = [k for k, v in evidence["dead_relu_fraction"].items() if v >= 0.99]
        extra = f" ReLU outputs zero on (almost) every input: {', '.join(dead)}." if dead else ""
        return fail(f"no gradient reaches {len(zero)} of {len(per_layer)} layer(s): {', '.join(zero[:4])}",
                    detail=msg + extra, fix=fix, evidence=evidence, plots=plots)
    if len(per_layer) < 2:
        return passed("gradients reach the only layer", detail=msg, evidence=evidence, plots=plots)
    if ratio < VANISH_RATIO_FAIL:
        return fail(f"gradients vanish: the first layer gets {ratio:.1e} of the last layer's gradient",
                    detail=msg, fix=fix, evidence=evidence, plots=plots)
    if ratio < VANISH_RATIO_WARN:
        return warn(f"gradients shrink towards the input: first/last ratio {ratio:.1e}",
                    detail=msg, fix=fix, evidence=evidence, plots=plots)
    return passed(f"gradients reach every layer (first/last ratio {ratio:.2g})", detail=msg, evidence=evidence,
                  plots=plots)


@check("training.update_ratio", title="Updates are about 1e-3 of the weights", needs=("torch_model",))
def update_ratio(ctx: RunContext):
    result = _gradient_probe(ctx)
    per_layer = {n: _median(result.update_ratios[n]) for n in result.layers}
    per_layer = {n: r for n, r in per_layer.items() if math.isfinite(r)}
    if not per_layer:
        raise SkipCheck("no weight tensor with a non-zero norm to compare updates with")
    high = {n: r for n, r in per_layer.items() if r >= UPDATE_RATIO_HIGH}
    low = {n: r for n, r in per_layer.items() if r <= UPDATE_RATIO_LOW}
    evidence = {"source": result.describe(), "per_layer_median_ratio": per_layer, "target": UPDATE_RATIO_TARGET,
                "lr": ctx.config.lr, "optimizer": ctx.config.optimizer}
    series = []
    for name in result.layers:
        xs, ys = _thin(range(1, len(result.update_ratios[name]) + 1),
                       [r if math.isfinite(r) and r > 0 else None for r in result.update_ratios[name]])
        series.append(Series(name, xs, ys))
    if series:
        series.append(Series("guideline 1e-3", [1, len(result.loss)], [UPDATE_RATIO_TARGET] * 2))
    plots = [PlotSpec("line", "Update / weight norm per step", series, x_label="step",
                      y_label="||update|| / ||weight||", y_log=True)]
    msg = (f"In {result.describe()}, the median ratio of the update norm to the weight norm per step, per layer: "
           + ", ".join(f"{n} {r:.1e}" for n, r in per_layer.items())
           + f". Guideline ~{UPDATE_RATIO_TARGET:g} (CS231n); above {UPDATE_RATIO_HIGH:g} the lr is likely too "
             f"high, at {UPDATE_RATIO_FAIL:g} the weights are replaced every step; below {UPDATE_RATIO_LOW:g} "
             f"they hardly move.")
    if _grads_cleared(result) is False and all(r == 0 for r in per_layer.values()):
        return fail("the weights never change during training", detail=msg,
                    fix="Check that the optimizer holds the model's parameters, that train_step calls "
                        "optimizer.step(), and that gradients reach the weights (training.vanishing_gradients).",
                    evidence=evidence, plots=plots)
    if high:
        worst = max(high.values())
        status = fail if worst >= UPDATE_RATIO_FAIL else warn
        return status(f"updates are {worst:.1e} of the weights per step in {len(high)} layer(s)",
                      detail=msg, fix=f"Lower the learning rate (now {ctx.config.lr:g}) until the ratio is near "
                                      f"1e-3; training.lr_range suggests a value.", evidence=evidence, plots=plots)
    if len(low) == len(per_layer):
        return warn(f"updates are tiny: at most {max(low.values()):.1e} of the weights per step",
                    detail=msg, fix=f"Raise the learning rate (now {ctx.config.lr:g}); training.lr_range "
                                    f"suggests a value.", evidence=evidence, plots=plots)
    return passed(f"updates are {min(per_layer.values()):.0e} to {max(per_layer.values()):.0e} of the weights",
                  detail=msg, evidence=evidence, plots=plots)


@check("training.overfitting", title="Validation loss does not turn up while training loss falls")
def overfitting(ctx: RunContext):
    src, c = epoch_curves(ctx)
    xs, valid = finite_series(c, "valid_loss")
    txs, train = finite_series(c, "train_loss")
    best = min(range(len(valid)), key=valid.__getitem__)
    final, lowest = valid[-1], valid[best]
    test = valid_rise(src, best, valid, OVERFIT_RISE_WARN)
    rise, after = test["relative_rise"], test["after_best"]
    train_at = dict(zip(txs, train))
    train_best, train_end = train_at.get(xs[best]), (train[-1] if train else None)
    train_fell = train_best is not None and train_end is not None and train_end < train_best
    evidence = {"source": src.label, "best_" + c.index_name: xs[best], "best_valid_loss": lowest,
                "final_valid_loss": final, "relative_rise": rise, "points_after_best": after,
                "train_loss_at_best": train_best, "final_train_loss": train_end, **test}
    plots = loss_plots(c)
    msg = (f"In {src.label}, the validation loss was lowest ({lowest:.4g}) at {c.index_name} {xs[best]:g} and "
           f"ended at {final:.4g} ({100 * rise:+.0f}%) {after} {c.index_name}(s) later"
           + (f", while the training loss kept falling ({train_best:.4g} -> {train_end:.4g})." if train_fell
              else ".")
           + f" Threshold: a rise of {100 * OVERFIT_RISE_WARN:.0f}% over at least 2 {c.index_name}s while "
             f"training loss falls, beyond noise ({test['noise_test']}).")
    fix = ("Stop at the best epoch (early stopping, keep the best checkpoint), add regularisation (weight "
           "decay, dropout, data augmentation), get more data, or use a smaller model.")
    if after >= 2 and train_fell and rise >= OVERFIT_RISE_WARN and not test["significant"]:
        return info(f"validation loss is {100 * rise:.0f}% above its best, within noise", detail=msg,
                    fix=fix, evidence=evidence, plots=plots)
    if after >= 2 and train_fell and rise >= OVERFIT_RISE_WARN:
        status = fail if rise >= OVERFIT_RISE_FAIL else warn
        return status(f"overfitting from {c.index_name} {xs[best]:g}: valid loss up {100 * rise:.0f}% while "
                      f"train loss falls", detail=msg, fix=fix, evidence=evidence, plots=plots)
    return passed(f"validation loss does not turn up (best at {c.index_name} {xs[best]:g} of {xs[-1]:g})",
                  detail=msg, evidence=evidence, plots=plots)


@check("training.underfitting", title="Training loss gets well below the trivial level")
def underfitting(ctx: RunContext):
    src, c = epoch_curves(ctx, need_valid=False)
    xs, train = finite_series(c, "train_loss")
    if len(train) < 3:
        raise SkipCheck(f"{src.label} has fewer than 3 points of training loss per {c.index_name}")
    _, valid = finite_series(c, "valid_loss")
    trivial = trivial_loss(ctx) if not src.from_log or ctx.config.loss else None
    reference = trivial if trivial is not None else train[0]
    level = train[-1] / reference if reference else math.nan
    half = train[len(train) // 2]
    recent = (half - train[-1]) / abs(half) if half else 0.0
    gap = (valid[-1] - train[-1]) / abs(train[-1]) if valid and train[-1] else None
    evidence = {"source": src.label, "final_train_loss": train[-1], "final_valid_loss": valid[-1] if valid else None,
                "reference_loss": reference, "reference_is_trivial": trivial is not None,
                "level_vs_reference": level, "improvement_over_last_half": recent, "valid_train_gap": gap}
    ref_txt = (f"the loss of predicting the training prior ({reference:.4g})" if trivial is not None
               else f"its first value ({reference:.4g})")
    msg = (f"In {src.label}, the training loss ended at {train[-1]:.4g}, {100 * level:.0f}% of {ref_txt}, and "
           f"improved {100 * recent:.1f}% over the second half of the run. Thresholds: still at "
           f"{100 * UNDERFIT_LEVEL:.0f}% or more of the reference and improving less than "
           f"{100 * UNDERFIT_FLAT:.0f}% means the model is not fitting the training data.")
    plots = loss_plots(c)
    if level >= UNDERFIT_LEVEL and recent < UNDERFIT_FLAT:
        return warn(f"underfitting: training loss is high ({100 * level:.0f}% of the reference) and flat",
                    detail=msg, fix="Train longer, raise the learning rate (training.lr_range), add capacity "
                                    "(wider/deeper layers), and reduce regularisation (dropout, weight decay).",
                    evidence=evidence, plots=plots)
    if level >= UNDERFIT_LEVEL:
        return info(f"training loss is still high ({100 * level:.0f}% of the reference) but falling",
                    detail=msg + (" The probe is short; your full run may get further." if src.probe else ""),
                    fix="Train for more epochs, or raise the learning rate.", evidence=evidence, plots=plots)
    return passed(f"training loss fell to {100 * level:.0f}% of the reference", detail=msg, evidence=evidence,
                  plots=plots)


@check("training.early_stopping", title="Training stops near the best epoch")
def early_stopping(ctx: RunContext):
    src, c = epoch_curves(ctx)
    xs, valid = finite_series(c, "valid_loss")
    best = min(range(len(valid)), key=valid.__getitem__)
    wasted = len(valid) - 1 - best
    worse = (valid[-1] - valid[best]) / abs(valid[best]) if valid[best] else 0.0
    patience = patience_that_works(valid)
    test = valid_rise(src, best, valid, OVERFIT_RISE_WARN)
    evidence = {"source": src.label, "best_" + c.index_name: xs[best], "last_" + c.index_name: xs[-1],
                "points_after_best": wasted, "final_vs_best": worse, "suggested_patience": patience,
                "rise_beyond_noise": test["significant"], "noise_test": test["noise_test"]}
    plots = loss_plots(c)
    msg = (f"In {src.label}, the validation loss was best at {c.index_name} {xs[best]:g} ({valid[best]:.4g}); "
           f"the run went on to {c.index_name} {xs[-1]:g} and ended {100 * worse:+.1f}% from the best.")
    if patience is not None and wasted >= EARLY_STOP_MIN_WASTE:
        msg += (f" Stopping after {patience} {c.index_name}(s) without improvement (and restoring the best "
                f"weights) would have kept a loss within 1% of the best.")
    fix = (f"Use early stopping on the validation loss with patience {patience or 3} and restore the best "
           f"weights (Keras EarlyStopping(restore_best_weights=True), Lightning EarlyStopping + ModelCheckpoint), "
           f"or keep the checkpoint of the best {c.index_name}.")
    if src.probe is not None:
        msg += " (The probe ran the configured number of epochs or as many as fit its share of the budget.)"
    if wasted >= EARLY_STOP_MIN_WASTE and worse >= EARLY_STOP_WORSE and test["significant"]:
        return warn(f"trained {wasted} {c.index_name}(s) past the best one; the final model is "
                    f"{100 * worse:.0f}% worse", detail=msg, fix=fix, evidence=evidence, plots=plots)
    if wasted >= EARLY_STOP_MIN_WASTE:
        return info(f"no improvement over the last {wasted} {c.index_name}(s)", detail=msg,
                    fix=f"Early stopping with patience {patience or 3} would save that time.", evidence=evidence,
                    plots=plots)
    if wasted == 0 and len(valid) >= 3 and valid[-2] - valid[-1] > 0.01 * abs(valid[-1]):
        return info(f"validation loss was still falling at the last {c.index_name}",
                    detail=msg + " More epochs may help.", fix="Train longer (with early stopping to stop at the best).",
                    evidence=evidence, plots=plots)
    return passed(f"training stopped near the best {c.index_name} ({xs[best]:g} of {xs[-1]:g})", detail=msg,
                  evidence=evidence, plots=plots)
