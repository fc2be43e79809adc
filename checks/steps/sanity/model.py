"""sanity.model_builds, sanity.forward_pass, sanity.loss_at_init: the factory returns a model, a real
batch runs through it, and its loss before training is what an uninformed prediction scores."""

from __future__ import annotations

from dataclasses import dataclass

from ...analyses.model_trace import fresh_model, require_torch_model, sample_rows, single_threaded
from ...analyses.modeling import first_tensor
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, SkipCheck, fail, passed, warn
from ...project.usercode import call_user
from ...wording import num

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

@check("sanity.model_builds", title="The model factory runs and returns a model", needs=("model",))
@single_threaded
def model_builds(ctx: RunContext):
    import time

    start = time.perf_counter()
    model = ctx.build_model()
    seconds = time.perf_counter() - start
    kind = ctx.model_kind
    evidence = {"returned": type(model).__module__ + "." + type(model).__name__, "build_seconds": round(seconds, 3),
                "n_inputs": int(ctx.X("train").shape[1]), "n_outputs": ctx.n_outputs}
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
                detail=f"build_model({evidence['n_inputs']}, {evidence['n_outputs']}) returned "
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

    X, _ = sample_rows(ctx, FORWARD_ROWS)
    model = fresh_model(ctx)
    model.eval()
    xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    with torch.no_grad():
        out = call_user(ctx.config, "the model's forward()", model, xb)
    tensor = first_tensor(out)
    evidence = {"batch_shape": list(xb.shape), "returned": type(out).__name__, "expected_outputs": ctx.n_outputs}
    if tensor is None:
        return fail(f"forward() returned {type(out).__name__}, not a tensor",
                    detail="mltriage, losses and metrics need the model to return one tensor of scores.",
                    fix="Return the output tensor from forward(); keep auxiliary outputs out of the main path.",
                    evidence=evidence)
    if isinstance(out, (tuple, list)):
        evidence["note"] = "forward() returned a sequence; its first tensor was used"
    shape = list(tensor.shape)
    evidence.update({"output_shape": shape, "dtype": str(tensor.dtype)})
    expected = f"({len(X)}, {ctx.n_outputs})" + (f" or ({len(X)},)" if ctx.n_outputs == 1 else "")
    ok_shape = (shape == [len(X), ctx.n_outputs]) or (ctx.n_outputs == 1 and shape == [len(X)])
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
        return fail(f"output shape {tuple(shape)}, expected {expected}",
                    detail=f"A batch of {len(X)} rows gave outputs of shape {tuple(shape)}; the loss "
                           f"{ctx.loss_name} needs {expected}."
                           + (" The batch dimension changed: a reshape/view in forward() mixes examples."
                              if shape and shape[0] != len(X) else ""),
                    fix="Build the last layer with n_outputs units and keep the batch dimension first "
                        "(x.flatten(1) or x.reshape(len(x), -1), not x.view(-1, ...)).", evidence=evidence)
    return passed(f"a batch of {len(X)} rows gives finite {tensor.dtype} outputs of shape {tuple(shape)}",
                  evidence=evidence)


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

    from ...analyses.modeling import eval_loss, make_loss, target_tensor, theory_description, uninformed_prediction

    X, y = sample_rows(ctx, INIT_LOSS_ROWS)
    loss_fn = make_loss(ctx)
    yt = target_tensor(ctx, y)
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
        prior = np.bincount(y, minlength=max(ctx.n_outputs, 2)) / max(len(y), 1)
        prior = prior[prior > 0]
        m.label_entropy = float(-(prior * np.log(prior)).sum())
    else:
        m.target_mean = float(np.mean(y))
    return m


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
