"""sanity.model_builds, sanity.forward_pass, sanity.loss_at_init: the factory returns a model, a real
batch runs through it, and its loss before training is what an uninformed prediction scores."""

from __future__ import annotations

from dataclasses import dataclass

from ...analyses.model_trace import (
    fresh_model,
    require_torch_model,
    sample_rows,
    single_threaded,
)
from ...analyses.modeling import first_tensor
from ...engine.context import RunContext
from ...engine.inputs import feed
from ...engine.registry import check
from ...findings import Finding, SkipCheck, fail, passed, warn
from ...project.usercode import UserCodeError, call_user
from ...wording import num
from .batch import batch_rows, fixed_batch, fixed_rows, input_shapes

# Rows of the fixed batch the model-touching sanity checks run through the model.
FORWARD_ROWS = 64
# Karpathy, "A Recipe for Training Neural Networks" (2019), "verify loss @ init": a freshly initialised
# model should score what an uninformed prediction scores (ln C for C-way softmax). An initial loss well
# above it means the first steps are spent shrinking over-confident outputs (the "hockey stick" curve);
# twice the uninformed loss is where that starts to cost real training time, ten times means outputs are
# so large that softmax/sigmoid saturate and gradients are useless.
INIT_LOSS_WARN_RATIO = 2.0
INIT_LOSS_FAIL_RATIO = 10.0
# Below this fraction of the uninformed loss at init the model already "knows" the labels (a leak) or
# the loss does not see what it expects (e.g. NLL on probabilities instead of log-probabilities).
INIT_LOSS_LOW_RATIO = 0.25
INIT_LOSS_ROWS = 512


def _count_params(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


# ---- model_builds ----------------------------------------------------------------------------

def _input_evidence(ctx: RunContext) -> dict:
    """What the model is built for: n_inputs (the feature width) for a table; for a tensor project the
    input shape of one item, per input tensor (DESIGN §3b)."""
    if not ctx.is_tensor:
        return {"n_inputs": int(ctx.X("train").shape[1])}
    from ...engine.inputs import input_tensors

    x, _ = ctx.tensor_split("train").item(0)
    return {"input_shape": {name: list(t.shape) for name, t in input_tensors(x)}}


def _build_call(evidence: dict) -> str:
    if "n_inputs" in evidence:
        return f"build_model({evidence['n_inputs']}, {evidence['n_outputs']})"
    return "the model factory"


@check("sanity.model_builds", title="The model factory runs and returns a model", needs=("model",))
@single_threaded
def model_builds(ctx: RunContext):
    import time

    start = time.perf_counter()
    model = ctx.build_model()
    seconds = time.perf_counter() - start
    kind = ctx.model_kind
    evidence = {"returned": type(model).__module__ + "." + type(model).__name__, "build_seconds": round(seconds, 3),
                **_input_evidence(ctx), "n_outputs": ctx.n_outputs}
    if kind == "torch":
        total, trainable = _count_params(model)
        evidence.update({"parameters": total, "trainable": trainable})
        if total == 0:
            return fail("build_model returned a module with no parameters",
                        detail=f"{evidence['returned']} has no parameters, so nothing can be trained.",
                        fix="Register layers as attributes (self.fc = nn.Linear(...)) or in nn.ModuleList, "
                            "not in a plain Python list.", evidence=evidence)
        if trainable == 0:
            return fail("every parameter of the model is frozen (requires_grad=False)",
                        detail=f"{total:,} parameters, none trainable: the optimizer has nothing to update.",
                        fix="Unfreeze at least the layers you mean to train (p.requires_grad_(True)).",
                        evidence=evidence)
        frozen = f", {total - trainable:,} frozen" if trainable < total else ""
        return passed(f"{type(model).__name__} with {total:,} parameters ({trainable:,} trainable{frozen})",
                      evidence=evidence)
    if kind == "sklearn":
        steps = [type(s).__name__ for _, s in getattr(model, "steps", [])] or [type(model).__name__]
        evidence["steps"] = steps
        return passed(f"scikit-learn estimator {' -> '.join(steps)}", evidence=evidence)
    return fail(f"build_model returned {type(model).__name__}, not a model",
                detail=f"{_build_call(evidence)} returned "
                       f"{evidence['returned']} ({str(model)[:200]!r}). mltriage needs a torch.nn.Module or a "
                       f"scikit-learn estimator (an object with fit and predict).",
                fix="Return the model object itself (a forgotten `return`, or returning a tuple such as "
                    "(model, optimizer), are the usual causes).", evidence=evidence)


# ---- forward_pass ----------------------------------------------------------------------------

@check("sanity.forward_pass", title="A real batch runs through the model", needs=("model",))
@single_threaded
def forward_pass(ctx: RunContext):
    if ctx.model_kind == "sklearn":
        return _sklearn_forward(ctx)
    require_torch_model(ctx, "")
    import numpy as np
    import torch

    if ctx.is_tensor:
        xb, yb = fixed_batch(ctx, FORWARD_ROWS)
        n_rows = batch_rows(xb, yb)
    else:
        X, _ = sample_rows(ctx, FORWARD_ROWS)
        xb, yb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device), None
        n_rows = len(X)
    model = fresh_model(ctx)
    model.eval()
    with torch.no_grad():
        out = call_user(ctx.config, "the model's forward()", feed, model, xb)
    tensor = first_tensor(out)
    evidence = {"batch_shape": _batch_shape(xb), "returned": type(out).__name__, "expected_outputs": ctx.n_outputs}
    if tensor is None:
        return fail(f"forward() returned {type(out).__name__}, not a tensor",
                    detail="mltriage, losses and metrics need the model to return one tensor of scores.",
                    fix="Return the output tensor from forward(); keep auxiliary outputs out of the main path.",
                    evidence=evidence)
    if isinstance(out, (tuple, list)):
        evidence["note"] = "forward() returned a sequence; its first tensor was used"
    shape = list(tensor.shape)
    evidence.update({"output_shape": shape, "dtype": str(tensor.dtype)})
    if yb is not None and yb.dim() >= 2:  # sequence targets (N, T): outputs (N, T, V) or (N*T, V)
        evidence["target_shape"] = list(yb.shape)
        expected, ok_shape = _sequence_expectation(shape, list(yb.shape))
    else:
        expected = f"({n_rows}, {ctx.n_outputs})" + (f" or ({n_rows},)" if ctx.n_outputs == 1 else "")
        ok_shape = (shape == [n_rows, ctx.n_outputs]) or (ctx.n_outputs == 1 and shape == [n_rows])
    if not tensor.dtype.is_floating_point:
        return fail(f"the output has dtype {tensor.dtype}, not floating point",
                    detail="Integer or boolean outputs carry no gradient: nothing upstream can learn.",
                    fix="Return the raw scores; take argmax only when predicting.", evidence=evidence)
    values = tensor.detach().float().cpu().numpy()
    nonfinite = int(np.size(values) - np.isfinite(values).sum())
    evidence["nonfinite_values"] = nonfinite
    if nonfinite:
        return fail(f"{nonfinite} of {values.size} outputs are NaN or infinite on a fresh model",
                    detail="A freshly built model should produce finite scores for real inputs. Non-finite "
                           "values at init come from missing or infinite inputs, a log or division of something "
                           "that can be zero in forward(), or a broken initialisation.",
                    fix="Check the featurised inputs for missing or infinite values (data.missing_values) and any log/sqrt/"
                        "division in forward().", evidence=evidence)
    if not ok_shape:
        batch_changed = bool(shape) and shape[0] != n_rows and (yb is None or yb.dim() < 2)
        return fail(f"output shape {tuple(shape)}, expected {expected}",
                    detail=f"A batch of {n_rows} rows gave outputs of shape {tuple(shape)}; the loss "
                           f"{ctx.loss_name} needs {expected}."
                           + (" The batch dimension changed: a reshape/view in forward() mixes examples."
                              if batch_changed else ""),
                    fix="Build the last layer with n_outputs units and keep the batch dimension first "
                        "(x.flatten(1) or x.reshape(len(x), -1), not x.view(-1, ...)).", evidence=evidence)
    return passed(f"a batch of {n_rows} rows gives finite {tensor.dtype} outputs of shape {tuple(shape)}",
                  evidence=evidence)


def _batch_shape(xb):
    """The input's shape: one list for a tensor (as for tables), else a shape per named input tensor."""
    import torch

    if isinstance(xb, torch.Tensor):
        return list(xb.shape)
    return input_shapes(xb)


def _sequence_expectation(shape: list[int], target: list[int]) -> tuple[str, bool]:
    """Outputs for (N, T) sequence targets: (N, T, V), or already flattened to (N*T, V)."""
    n_tokens = 1
    for d in target:
        n_tokens *= d
    expected = f"{tuple(target) + ('V',)} or ({n_tokens}, V)".replace("'", "")
    ok = len(shape) >= 2 and (shape[:-1] == target or (len(shape) == 2 and shape[0] == n_tokens))
    return expected, ok


def _sklearn_forward(ctx: RunContext):
    import numpy as np
    from sklearn.base import clone

    model = ctx.build_model()
    X, y = sample_rows(ctx, 1000)
    with ctx.budget.spend():
        fitted = call_user(ctx.config, "the estimator's fit", clone(model).fit, X, y)
    Xb = X[:FORWARD_ROWS]
    pred = np.asarray(call_user(ctx.config, "the estimator's predict", fitted.predict, Xb))
    evidence = {"fit_rows": len(X), "predict_shape": list(pred.shape)}
    problems = []
    if pred.shape[0] != len(Xb):
        problems.append(f"predict returned {pred.shape[0]} rows for {len(Xb)} inputs")
    if ctx.is_classification and hasattr(fitted, "predict_proba"):
        proba = np.asarray(fitted.predict_proba(Xb), dtype=float)
        seen = len(np.unique(y))
        evidence.update({"proba_shape": list(proba.shape), "classes_in_fit": seen})
        if proba.shape != (len(Xb), seen):
            problems.append(f"predict_proba shape {proba.shape}, expected ({len(Xb)}, {seen})")
        elif not np.all(np.isfinite(proba)):
            problems.append("predict_proba returned missing or infinite values")
    elif pred.dtype.kind == "f" and not np.all(np.isfinite(pred)):
        problems.append("predict returned missing or infinite values")
    if problems:
        return fail(problems[0], detail="; ".join(problems) + f" (fitted on {len(X)} training rows).",
                    fix="Check the estimator's output on a small fit before training on everything.",
                    evidence=evidence)
    return passed(f"{type(model).__name__} fits {len(X)} rows and predicts shape {tuple(pred.shape)}",
                  evidence=evidence)


# ---- loss_at_init ----------------------------------------------------------------------------

@dataclass
class InitLoss:
    """The loss of a fresh model on training rows next to the loss of an uninformed prediction."""

    loss: str
    is_classification: bool
    rows: int
    theory: float
    theory_is: str                      # the uninformed loss in words
    measured: float = float("nan")
    error: str | None = None            # the loss could not be computed on the model's outputs
    label_entropy: float | None = None  # classification: entropy of the sample's labels
    target_mean: float | None = None    # regression: mean of the sample's targets


def _measure_init_loss(ctx: RunContext) -> InitLoss:
    import numpy as np

    from ...analyses.modeling import eval_loss, make_loss, target_tensor
    from .uninformed import theory_description, uninformed_prediction

    if ctx.is_tensor:
        X, yt = _tensor_init_rows(ctx)
        y = yt.numpy()
    else:
        X, y = sample_rows(ctx, INIT_LOSS_ROWS)
        yt = target_tensor(ctx, y)
    loss_fn = make_loss(ctx)
    theory = float(loss_fn(uninformed_prediction(ctx, yt), yt))
    m = InitLoss(loss=ctx.loss_name, is_classification=ctx.is_classification, rows=len(X), theory=theory,
                 theory_is=theory_description(ctx))
    model = fresh_model(ctx)
    try:
        m.measured = eval_loss(ctx, model, X, y, loss_fn)
    except (RuntimeError, ValueError) as exc:
        m.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return m
    if ctx.is_classification:
        y = y[y >= 0]  # sequence targets: positions marked ignore_index (-100) are no label
        prior = np.bincount(y, minlength=max(ctx.n_outputs, 2)) / max(len(y), 1)
        prior = prior[prior > 0]
        m.label_entropy = float(-(prior * np.log(prior)).sum())
    else:
        m.target_mean = float(np.mean(y))
    return m


def _tensor_init_rows(ctx: RunContext):
    """The init-loss sample of a tensor project and its targets as one tensor: (N,) labels, or for
    sequence targets every position's label flattened (the uninformed loss is per token: ln V)."""
    import torch

    from ...analyses.modeling import PREDICT_BATCH_TENSOR, cast_targets

    X, _ = fixed_rows(ctx, INIT_LOSS_ROWS)
    parts = [cast_targets(ctx, yb).reshape(-1) if ctx.target_kind == "sequence" else cast_targets(ctx, yb)
             for _, yb in X.batches(PREDICT_BATCH_TENSOR)]
    return X, torch.cat(parts)


def _init_loss_verdict(m: InitLoss) -> Finding:
    import math

    if m.error is not None:
        return fail(f"the {m.loss} loss cannot be computed on the model's outputs", detail=m.error,
                    fix="Match the output layer to the loss (see architecture.output_layer).",
                    evidence={"loss": m.loss})
    evidence = {"loss": m.loss, "measured": m.measured, "theory": m.theory, "rows": m.rows, "theory_is": m.theory_is}
    if m.is_classification:
        evidence["label_entropy"] = m.label_entropy
    if not math.isfinite(m.measured):
        return fail("the loss of the fresh model is not finite",
                    detail=f"Measured {num(m.measured)} on {m.rows} training rows.",
                    fix="Look for missing or infinite inputs, or a log of a probability that can be 0 in the model.",
                    evidence=evidence)
    if m.theory <= 0:
        raise SkipCheck("the targets of the sample are constant: no uninformed loss to compare with")
    ratio = m.measured / m.theory
    evidence["ratio"] = ratio
    measured_txt = f"{m.measured:.4g} vs {m.theory:.4g} expected ({m.theory_is})"
    causes = ("Likely causes: inputs that are not normalised (large feature values give large outputs), "
              "weights initialised too large for the layer width, or a final layer whose scale/bias is far "
              "from the targets' scale.")
    if not m.is_classification:
        mean = m.target_mean
        evidence["target_mean"] = mean
        causes = (f"The targets average {mean:.4g} with variance {m.theory:.4g}; a fresh model predicts values near "
                  f"zero unless its inputs or weights are large, so its error includes the squared offset "
                  f"({mean * mean:.4g}) as well. " + causes)
    fix = ("Standardise the inputs (zero mean, unit variance), use the default or He/Glorot initialisation, "
           "and start the last layer small (for regression set its bias to the target mean).")
    if m.measured < 0:
        return fail(f"negative loss at init: {measured_txt}",
                    detail="A proper classification/regression loss is never negative. With nll this means the "
                           "model outputs probabilities, not log-probabilities.",
                    fix="Return log_softmax outputs for nll, or use cross_entropy on raw logits.", evidence=evidence)
    if ratio >= INIT_LOSS_FAIL_RATIO:
        return fail(f"loss at init is {ratio:.0f}x theory: {measured_txt}",
                    detail=f"The fresh model is extremely confident before learning anything. {causes}",
                    fix=fix, evidence=evidence)
    if ratio >= INIT_LOSS_WARN_RATIO:
        return warn(f"loss at init is {ratio:.1f}x theory: {measured_txt}",
                    detail=f"Above {INIT_LOSS_WARN_RATIO:g}x the uninformed loss the first part of training is "
                           f"spent just moving the outputs to the right scale. {causes}", fix=fix, evidence=evidence)
    if ratio <= INIT_LOSS_LOW_RATIO:
        return warn(f"loss at init is far below theory: {measured_txt}",
                    detail="An untrained model should not beat an uninformed prediction by this much. Either the "
                           "inputs give the label away (leakage), or the loss is not fed what it expects (nll "
                           "without log-probabilities).",
                    fix="Check data.target_leakage and architecture.output_layer.", evidence=evidence)
    return passed(f"loss at init {measured_txt}", evidence=evidence)


@check("sanity.loss_at_init", title="Loss at initialisation matches theory", needs=("model",))
@single_threaded
def loss_at_init(ctx: RunContext):
    require_torch_model(ctx, "an estimator has no loss before it is fitted")
    return _init_loss_verdict(_measure_init_loss(ctx))


# ---- the loss of a batch under each standard loss (sanity.loss_shapes on a step with its own loss) ---

# torch.nn.functional losses by the vocabulary name of the loss they compute (DESIGN §3 loss names).
FUNCTIONAL_LOSSES = {"cross_entropy": "cross_entropy", "nll_loss": "nll", "binary_cross_entropy": "bce",
                     "binary_cross_entropy_with_logits": "bce_with_logits", "mse_loss": "mse", "l1_loss": "l1",
                     "smooth_l1_loss": "huber", "huber_loss": "huber"}
ELEMENTWISE = ("bce", "bce_with_logits", "mse", "l1", "huber")


def _standard_loss(name: str, out, yb, squeeze: bool):
    """One standard loss of outputs vs targets, shaped as mltriage's loop shapes them (squeeze a trailing
    1, flatten sequence positions); squeeze=False gives the pair as a loop that does not squeeze sees it."""
    import torch.nn.functional as F

    if name in ("cross_entropy", "nll"):
        if yb.dtype.is_floating_point:
            return None
        if yb.dim() >= 2 or out.dim() >= 3:
            out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
        return (F.cross_entropy if name == "cross_entropy" else F.nll_loss)(out, yb)
    if squeeze and out.dim() == 2 and out.shape[1] == 1 and yb.dim() == 1:
        out = out.squeeze(1)
    target = yb.float()
    if name == "bce":
        if not bool(((out >= 0) & (out <= 1)).all()):
            return None
        return F.binary_cross_entropy(*_broadcast_pair(out, target))
    fn = {"bce_with_logits": F.binary_cross_entropy_with_logits, "mse": F.mse_loss, "l1": F.l1_loss,
          "huber": F.huber_loss}[name]
    return fn(*_broadcast_pair(out, target))


def _broadcast_pair(out, target):
    """The pair as elementwise torch losses broadcast it (they warn, then broadcast)."""
    shape = broadcast_shape(out.shape, target.shape)
    return out.expand(shape), target.expand(shape)


def broadcast_shape(a, b) -> tuple:
    """The shape two shapes broadcast to; ValueError when they do not. numpy's rule is torch's, and
    torch.broadcast_shapes would import sympy (0.7-2 s of CPU, via torch.fx) to answer the same."""
    import numpy as np

    return tuple(np.broadcast_shapes(tuple(a), tuple(b)))


def standard_loss_values(ctx: RunContext, out, yb) -> list[dict]:
    """The batch loss under the configured loss and each standard loss that applies to these outputs:
    [{"loss", "value", "broadcast"}]; "broadcast" marks an elementwise loss of (N, 1) outputs against (N,)
    targets taken without squeezing (every prediction against every target)."""
    import math
    import warnings

    from ...analyses.modeling import loss_value, make_loss

    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values.append({"loss": f"configured {ctx.loss_name}",
                           "value": float(loss_value(ctx, make_loss(ctx), out, yb)), "broadcast": False})
        except (RuntimeError, ValueError, TypeError, IndexError):
            pass
        for name in ("cross_entropy", "nll", *ELEMENTWISE):
            for squeeze in (True, False):
                try:
                    value = _standard_loss(name, out, yb, squeeze)
                except (RuntimeError, ValueError, TypeError, IndexError):
                    value = None
                if value is None or not math.isfinite(float(value)):
                    continue
                broadcast = name in ELEMENTWISE and tuple(out.shape) != tuple(yb.shape) and not squeeze \
                    and out.dim() == 2 and out.shape[1] == 1 and yb.dim() == 1 and out.shape[0] > 1
                values.append({"loss": name, "value": float(value), "broadcast": broadcast})
                if name in ("cross_entropy", "nll"):
                    break  # squeezing does not apply to class-index losses
    return values


class functional_losses:
    """Record the torch.nn.functional loss calls made on this thread while active (a step that calls
    F.nll_loss itself, its own nn.CrossEntropyLoss, a loss inside the model's forward): the function and
    the shapes/dtypes it was given. Other threads' calls pass through unrecorded."""

    def __init__(self):
        self.calls: list[dict] = []
        self._saved: dict = {}

    def __enter__(self) -> list[dict]:
        import threading

        import torch.nn.functional as F

        owner = threading.get_ident()
        for name in FUNCTIONAL_LOSSES:
            original = getattr(F, name, None)
            if original is None:
                continue
            self._saved[name] = original
            setattr(F, name, self._recorder(name, original, owner))
        return self.calls

    def _recorder(self, name, original, owner):
        import threading

        def recorded(*args, **kwargs):
            if threading.get_ident() == owner:
                tensors = [a for a in args[:2] if hasattr(a, "shape")]
                self.calls.append({"function": name, "shapes": [tuple(a.shape) for a in tensors],
                                   "dtypes": [str(a.dtype) for a in tensors]})
            return original(*args, **kwargs)

        return recorded

    def __exit__(self, *exc) -> None:
        import torch.nn.functional as F

        for name, original in self._saved.items():
            setattr(F, name, original)


def reference_losses(ctx: RunContext, model, xb, yb, seed: int) -> list[dict]:
    """Before a step: the batch's loss under each standard loss with the same weights, in train mode with
    the seed the step gets (same dropout masks when its forward draws first) and in eval mode."""
    import copy

    import torch

    twin = copy.deepcopy(model)
    values = []
    with torch.no_grad():
        for mode in ("train", "eval"):
            twin.train(mode == "train")
            torch.manual_seed(seed)
            try:
                raw = call_user(ctx.config, "the model's forward()", feed, twin, xb)
            except UserCodeError:
                continue
            own = getattr(raw, "loss", None)
            if isinstance(own, torch.Tensor) and own.numel() == 1:
                values.append({"loss": "the model's own .loss", "value": float(own), "broadcast": False,
                               "mode": mode})
            out = first_tensor(raw)
            if out is not None:
                values += [{**v, "mode": mode} for v in standard_loss_values(ctx, out, yb)]
    return values
