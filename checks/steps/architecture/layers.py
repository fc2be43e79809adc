"""architecture.summary, architecture.output_size, architecture.capacity: what the model is made of,
read from one hooked forward pass of a fresh model (model_trace)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.model_trace import single_threaded, torch_trace
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, fail, info, passed, warn
from ...vocab import loss_info
from ...wording import cut_list

# Capacity: far fewer parameters than examples suggests underfitting risk, far more overfitting risk;
# these are informational ratios, not verdicts.
PARAMS_PER_EXAMPLE_HIGH = 100.0


# ---- summary -----------------------------------------------------------------------------------

# The layer table fits an 80-column terminal (over SSH, in tmux): name, type, output shape, parameters,
# 73 columns with the separating spaces, so that the text report's 6-column indent still leaves it whole.
SUMMARY_WIDTHS = (25, 14, 18, 13)
SUMMARY_WIDTH = sum(SUMMARY_WIDTHS) + len(SUMMARY_WIDTHS) - 1
SUMMARY_ROWS = 60
# Container modules call every child they hold; other torch.nn modules with children (MultiheadAttention,
# TransformerEncoderLayer) may use a child's weights without calling it (attention's out_proj).
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _fit(text: str, width: int, keep_end: bool = False) -> str:
    """text cut to width with an ellipsis: layer names keep their end (the most specific part)."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[:width - 1] + "…"


def _summary_line(layer: str, type_name: str, shape: str, params: str) -> str:
    w = SUMMARY_WIDTHS
    return (f"{_fit(layer, w[0], keep_end=True):<{w[0]}} {_fit(type_name, w[1]):<{w[1]}} "
            f"{_fit(shape, w[2]):<{w[2]}} {_fit(params, w[3]):>{w[3]}}").rstrip()


def _count(n: int) -> str:
    """A parameter count with thousands separators, or in millions/billions when that is too wide."""
    text = f"{n:,}"
    if len(text) <= SUMMARY_WIDTHS[3]:
        return text
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"


def _shape(shape: list) -> str:
    """The output shape on the traced batch, as (64, 32); "-" when the module returned no tensor."""
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "-"


def summary_table(rows: list[dict], total: int, trainable: int) -> str:
    """The layer table as fixed-width text: a header, a rule, one line per layer (SUMMARY_ROWS at most,
    then how many more), and the totals; no line wider than SUMMARY_WIDTH."""
    lines = [_summary_line("layer", "type", "output shape", "params"), "-" * SUMMARY_WIDTH]
    lines += [_summary_line(r["layer"], r["type"], _shape(r["output_shape"]), _count(r["parameters"]))
              for r in rows[:SUMMARY_ROWS]]
    if len(rows) > SUMMARY_ROWS:
        lines.append(f"... {len(rows) - SUMMARY_ROWS} more layers (see the evidence)")
    lines.append("-" * SUMMARY_WIDTH)
    lines.append(_summary_line("total", f"{len(rows)} layers", "", _count(total)))
    if trainable != total:
        lines.append(_summary_line("trainable", "", "", _count(trainable)))
    return "\n".join(lines)


def _uses_children_directly(module) -> bool:
    return type(module).__module__.startswith("torch.") and type(module).__name__ not in CONTAINERS


def _never_called(model, called: set[str]) -> list[str]:
    """Leaf modules forward() never called, except those inside a called torch module that reads their
    weights itself (MultiheadAttention's out_proj)."""
    modules = dict(model.named_modules())
    unused = []
    for name, m in modules.items():
        if not name or name in called or any(True for _ in m.children()):
            continue
        parts = name.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
        if any(a in called and _uses_children_directly(modules[a]) for a in ancestors):
            continue
        unused.append(name)
    return unused


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
    unused = _never_called(model, {c.name for c in trace.calls})
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    evidence = {"layers": rows[:200], "parameters": total, "trainable": trainable, "never_called": unused,
                "input_shape": list(trace.input_shape),
                "inputs": [{"name": n, "shape": list(shape), "dtype": dtype} for n, shape, dtype in trace.inputs],
                "output_shape": list(trace.output.shape) if trace.output is not None else None}
    with_params = [r for r in rows if r["parameters"]]
    plots = [PlotSpec(kind="bar", title="parameters per layer", x_label="layer", y_label="parameters",
                      series=[Series("parameters", [r["layer"] for r in with_params],
                                     [r["parameters"] for r in with_params])])] if with_params else []
    note = f"; {len(unused)} module(s) never called: {cut_list(unused, 5)}" if unused else ""
    out_shape = ", ".join(["batch"] + [str(d) for d in (evidence["output_shape"] or [])[1:]])
    return info(f"{len(rows)} layers, {total:,} parameters ({trainable:,} trainable), output ({out_shape}){note}",
                detail=summary_table(rows, total, trainable),
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

@dataclass
class OutputSize:
    """The traced output against what the loss needs: one row per example with n_outputs scores, or for
    sequence targets (a language model) one distribution over the vocabulary per position."""

    shape: list | None           # output shape on the traced batch; None when forward returned no tensor
    output_type: str             # what forward() returned
    expected: int                # ctx.n_outputs (per-example targets)
    loss: str
    classes: list[str]
    sequence: bool = False       # (N, T) token targets
    largest_target: int | None = None     # largest target id in the traced batch (sequence targets)
    embedding_sizes: list[int] = field(default_factory=list)  # num_embeddings of the model's embeddings


def _measure_output_size(ctx: RunContext) -> OutputSize:
    trace = torch_trace(ctx, "the estimator sizes its output from the labels it is fitted on")
    sequence = ctx.is_tensor and ctx.target_kind == "sequence"
    m = OutputSize(shape=list(trace.output.shape) if trace.output is not None else None,
                   output_type=trace.output_type, expected=0 if sequence else ctx.n_outputs, loss=ctx.loss_name,
                   classes=[] if sequence else [str(c) for c in ctx.classes][:50], sequence=sequence)
    if sequence:
        m.largest_target = trace.target_max
        m.embedding_sizes = [int(mod.num_embeddings) for mod in trace.model.modules()
                             if type(mod).__name__ in ("Embedding", "EmbeddingBag")]
    return m


def _sequence_output_verdict(m: OutputSize, evidence: dict) -> Finding:
    width, top = m.shape[-1], m.largest_target
    evidence.update({"largest_target": top, "embedding_sizes": m.embedding_sizes})
    if top is None:  # float targets per position: no vocabulary to size the output by
        return info(f"output {tuple(m.shape)} for per-position targets that are not token ids",
                    detail="mltriage sizes a sequence model's output by the largest target id; these targets "
                           "are not integers.", evidence=evidence)
    if top is not None and top >= width:
        return fail(f"output width {width}, but the targets reach token id {top}",
                    detail=f"A {m.loss} loss over {width} outputs has no score for ids {width}..{top}: it raises on "
                           "CPU and hits a device-side assert on GPU. The last dimension must be the vocabulary.",
                    fix="Size the output layer with the vocabulary size (the one the Embedding is built with).",
                    evidence=evidence)
    if m.embedding_sizes and width not in m.embedding_sizes:
        return warn(f"output width {width} differs from the embedding size(s) {m.embedding_sizes}",
                    detail="A language model reads and predicts the same vocabulary: an output wider than it spends "
                           "probability on ids that never occur, a narrower one cannot predict some tokens it reads.",
                    fix="Build the decoder with the vocabulary size of the input Embedding.", evidence=evidence)
    return passed(f"output width {width} covers the vocabulary (largest target id {top})", evidence=evidence)


def _output_size_verdict(m: OutputSize) -> Finding:
    if m.shape is None:
        return fail(f"forward() returned {m.output_type}, not a tensor", evidence={})
    shape = m.shape
    evidence = {"output_shape": shape, "expected": m.expected, "loss": m.loss, "classes": m.classes}
    if m.sequence:
        return _sequence_output_verdict(m, evidence)
    width = int(shape[1]) if len(shape) == 2 else 1 if len(shape) == 1 else -1
    if len(shape) > 2:
        return fail(f"the output has shape {tuple(shape)}: more than (N, outputs)",
                    detail="The loss expects one row of scores per example.",
                    fix="Flatten or pool before the last layer so it returns (N, n_outputs).", evidence=evidence)
    builtin = loss_info(m.loss)
    per_class = builtin is not None and builtin.per_class_outputs  # one output per class (else one per example)
    if width == m.expected:
        what = f"{width} classes" if per_class else "1 output"
        return passed(f"output width {width} matches {what} ({m.loss})", evidence=evidence)
    if per_class and width > m.expected:
        return warn(f"{width} outputs for {m.expected} classes",
                    detail=f"Outputs {m.expected}..{width - 1} never see a target: they only learn to be "
                           f"small, and softmax spends probability on them. Usually a hard-coded class count.",
                    fix="Build the last layer with n_outputs units (the argument build_model receives).",
                    evidence=evidence)
    return fail(f"output width {width}, but the {m.loss} loss needs {m.expected}",
                detail=("Fewer outputs than classes: targets beyond the last output index crash the loss or are "
                        "never predicted." if per_class else
                        f"{m.loss} compares one output per example with the target."),
                fix="Build the last layer with n_outputs units (the argument build_model receives).",
                evidence=evidence)


@check("architecture.output_size", title="The output layer has one unit per output", needs=("model",))
@single_threaded
def output_size(ctx: RunContext):
    return _output_size_verdict(_measure_output_size(ctx))


# ---- capacity ----------------------------------------------------------------------------------

@check("architecture.capacity", title="Capacity vs data, bottlenecks, first convolution", needs=("model",))
@single_threaded
def capacity(ctx: RunContext):
    trace = torch_trace(ctx, "the estimator's capacity is set by its hyper-parameters, see the metrics step")
    model = trace.model
    import numpy as np

    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # A language model's targets are its tokens: the examples are its training sequences, and a hidden
    # width far below the vocabulary is the norm there (every LM projects a small state onto the
    # vocabulary), so the bottleneck rule applies to per-example classes only.
    sequence = ctx.is_tensor and ctx.target_kind == "sequence"
    if sequence:
        n_train = len(ctx.tensor_split("train"))
    else:
        n_train = int(np.sum(ctx.y("train") >= 0)) if ctx.is_classification else len(ctx.y("train"))
    ratio = total / max(n_train, 1)
    layers = trace.parametrized()
    modules = dict(model.named_modules())
    linear = [(c.name, modules.get(c.name)) for c in layers if c.type == "Linear"]
    hidden = linear[:-1]
    bottlenecks = [(name, m.out_features) for name, m in hidden if m is not None and ctx.n_outputs >= 3
                   and m.out_features < ctx.n_outputs and not sequence]
    # The first-convolution rule is about the input's channels (colour planes). A convolution after an
    # embedding (a text CNN) reads embedding features, and fewer filters than embedding dimensions is
    # ordinary there (Kim 2014: 100 filters over 300 dimensions), so such convolutions are left out.
    embedded = next((i for i, c in enumerate(layers) if c.type in ("Embedding", "EmbeddingBag")), len(layers))
    convs = [(c.name, modules.get(c.name)) for c in layers[:embedded] if c.type.startswith("Conv")]
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
    unit = "sequence" if sequence else "example"
    return info(f"{total:,} trainable parameters for {n_train:,} training {unit}s ({ratio:.1f} per {unit})",
                detail=f"{scale.capitalize()}. No layer is narrower than the number of outputs.", evidence=evidence)
