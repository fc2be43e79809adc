"""sanity.loss_shapes, sanity.train_step, sanity.eval_determinism: the project's own train_step and
predict, run under observation on fixed batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analyses.model_trace import (
    fresh_model,
    require_torch_model,
    sample_rows,
    single_threaded,
)
from ...analyses.modeling import call_model, first_tensor
from ...engine.analysis import analysis
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, fail, info, passed, warn
from ...project.usercode import call_user
from ...vocab import INDEX_TARGET_LOSSES
from .batch import batch_rows, fixed_batch
from .model import FORWARD_ROWS, FUNCTIONAL_LOSSES, broadcast_shape, functional_losses, reference_losses

# loss_shapes: a step's returned loss "is" a loss of the outputs when they agree to this relative
# tolerance: the same float32 computation agrees to ~1e-6; 1e-3 allows a different reduction order
# (sum / N vs mean) and stays far below what another loss or another batch gives.
LOSS_MATCH_RTOL = 1e-3


# ---- the project's train_step, run under observation (shared by loss_shapes and train_step) ----

def _recording_loss(inner):
    """Wrap a loss module so every call records the shapes/dtypes it was given."""
    from torch import nn

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

    # sparse gradients (Embedding(sparse=True)) compared dense: the same values, positions included
    parts = [(p.grad.detach().to_dense() if p.grad.is_sparse else p.grad.detach()).reshape(-1).float()
             for p in model.parameters() if p.grad is not None]
    return torch.cat(parts) if parts else None


@dataclass
class StepProbe:
    """What happened when the project's train_step ran twice on fixed batches (predict in between)."""

    n_mode_dependent: int                  # dropout / batch norm layers in the model
    predict_ran: bool
    returned_1: Any                        # what each train_step call returned
    returned_2: Any
    mode_step_1: dict | None               # train/eval mode of the model and its mode-dependent layers
    mode_step_2: dict | None
    changed: list[str]                     # parameters the first step changed
    unchanged: list[str]                   # trainable parameters it left as they were
    loss_calls: list[dict]                 # shapes/dtypes of every call of the loss function
    accumulation: dict                     # _compare_gradients: evidence, so a dict
    functional_calls: list[dict] = field(default_factory=list)  # torch.nn.functional losses step 1 called
    reference: list[dict] = field(default_factory=list)         # reference_losses on step 1's batch
    rows: int = FORWARD_ROWS               # examples in each batch


@analysis
def step_probe(ctx: RunContext) -> StepProbe:
    """The project's train_step under observation (shared by loss_shapes and train_step)."""
    import warnings

    # PyTorch warns about broadcasting target sizes; loss_shapes reports that as a finding instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using a target size")
        return _run_step_probe(ctx)


def _run_step_probe(ctx: RunContext) -> StepProbe:
    """Run the project's train_step twice (with predict in between) on fixed batches and record what happened."""
    import copy

    import torch

    from ...analyses.modeling import make_loss, make_optimizer, target_tensor

    step = ctx.function("train_step")
    predict = ctx.function("predict")
    if ctx.is_tensor:
        xa, ta = fixed_batch(ctx, FORWARD_ROWS, salt=1)
        xb, tb = fixed_batch(ctx, FORWARD_ROWS, salt=2)
    else:
        Xa, ya = sample_rows(ctx, FORWARD_ROWS, salt=1)
        Xb, yb = sample_rows(ctx, FORWARD_ROWS, salt=2)
        dev = ctx.device
        xa, ta = torch.as_tensor(Xa, device=dev), target_tensor(ctx, ya).to(dev)
        xb, tb = torch.as_tensor(Xb, device=dev), target_tensor(ctx, yb).to(dev)
    model = fresh_model(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], model=model)
    loss_fn = _recording_loss(make_loss(ctx))
    handle, modes, n_mode_dependent = _mode_recorder(model)
    predict_ran = False
    before = [p.detach().clone() for p in model.parameters()]
    with ctx.budget.spend():
        reference = reference_losses(ctx, model, xa, ta, ctx.seed + 1)
        torch.manual_seed(ctx.seed + 1)
        with functional_losses() as functional_calls:
            returned_1 = call_user(ctx.config, "train_step", step, model, optimizer, loss_fn, xa, ta)
        mode_step_1 = modes[-1] if modes else None
        names = [n for n, _ in model.named_parameters()]
        changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())]
        changed_names = [n for n, c in zip(names, changed) if c]
        unchanged = [n for n, c, p in zip(names, changed, model.parameters()) if not c and p.requires_grad]
        grad_1 = _grad_vector(model)
        if predict is not None:
            call_user(ctx.config, "predict", predict, model, xb)
            predict_ran = True
        # The fresh gradient of step 2: the same step on a copy whose gradients start empty.
        twin = copy.deepcopy(model)
        for p in twin.parameters():
            p.grad = None
        twin_opt = make_optimizer(ctx, [p for p in twin.parameters() if p.requires_grad], model=twin)
        torch.manual_seed(ctx.seed + 2)
        call_user(ctx.config, "train_step", step, twin, twin_opt, _recording_loss(make_loss(ctx)), xb, tb)
        fresh = _grad_vector(twin)
        n_modes = len(modes)
        torch.manual_seed(ctx.seed + 2)
        returned_2 = call_user(ctx.config, "train_step", step, model, optimizer, loss_fn, xb, tb)
        mode_step_2 = modes[-1] if len(modes) > n_modes else None
        after_2 = _grad_vector(model)
    handle.remove()
    return StepProbe(n_mode_dependent=n_mode_dependent, predict_ran=predict_ran, returned_1=returned_1,
                     returned_2=returned_2, mode_step_1=mode_step_1, mode_step_2=mode_step_2,
                     changed=changed_names, unchanged=unchanged, loss_calls=loss_fn.calls,
                     accumulation=_compare_gradients(grad_1, fresh, after_2), functional_calls=functional_calls,
                     reference=reference, rows=batch_rows(xa, ta))


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

@dataclass
class LossCalls:
    """The shapes/dtypes the loss function was called with: by the project's train_step when it has one,
    else the model output next to the (N,) target of the contract (a tensor project: its batch's targets).
    A step that computes its loss itself leaves `calls` empty: then the torch.nn.functional losses it
    called, and its returned value next to the standard losses of the same batch, tell what it trains on."""

    loss: str
    own_step: bool          # the project has its own train_step
    source: str             # where the calls come from, in words
    calls: list[dict]       # {"shapes": [...], "dtypes": [...]} per call
    functional: list[dict] = field(default_factory=list)   # {"function", "shapes", "dtypes"} per call
    returned: float | None = None                          # the step's returned loss
    reference: list[dict] = field(default_factory=list)    # reference_losses: {"loss", "value", ...}
    compared: bool = False                                 # returned/reference were measured


def _returned_number(value) -> float | None:
    try:
        number = float(value.detach()) if hasattr(value, "detach") else float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number


def _measure_loss_calls(ctx: RunContext) -> LossCalls:
    import torch

    if ctx.function("train_step") is not None:
        probe = step_probe(ctx)
        return LossCalls(ctx.loss_name, True, "the project's train_step", probe.loss_calls,
                         functional=probe.functional_calls, returned=_returned_number(probe.returned_1),
                         reference=probe.reference, compared=True)
    if ctx.config.lightning and hasattr(ctx.first_model(), "training_step"):
        return _lightning_loss_calls(ctx)
    if ctx.is_tensor:
        return _tensor_output_vs_target(ctx)
    X, _ = sample_rows(ctx, FORWARD_ROWS)
    model = fresh_model(ctx).eval()
    with torch.no_grad():
        out = first_tensor(call_user(ctx.config, "the model's forward()", model,
                                     torch.as_tensor(X, device=ctx.device)))
    calls = [{"shapes": [tuple(out.shape), (len(X),)], "dtypes": [str(out.dtype), ""]}]
    return LossCalls(ctx.loss_name, False, "the model output vs the (N,) target of the contract", calls)


def _tensor_output_vs_target(ctx: RunContext) -> LossCalls:
    """The model's output next to the batch's targets, as mltriage's loop gives them to the loss
    (sequence targets flattened to one label per position)."""
    import torch

    from ...analyses.modeling import index_targets

    xb, yb = fixed_batch(ctx, FORWARD_ROWS)
    model = fresh_model(ctx).eval()
    with torch.no_grad():
        out = call_model(model, xb)
    shapes = [tuple(out.shape), tuple(yb.shape)]
    if index_targets(ctx) and yb.dim() >= 2:
        shapes = [(int(yb.numel()), int(out.shape[-1])), (int(yb.numel()),)]
    calls = [{"shapes": shapes, "dtypes": [str(out.dtype), str(yb.dtype)]}]
    return LossCalls(ctx.loss_name, False, "the model output vs the batch's targets", calls)


def _lightning_loss_calls(ctx: RunContext) -> LossCalls:
    """A LightningModule's training_step on one batch: the losses it called and the value it returned."""
    import torch

    from ...analyses.modeling import make_loss, make_optimizer, run_step

    model = fresh_model(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], model=model)
    xa, ta = fixed_batch(ctx, FORWARD_ROWS, salt=1)
    with ctx.budget.spend():
        reference = reference_losses(ctx, model, xa, ta, ctx.seed + 1)
        torch.manual_seed(ctx.seed + 1)
        with functional_losses() as functional:
            returned = run_step(ctx, model, optimizer, make_loss(ctx), xa, ta, None, 0)
    return LossCalls(ctx.loss_name, True, f"{ctx.config.lightning}.training_step", [], functional=functional,
                     returned=returned, reference=reference, compared=True)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= LOSS_MATCH_RTOL * max(abs(b), 1e-8) + 1e-7


def _functional_verdict(m: LossCalls) -> Finding:
    """The shapes verdict on the first torch.nn.functional loss the step called itself."""
    first = m.functional[0]
    name = FUNCTIONAL_LOSSES[first["function"]]
    finding = _loss_shapes_verdict(LossCalls(name, True, f"{m.source}, calling F.{first['function']} itself",
                                             [first]))
    finding.evidence["returned"] = m.returned
    finding.evidence["functional_calls"] = [c["function"] for c in m.functional][:10]
    return finding


def _loss_value_verdict(m: LossCalls) -> Finding:
    """No loss call seen: compare the step's returned value with the standard losses of the same batch."""
    evidence = {"source": m.source, "loss": m.loss, "returned": m.returned, "tolerance": LOSS_MATCH_RTOL,
                "reference": m.reference[:24]}
    if m.returned is None:
        return info(f"{m.source} returned no number: the loss it trains with could not be compared",
                    detail="It called neither the loss_fn argument nor a torch.nn.functional loss, and its return "
                           "value is not a number, so the shapes it gives its loss cannot be checked here "
                           "(sanity.train_step reports the return value).", evidence=evidence)
    matches = [c for c in m.reference if _close(m.returned, c["value"])]
    plain = [c for c in matches if not c["broadcast"]]
    configured = [c for c in plain if c["loss"].startswith("configured")]
    if matches and not plain:
        c = matches[0]
        return fail(f"{m.source} returns {c['loss']} of (N, 1) outputs broadcast against (N,) targets",
                    detail=f"Its returned loss {m.returned:.6g} equals {c['loss']} of every prediction against "
                           f"every target of the batch ({c['value']:.6g}), not of matching pairs. Elementwise "
                           f"losses broadcast silently: the model learns to predict the batch mean.",
                    fix="Squeeze the output (model(x).squeeze(1)) or reshape the target to match.",
                    evidence=evidence)
    if configured:
        return passed(f"{m.source} computes its loss itself; {m.returned:.4g} matches the configured {m.loss} "
                      f"of the model's outputs on the same batch", evidence=evidence)
    if plain:
        return passed(f"{m.source} computes its loss itself; {m.returned:.4g} is {plain[0]['loss']} of the "
                      f"model's outputs on the same batch", evidence=evidence)
    nearest = min(m.reference, key=lambda c: abs(c["value"] - m.returned), default=None)
    near = f" (nearest: {nearest['loss']} {nearest['value']:.4g})" if nearest else ""
    return info(f"{m.source} computes a loss of its own ({m.returned:.4g}); its shapes could not be checked",
                detail=f"The step called neither the loss_fn argument nor a torch.nn.functional loss, and its "
                       f"returned value matches no standard loss of the model's outputs on the same batch and "
                       f"weights{near}. A loss with extra terms or dropout drawn differently does this.",
                fix="Pass predictions and targets of the same batch shape to your loss; calling the loss_fn "
                    "argument lets mltriage check the shapes.", evidence=evidence)


def _loss_shapes_verdict(m: LossCalls) -> Finding:
    if not m.calls and m.functional:
        return _functional_verdict(m)
    if not m.calls and m.compared:
        return _loss_value_verdict(m)
    if not m.calls:
        return fail("train_step never called the loss function it was given",
                    detail="The loss_fn argument was not called during two train_step calls, so the configured "
                           "[model] loss is not what the project trains with.",
                    fix="Compute the loss with the loss_fn argument of train_step.", evidence={"calls": 0})
    first = m.calls[0]
    shapes = [s for s in first["shapes"] if isinstance(s, tuple)]
    evidence = {"source": m.source, "loss": m.loss, "shapes": [list(s) for s in shapes], "dtypes": first["dtypes"]}
    if len(shapes) < 2:
        return passed("the loss got a single tensor argument; nothing to compare", evidence=evidence)
    pred, target = shapes[0], shapes[1]
    if m.loss in INDEX_TARGET_LOSSES:
        ok = (len(pred) >= 2 and tuple(target) == (pred[0],) + tuple(pred[2:])) or tuple(pred) == tuple(target)
        if not ok:
            return fail(f"the loss received predictions {pred} and targets {target}",
                        detail=f"{m.loss} needs scores (N, C) and class indices (N,).",
                        fix="Pass the raw (N, C) output and the (N,) integer labels.", evidence=evidence)
        return passed(f"{m.loss} gets predictions {pred} and targets {target} ({m.source})", evidence=evidence)
    if tuple(pred) == tuple(target):
        return passed(f"{m.loss} gets matching predictions and targets {pred} ({m.source})", evidence=evidence)
    return _elementwise_mismatch(m, pred, target, evidence)


def _elementwise_mismatch(m: LossCalls, pred: tuple, target: tuple, evidence: dict) -> Finding:
    """An elementwise loss (bce, regression) given predictions and targets of different shapes."""
    try:
        broadcast = broadcast_shape(pred, target)
    except ValueError:
        broadcast = None
    evidence["broadcast_shape"] = list(broadcast) if broadcast else None
    squeezable = len(pred) == 2 and pred[1] == 1 and (pred[0],) == tuple(target)
    if not m.own_step and squeezable:
        return info(f"the model outputs {pred}; targets are {target}",
                    detail="mltriage's own loop squeezes the trailing dimension of 1 before the loss, but "
                           f"a loop that calls {m.loss}(model(x), y) directly broadcasts the pair to "
                           f"{broadcast} and trains on every prediction-target pair.",
                    fix="In your own loop, use model(x).squeeze(1) (or give targets shape (N, 1)).",
                    evidence=evidence)
    if broadcast is not None and broadcast != tuple(pred):
        return fail(f"{m.loss} broadcasts predictions {pred} against targets {target} to {broadcast}",
                    detail=f"Elementwise losses do not check shapes: {pred} against {target} silently compares "
                           f"every prediction with every target ({broadcast}), so the model learns to predict "
                           f"the batch mean. PyTorch only warns.",
                    fix="Squeeze the output (model(x).squeeze(1)) or reshape the target to match.", evidence=evidence)
    return fail(f"{m.loss} gets predictions {pred} and targets {target}",
                detail="Predictions and targets have different shapes.",
                fix="Make the output and the target the same shape.", evidence=evidence)


@check("sanity.loss_shapes", title="Prediction and target shapes match in the loss", needs=("model",))
@single_threaded
def loss_shapes(ctx: RunContext):
    require_torch_model(ctx, "scikit-learn fits its own loss on y of shape (n,)")
    return _loss_shapes_verdict(_measure_loss_calls(ctx))


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


def _train_step_verdict(probe: StepProbe) -> Finding:
    problems: list[tuple[str, str, str]] = []  # (status, title, fix)
    acc = probe.accumulation
    evidence = {"parameters_changed": len(probe.changed), "parameters_unchanged": probe.unchanged[:20],
                "gradient_check": acc, "mode_step_1": probe.mode_step_1, "mode_step_2": probe.mode_step_2,
                "predict_ran_between_steps": probe.predict_ran,
                "mode_dependent_layers": probe.n_mode_dependent}
    if not probe.changed:
        problems.append(("fail", "no weight changed after a train_step call",
                         "Call optimizer.step() after loss.backward(), with the optimizer given to train_step "
                         "(it holds this model's parameters)."))
    if acc["verdict"] == "accumulated":
        problems.append(("fail", "gradients pile up across steps (no optimizer.zero_grad())",
                         "Call optimizer.zero_grad() at the start of train_step, before the forward pass."))
    for label, mode in (("mode_step_1", probe.mode_step_1), ("mode_step_2", probe.mode_step_2)):
        if mode and probe.n_mode_dependent and not all(mode["mode_dependent_training"]):
            after = " after predict() ran" if label == "mode_step_2" and probe.predict_ran else ""
            problems.append(("fail", f"the model trains in eval mode{after}: dropout/batch norm are off",
                             "Call model.train() at the start of train_step (predict() switches to eval mode)."))
            break
    for label, returned in (("returned_1", probe.returned_1), ("returned_2", probe.returned_2)):
        status, why = _returned_loss(returned)
        evidence[f"loss_{label}"] = why
        if status != "pass":
            problems.append((status, why, "Return loss.item() (a Python float)."))
            break
    if not problems:
        how = {"fresh": "the gradient after the second step equals the fresh gradient of that batch",
               "cleared": acc.get("why", ""), "unknown": acc.get("why", "")}[acc["verdict"]]
        return passed(f"train_step updates {len(probe.changed)} parameter tensors, returns "
                      f"{_returned_loss(probe.returned_1)[1]}; {how}", evidence=evidence)
    worst = "fail" if any(s == "fail" for s, _, _ in problems) else "warn"
    title = problems[0][1] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    detail_lines = [f"- {s}: {t}" for s, t, _ in problems]
    if acc["verdict"] == "accumulated":
        detail_lines.append(f"Measured: after step 2 the gradient differs from the fresh gradient of batch 2 by "
                            f"{acc['relative_error_vs_fresh']:.2f} (relative) and from step 1's + step 2's "
                            f"gradients by {acc['relative_error_vs_accumulated']:.1e}.")
    make = fail if worst == "fail" else warn
    return make(title, detail="train_step was run twice on fixed batches of "
                              f"{FORWARD_ROWS} rows{' with predict() in between' if probe.predict_ran else ''}.\n"
                              + "\n".join(detail_lines),
                fix=" ".join(dict.fromkeys(f for _, _, f in problems)), evidence=evidence)


@check("sanity.train_step", title="The project's train_step updates, zeroes gradients, trains in train mode",
       needs=("model", "train_step"))
@single_threaded
def train_step(ctx: RunContext):
    require_torch_model(ctx, "train_step is called only for PyTorch models")
    return _train_step_verdict(step_probe(ctx))
