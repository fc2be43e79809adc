"""Step 2, sanity: the data loads, the model builds and runs, and the project's own code behaves."""

from __future__ import annotations

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ..analyses.model_trace import require_torch_model, sample_rows, single_threaded
from ..engine.registry import check
from ..project.usercode import call_user


def _dtype_family(dtype) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "text"


@check("sanity.data_loads", title="Every split loads with the same columns and types")
def data_loads(ctx: RunContext):
    train = ctx.train
    rows = {name: len(df) for name, df in ctx.splits.items()}
    evidence = {"rows": rows, "columns": len(train.columns)}
    missing, extra, retyped = {}, {}, {}
    for name, df in ctx.splits.items():
        if name == "train":
            continue
        lacking = [c for c in train.columns if c not in df.columns]
        added = [c for c in df.columns if c not in train.columns]
        if lacking:
            missing[name] = lacking
        if added:
            extra[name] = added
        # int vs float is the same kind of column (pandas turns ints with NaN into floats);
        # numbers vs strings is a real difference: the column parses differently in that split.
        changed = {c: f"{train[c].dtype} -> {df[c].dtype}" for c in train.columns
                   if c in df.columns and _dtype_family(train[c].dtype) != _dtype_family(df[c].dtype)}
        if changed:
            retyped[name] = changed
    holdout = (f" The validation split was held out from train ({int(100 * 0.2)}%, "
               f"{'stratified, ' if ctx.is_classification else ''}seed {ctx.seed}) because [data] valid "
               f"is not set.") if ctx.valid_is_holdout else ""
    evidence.update({"valid_held_out": ctx.valid_is_holdout, "missing_columns": missing,
                     "extra_columns": extra, "changed_types": retyped})
    needed = set(ctx.feature_columns) | {ctx.target}
    lacking_needed = {k: [c for c in v if c in needed] for k, v in missing.items()}
    lacking_needed = {k: v for k, v in lacking_needed.items() if v}
    if lacking_needed:
        split, cols = next(iter(lacking_needed.items()))
        return fail(f"the {split} split lacks {len(cols)} feature column(s) that train has",
                    detail=f"Columns missing from {split}: {', '.join(map(str, cols[:20]))}.{holdout}",
                    fix="Export every split with the same columns, from the same code path.",
                    evidence=evidence)
    retyped_needed = {k: {c: t for c, t in v.items() if c in needed} for k, v in retyped.items()}
    retyped_needed = {k: v for k, v in retyped_needed.items() if v}
    if retyped_needed:
        split, cols = next(iter(retyped_needed.items()))
        listing = "; ".join(f"{c}: {t}" for c, t in list(cols.items())[:10])
        return warn(f"{len(cols)} column(s) have a different type in {split} than in train",
                    detail=f"Type changes (train -> {split}): {listing}. A column that is numeric in one split "
                           f"and text in another usually holds stray strings ('n/a', '1,000') in one file.{holdout}",
                    fix="Find the values that do not parse (e.g. pd.to_numeric(col, errors='coerce').isna()) "
                        "and clean them at export.",
                    evidence=evidence)
    sizes = ", ".join(f"{k} {v:,}" for k, v in rows.items())
    sampled = {name: df.attrs["mltriage_sample"] for name, df in ctx.raw_splits.items()
               if "mltriage_sample" in df.attrs}
    if sampled:
        evidence["sampled"] = sampled
        listing = "; ".join(f"{k}: {v['rows_kept']:,} of {v['rows_in_file']:,} rows ({v['file_mb']:,} MB file)"
                            for k, v in sampled.items())
        return info(f"large file(s) sampled: {listing}",
                    detail=f"Files above the read limit are streamed and a seeded random sample of rows is kept "
                           f"so memory stays bounded. Every check in this run saw the sample.{holdout}",
                    fix="Raise MLTRIAGE_MAX_READ_MB to read more, or point the project at a smaller extract.",
                    evidence=evidence)
    if ctx.valid_is_holdout:
        return info(f"all splits load ({sizes}); valid was held out from train",
                    detail=holdout.strip(), evidence=evidence,
                    fix="Set [data] valid to your real validation file so results match your own numbers.")
    return passed(f"all splits load with the same columns ({sizes})", evidence=evidence)


# ---------------------------------------------------------------------------------------------
# Model sanity checks (PyTorch nn.Module; scikit-learn estimators where the idea applies).
# ---------------------------------------------------------------------------------------------


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
# Overfitting one tiny batch (Karpathy's recipe, "overfit one batch"): OVERFIT_ROWS examples, full-batch
# steps until the loss (eval mode) is under OVERFIT_LOSS_FRACTION of the uninformed loss and every example
# is classified right, within OVERFIT_MAX_STEPS steps and OVERFIT_SECONDS per attempt.
OVERFIT_ROWS = 32
OVERFIT_SMALL_ROWS = 4
OVERFIT_LOSS_FRACTION = 0.05
OVERFIT_MAX_STEPS = 500
OVERFIT_SECONDS = 6.0
# The configuration every reasonable network can memorise a tiny batch with (Adam's default rate,
# Kingma & Ba 2015), tried when the project's own optimizer settings do not get there.
REFERENCE_LR = 1e-3
# input_independent: real inputs must cut the held-out loss of the zero-input model by at least this
# fraction to "clearly win"; below INPUT_WARN_GAIN it is worth a look.
INPUT_FAIL_GAIN = 0.0
INPUT_WARN_GAIN = 0.03
INPUT_ROWS = 2000
INPUT_EPOCHS = 10
INPUT_SECONDS = 6.0
INPUT_MIN_EPOCHS = 3
# eval_determinism: outputs that differ by more than this (max abs) between two calls are not the same.
DETERMINISM_ATOL = 1e-5


def _best(curve: list[float]) -> float:
    import math

    finite = [v for v in curve if math.isfinite(v)]
    return min(finite) if finite else float("inf")


def _out_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


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
    model = ctx.build_model().to(ctx.device)
    model.eval()
    xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    with torch.no_grad():
        out = call_user(ctx.config, "the model's forward()", model, xb)
    tensor = _out_tensor(out)
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
                           "values at init come from inputs with NaN/inf, a log or division of something "
                           "that can be zero in forward(), or a broken initialisation.",
                    fix="Check the featurised inputs for NaN/inf (data.missing_values) and any log/sqrt/"
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
            problems.append("predict_proba returned NaN/inf")
    elif pred.dtype.kind == "f" and not np.all(np.isfinite(pred)):
        problems.append("predict returned NaN/inf")
    if problems:
        return fail(problems[0], detail="; ".join(problems) + f" (fitted on {len(X)} training rows).",
                    fix="Check the estimator's output on a small fit before training on everything.",
                    evidence=evidence)
    return passed(f"{type(model).__name__} fits {len(X)} rows and predicts shape {tuple(pred.shape)}",
                  evidence=evidence)


# ---- shared: the uninformed loss and a loss evaluation ----------------------------------------

def _uninformed_prediction(ctx: RunContext, yt):
    """The output of a model that knows nothing about the input, in the form the loss expects:
    uniform logits / log-probabilities / probabilities, or the target mean (median for l1)."""
    import math

    import torch

    n = len(yt)
    loss = ctx.loss_name
    if loss == "cross_entropy":
        return torch.zeros(n, ctx.n_outputs)
    if loss == "nll":
        return torch.full((n, ctx.n_outputs), -math.log(ctx.n_outputs))
    if loss == "bce_with_logits":
        return torch.zeros(n)
    if loss == "bce":
        return torch.full((n,), 0.5)
    if loss in ("mse", "huber"):
        return torch.full((n,), float(yt.float().mean()))
    if loss == "l1":
        return torch.full((n,), float(yt.float().median()))
    raise SkipCheck(f"custom loss {loss!r}: mltriage has no theoretical value for an uninformed model")


def _theory_description(ctx: RunContext) -> str:
    import math

    loss = ctx.loss_name
    if loss in ("cross_entropy", "nll"):
        return f"ln {ctx.n_outputs} = {math.log(ctx.n_outputs):.3f} (uniform over {ctx.n_outputs} classes)"
    if loss in ("bce", "bce_with_logits"):
        return f"ln 2 = {math.log(2):.3f} (probability 0.5)"
    if loss == "mse":
        return "var(y), the loss of predicting the target mean"
    return f"the {loss} loss of predicting the target {'median' if loss == 'l1' else 'mean'}"


def _eval_loss(ctx: RunContext, model, X, y, loss_fn=None) -> float:
    """mltriage's loss of a model on (X, y) in eval mode, without gradients (mode restored)."""
    import torch

    from ..analyses.modeling import loss_value, make_loss, target_tensor

    loss_fn = loss_fn or make_loss(ctx)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
            out = _out_tensor(model(xb))
            return float(loss_value(ctx, loss_fn, out, target_tensor(ctx, y).to(ctx.device)))
    finally:
        model.train(was)


def _predicted_labels(ctx: RunContext, out):
    """Class predictions from raw outputs in the form the configured loss implies."""
    if ctx.loss_name in ("cross_entropy", "nll") or (out.ndim == 2 and out.shape[1] > 1):
        return out.argmax(dim=1)
    scores = out.reshape(len(out))
    threshold = 0.5 if ctx.loss_name == "bce" else 0.0
    return (scores > threshold).long()


# ---- loss_at_init ----------------------------------------------------------------------------

@check("sanity.loss_at_init", title="Loss at initialisation matches theory", needs=("model",))
@single_threaded
def loss_at_init(ctx: RunContext):
    require_torch_model(ctx, "an estimator has no loss before it is fitted")
    import numpy as np

    from ..analyses.modeling import make_loss, target_tensor

    X, y = sample_rows(ctx, 512)
    loss_fn = make_loss(ctx)
    yt = target_tensor(ctx, y)
    theory = float(loss_fn(_uninformed_prediction(ctx, yt), yt))
    model = ctx.build_model().to(ctx.device)
    try:
        measured = _eval_loss(ctx, model, X, y, loss_fn)
    except (RuntimeError, ValueError) as exc:
        return fail(f"the {ctx.loss_name} loss cannot be computed on the model's outputs",
                    detail=f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                    fix="Match the output layer to the loss (see architecture.output_layer).",
                    evidence={"loss": ctx.loss_name})
    evidence = {"loss": ctx.loss_name, "measured": measured, "theory": theory, "rows": len(X),
                "theory_is": _theory_description(ctx)}
    if ctx.is_classification:
        prior = np.bincount(y, minlength=max(ctx.n_outputs, 2)) / max(len(y), 1)
        prior = prior[prior > 0]
        evidence["label_entropy"] = float(-(prior * np.log(prior)).sum())
    if not np.isfinite(measured):
        return fail("the loss of the fresh model is not finite",
                    detail=f"Measured {measured} on {len(X)} training rows.",
                    fix="Look for NaN/inf inputs, or a log of a probability that can be 0 in the model.",
                    evidence=evidence)
    if theory <= 0:
        raise SkipCheck("the targets of the sample are constant: no uninformed loss to compare with")
    ratio = measured / theory
    evidence["ratio"] = ratio
    measured_txt = f"{measured:.4g} vs {theory:.4g} expected ({_theory_description(ctx)})"
    causes = ("Likely causes: inputs that are not normalised (large feature values give large outputs), "
              "weights initialised too large for the layer width, or a final layer whose scale/bias is far "
              "from the targets' scale.")
    if not ctx.is_classification:
        mean = float(np.mean(y))
        evidence["target_mean"] = mean
        causes = (f"The targets average {mean:.4g} with variance {theory:.4g}; a fresh model predicts values near "
                  f"zero unless its inputs or weights are large, so its error includes the squared offset "
                  f"({mean * mean:.4g}) as well. " + causes)
    fix = ("Standardise the inputs (zero mean, unit variance), use the default or He/Glorot initialisation, "
           "and start the last layer small (for regression set its bias to the target mean).")
    if measured < 0:
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


# ---- the project's train_step, run under observation (shared by loss_shapes and train_step) ----

def _recording_loss(inner):
    """Wrap a loss module so every call records the shapes/dtypes it was given."""
    import torch.nn as nn

    class RecordingLoss(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.calls = []

        def forward(self, *args, **kwargs):
            shapes = [tuple(a.shape) if hasattr(a, "shape") else type(a).__name__ for a in args]
            dtypes = [str(a.dtype) if hasattr(a, "dtype") else "" for a in args]
            self.calls.append({"shapes": shapes, "dtypes": dtypes})
            return self.inner(*args, **kwargs)

    return RecordingLoss(inner)


def _mode_recorder(model):
    """Forward pre-hooks noting, for each forward call, whether the model and its mode-dependent
    layers (dropout, batch norm) were in train mode."""
    mode_dependent = [m for m in model.modules() if "Dropout" in type(m).__name__ or "BatchNorm" in type(m).__name__
                      or "InstanceNorm" in type(m).__name__]
    seen: list[dict] = []

    def hook(module, args):
        seen.append({"model": module.training,
                     "mode_dependent_training": [m.training for m in mode_dependent]})

    return model.register_forward_pre_hook(hook), seen, len(mode_dependent)


def _grad_vector(model):
    import torch

    parts = [p.grad.detach().reshape(-1).float() for p in model.parameters() if p.grad is not None]
    return torch.cat(parts) if parts else None


def _step_probe(ctx: RunContext) -> dict:
    def compute():
        import warnings

        # PyTorch warns about broadcasting target sizes; loss_shapes reports that as a finding instead.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using a target size")
            return _run_step_probe(ctx)

    return ctx.shared("sanity:train_step_probe", compute)


def _run_step_probe(ctx: RunContext) -> dict:
    """Run the project's train_step twice (with predict in between) on fixed batches and record what happened."""
    import copy

    import torch

    from ..analyses.modeling import make_loss, make_optimizer, target_tensor

    step = ctx.function("train_step")
    predict = ctx.function("predict")
    Xa, ya = sample_rows(ctx, FORWARD_ROWS, salt=1)
    Xb, yb = sample_rows(ctx, FORWARD_ROWS, salt=2)
    dev = ctx.device
    xa, ta = torch.as_tensor(Xa, device=dev), target_tensor(ctx, ya).to(dev)
    xb, tb = torch.as_tensor(Xb, device=dev), target_tensor(ctx, yb).to(dev)
    model = ctx.build_model().to(dev)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad])
    loss_fn = _recording_loss(make_loss(ctx))
    handle, modes, n_mode_dependent = _mode_recorder(model)
    result: dict = {"n_mode_dependent": n_mode_dependent, "predict_ran": False}
    before = [p.detach().clone() for p in model.parameters()]
    with ctx.budget.spend():
        torch.manual_seed(ctx.seed + 1)
        result["returned_1"] = call_user(ctx.config, "train_step", step, model, optimizer, loss_fn, xa, ta)
        result["mode_step_1"] = modes[-1] if modes else None
        names = [n for n, _ in model.named_parameters()]
        changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())]
        result["changed"] = [n for n, c in zip(names, changed) if c]
        result["unchanged"] = [n for n, c, p in zip(names, changed, model.parameters()) if not c and p.requires_grad]
        grad_1 = _grad_vector(model)
        if predict is not None:
            call_user(ctx.config, "predict", predict, model, xb)
            result["predict_ran"] = True
        # The fresh gradient of step 2: the same step on a copy whose gradients start empty.
        twin = copy.deepcopy(model)
        for p in twin.parameters():
            p.grad = None
        twin_opt = make_optimizer(ctx, [p for p in twin.parameters() if p.requires_grad])
        torch.manual_seed(ctx.seed + 2)
        call_user(ctx.config, "train_step", step, twin, twin_opt, _recording_loss(make_loss(ctx)), xb, tb)
        fresh = _grad_vector(twin)
        n_modes = len(modes)
        torch.manual_seed(ctx.seed + 2)
        result["returned_2"] = call_user(ctx.config, "train_step", step, model, optimizer, loss_fn, xb, tb)
        result["mode_step_2"] = modes[-1] if len(modes) > n_modes else None
        after_2 = _grad_vector(model)
    handle.remove()
    result["loss_calls"] = loss_fn.calls
    result["accumulation"] = _compare_gradients(grad_1, fresh, after_2)
    return result


def _compare_gradients(grad_1, fresh, after_2) -> dict:
    """Is the gradient left after step 2 the fresh gradient (zeroed in between) or fresh + step 1's?"""
    if after_2 is None or fresh is None or grad_1 is None:
        return {"verdict": "cleared", "why": "gradients are cleared (set to None) by the step itself"}
    if float(after_2.abs().max()) == 0.0:
        return {"verdict": "cleared", "why": "gradients are zeroed at the end of the step"}
    if after_2.shape != fresh.shape or after_2.shape != grad_1.shape:
        return {"verdict": "unknown", "why": "parameters with gradients differ between steps"}
    norm = float(fresh.norm()) or 1.0
    err_fresh = float((after_2 - fresh).norm()) / norm
    summed = fresh + grad_1
    err_summed = float((after_2 - summed).norm()) / (float(summed.norm()) or 1.0)
    evidence = {"relative_error_vs_fresh": err_fresh, "relative_error_vs_accumulated": err_summed,
                "grad_norm_step_1": float(grad_1.norm()), "grad_norm_fresh": float(fresh.norm()),
                "grad_norm_after_step_2": float(after_2.norm())}
    # 1e-3: float32 sums of the same terms in another order agree to ~1e-6; anything near the
    # accumulated sum and far from the fresh gradient is a missing zero_grad.
    if err_fresh < 1e-3:
        return {"verdict": "fresh", **evidence}
    if err_summed < 1e-3 or err_summed < 0.1 * err_fresh:
        return {"verdict": "accumulated", **evidence}
    return {"verdict": "unknown", "why": "the gradient after step 2 matches neither the fresh gradient nor "
                                         "the accumulated one (gradient clipping or a custom update?)", **evidence}


# ---- loss_shapes -----------------------------------------------------------------------------

@check("sanity.loss_shapes", title="Prediction and target shapes match in the loss", needs=("model",))
@single_threaded
def loss_shapes(ctx: RunContext):
    require_torch_model(ctx, "scikit-learn fits its own loss on y of shape (n,)")
    import torch

    if ctx.function("train_step") is not None:
        calls = _step_probe(ctx)["loss_calls"]
        source = "the project's train_step"
    else:
        X, _ = sample_rows(ctx, FORWARD_ROWS)
        model = ctx.build_model().to(ctx.device).eval()
        with torch.no_grad():
            out = _out_tensor(call_user(ctx.config, "the model's forward()", model,
                                        torch.as_tensor(X, device=ctx.device)))
        calls = [{"shapes": [tuple(out.shape), (len(X),)], "dtypes": [str(out.dtype), ""]}]
        source = "the model output vs the (N,) target of the contract"
    if not calls:
        return fail("train_step never called the loss function it was given",
                    detail="The loss_fn argument was not called during two train_step calls, so the configured "
                           "[model] loss is not what the project trains with.",
                    fix="Compute the loss with the loss_fn argument of train_step.", evidence={"calls": 0})
    first = calls[0]
    shapes = [s for s in first["shapes"] if isinstance(s, tuple)]
    evidence = {"source": source, "loss": ctx.loss_name, "shapes": [list(s) for s in shapes],
                "dtypes": first["dtypes"]}
    if len(shapes) < 2:
        return passed("the loss got a single tensor argument; nothing to compare", evidence=evidence)
    pred, target = shapes[0], shapes[1]
    if ctx.loss_name in ("cross_entropy", "nll"):
        ok = (len(pred) >= 2 and tuple(target) == (pred[0],) + tuple(pred[2:])) or tuple(pred) == tuple(target)
        if not ok:
            return fail(f"the loss received predictions {pred} and targets {target}",
                        detail=f"{ctx.loss_name} needs scores (N, C) and class indices (N,).",
                        fix="Pass the raw (N, C) output and the (N,) integer labels.", evidence=evidence)
        return passed(f"{ctx.loss_name} gets predictions {pred} and targets {target} ({source})", evidence=evidence)
    if tuple(pred) == tuple(target):
        return passed(f"{ctx.loss_name} gets matching predictions and targets {pred} ({source})", evidence=evidence)
    try:
        broadcast = tuple(torch.broadcast_shapes(pred, target))
    except RuntimeError:
        broadcast = None
    evidence["broadcast_shape"] = list(broadcast) if broadcast else None
    if ctx.function("train_step") is None:
        squeezable = len(pred) == 2 and pred[1] == 1 and (pred[0],) == tuple(target)
        if squeezable:
            return info(f"the model outputs {pred}; targets are {target}",
                        detail="mltriage's own loop squeezes the trailing dimension of 1 before the loss, but "
                               f"a loop that calls {ctx.loss_name}(model(x), y) directly broadcasts the pair to "
                               f"{broadcast} and trains on every prediction-target pair.",
                        fix="In your own loop, use model(x).squeeze(1) (or give targets shape (N, 1)).",
                        evidence=evidence)
    if broadcast is not None and broadcast != tuple(pred):
        return fail(f"{ctx.loss_name} broadcasts predictions {pred} against targets {target} to {broadcast}",
                    detail=f"Elementwise losses do not check shapes: {pred} against {target} silently compares "
                           f"every prediction with every target ({broadcast}), so the model learns to predict "
                           f"the batch mean. PyTorch only warns.",
                    fix="Squeeze the output (model(x).squeeze(1)) or reshape the target to match.", evidence=evidence)
    return fail(f"{ctx.loss_name} gets predictions {pred} and targets {target}",
                detail="Predictions and targets have different shapes.",
                fix="Make the output and the target the same shape.", evidence=evidence)


# ---- train_step --------------------------------------------------------------------------------

def _returned_loss(value) -> tuple[str, str]:
    """(status, explanation) for what train_step returned."""
    import math

    if value is None:
        return "fail", "train_step returned None; it must return the batch loss as a float"
    if hasattr(value, "detach"):
        if value.numel() != 1:
            return "fail", f"train_step returned a tensor of shape {tuple(value.shape)}, not a scalar loss"
        if not math.isfinite(float(value.detach())):
            return "fail", f"train_step returned a non-finite loss ({float(value.detach())})"
        if value.requires_grad:
            return "warn", ("train_step returned the loss tensor with its graph attached; a caller that keeps or "
                            "sums these values keeps every step's graph in memory")
        return "pass", "a scalar tensor (float(loss) works)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "fail", f"train_step returned {type(value).__name__}, not a number"
    if not math.isfinite(number):
        return "fail", f"train_step returned a non-finite loss ({number})"
    return "pass", f"a finite float ({number:.4g})"


@check("sanity.train_step", title="The project's train_step updates, zeroes gradients, trains in train mode",
       needs=("model", "train_step"))
@single_threaded
def train_step(ctx: RunContext):
    require_torch_model(ctx, "train_step is called only for PyTorch models")
    probe = _step_probe(ctx)
    problems: list[tuple[str, str, str]] = []  # (status, title, fix)
    acc = probe["accumulation"]
    evidence = {"parameters_changed": len(probe["changed"]), "parameters_unchanged": probe["unchanged"][:20],
                "gradient_check": acc, "mode_step_1": probe["mode_step_1"], "mode_step_2": probe["mode_step_2"],
                "predict_ran_between_steps": probe["predict_ran"],
                "mode_dependent_layers": probe["n_mode_dependent"]}
    if not probe["changed"]:
        problems.append(("fail", "no weight changed after a train_step call",
                         "Call optimizer.step() after loss.backward(), with the optimizer given to train_step "
                         "(it holds this model's parameters)."))
    if acc["verdict"] == "accumulated":
        problems.append(("fail", "gradients pile up across steps (no optimizer.zero_grad())",
                         "Call optimizer.zero_grad() at the start of train_step, before the forward pass."))
    for label in ("mode_step_1", "mode_step_2"):
        mode = probe[label]
        if mode and probe["n_mode_dependent"] and not all(mode["mode_dependent_training"]):
            after = " after predict() ran" if label == "mode_step_2" and probe["predict_ran"] else ""
            problems.append(("fail", f"the model trains in eval mode{after}: dropout/batch norm are off",
                             "Call model.train() at the start of train_step (predict() switches to eval mode)."))
            break
    for label in ("returned_1", "returned_2"):
        status, why = _returned_loss(probe[label])
        evidence[f"loss_{label}"] = why
        if status != "pass":
            problems.append((status, why, "Return loss.item() (a Python float)."))
            break
    if not problems:
        how = {"fresh": "the gradient after the second step equals the fresh gradient of that batch",
               "cleared": acc.get("why", ""), "unknown": acc.get("why", "")}[acc["verdict"]]
        return passed(f"train_step updates {len(probe['changed'])} parameter tensors, returns "
                      f"{_returned_loss(probe['returned_1'])[1]}; {how}", evidence=evidence)
    worst = "fail" if any(s == "fail" for s, _, _ in problems) else "warn"
    title = problems[0][1] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    detail_lines = [f"- {s}: {t}" for s, t, _ in problems]
    if acc["verdict"] == "accumulated":
        detail_lines.append(f"Measured: after step 2 the gradient differs from the fresh gradient of batch 2 by "
                            f"{acc['relative_error_vs_fresh']:.2f} (relative) and from step 1's + step 2's "
                            f"gradients by {acc['relative_error_vs_accumulated']:.1e}.")
    make = fail if worst == "fail" else warn
    return make(title, detail="train_step was run twice on fixed batches of "
                              f"{FORWARD_ROWS} rows{' with predict() in between' if probe['predict_ran'] else ''}.\n"
                              + "\n".join(detail_lines),
                fix=" ".join(dict.fromkeys(f for _, _, f in problems)), evidence=evidence)


# ---- eval_determinism --------------------------------------------------------------------------

@check("sanity.eval_determinism", title="The project's predict gives the same output twice",
       needs=("model", "predict"))
@single_threaded
def eval_determinism(ctx: RunContext):
    require_torch_model(ctx, "predict(model, X) is exercised for PyTorch models only")
    import numpy as np
    import torch

    predict = ctx.function("predict")
    X, _ = sample_rows(ctx, FORWARD_ROWS, salt=3)
    model = ctx.build_model().to(ctx.device)
    # After a training loop the model is in train mode: that is the state predict() meets in practice.
    model.train()
    xt = torch.as_tensor(X, device=ctx.device)

    def run(x):
        out = call_user(ctx.config, "predict", predict, model, x)
        if hasattr(out, "detach"):
            out = out.detach().float().cpu().numpy()
        return np.asarray(out, dtype=np.float64)

    torch.manual_seed(ctx.seed + 11)
    first = run(xt.clone())
    torch.manual_seed(ctx.seed + 12)
    second = run(xt.clone())
    half = len(X) // 2
    alone = run(xt[:half].clone())
    evidence = {"rows": len(X), "model_training_after_predict": model.training}
    if first.shape != second.shape:
        return fail("predict returns differently shaped outputs for the same input",
                    detail=f"{first.shape} then {second.shape}.", fix="Make predict a pure function of X.",
                    evidence=evidence)
    diff = float(np.nanmax(np.abs(first - second))) if first.size else 0.0
    batch_diff = float(np.nanmax(np.abs(first[:half] - alone))) if alone.shape == first[:half].shape else 0.0
    evidence.update({"max_abs_diff_same_input": diff, "max_abs_diff_other_batch": batch_diff,
                     "tolerance": DETERMINISM_ATOL, "differing_rows": int(np.sum(np.any(
                         np.abs(first - second).reshape(len(first), -1) > DETERMINISM_ATOL, axis=1)))})
    cause = ("the model is still in train mode inside predict(), so dropout stays on" if model.training
             else "something random runs at prediction time (augmentation, sampling, dropout applied functionally)")
    if diff > DETERMINISM_ATOL:
        return fail(f"the same {len(X)} rows give different predictions on two calls (max diff {diff:.3g})",
                    detail=f"{evidence['differing_rows']} of {len(X)} rows changed between two predict() calls "
                           f"on identical input (tolerance {DETERMINISM_ATOL:g}). Most likely {cause}.",
                    fix="Call model.eval() (and use torch.no_grad()) at the start of predict(); keep random "
                        "augmentation out of inference.", evidence=evidence)
    if batch_diff > DETERMINISM_ATOL:
        return fail(f"a row's prediction depends on the other rows in the batch (max diff {batch_diff:.3g})",
                    detail=f"Predicting the first {half} rows alone gives different outputs than predicting them "
                           f"with {len(X) - half} more rows. Batch normalisation left in train mode normalises "
                           f"with each batch's statistics.",
                    fix="Call model.eval() at the start of predict().", evidence=evidence)
    return passed(f"predict is deterministic on {len(X)} rows and independent of the batch", evidence=evidence)


# ---- overfit_small_batch -----------------------------------------------------------------------

def _tiny_batch(ctx: RunContext, n: int):
    """n training rows with distinct inputs (identical inputs with different labels cannot be memorised)."""
    import numpy as np

    X, y = sample_rows(ctx, 4 * n + 64, salt=4)
    _, first = np.unique(X, axis=0, return_index=True)
    keep = np.sort(first)[:n]
    return X[keep], y[keep]


def _memorise(ctx: RunContext, X, y, lr: float | None, reference: bool, seconds: float) -> dict:
    """Full-batch training of a fresh model on (X, y) with mltriage's own step; stops once memorised.
    `stopped`: "memorised", "steps" (ran all OVERFIT_MAX_STEPS), "diverged" or "time" (cut short)."""
    import math
    import time

    import torch

    from ..analyses.modeling import loss_value, make_loss, make_optimizer, target_tensor

    model = ctx.build_model().to(ctx.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=REFERENCE_LR) if reference else make_optimizer(ctx, params, lr)
    loss_fn = make_loss(ctx)
    xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    yb = target_tensor(ctx, y).to(ctx.device)
    try:
        reference_loss = float(loss_fn(_uninformed_prediction(ctx, yb.cpu()), yb.cpu()))
    except SkipCheck:  # a custom loss: measure against the fresh model's own loss instead
        reference_loss = _eval_loss(ctx, model, X, y, loss_fn)
    goal = OVERFIT_LOSS_FRACTION * reference_loss
    curve, step, start, acc, stopped = [], 0, time.perf_counter(), None, "steps"
    with ctx.budget.spend():
        while step < OVERFIT_MAX_STEPS:
            if time.perf_counter() - start > seconds:
                stopped = "time"
                break
            model.train()
            optimizer.zero_grad()
            loss = loss_value(ctx, loss_fn, _out_tensor(model(xb)), yb)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 10 == 0 or step == 1 or step == OVERFIT_MAX_STEPS:
                model.eval()
                with torch.no_grad():
                    out = _out_tensor(model(xb))
                    eval_loss = float(loss_value(ctx, loss_fn, out, yb))
                    acc = float((_predicted_labels(ctx, out) == yb).float().mean()) if ctx.is_classification else None
                curve.append((step, eval_loss))
                if not math.isfinite(eval_loss):
                    stopped = "diverged"
                    break
                if eval_loss <= goal and (acc is None or acc == 1.0):
                    stopped = "memorised"
                    break
    finite = [v for _, v in curve if math.isfinite(v)]
    return {"memorised": stopped == "memorised", "stopped": stopped, "goal": goal, "steps": step,
            "seconds": time.perf_counter() - start, "curve": curve,
            "final_loss": curve[-1][1] if curve else float("nan"), "accuracy": acc,
            "min_loss": min(finite) if finite else float("nan")}


# A curve whose last value is below this share of its value STILL_FALLING_WINDOW records earlier is
# still going down (10% per 100 steps), not sitting on a floor.
STILL_FALLING_RATIO = 0.9
STILL_FALLING_WINDOW = 10


def _still_falling(curve: list[tuple[int, float]]) -> bool:
    if len(curve) <= STILL_FALLING_WINDOW:
        return False
    last, earlier = curve[-1][1], curve[-1 - STILL_FALLING_WINDOW][1]
    return earlier > 0 and last < STILL_FALLING_RATIO * earlier


def _overfit_cap(ctx: RunContext) -> float:
    return min(OVERFIT_SECONDS, max(0.5, ctx.budget.remaining() / 4))


@check("sanity.overfit_small_batch", title="The model can memorise a tiny batch", needs=("model",))
@single_threaded
def overfit_small_batch(ctx: RunContext):
    require_torch_model(ctx, "memorising a batch is a test of a network and its training loop")
    if ctx.budget.remaining() < 1.0:
        raise SkipCheck("the training budget is used up; raise [budget] seconds")
    X, y = _tiny_batch(ctx, OVERFIT_ROWS)
    cfg = ctx.config
    attempts = {"configured": _memorise(ctx, X, y, None, False, _overfit_cap(ctx))}
    if not attempts["configured"]["memorised"]:
        attempts["reference"] = _memorise(ctx, X, y, None, True, _overfit_cap(ctx))
        if not attempts["reference"]["memorised"]:
            Xs, ys = X[:OVERFIT_SMALL_ROWS], y[:OVERFIT_SMALL_ROWS]
            attempts["four_rows"] = _memorise(ctx, Xs, ys, None, True, _overfit_cap(ctx))
    plots = [PlotSpec(kind="line", title=f"loss on a fixed batch of {len(X)} examples (eval mode)",
                      series=[Series(name, [s for s, _ in a["curve"]], [v for _, v in a["curve"]])
                              for name, a in attempts.items()],
                      x_label="step", y_label="loss", y_log=True)]
    evidence = {"rows": len(X), "goal_loss": attempts["configured"]["goal"], "max_steps": OVERFIT_MAX_STEPS,
                "attempts": {k: {kk: v for kk, v in a.items() if kk != "curve"} for k, a in attempts.items()}}
    conf = attempts["configured"]
    setting = f"{cfg.optimizer} lr={cfg.lr:g}"
    if conf["memorised"]:
        return passed(f"memorised {len(X)} examples in {conf['steps']} steps ({setting}, "
                      f"loss {conf['final_loss']:.3g})", evidence=evidence, plots=plots)
    measured = (f"after {conf['steps']} steps the loss is {conf['final_loss']:.3g} (goal: below "
                f"{conf['goal']:.3g}, {OVERFIT_LOSS_FRACTION:.0%} of the uninformed loss"
                + (f", accuracy {conf['accuracy']:.0%}" if conf["accuracy"] is not None else "") + ")")
    cut_short = [k for k, a in attempts.items() if a["stopped"] == "time"]
    ref = attempts["reference"]
    if ref["memorised"]:
        if conf["stopped"] == "time":
            return info(f"memorised {len(X)} examples with Adam lr={REFERENCE_LR:g}; {setting} ran out of time",
                        detail=f"With the configured optimizer the time cap stopped training: {measured}.",
                        evidence=evidence, plots=plots)
        return warn(f"cannot memorise {len(X)} examples with {setting}; Adam lr={REFERENCE_LR:g} can",
                    detail=f"With the configured optimizer {measured}. The same model memorises the batch in "
                           f"{ref['steps']} steps with Adam at {REFERENCE_LR:g}, so the network is fine and the "
                           f"optimizer settings are the problem.",
                    fix="Run training.lr_range and pick a learning rate where the loss falls steadily.",
                    evidence=evidence, plots=plots)
    if "reference" in cut_short or "four_rows" in cut_short:
        return info("inconclusive: the time cap stopped training before the batch was memorised",
                    detail=f"With the configured optimizer {measured}. Attempts cut short by the time cap "
                           f"({_overfit_cap(ctx):.1f} s each): {', '.join(cut_short)}. A busy machine or a small "
                           f"[budget] seconds does this.",
                    fix="Raise [budget] seconds, or rerun on an idle machine.", evidence=evidence, plots=plots)
    four = attempts["four_rows"]
    if four["memorised"]:
        return warn(f"cannot memorise {len(X)} examples, only {OVERFIT_SMALL_ROWS}",
                    detail=f"With the configured optimizer {measured}; with Adam lr={REFERENCE_LR:g} the loss "
                           f"reaches {ref['final_loss']:.3g} in {ref['steps']} steps. {OVERFIT_SMALL_ROWS} examples "
                           f"are memorised. For a linear or very small model this is expected; a deep network that "
                           f"cannot memorise {len(X)} examples is too narrow or has a bottleneck.",
                    fix="Check architecture.capacity; if the model is meant to be expressive, look for a layer "
                        "that squeezes the signal.", evidence=evidence, plots=plots)
    if _still_falling(four["curve"]) and four["accuracy"] in (None, 1.0):
        # Every example is already right and the loss keeps going down: a small model that is slow to
        # reach the goal, not one that is blocked. Blocked models (a softmax before cross-entropy, a
        # bounded output) show a floor: the loss stops moving.
        return info(f"memorising is slow: after {four['steps']} steps on {OVERFIT_SMALL_ROWS} examples the loss is "
                    f"{four['final_loss']:.3g} and still falling",
                    detail=f"With the configured optimizer {measured}. The loss on {OVERFIT_SMALL_ROWS} examples is "
                           f"still dropping steadily and every example is classified right, so nothing blocks "
                           f"learning; the model just needs more steps than this check allows.",
                    evidence=evidence, plots=plots)
    floor = min(a["min_loss"] for a in attempts.values())
    return fail(f"cannot memorise even {OVERFIT_SMALL_ROWS} examples: the loss floors at {floor:.3g}",
                detail=f"With the configured optimizer {measured}; with Adam lr={REFERENCE_LR:g} it reaches "
                       f"{ref['final_loss']:.3g}, and on {OVERFIT_SMALL_ROWS} examples {four['final_loss']:.3g} "
                       f"after {four['steps']} steps. A working network drives the loss on a handful of examples "
                       f"to almost zero. A floor like this usually means an activation before the loss (softmax "
                       f"before cross-entropy, a bounded output for an unbounded target), a frozen or detached "
                       f"part of the model, or dead units.",
                fix="Check architecture.output_layer and sanity.gradient_flow; remove any softmax/sigmoid "
                    "before a loss that expects logits.", evidence=evidence, plots=plots)


# ---- gradient_flow -----------------------------------------------------------------------------

@check("sanity.gradient_flow", title="Every trainable parameter gets a gradient", needs=("model",))
@single_threaded
def gradient_flow(ctx: RunContext):
    require_torch_model(ctx, "estimators are not trained by backpropagation")
    import torch

    from ..analyses.model_trace import model_trace
    from ..analyses.modeling import loss_value, make_loss, target_tensor

    X, y = sample_rows(ctx, FORWARD_ROWS)
    model = ctx.build_model().to(ctx.device)
    model.train()
    torch.manual_seed(ctx.seed)
    out = _out_tensor(call_user(ctx.config, "the model's forward()", model, torch.as_tensor(X, device=ctx.device)))
    loss = loss_value(ctx, make_loss(ctx), out, target_tensor(ctx, y).to(ctx.device))
    if not loss.requires_grad:
        return fail("the loss does not depend on any trainable parameter",
                    detail="The output of forward() carries no gradient: it was computed under torch.no_grad(), "
                           "detached, or converted through numpy.",
                    fix="Keep forward() in torch from input to output, without .detach()/.numpy()/no_grad.",
                    evidence={"loss": float(loss.detach())})
    loss.backward()
    called = {c.name for c in model_trace(ctx).calls if c.source == "module"}
    owners = {name: mod for name, mod in model.named_modules()}
    none_used, none_unused, zero, nonfinite, norms = [], [], [], [], {}
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        if p.grad is None:
            (none_used if (owner in called or owner == "" or owner not in owners) else none_unused).append(name)
            continue
        g = p.grad.detach()
        if not bool(torch.isfinite(g).all()):
            nonfinite.append(name)
        elif float(g.abs().max()) == 0.0:
            zero.append(name)
        norms[name] = float(g.norm())
    evidence = {"loss": float(loss.detach()), "no_gradient_used": none_used, "no_gradient_unused": none_unused,
                "zero_gradient": zero, "nonfinite_gradient": nonfinite, "frozen": frozen[:50],
                "grad_norms": dict(list(norms.items())[:100])}
    plots = [PlotSpec(kind="bar", title="gradient norm per parameter (one backward pass)",
                      series=[Series("grad norm", list(norms), list(norms.values()))], y_label="L2 norm",
                      y_log=True)] if norms else []
    if nonfinite or none_used or zero:
        parts = []
        if nonfinite:
            parts.append(f"non-finite gradients: {', '.join(nonfinite[:8])}")
        if none_used:
            parts.append(f"no gradient although their module ran (detached): {', '.join(none_used[:8])}")
        if zero:
            parts.append(f"gradient exactly zero: {', '.join(zero[:8])}")
        bad = len(nonfinite) + len(none_used) + len(zero)
        return fail(f"{bad} of {len(norms) + len(none_used) + len(none_unused)} trainable parameter tensors get "
                    f"no usable gradient",
                    detail="After one backward pass on a batch of training rows: " + "; ".join(parts) + ". Exactly "
                           "zero gradients come from units that never activate (dead ReLU layers), operations "
                           "without a derivative (argmax, round, comparisons) or a path cut by .detach(); "
                           "non-finite ones from log/sqrt/division of zero or exploding activations.",
                    fix="Follow the listed parameters back through forward(): remove .detach()/.data/.numpy() "
                        "on the path, check architecture.dead_units, guard log/sqrt with a small epsilon.",
                    evidence=evidence, plots=plots)
    if none_unused:
        return warn(f"{len(none_unused)} parameter tensors belong to modules forward() never calls",
                    detail=f"No gradient reaches {', '.join(none_unused[:8])}: their modules are defined but not "
                           f"used. They are trained by nothing and still count in the parameter total.",
                    fix="Remove the unused layers, or call them in forward() if they were meant to be used.",
                    evidence=evidence, plots=plots)
    note = f" ({len(frozen)} frozen tensors skipped)" if frozen else ""
    return passed(f"all {len(norms)} trainable parameter tensors get finite, non-zero gradients{note}",
                  evidence=evidence, plots=plots)


# ---- input_independent -------------------------------------------------------------------------

def _short_fit_curve(ctx: RunContext, Xtr, ytr, Xva, yva) -> list[float]:
    """Train a fresh model with mltriage's loop; the held-out loss before training and after each epoch."""
    import math

    from ..analyses.modeling import fit_torch

    model = ctx.build_model().to(ctx.device)
    steps_per_epoch = math.ceil(len(Xtr) / ctx.config.batch_size)
    curve = [_eval_loss(ctx, model, Xva, yva)]

    def on_step(step, _value):
        if step % steps_per_epoch == 0:
            curve.append(_eval_loss(ctx, model, Xva, yva))

    history = fit_torch(ctx, model, Xtr, ytr, epochs=INPUT_EPOCHS,
                        seconds=min(INPUT_SECONDS, max(0.5, ctx.budget.remaining() / 4)), use_project_step=False,
                        on_step=on_step)
    return curve, history.stopped


@check("sanity.input_independent", title="Real inputs beat zeroed inputs", needs=("model",))
@single_threaded
def input_independent(ctx: RunContext):
    require_torch_model(ctx, "metrics.vs_baseline compares a fitted estimator with a trivial one")
    import numpy as np

    if ctx.budget.remaining() < 1.0:
        raise SkipCheck("the training budget is used up; raise [budget] seconds")
    Xtr, ytr = sample_rows(ctx, INPUT_ROWS, salt=5)
    Xva, yva = sample_rows(ctx, INPUT_ROWS, split="valid")
    real_curve, real_stop = _short_fit_curve(ctx, Xtr, ytr, Xva, yva)
    zero_curve, zero_stop = _short_fit_curve(ctx, np.zeros_like(Xtr), ytr, np.zeros_like(Xva), yva)
    # Compare over the epochs both runs completed, each at its best epoch (overfitting later does not count).
    # A run that diverged is compared as it is: its missing epochs would not have helped.
    diverged = "diverged" in (real_stop, zero_stop)
    epochs = (max if diverged else min)(len(real_curve), len(zero_curve)) - 1
    real = _best(real_curve[:epochs + 1])
    zero = _best(zero_curve[:epochs + 1])
    gain = (zero - real) / zero if np.isfinite(zero) and zero > 0 else float("nan")
    evidence = {"epochs_compared": epochs, "valid_loss_real_inputs": real, "valid_loss_zero_inputs": zero,
                "relative_gain": gain, "train_rows": len(Xtr), "valid_rows": len(Xva), "max_epochs": INPUT_EPOCHS,
                "stopped": {"real": real_stop, "zero": zero_stop}, "warn_below_gain": INPUT_WARN_GAIN}
    plots = [PlotSpec(kind="line", title="held-out loss per epoch: real vs zeroed inputs",
                      series=[Series("real inputs", list(range(len(real_curve))), real_curve),
                              Series("zero inputs", list(range(len(zero_curve))), zero_curve)],
                      x_label="epoch", y_label=f"{ctx.loss_name} loss (valid)")]
    measured = (f"best held-out loss {real:.4g} with real inputs vs {zero:.4g} with inputs set to zero "
                f"({len(Xtr)} training rows, {epochs} epoch(s) each)")
    if epochs < INPUT_MIN_EPOCHS and not diverged:
        return info(f"inconclusive: only {epochs} epoch(s) fitted within the time cap",
                    detail=f"{measured}. At least {INPUT_MIN_EPOCHS} epochs are needed to compare; a busy machine or "
                           f"a small [budget] seconds stops training early.",
                    fix="Raise [budget] seconds, or rerun on an idle machine.", evidence=evidence, plots=plots)
    if not gain > INPUT_FAIL_GAIN:
        return fail("the model does no better with its real inputs than with zeros",
                    detail=f"{measured}. A model that learns nothing from its inputs only learns the label "
                           f"frequencies. Usual causes: labels misaligned with rows (shuffled separately), "
                           f"features that carry no signal after featurize, a model that ignores its input, or "
                           f"training that does not work at all (learning rate far off).",
                    fix="Print a few rows with their labels after featurize; check the input is used in "
                        "forward(); run training.lr_range.", evidence=evidence, plots=plots)
    if gain < INPUT_WARN_GAIN:
        return warn(f"real inputs beat zeroed inputs by only {gain:.1%}",
                    detail=f"{measured}; below {INPUT_WARN_GAIN:.0%} the inputs barely matter.",
                    fix="Check that featurize keeps the informative columns and that labels line up with rows.",
                    evidence=evidence, plots=plots)
    return passed(f"real inputs cut the held-out loss by {gain:.0%} vs zeroed inputs ({real:.3g} vs {zero:.3g})",
                  evidence=evidence, plots=plots)
