"""Step 4, architecture: output layer vs loss, output size, capacity, dead or saturated units,
initialisation scale and dropout, read from one hooked forward pass of a fresh model (model_trace)."""

from __future__ import annotations

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, fail, info, passed, warn
from ..analyses.model_trace import call_labels, final_activation, model_trace, require_torch_model, single_threaded
from ..engine.registry import check

# Dying ReLU: a unit whose output is zero for every example of the batch gets no gradient and stays
# dead. Lu et al. 2019 ("Dying ReLU and Initialization: Theory and Numerical Examples") show a network
# whose layers are mostly dead collapses to a constant function; we call a layer broken when at least
# 70% of its units are dead, and worth a look from 25% (under He/default initialisation on a real batch
# of TRACE_ROWS examples practically no unit is dead, so a quarter dead is already abnormal).
DEAD_FAIL_FRACTION = 0.70
DEAD_WARN_FRACTION = 0.25
# Saturation (Glorot & Bengio 2010): sigmoid/tanh units whose pre-activations sit beyond |5| pass
# almost no gradient. "Most" pre-activations saturated -> warn; nearly all -> fail.
SATURATED_WARN_FRACTION = 0.5
SATURATED_FAIL_FRACTION = 0.9
# Initialisation scale (He et al. 2015, "Delving Deep into Rectifiers"; Glorot & Bengio 2010): a good
# initialisation keeps the activation scale roughly constant with depth. We warn when the output
# standard deviation of the last parametrised layer differs from the first one by more than two orders
# of magnitude, and when a layer's weight std is more than WEIGHT_STD_FACTOR times outside the range
# between PyTorch's default (1/sqrt(3 fan_in)) and He (sqrt(2/fan_in)).
ACTIVATION_DRIFT_WARN = 100.0
WEIGHT_STD_FACTOR = 10.0
# A weight tensor whose mean is larger than its spread is not a zero-centred initialisation: every unit
# starts biased the same way (e.g. all-negative weights feeding ReLUs).
WEIGHT_MEAN_OVER_STD = 1.0
# Dropout: Srivastava et al. 2014 (JMLR, "Dropout", section 7.3) find test error flat for retention
# probabilities 0.4-0.8 in hidden layers and rising steeply below 0.4; they recommend dropping 0.5 at most
# in hidden layers. Above 0.5 we warn; at 0.8 and beyond most of the signal is thrown away: fail.
DROPOUT_WARN_RATE = 0.5
DROPOUT_FAIL_RATE = 0.8
# Capacity: far fewer parameters than examples suggests underfitting risk, far more overfitting risk;
# these are informational ratios, not verdicts.
PARAMS_PER_EXAMPLE_HIGH = 100.0

LOGIT_LOSSES = ("cross_entropy", "bce_with_logits")
REGRESSION_LOSSES = ("mse", "l1", "huber")
# Bounds of the outputs each final activation can produce.
ACTIVATION_RANGE = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, None),
                    "nonneg": (0.0, None), "log_softmax": (None, 0.0)}


def _trace(ctx: RunContext, why: str):
    require_torch_model(ctx, why)
    return model_trace(ctx)


# ---- summary -----------------------------------------------------------------------------------

@check("architecture.summary", title="Layers, output shapes and parameters", needs=("model",))
@single_threaded
def summary(ctx: RunContext):
    if ctx.model_kind == "sklearn":
        return _sklearn_summary(ctx)
    trace = _trace(ctx, "")
    model = trace.model
    rows = []
    for call in trace.calls:
        if call.source == "module" and (call.is_leaf or call.n_params):
            rows.append({"layer": call.name, "type": call.type, "output_shape": list(call.output_shape or []),
                         "parameters": call.n_params})
    called = {c.name for c in trace.calls}
    unused = [name for name, m in model.named_modules() if name and name not in called
              and not any(True for _ in m.children())]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    table = "\n".join(f"{r['layer']:<28} {r['type']:<16} {str(tuple(r['output_shape'])):<20} {r['parameters']:>10,}"
                      for r in rows[:60])
    evidence = {"layers": rows[:200], "parameters": total, "trainable": trainable, "never_called": unused,
                "input_shape": list(trace.input_shape),
                "output_shape": list(trace.output.shape) if trace.output is not None else None}
    with_params = [r for r in rows if r["parameters"]]
    plots = [PlotSpec(kind="bar", title="parameters per layer", x_label="layer", y_label="parameters",
                      series=[Series("parameters", [r["layer"] for r in with_params],
                                     [r["parameters"] for r in with_params])])] if with_params else []
    note = f"; {len(unused)} module(s) never called: {', '.join(unused[:5])}" if unused else ""
    out_shape = ", ".join(["batch"] + [str(d) for d in (evidence["output_shape"] or [])[1:]])
    return info(f"{len(rows)} layers, {total:,} parameters ({trainable:,} trainable), output ({out_shape}){note}",
                detail=f"{'layer':<28} {'type':<16} {'output shape':<20} {'params':>10}\n{table}",
                evidence=evidence, plots=plots)


def _sklearn_summary(ctx: RunContext):
    model = ctx.shared("model:probe", ctx.build_model)
    steps = getattr(model, "steps", None) or [(type(model).__name__, model)]
    rows = [{"step": name, "type": type(est).__name__,
             "params": {k: repr(v)[:40] for k, v in list(est.get_params(deep=False).items())[:12]}
             if hasattr(est, "get_params") else {}} for name, est in steps]
    detail = "\n".join(f"{r['step']}: {r['type']}({', '.join(f'{k}={v}' for k, v in r['params'].items())})"
                       for r in rows)
    return info(f"scikit-learn {' -> '.join(r['type'] for r in rows)}", detail=detail, evidence={"steps": rows})


# ---- output_layer ------------------------------------------------------------------------------

def _target_range(ctx: RunContext):
    import numpy as np

    y = ctx.y("train")
    y = y[np.isfinite(y)]
    return (float(y.min()), float(y.max()), len(y)) if len(y) else (0.0, 0.0, 0)


@check("architecture.output_layer", title="The final activation fits the loss", needs=("model",))
@single_threaded
def output_layer(ctx: RunContext):
    import numpy as np

    trace = _trace(ctx, "the estimator produces its own predictions; there is no output layer to inspect")
    act = final_activation(trace)
    loss = ctx.loss_name
    where = f" ({act.module})" if act.module else " (found from the output values)" if act.how == "values" else ""
    evidence = {"final_activation": act.kind, "found_by": act.how, "module": act.module, "loss": loss,
                "n_outputs": ctx.n_outputs}

    # Softmax/log_softmax betray themselves in the values (rows summing to one); a sigmoid or a clamp
    # read from values alone could be a coincidence of a fresh model's small outputs, so at most warn.
    certain = act.how != "values" or act.kind in ("softmax", "log_softmax")

    def flag(make, title, detail, fix):
        if not certain and make is fail:
            make, title = warn, f"{title} (inferred from the output values)"
        return make(title, detail=detail, fix=fix, evidence=evidence)

    if loss == "cross_entropy":
        if act.kind == "softmax":
            return flag(fail, f"softmax{where} before CrossEntropyLoss",
                        "CrossEntropyLoss applies log-softmax itself; given probabilities it computes "
                        "log_softmax(softmax(z)), whose inputs live in [0, 1]. The loss cannot fall much below "
                        f"{np.log(1 + (ctx.n_outputs - 1) / np.e):.2f} for {ctx.n_outputs} classes and the gradients "
                        "vanish as the model becomes confident.",
                        "Return raw logits from the model; apply softmax only in predict() when you need "
                        "probabilities.")
        if act.kind == "sigmoid":
            return flag(fail, f"sigmoid{where} on the output before CrossEntropyLoss",
                        "A sigmoid squashes every logit into (0, 1) independently, which caps how far apart the "
                        "classes can be and kills the gradient of confident outputs.",
                        "Remove the sigmoid; CrossEntropyLoss wants raw logits.")
        if act.kind in ("relu", "nonneg"):
            return flag(warn, f"ReLU{where} on the logits before CrossEntropyLoss",
                        "Logits clipped at zero cannot express 'not this class' below zero, and classes whose "
                        "logit is clipped get no gradient.",
                        "Remove the activation after the last linear layer.")
        if act.kind == "log_softmax":
            return passed("log_softmax before CrossEntropyLoss: harmless (log_softmax is idempotent)",
                          detail="log_softmax(log_softmax(z)) = log_softmax(z), so the loss and gradients are those "
                                 "of plain logits. nll would be the conventional pairing.", evidence=evidence)
        return passed(f"raw logits{where} into CrossEntropyLoss", evidence=evidence)
    if loss == "nll":
        if act.kind == "log_softmax":
            return passed(f"log_softmax{where} into NLLLoss", evidence=evidence)
        if act.kind == "softmax":
            return flag(fail, f"softmax without log{where} before NLLLoss",
                        "NLLLoss expects log-probabilities and just negates the entry of the true class; on "
                        "probabilities it minimises -p, which is bounded, negative and badly scaled.",
                        "Use log_softmax as the last layer (or cross_entropy on raw logits).")
        return flag(fail, f"NLLLoss on outputs that are not log-probabilities ({act.kind}{where})",
                    "NLLLoss does not normalise: on raw scores it rewards making the true class's score "
                    "arbitrarily large, and the loss goes to minus infinity.",
                    "Add log_softmax after the last layer, or switch the loss to cross_entropy.")
    if loss == "bce_with_logits":
        if act.kind in ("sigmoid", "softmax"):
            return flag(fail, f"{act.kind}{where} before BCEWithLogitsLoss (applied twice)",
                        "BCEWithLogitsLoss applies the sigmoid itself; with another one in the model the "
                        "predicted probability can only range over (0.5, 0.73) and learning stalls.",
                        "Return the raw logit; apply sigmoid only in predict().")
        return passed(f"raw logit{where} into BCEWithLogitsLoss", evidence=evidence)
    if loss == "bce":
        if act.kind == "sigmoid":
            return passed(f"sigmoid{where} into BCELoss", detail="Consider bce_with_logits with raw logits: it is "
                          "numerically more stable.", evidence=evidence)
        if act.kind == "softmax":
            return flag(fail, f"softmax{where} on the output before BCELoss",
                        "A softmax over a single output is always 1; over several it does not give independent "
                        "probabilities.", "Use a single output with sigmoid (or bce_with_logits).")
        return flag(fail, f"BCELoss on outputs without a sigmoid ({act.kind}{where})",
                    "BCELoss expects probabilities in [0, 1]; raw scores make it fail or clamp its log.",
                    "Add a sigmoid as the last layer, or better use bce_with_logits on raw logits.")
    if loss in REGRESSION_LOSSES:
        return _regression_output(ctx, act, where, evidence, certain)
    return info(f"final activation {act.kind}{where}; custom loss {loss!r}",
                detail="mltriage cannot tell what a custom loss expects; make sure it matches the final activation.",
                evidence=evidence)


def _regression_output(ctx: RunContext, act, where: str, evidence: dict, certain: bool = True):
    import numpy as np

    low, high, n = _target_range(ctx)
    evidence.update({"target_min": low, "target_max": high})
    bounds = ACTIVATION_RANGE.get(act.kind)
    if bounds is None:
        return passed(f"unbounded output{where} for a {ctx.loss_name} regression", evidence=evidence)
    lo, hi = bounds
    y = ctx.y("train")
    y = y[np.isfinite(y)]
    outside = float(np.mean((y < lo if lo is not None else False) | (y > hi if hi is not None else False)))
    evidence["fraction_targets_out_of_range"] = outside
    span = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
    if outside > 0:
        return (fail if certain else warn)(f"{act.kind}{where} limits outputs to {span} but {outside:.0%} of targets lie outside",
                    detail=f"Targets range from {low:.4g} to {high:.4g}; the output activation can never reach "
                           f"{outside:.0%} of them, so their error has a floor and their gradient may vanish.",
                    fix="Drop the final activation (a plain linear output), or rescale the target into the "
                        "activation's range.", evidence=evidence)
    return passed(f"{act.kind}{where} output range {span} covers the targets [{low:.3g}, {high:.3g}]",
                  evidence=evidence)


# ---- output_size -------------------------------------------------------------------------------

@check("architecture.output_size", title="The output layer has one unit per output", needs=("model",))
@single_threaded
def output_size(ctx: RunContext):
    trace = _trace(ctx, "the estimator sizes its output from the labels it is fitted on")
    if trace.output is None:
        return fail(f"forward() returned {trace.output_type}, not a tensor", evidence={})
    shape = trace.output.shape
    width = int(shape[1]) if len(shape) == 2 else 1 if len(shape) == 1 else -1
    evidence = {"output_shape": list(shape), "expected": ctx.n_outputs, "loss": ctx.loss_name,
                "classes": [str(c) for c in ctx.classes][:50]}
    if len(shape) > 2:
        return fail(f"the output has shape {tuple(shape)}: more than (N, outputs)",
                    detail="The loss expects one row of scores per example.",
                    fix="Flatten or pool before the last layer so it returns (N, n_outputs).", evidence=evidence)
    if width == ctx.n_outputs:
        what = (f"{width} classes" if ctx.loss_name in ("cross_entropy", "nll")
                else "1 output")
        return passed(f"output width {width} matches {what} ({ctx.loss_name})", evidence=evidence)
    if ctx.loss_name in ("cross_entropy", "nll") and width > ctx.n_outputs:
        return warn(f"{width} outputs for {ctx.n_outputs} classes",
                    detail=f"Outputs {ctx.n_outputs}..{width - 1} never see a target: they only learn to be "
                           f"small, and softmax spends probability on them. Usually a hard-coded class count.",
                    fix="Build the last layer with n_outputs units (the argument build_model receives).",
                    evidence=evidence)
    return fail(f"output width {width}, but the {ctx.loss_name} loss needs {ctx.n_outputs}",
                detail=("Fewer outputs than classes: targets beyond the last output index crash the loss or are "
                        "never predicted." if ctx.loss_name in ("cross_entropy", "nll") else
                        f"{ctx.loss_name} compares one output per example with the target."),
                fix="Build the last layer with n_outputs units (the argument build_model receives).",
                evidence=evidence)


# ---- capacity ----------------------------------------------------------------------------------

@check("architecture.capacity", title="Capacity vs data, bottlenecks, first convolution", needs=("model",))
@single_threaded
def capacity(ctx: RunContext):
    trace = _trace(ctx, "the estimator's capacity is set by its hyper-parameters, see the metrics step")
    model = trace.model
    import numpy as np

    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_train = int(np.sum(ctx.y("train") >= 0)) if ctx.is_classification else len(ctx.y("train"))
    ratio = total / max(n_train, 1)
    layers = trace.parametrized()
    modules = dict(model.named_modules())
    linear = [(c.name, modules.get(c.name)) for c in layers if c.type == "Linear"]
    hidden = linear[:-1]
    bottlenecks = [(name, m.out_features) for name, m in hidden if m is not None and ctx.n_outputs >= 3
                   and m.out_features < ctx.n_outputs]
    convs = [(c.name, modules.get(c.name)) for c in layers if c.type.startswith("Conv")]
    evidence = {"trainable_parameters": total, "train_examples": n_train, "params_per_example": ratio,
                "bottlenecks": bottlenecks, "n_outputs": ctx.n_outputs,
                "linear_widths": [m.out_features for _, m in linear if m is not None]}
    findings = []
    if convs and convs[0][1] is not None:
        first = convs[0][1]
        evidence["first_conv"] = {"name": convs[0][0], "in_channels": first.in_channels,
                                  "out_channels": first.out_channels}
        if first.out_channels < first.in_channels:
            findings.append(f"the first convolution {convs[0][0]} maps {first.in_channels} input channels to only "
                            f"{first.out_channels}")
    if bottlenecks:
        name, width = bottlenecks[0]
        findings.append(f"hidden layer {name} has {width} units, fewer than the {ctx.n_outputs} classes")
    if findings:
        return warn(findings[0] + (f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""),
                    detail="; ".join(findings) + ". A layer narrower than what comes after it limits what the "
                           f"model can represent: {ctx.n_outputs} class scores computed from fewer numbers cannot "
                           "vary independently.",
                    fix="Widen the narrow layer to at least the number of outputs (or of input channels).",
                    evidence=evidence)
    scale = ("many more parameters than examples: expect to rely on regularisation and early stopping"
             if ratio > PARAMS_PER_EXAMPLE_HIGH else "fewer parameters than examples" if ratio < 1 else
             "comparable parameters and examples")
    return info(f"{total:,} trainable parameters for {n_train:,} training examples ({ratio:.1f} per example)",
                detail=f"{scale.capitalize()}. No layer is narrower than the number of outputs.", evidence=evidence)


# ---- dead_units --------------------------------------------------------------------------------

@check("architecture.dead_units", title="ReLU units that never fire", needs=("model",))
@single_threaded
def dead_units(ctx: RunContext):
    trace = _trace(ctx, "there are no ReLU units to inspect")
    relus = [(label, c) for label, c in zip(call_labels(trace.calls), trace.calls)
             if c.kind == "relu" and c.unit_fired]
    if not relus:
        return passed("no ReLU layers in the model", evidence={"relu_layers": 0})
    layers = []
    for label, c in relus:
        fired = c.unit_fired or []
        dead = sum(1 for f in fired if f == 0.0)
        layers.append({"layer": label, "units": len(fired), "dead": dead, "dead_fraction": dead / max(len(fired), 1),
                       "zero_fraction": c.out.get("frac_zero", 0.0)})
    worst = max(layers, key=lambda r: r["dead_fraction"])
    rows = trace.input_shape[0]
    evidence = {"layers": layers, "batch_rows": rows, "fail_fraction": DEAD_FAIL_FRACTION,
                "warn_fraction": DEAD_WARN_FRACTION}
    plots = [PlotSpec(kind="bar", title=f"dead ReLU units per layer (zero on all {rows} examples)",
                      series=[Series("dead fraction", [r["layer"] for r in layers],
                                     [r["dead_fraction"] for r in layers])], y_label="fraction of units")]
    measured = (f"{worst['dead']} of {worst['units']} units of {worst['layer']} output zero for every one of {rows} "
                f"training examples ({worst['dead_fraction']:.0%})")
    fix = ("Normalise the inputs, use He initialisation with zero or small positive biases, lower the learning rate, "
           "or use LeakyReLU/GELU.")
    detail = ("A ReLU unit that is zero for every input passes no gradient to its weights and cannot recover. "
              "Typical causes: large negative biases, weights initialised with a negative mean, inputs on a scale "
              "far from the initialisation's assumptions.")
    if worst["dead_fraction"] >= DEAD_FAIL_FRACTION:
        return fail(f"dead ReLU layer: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    if worst["dead_fraction"] >= DEAD_WARN_FRACTION:
        return warn(f"many dead ReLU units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    return passed(f"at most {worst['dead_fraction']:.0%} dead units in {len(layers)} ReLU layer(s) on a fresh model",
                  evidence=evidence, plots=plots)


# ---- saturation --------------------------------------------------------------------------------

@check("architecture.saturation", title="Sigmoid/tanh units pinned at their bounds", needs=("model",))
@single_threaded
def saturation(ctx: RunContext):
    from ..analyses.model_trace import SATURATION_PRE

    trace = _trace(ctx, "there are no sigmoid/tanh units to inspect")
    bounded = [(label, c) for label, c in zip(call_labels(trace.calls), trace.calls)
               if c.kind in ("sigmoid", "tanh") and c.pre_saturated is not None]
    if not bounded:
        return passed("no sigmoid or tanh units in the model", evidence={"bounded_layers": 0})
    layers = [{"layer": label, "kind": c.kind, "saturated_fraction": c.pre_saturated,
               "pre_std": c.pre.get("std"), "pre_abs_mean": c.pre.get("abs_mean")} for label, c in bounded]
    worst = max(layers, key=lambda r: r["saturated_fraction"])
    evidence = {"layers": layers, "threshold_abs_preactivation": SATURATION_PRE,
                "warn_fraction": SATURATED_WARN_FRACTION, "fail_fraction": SATURATED_FAIL_FRACTION}
    plots = [PlotSpec(kind="bar", title=f"share of pre-activations beyond |{SATURATION_PRE:g}|",
                      series=[Series("saturated", [r["layer"] for r in layers],
                                     [r["saturated_fraction"] for r in layers])], y_label="fraction")]
    measured = (f"{worst['saturated_fraction']:.0%} of the pre-activations of {worst['layer']} ({worst['kind']}) "
                f"lie beyond |{SATURATION_PRE:g}|")
    detail = (f"Beyond |{SATURATION_PRE:g}| the derivative of sigmoid is below 0.007 and that of tanh below 0.0002: "
              "saturated units barely learn. Causes: unnormalised inputs, weights initialised too large, or a "
              "sigmoid placed after a layer whose outputs are large.")
    fix = "Standardise the inputs and use Glorot (Xavier) initialisation for sigmoid/tanh layers."
    if worst["saturated_fraction"] >= SATURATED_FAIL_FRACTION:
        return fail(f"saturated units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    if worst["saturated_fraction"] >= SATURATED_WARN_FRACTION:
        return warn(f"mostly saturated units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    return passed(f"at most {worst['saturated_fraction']:.0%} of sigmoid/tanh pre-activations beyond "
                  f"|{SATURATION_PRE:g}|", evidence=evidence, plots=plots)


# ---- init_scale --------------------------------------------------------------------------------

def _fan_in(weight) -> int:
    return int(weight.shape[1] * (weight[0][0].numel() if weight.ndim > 2 else 1)) if weight.ndim >= 2 else 0


@check("architecture.init_scale", title="Initial weight and activation scale across depth", needs=("model",))
@single_threaded
def init_scale(ctx: RunContext):
    import math

    trace = _trace(ctx, "there are no layer weights to inspect")
    modules = dict(trace.model.named_modules())
    rows = []
    layers = [c for c in trace.parametrized() if c.type == "Linear" or c.type.startswith("Conv")]
    for i, c in enumerate(layers):
        m = modules.get(c.name)
        w = getattr(m, "weight", None)
        if w is None or w.ndim < 2:
            continue
        fan_in = _fan_in(w)
        wd = w.detach().float()
        rows.append({"layer": c.name, "type": c.type, "fan_in": fan_in, "weight_std": float(wd.std()),
                     "weight_mean": float(wd.mean()), "default_std": 1 / math.sqrt(3 * fan_in),
                     "he_std": math.sqrt(2 / fan_in), "output_std": c.out.get("std", float("nan")),
                     "last": i == len(layers) - 1, "numel": wd.numel()})
    if not rows:
        return passed("no linear or convolutional layers to inspect", evidence={})
    problems = []
    for r in rows:
        low, high = r["default_std"] / WEIGHT_STD_FACTOR, r["he_std"] * WEIGHT_STD_FACTOR
        if r["weight_std"] > high:
            problems.append(f"{r['layer']} weights have std {r['weight_std']:.3g}, over {WEIGHT_STD_FACTOR:g}x the He "
                            f"scale sqrt(2/fan_in) = {r['he_std']:.3g}")
        elif r["weight_std"] < low and not r["last"]:
            problems.append(f"{r['layer']} weights have std {r['weight_std']:.3g}, under 1/{WEIGHT_STD_FACTOR:g} of the "
                            f"default scale {r['default_std']:.3g} (near-zero init makes hidden units identical)")
        if r["numel"] >= 16 and abs(r["weight_mean"]) > WEIGHT_MEAN_OVER_STD * max(r["weight_std"], 1e-12):
            problems.append(f"{r['layer']} weights are not centred: mean {r['weight_mean']:.3g} vs std "
                            f"{r['weight_std']:.3g}")
    stds = [r["output_std"] for r in rows if math.isfinite(r["output_std"]) and r["output_std"] > 0]
    drift = stds[-1] / stds[0] if len(stds) >= 2 else 1.0
    evidence = {"layers": rows, "activation_std_last_over_first": drift, "drift_warn": ACTIVATION_DRIFT_WARN}
    if len(stds) >= 3 and (drift > ACTIVATION_DRIFT_WARN or drift < 1 / ACTIVATION_DRIFT_WARN):
        problems.append(f"the activation scale {'grows' if drift > 1 else 'shrinks'} {max(drift, 1 / drift):.0f}x "
                        f"from the first to the last layer ({stds[0]:.3g} -> {stds[-1]:.3g})")
    plots = [PlotSpec(kind="line", title="output std per layer (fresh model, one batch)", x_label="layer index",
                      y_label="std", y_log=True,
                      series=[Series("activation std", list(range(len(rows))), [r["output_std"] for r in rows]),
                              Series("weight std", list(range(len(rows))), [r["weight_std"] for r in rows])])]
    if problems:
        return warn(problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                    detail="; ".join(problems) + ". Initialisation that does not preserve the signal's scale "
                           "from layer to layer makes gradients vanish or explode before training starts.",
                    fix="Use the default PyTorch initialisation or nn.init.kaiming_normal_ (ReLU) / xavier_normal_ "
                        "(tanh, sigmoid), with zero biases; standardise the inputs.", evidence=evidence, plots=plots)
    return passed(f"{len(rows)} layers initialised on a sound scale; activation std changes {drift:.2g}x with depth",
                  evidence=evidence, plots=plots)


# ---- dropout -----------------------------------------------------------------------------------

@check("architecture.dropout", title="Dropout rates and placement", needs=("model",))
@single_threaded
def dropout(ctx: RunContext):
    trace = _trace(ctx, "estimators have no dropout")
    modules = dict(trace.model.named_modules())
    drops = [(name, m) for name, m in modules.items() if "Dropout" in type(m).__name__]
    if not drops:
        return passed("no dropout layers", evidence={"dropout_layers": []})
    rates = [{"layer": name, "type": type(m).__name__, "p": float(getattr(m, "p", 0.0))} for name, m in drops]
    order = [c.name for c in trace.calls if c.source == "module"]
    last_param = max((i for i, c in enumerate(trace.calls) if c.source == "module" and c.n_params), default=-1)
    after_output = [c.name for i, c in enumerate(trace.calls)
                    if i > last_param and c.kind == "dropout" and c.source == "module"]
    evidence = {"dropout_layers": rates, "after_last_layer": after_output, "called_order": order[:100],
                "warn_rate": DROPOUT_WARN_RATE, "fail_rate": DROPOUT_FAIL_RATE}
    worst = max(rates, key=lambda r: r["p"])
    if after_output:
        return fail(f"dropout {after_output[0]} is applied to the model's output",
                    detail="Dropout after the last layer zeroes random outputs (logits or predicted values) during "
                           "training and rescales the others, so the loss trains against corrupted predictions.",
                    fix="Move the dropout before the last layer, or remove it.", evidence=evidence)
    if worst["p"] >= DROPOUT_FAIL_RATE:
        return fail(f"dropout rate {worst['p']:g} in {worst['layer']}",
                    detail=f"Dropping {worst['p']:.0%} of the units leaves too little signal to learn from; "
                           f"rates above {DROPOUT_WARN_RATE:g} are rarely useful in hidden layers.",
                    fix="Use 0.1-0.5 (0.5 for wide fully-connected layers, lower for convolutional ones).",
                    evidence=evidence)
    if worst["p"] > DROPOUT_WARN_RATE:
        return warn(f"high dropout rate {worst['p']:g} in {worst['layer']}",
                    detail=f"Above {DROPOUT_WARN_RATE:g} dropout usually costs more accuracy than it saves in "
                           f"overfitting.", fix="Try 0.1-0.5.", evidence=evidence)
    return passed(f"{len(rates)} dropout layer(s), rates up to {worst['p']:g}, none on the output",
                  evidence=evidence)
