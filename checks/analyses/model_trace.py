"""A hooked forward pass that records what every module of a PyTorch model does on a real batch.

Shared by the sanity, architecture and training steps. Stable API (other modules import it; the model and
row helpers live in model_access and are re-exported here):

- ``require_torch_model(ctx, why)``: raise SkipCheck unless the project builds a torch nn.Module;
  ``why`` says what the check would have measured (the skip message names the estimator).
- ``sample_rows(ctx, n, split="train", salt=0) -> (X, y)``: up to n labelled rows of a split, drawn with a
  fixed seed (numpy float32 X, encoded y); ``salt`` draws a different fixed sample.
- ``sample_inputs(ctx, n, split="train", salt=0)``: up to n rows of a split to feed a model, whatever the
  targets (sequence targets too): the rows of sample_rows when labels are per example, else a fixed random
  sample of the split's items (TensorRows).
- ``fresh_model(ctx)``: a freshly built, seeded model on ctx.device.
- ``trace_forward(model, X, device="cpu", train_mode=False) -> ModelTrace``: one forward pass of X (a float
  matrix, or a batch as the model receives it: a tensor, a tuple or a dict of tensors, DESIGN §3b) with
  forward hooks on every module and a torch-function mode that sees functional activations
  (torch.relu, F.softmax, x.sigmoid(), ...). Weights are not changed; the model's mode is restored.
- ``model_trace(ctx) -> ModelTrace``: trace_forward of a fresh model on a fixed batch of
  TRACE_ROWS training rows, eval mode; an @analysis, computed once per run.
- ``torch_trace(ctx, why) -> ModelTrace``: require_torch_model, then model_trace.
- ``final_activation(trace) -> FinalActivation``: what the model applies last (softmax, log_softmax,
  sigmoid, tanh, relu, none), found from the last module called or, for functional calls, from the
  output values.
- ``call_labels(calls)``: display names for calls, "#2", "#3" appended to repeated calls of one module.
- ``single_threaded(fn)``: decorator running a check with one torch CPU thread (restored afterwards).
- ``parameter_layers(model)``: [(name, module)] of modules with their own parameters, in definition order.

ModelTrace fields: ``calls`` (list of Call in the order they ran), ``output`` (the model output as a
numpy array, or None when the model returned no tensor), ``output_type`` (type name of what forward
returned), ``input_shape`` (of the first input tensor), ``inputs`` ((name, shape, dtype) of every input tensor),
``rows`` (examples in the batch), ``target_shape`` / ``target_max`` (of the batch's targets when the trace
had them: a sequence model's (N, T) token targets and the largest id), ``model`` (the traced module),
``error`` (always None; exceptions propagate).
Helpers: ``trace.leaves()`` (module calls of leaf modules), ``trace.activations(kinds)`` (calls whose kind is
in kinds), ``trace.parametrized()`` (calls of modules with own parameters).

Call fields: ``name`` (qualified module name; functional calls are "<module>.<fn>()"), ``type`` (class or
function name), ``kind`` (activation kind from ACTIVATION_KINDS, "dropout", "param" for layers with own
parameters, or "other"), ``source`` ("module" | "function"), ``order``, ``is_leaf``, ``output_shape``,
``n_params`` (own parameters), ``out`` and ``pre`` (Stats of the output and of the input, numpy-free dicts),
``unit_fired`` (per unit: fraction of examples where the unit's output is non-zero; for activation calls
only), ``pre_saturated`` (fraction of input values with |x| > SATURATION_PRE; sigmoid/tanh only, and for
LSTM/GRU/RNN layers the input part of their gate pre-activations, see _gate_input_saturation).
A module returning a tuple (LSTM/GRU: (output, hidden); MultiheadAttention: (output, weights)) is recorded
by its first tensor (a PackedSequence by its data). Units are channels for convolution outputs (N, C, ...)
and the last axis otherwise ((N, F), and (N, T, F) from Embedding, Linear, LSTM or attention).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..engine.inputs import batch_size_of, feed, input_tensors, is_tensor_rows
from .model_access import (fresh_model, parameter_layers, require_torch_model, sample_inputs,  # noqa: F401
                           sample_rows, single_threaded)  # (re-exported: the steps import them from here)
from .modeling import batch_of, first_tensor

TRACE_ROWS = 256
# Pre-activation magnitude beyond which sigmoid/tanh are "saturated": sigmoid'(5) = 0.0066 and
# tanh'(5) = 1.8e-4, i.e. almost no gradient passes (Glorot & Bengio 2010, "Understanding the difficulty
# of training deep feedforward neural networks", studied saturation of exactly these units).
SATURATION_PRE = 5.0

# Module class name -> activation kind.
MODULE_KINDS = {
    "Softmax": "softmax", "Softmax2d": "softmax", "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid", "Hardsigmoid": "sigmoid", "Tanh": "tanh", "Hardtanh": "tanh",
    "ReLU": "relu", "ReLU6": "relu", "Softplus": "nonneg",
    "Dropout": "dropout", "Dropout1d": "dropout", "Dropout2d": "dropout", "Dropout3d": "dropout",
    "AlphaDropout": "dropout", "FeatureAlphaDropout": "dropout",
}
# Functional names (torch.*, torch.nn.functional.*, Tensor methods) -> activation kind.
FUNCTION_KINDS = {
    "softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
    "tanh": "tanh", "tanh_": "tanh", "relu": "relu", "relu_": "relu", "relu6": "relu",
    "softplus": "nonneg", "dropout": "dropout",
}
ACTIVATION_KINDS = ("softmax", "log_softmax", "sigmoid", "tanh", "relu", "nonneg")
# Modules that pass their input through unchanged in value (eval mode): skipped when looking for
# the last activation of the model.
PASS_THROUGH = ("Identity", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                "AlphaDropout", "FeatureAlphaDropout")


@dataclass
class Call:
    name: str
    type: str
    kind: str
    source: str
    order: int
    is_leaf: bool = True
    output_shape: tuple | None = None
    n_params: int = 0
    out: dict[str, float] = field(default_factory=dict)
    pre: dict[str, float] = field(default_factory=dict)
    unit_fired: list[float] | None = None
    pre_saturated: float | None = None


@dataclass
class ModelTrace:
    model: Any
    calls: list[Call]
    output: Any
    output_type: str
    input_shape: tuple
    error: str | None = None
    inputs: list = field(default_factory=list)   # (name, shape, dtype) of each input tensor
    rows: int = 0                                # examples in the traced batch
    target_shape: tuple | None = None            # the batch's targets, when the trace was given them
    target_max: int | None = None                # the largest integer target (class or token id)
    # The last few leaf outputs (values), kept to tell whether the model returns a module's output as is.
    _tail: list = field(default_factory=list, repr=False)

    def leaves(self) -> list[Call]:
        return [c for c in self.calls if c.source == "module" and c.is_leaf]

    def activations(self, kinds=ACTIVATION_KINDS) -> list[Call]:
        return [c for c in self.calls if c.kind in kinds]

    def parametrized(self) -> list[Call]:
        return [c for c in self.calls if c.source == "module" and c.n_params > 0]


@dataclass
class FinalActivation:
    kind: str            # softmax | log_softmax | sigmoid | tanh | relu | nonneg | none
    module: str | None   # the module or call that applied it; None when found from values
    how: str             # "module" | "function" | "values" | "none"


def call_labels(calls: list[Call]) -> list[str]:
    """Display names for calls: a module called more than once (a shared nn.ReLU) gets "#2", "#3", ..."""
    seen: dict[str, int] = {}
    labels = []
    for c in calls:
        seen[c.name] = seen.get(c.name, 0) + 1
        labels.append(c.name if seen[c.name] == 1 else f"{c.name}#{seen[c.name]}")
    return labels


def module_output(value):
    """The tensor a module call is recorded by: a tensor itself, a PackedSequence's data, the first tensor of
    a tuple/list (LSTM/GRU (output, hidden), attention (output, weights)), an output object's .logits or a
    dict's first tensor; None when there is none (or it is a nested tensor, which has no flat values)."""
    import torch
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(value, PackedSequence):
        value = value.data
    if isinstance(value, torch.Tensor):
        return None if value.is_nested else value
    logits = getattr(value, "logits", None)
    if isinstance(logits, torch.Tensor):
        return module_output(logits)
    if isinstance(value, dict):
        return next((t for t in map(module_output, value.values()) if t is not None), None)
    if isinstance(value, (tuple, list)) and value:
        return module_output(value[0])
    return None


def _stats(t) -> dict[str, float]:
    import torch

    x = t.detach().float()
    if x.numel() == 0:
        return {}
    finite = torch.isfinite(x)
    xf = x[finite] if not bool(finite.all()) else x
    if xf.numel() == 0:
        return {"finite": 0.0}
    return {"mean": float(xf.mean()), "std": float(xf.std()) if xf.numel() > 1 else 0.0,
            "min": float(xf.min()), "max": float(xf.max()), "abs_mean": float(xf.abs().mean()),
            "frac_zero": float((xf == 0).float().mean()), "finite": float(finite.float().mean())}


# Recurrent layers whose gates are sigmoids and tanh (a vanilla RNN only with its default tanh).
RECURRENT_GATED = ("LSTM", "GRU", "RNN")


def _gate_input_saturation(module, x) -> float | None:
    """A recurrent layer's saturation: the share of the input part of its first layer's gate pre-activations
    (W_ih x + b_ih) beyond |SATURATION_PRE|. The gates themselves run inside the fused kernel, out of the
    hooks' sight; at initialisation the recurrent part W_hh h adds little (|h| < 1 and PyTorch's default
    W_hh has std 1/sqrt(3 hidden), so its sum has std below 0.6), so the input part decides saturation."""
    import torch.nn.functional as F

    w, b = getattr(module, "weight_ih_l0", None), getattr(module, "bias_ih_l0", None)
    if getattr(module, "nonlinearity", "tanh") != "tanh" or w is None or x is None or not x.is_floating_point() \
            or x.shape[-1] != w.shape[1]:
        return None
    pre = F.linear(x.detach().to(w.dtype), w.detach(), None if b is None else b.detach())
    return float((pre.abs() > SATURATION_PRE).float().mean()) if pre.numel() else None


# Normalisation layers keep the layout of what they normalise (BatchNorm1d follows a Conv1d or a Linear).
LAYOUT_KEEPING = ("BatchNorm", "SyncBatchNorm", "GroupNorm", "InstanceNorm", "LazyBatchNorm", "LazyInstanceNorm")


def _layout_after(type_name: str, layout: str) -> str:
    if type_name.startswith(("Conv", "LazyConv")):
        return "channels"
    return layout if type_name.startswith(LAYOUT_KEEPING) else "last"


def _unit_fired(t, unit_dim: int) -> list[float] | None:
    """Per unit (channel / feature), the fraction of examples for which the unit is non-zero anywhere."""
    if t.ndim < 2:
        return None
    x = t.detach()
    dim = unit_dim % x.ndim
    x = x.movedim(dim, 1).reshape(x.shape[0], x.shape[dim], -1) if x.ndim > 2 else x
    active = (x != 0)
    if active.ndim == 3:
        active = active.any(dim=2)
    return active.float().mean(dim=0).tolist()


class _Recorder:
    def __init__(self):
        self.calls: list[Call] = []
        self.stack: list[Any] = []          # modules currently running (innermost last)
        self.names: dict[int, str] = {}
        self.layout = "last"  # where the units of a 3-D activation are: "channels" (after a conv) or "last"
        self.tail: list = []

    def unit_dim(self, t) -> int:
        # Convolution outputs (N, C, ...): a unit is a channel (PyTorch's layout; 4-D and 5-D activations
        # are always that). A 3-D activation is (N, C, L) after a Conv1d, else (N, T, F) from an Embedding,
        # a Linear over a sequence, an LSTM or attention: units on the last axis. 2-D: (N, F).
        if t.ndim >= 4:
            return 1
        return 1 if t.ndim == 3 and self.layout == "channels" else -1

    def record(self, name, type_name, kind, source, inp, out, is_leaf=True, n_params=0):
        call = Call(name=name, type=type_name, kind=kind, source=source, order=len(self.calls),
                    is_leaf=is_leaf, n_params=n_params)
        if out is not None:
            call.output_shape = tuple(out.shape)
            call.out = _stats(out)
            if kind in ACTIVATION_KINDS:
                call.unit_fired = _unit_fired(out, self.unit_dim(out))
        if inp is not None and (kind in ACTIVATION_KINDS or source == "function"):
            call.pre = _stats(inp)
            if kind in ("sigmoid", "tanh"):
                call.pre_saturated = float((inp.detach().abs() > SATURATION_PRE).float().mean())
        self.calls.append(call)
        if out is not None and (source == "module" and is_leaf or source == "function"):
            self.tail = (self.tail + [(call, out.detach())])[-6:]
        if n_params > 0:
            self.layout = _layout_after(type_name, self.layout)


def _function_mode(recorder: _Recorder):
    import torch
    from torch.overrides import TorchFunctionMode

    class ActivationCalls(TorchFunctionMode):
        """Sees functional activations written in a custom forward() (torch.softmax, F.relu, x.sigmoid())."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            kind = FUNCTION_KINDS.get(name)
            if kind is None:
                return out
            inner = recorder.stack[-1] if recorder.stack else None
            # nn.ReLU/nn.Softmax call F.relu/F.softmax themselves: the module hook records those.
            if inner is not None and MODULE_KINDS.get(type(inner).__name__) == kind:
                return out
            if kind == "dropout" and not (args and isinstance(args[0], torch.Tensor)):
                return out
            where = recorder.names.get(id(inner), "") if inner is not None else ""
            inp = first_tensor(args)
            res = first_tensor(out)
            if res is not None and res.dtype.is_floating_point:
                with torch._C.DisableTorchFunction():
                    recorder.record(f"{where or 'forward'}.{name}()", name, kind, "function", inp, res)
            return out

    return ActivationCalls()


def _as_batch(X, device: str):
    """A batch as the model receives it: a float matrix (numpy) as float32 on device (the table contract,
    DESIGN §3), a tensor, tuple or dict of tensors (DESIGN §3b) as it is."""
    import torch

    if isinstance(X, (torch.Tensor, tuple, list, dict)):
        return X
    return torch.as_tensor(X, dtype=torch.float32, device=device)


def _hooked(model, recorder: _Recorder) -> list:
    """Forward (pre-)hooks on every submodule, recording each call; returns the handles."""
    import torch

    def pre_hook(module, args):
        recorder.stack.append(module)

    def post_hook(module, args, output):
        if recorder.stack and recorder.stack[-1] is module:
            recorder.stack.pop()
        is_leaf = not any(True for _ in module.children())
        type_name = type(module).__name__
        n_own = sum(p.numel() for p in module.parameters(recurse=False))
        kind = MODULE_KINDS.get(type_name) or ("param" if n_own else "other")
        with torch._C.DisableTorchFunction():
            recorder.record(recorder.names.get(id(module), type_name), type_name, kind, "module",
                            module_output(args), module_output(output), is_leaf=is_leaf, n_params=n_own)
            if type_name in RECURRENT_GATED:
                recorder.calls[-1].pre_saturated = _gate_input_saturation(module, module_output(args))

    handles = []
    for m in model.modules():
        if m is not model:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    return handles


@contextlib.contextmanager
def _without_fused_attention():
    """TransformerEncoder(Layer) and MultiheadAttention on their plain Python path: their fused eval-mode
    kernels compute the same function but skip the submodules (the attention, the feed-forward Linears, the
    activation), which the hooks then never see."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def trace_forward(model, X, device: str = "cpu", train_mode: bool = False) -> ModelTrace:
    """One hooked forward pass of X (a float matrix, or a batch: tensor, tuple or dict of tensors) through
    model, without gradients."""
    import torch

    recorder = _Recorder()
    recorder.names = {id(m): (name or type(model).__name__) for name, m in model.named_modules()}
    handles = _hooked(model, recorder)
    was_training = model.training
    model.train(train_mode)
    xb = _as_batch(X, device)
    try:
        with torch.no_grad(), _without_fused_attention(), _function_mode(recorder):
            out = feed(model, xb)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    tensor = first_tensor(out)
    output = tensor.detach().float().cpu().numpy() if tensor is not None else None
    inputs = [(name, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in input_tensors(xb)]
    trace = ModelTrace(model=model, calls=recorder.calls, output=output, output_type=type(out).__name__,
                       input_shape=inputs[0][1] if inputs else (), inputs=inputs, rows=batch_size_of(xb))
    trace._tail = [(c, t.float().cpu().numpy()) for c, t in recorder.tail]
    return trace


def _target_summary(yb) -> tuple[tuple | None, int | None]:
    """(shape, largest integer value) of a target batch; (None, None) without one."""
    import torch

    if not isinstance(yb, torch.Tensor) or yb.numel() == 0:
        return None, None
    top = int(yb.max()) if not yb.is_floating_point() else None
    return tuple(yb.shape), top


@analysis
def model_trace(ctx: RunContext) -> ModelTrace:
    """A fresh model traced on TRACE_ROWS training rows in eval mode (computed once per run). Tensor
    projects: the rows' real batch, collated as the model receives it (token ids stay integers)."""
    from ..project.usercode import call_user

    X = sample_inputs(ctx, TRACE_ROWS)
    model = fresh_model(ctx)
    xb, yb = batch_of(ctx, X) if is_tensor_rows(X) else (X, None)
    trace = call_user(ctx.config, "the model's forward()", trace_forward, model, xb, ctx.device)
    trace.target_shape, trace.target_max = _target_summary(yb)
    return trace


def torch_trace(ctx: RunContext, why: str) -> ModelTrace:
    """The run's model trace; SkipCheck (saying `why`) unless the project builds a torch model."""
    require_torch_model(ctx, why)
    return model_trace(ctx)


def values_kind(output) -> str:
    """The activation an output's values betray: softmax, log_softmax, sigmoid, nonneg or none."""
    import numpy as np

    s = np.asarray(output, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)):
        return "none"
    if s.ndim == 1:
        s = s[:, None]
    # (N, T, V) sequence outputs: one distribution per position, over the last axis.
    s = s.reshape(-1, s.shape[-1]) if s.ndim >= 3 else s.reshape(len(s), -1)
    if s.shape[1] >= 2:
        if np.all(s >= 0) and np.all(s <= 1) and np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
            return "softmax"
        if np.all(s <= 1e-6) and np.allclose(np.exp(s).sum(axis=1), 1.0, atol=1e-4):
            return "log_softmax"
    if np.all(s > 0) and np.all(s < 1):
        return "sigmoid"
    # Non-negative with exact zeros in a good share of values: a ReLU-like clamp (a linear layer
    # essentially never outputs exact zeros).
    if np.all(s >= 0) and np.mean(s == 0) > 0.05:
        return "relu"
    return "none"


def final_activation(trace: ModelTrace) -> FinalActivation:
    """What the model does last to its output: from the last module/function call whose output the
    model returns (walking back over pass-through modules), else from the output values."""
    import numpy as np

    if trace.output is None:
        return FinalActivation("none", None, "none")
    out = trace.output
    tail = list(trace._tail)
    # Find the last recorded call whose output is the model output, value for value.
    returned_index = None
    for i in range(len(tail) - 1, -1, -1):
        call, values = tail[i]
        if values.size == out.size and np.array_equal(values.reshape(out.shape), out, equal_nan=True):
            returned_index = i
            break
    if returned_index is not None:
        i = returned_index
        while i >= 0:
            call, values = tail[i]
            if call.kind in ACTIVATION_KINDS:
                return FinalActivation(call.kind, call.name, call.source)
            if call.type in PASS_THROUGH and i > 0 and tail[i - 1][1].size == values.size:
                i -= 1
                continue
            return FinalActivation("none", call.name, call.source)
        return FinalActivation("none", None, "none")
    kind = values_kind(out)
    return FinalActivation(kind, None, "values" if kind != "none" else "none")
