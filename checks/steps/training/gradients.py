"""training.exploding_gradients, training.vanishing_gradients, training.update_ratio: what the probe's
per-step gradient norms and update-to-weight ratios say (probe only: a log has no gradients)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.monitored import monitor_probe, monitored
from ...analyses.probe import Probe, probe
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, passed, warn
from .common import thin

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


def _gradient_probe(ctx: RunContext) -> Probe:
    """Per-layer gradient and update records: the user's monitored run when there is one, else the probe."""
    source = monitored(ctx)
    if source is not None:
        result = monitor_probe(source)
        if not result.layers:
            raise SkipCheck(f"{result.describe()} has no per-layer gradient records")
        return result
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
        xs, ys = thin(range(1, len(result.grad_norms[name]) + 1),
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


# --- exploding gradients ----------------------------------------------------------------------------
@dataclass
class GradNormMeasure:
    source: str
    norms: list[float]             # total gradient norm (all weight tensors) per step, / target_scale
    per_layer: dict[str, float]    # median gradient norm per layer
    nonfinite_steps: int
    target_scale: float = 1.0


def _measure_grad_norms(ctx: RunContext, result: Probe) -> GradNormMeasure:
    scale = _target_scale(ctx)
    return GradNormMeasure(result.describe(), [g / scale for g in result.total_grad_norm],
                           {n: _median(result.grad_norms[n]) for n in result.layers},
                           result.nonfinite_grad_steps, scale)


@check("training.exploding_gradients", title="Gradient norms stay bounded", needs=("gradients",))
def exploding_gradients(ctx: RunContext):
    result = _gradient_probe(ctx)
    finding = exploding_verdict(_measure_grad_norms(ctx, result))
    finding.plots = [_grad_plot(result)]
    return finding


def exploding_verdict(m: GradNormMeasure) -> Finding:
    norms, scale = m.norms, m.target_scale
    k = max(1, len(norms) // 10)
    early, late = _median(norms[:k]), _median(norms[-k:])
    med, peak = _median(norms), max((g for g in norms if math.isfinite(g)), default=math.nan)
    growth = late / early if early > 0 else math.nan
    evidence = {"source": m.source, "median_norm": med, "max_norm": peak, "early_median": early,
                "late_median": late, "growth": growth, "nonfinite_steps": m.nonfinite_steps,
                "per_layer_median": m.per_layer, "steps": len(norms), "target_scale": scale}
    scaled = (f" (divided by the regression target's standard deviation, {scale:.3g}, because the gradient "
              f"of a regression loss grows with the target's units)" if scale != 1.0 else "")
    msg = (f"In {m.source}, the total gradient norm (all weight tensors){scaled} had median {med:.3g}, "
           f"max {peak:.3g}, and went from {early:.3g} over the first steps to {late:.3g} over the last. "
           f"Thresholds: median above {EXPLODE_NORM_WARN:g} is worth a look and above {EXPLODE_NORM_FAIL:g} "
           f"(or growth of {EXPLODE_GROWTH_FAIL:g}x, or a non-finite norm) is explosion; gradient clipping "
           f"is usually set at 1-10 (Pascanu et al. 2013).")
    fix = ("Scale inputs (and regression targets) to unit variance, use the default initialisation, lower the "
           "learning rate, and clip the gradient norm (torch.nn.utils.clip_grad_norm_(params, 1.0)).")
    if peak == 0:
        return passed("no gradient reached the weights, so none can explode (see training.vanishing_gradients)",
                      detail=msg, evidence=evidence)
    if m.nonfinite_steps:
        return fail(f"gradients became non-finite on {m.nonfinite_steps} step(s)", detail=msg, fix=fix,
                    evidence=evidence)
    if med >= EXPLODE_NORM_FAIL or (math.isfinite(growth) and growth >= EXPLODE_GROWTH_FAIL):
        why = f"median {med:.3g}" if med >= EXPLODE_NORM_FAIL else f"grew {growth:.3g}x during the run"
        return fail(f"gradients explode (norm {why})", detail=msg, fix=fix, evidence=evidence)
    if med >= EXPLODE_NORM_WARN:
        return warn(f"gradient norms are large (median {med:.3g})", detail=msg, fix=fix, evidence=evidence)
    return passed(f"gradient norms stay bounded (median {med:.3g}, max {peak:.3g})", detail=msg,
                  evidence=evidence)


# --- vanishing gradients ----------------------------------------------------------------------------
@dataclass
class LayerGradMeasure:
    source: str
    per_layer: dict[str, float]    # median gradient norm per layer, first layer first
    dead_relu_fraction: dict[str, float]


def _measure_layer_grads(result: Probe) -> LayerGradMeasure:
    if _grads_cleared(result):
        raise SkipCheck("the project's train_step zeroes the gradients after optimizer.step(), so mltriage "
                        "reads zeros\nCall optimizer.zero_grad() at the start of the step instead.")
    per_layer = {n: _median(result.grad_norms[n]) for n in result.layers}
    if len(per_layer) < 1:
        raise SkipCheck("the model has no weight tensors to measure")
    return LayerGradMeasure(result.describe(), per_layer,
                            {k: sum(v) / len(v) for k, v in result.relu_zero.items() if v})


@check("training.vanishing_gradients", title="Gradients reach the first layers", needs=("gradients",))
def vanishing_gradients(ctx: RunContext):
    result = _gradient_probe(ctx)
    finding = vanishing_verdict(_measure_layer_grads(result))
    finding.plots = [_grad_plot(result)]
    return finding


def vanishing_verdict(m: LayerGradMeasure) -> Finding:
    per_layer = m.per_layer
    first, last = next(iter(per_layer)), list(per_layer)[-1]
    zero = [n for n, g in per_layer.items() if not g > ZERO_GRAD]
    ratio = per_layer[first] / per_layer[last] if per_layer[last] > ZERO_GRAD else math.nan
    evidence = {"source": m.source, "per_layer_median": per_layer, "first_layer": first,
                "last_layer": last, "first_to_last_ratio": ratio, "zero_gradient_layers": zero,
                "dead_relu_fraction": m.dead_relu_fraction}
    fix = ("Use ReLU-family activations (or tanh with Xavier init) instead of stacked sigmoids, He/Xavier "
           "initialisation, normalisation layers (BatchNorm/LayerNorm) or residual connections; make sure no "
           "layer is dead (architecture.dead_units).")
    msg = (f"In {m.source}, median gradient norms per layer: "
           + ", ".join(f"{n} {g:.2e}" for n, g in per_layer.items())
           + f". Thresholds: first/last ratio below {VANISH_RATIO_WARN:g} is worth a look, below "
             f"{VANISH_RATIO_FAIL:g} the early layers barely learn (gradients shrinking layer by layer, "
             f"Glorot & Bengio 2010); a norm below {ZERO_GRAD:g} means no gradient arrives at all.")
    if zero:
        dead = [k for k, v in m.dead_relu_fraction.items() if v >= 0.99]
        extra = f" ReLU outputs zero on (almost) every input: {', '.join(dead)}." if dead else ""
        return fail(f"no gradient reaches {len(zero)} of {len(per_layer)} layer(s): {', '.join(zero[:4])}",
                    detail=msg + extra, fix=fix, evidence=evidence)
    if len(per_layer) < 2:
        return passed("gradients reach the only layer", detail=msg, evidence=evidence)
    if ratio < VANISH_RATIO_FAIL:
        return fail(f"gradients vanish: the first layer gets {ratio:.1e} of the last layer's gradient",
                    detail=msg, fix=fix, evidence=evidence)
    if ratio < VANISH_RATIO_WARN:
        return warn(f"gradients shrink towards the input: first/last ratio {ratio:.1e}",
                    detail=msg, fix=fix, evidence=evidence)
    return passed(f"gradients reach every layer (first/last ratio {ratio:.2g})", detail=msg, evidence=evidence)


# --- update ratio -----------------------------------------------------------------------------------
@dataclass
class UpdateRatioMeasure:
    source: str
    per_layer: dict[str, float]    # median ||update|| / ||weight|| per step, layers with a finite ratio
    lr: float
    optimizer: str
    grads_cleared: bool = False    # zero_grad ran after the step: zero gradients say nothing


def _measure_update_ratios(ctx: RunContext, result: Probe) -> UpdateRatioMeasure:
    per_layer = {n: _median(result.update_ratios[n]) for n in result.layers}
    per_layer = {n: r for n, r in per_layer.items() if math.isfinite(r)}
    if not per_layer:
        raise SkipCheck("no weight tensor with a non-zero norm to compare updates with")
    return UpdateRatioMeasure(result.describe(), per_layer, ctx.config.lr, ctx.config.optimizer,
                              _grads_cleared(result))


def _update_plot(result: Probe) -> PlotSpec:
    series = []
    for name in result.layers:
        xs, ys = thin(range(1, len(result.update_ratios[name]) + 1),
                      [r if math.isfinite(r) and r > 0 else None for r in result.update_ratios[name]])
        series.append(Series(name, xs, ys))
    if series:
        series.append(Series("guideline 1e-3", [1, len(result.loss)], [UPDATE_RATIO_TARGET] * 2))
    return PlotSpec("line", "Update / weight norm per step", series, x_label="step",
                    y_label="||update|| / ||weight||", y_log=True)


@check("training.update_ratio", title="Updates are about 1e-3 of the weights", needs=("gradients",))
def update_ratio(ctx: RunContext):
    result = _gradient_probe(ctx)
    finding = update_ratio_verdict(_measure_update_ratios(ctx, result))
    finding.plots = [_update_plot(result)]
    return finding


def update_ratio_verdict(m: UpdateRatioMeasure) -> Finding:
    per_layer = m.per_layer
    high = {n: r for n, r in per_layer.items() if r >= UPDATE_RATIO_HIGH}
    low = {n: r for n, r in per_layer.items() if r <= UPDATE_RATIO_LOW}
    evidence = {"source": m.source, "per_layer_median_ratio": per_layer, "target": UPDATE_RATIO_TARGET,
                "lr": m.lr, "optimizer": m.optimizer}
    msg = (f"In {m.source}, the median ratio of the update norm to the weight norm per step, per layer: "
           + ", ".join(f"{n} {r:.1e}" for n, r in per_layer.items())
           + f". Guideline ~{UPDATE_RATIO_TARGET:g} (CS231n); above {UPDATE_RATIO_HIGH:g} the lr is likely too "
             f"high, at {UPDATE_RATIO_FAIL:g} the weights are replaced every step; below {UPDATE_RATIO_LOW:g} "
             f"they hardly move.")
    if not m.grads_cleared and all(r == 0 for r in per_layer.values()):
        return fail("the weights never change during training", detail=msg,
                    fix="Check that the optimizer holds the model's parameters, that train_step calls "
                        "optimizer.step(), and that gradients reach the weights (training.vanishing_gradients).",
                    evidence=evidence)
    if high:
        worst = max(high.values())
        status = fail if worst >= UPDATE_RATIO_FAIL else warn
        return status(f"updates are {worst:.1e} of the weights per step in {len(high)} layer(s)",
                      detail=msg, fix=f"Lower the learning rate (now {m.lr:g}) until the ratio is near "
                                      f"1e-3; training.lr_range suggests a value.", evidence=evidence)
    if len(low) == len(per_layer):
        return warn(f"updates are tiny: at most {max(low.values()):.1e} of the weights per step",
                    detail=msg, fix=f"Raise the learning rate (now {m.lr:g}); training.lr_range "
                                    f"suggests a value.", evidence=evidence)
    return passed(f"updates are {min(per_layer.values()):.0e} to {max(per_layer.values()):.0e} of the weights",
                  detail=msg, evidence=evidence)
