"""architecture.summary, architecture.output_size, architecture.capacity: what the model is made of,
read from one hooked forward pass of a fresh model (model_trace)."""

from __future__ import annotations

from ...analyses.model_trace import single_threaded, torch_trace
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import PlotSpec, Series, fail, info, passed, warn
from ...vocab import loss_info
from ...wording import cut_list

# Capacity: far fewer parameters than examples suggests underfitting risk, far more overfitting risk;
# these are informational ratios, not verdicts.
PARAMS_PER_EXAMPLE_HIGH = 100.0


# ---- summary -----------------------------------------------------------------------------------

@check("architecture.summary", title="Layers, output shapes and parameters", needs=("model",))
@single_threaded
def summary(ctx: RunContext):
    if ctx.model_kind == "sklearn":
        return _sklearn_summary(ctx)
    trace = torch_trace(ctx, "")
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
    note = f"; {len(unused)} module(s) never called: {cut_list(unused, 5)}" if unused else ""
    out_shape = ", ".join(["batch"] + [str(d) for d in (evidence["output_shape"] or [])[1:]])
    return info(f"{len(rows)} layers, {total:,} parameters ({trainable:,} trainable), output ({out_shape}){note}",
                detail=f"{'layer':<28} {'type':<16} {'output shape':<20} {'params':>10}\n{table}",
                evidence=evidence, plots=plots)


def _sklearn_summary(ctx: RunContext):
    model = ctx.first_model()
    steps = getattr(model, "steps", None) or [(type(model).__name__, model)]
    rows = [{"step": name, "type": type(est).__name__,
             "params": {k: repr(v)[:40] for k, v in list(est.get_params(deep=False).items())[:12]}
             if hasattr(est, "get_params") else {}} for name, est in steps]
    detail = "\n".join(f"{r['step']}: {r['type']}({', '.join(f'{k}={v}' for k, v in r['params'].items())})"
                       for r in rows)
    return info(f"scikit-learn {' -> '.join(r['type'] for r in rows)}", detail=detail, evidence={"steps": rows})


# ---- output_size -------------------------------------------------------------------------------

@check("architecture.output_size", title="The output layer has one unit per output", needs=("model",))
@single_threaded
def output_size(ctx: RunContext):
    trace = torch_trace(ctx, "the estimator sizes its output from the labels it is fitted on")
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
    builtin = loss_info(ctx.loss_name)
    per_class = builtin is not None and builtin.per_class_outputs  # one output per class (else one per example)
    if width == ctx.n_outputs:
        what = f"{width} classes" if per_class else "1 output"
        return passed(f"output width {width} matches {what} ({ctx.loss_name})", evidence=evidence)
    if per_class and width > ctx.n_outputs:
        return warn(f"{width} outputs for {ctx.n_outputs} classes",
                    detail=f"Outputs {ctx.n_outputs}..{width - 1} never see a target: they only learn to be "
                           f"small, and softmax spends probability on them. Usually a hard-coded class count.",
                    fix="Build the last layer with n_outputs units (the argument build_model receives).",
                    evidence=evidence)
    return fail(f"output width {width}, but the {ctx.loss_name} loss needs {ctx.n_outputs}",
                detail=("Fewer outputs than classes: targets beyond the last output index crash the loss or are "
                        "never predicted." if per_class else
                        f"{ctx.loss_name} compares one output per example with the target."),
                fix="Build the last layer with n_outputs units (the argument build_model receives).",
                evidence=evidence)


# ---- capacity ----------------------------------------------------------------------------------

@check("architecture.capacity", title="Capacity vs data, bottlenecks, first convolution", needs=("model",))
@single_threaded
def capacity(ctx: RunContext):
    trace = torch_trace(ctx, "the estimator's capacity is set by its hyper-parameters, see the metrics step")
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
