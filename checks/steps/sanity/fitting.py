"""sanity.overfit_small_batch, sanity.gradient_flow: short training runs on a tiny batch and one backward
pass that show whether the network can learn at all (sanity.input_independent, whether it learns from its
inputs, is in input_dependence.py).

Each check measures (`_measure_*`, touching the model) and then decides (`_*_verdict`, a pure function of
the measurement), so the thresholds are unit-tested without building a project."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...analyses.model_trace import (
    fresh_model,
    require_torch_model,
    sample_rows,
    single_threaded,
)
from ...analyses.modeling import batch_of, call_model, first_tensor
from ...engine.analysis import analysis
from ...engine.context import RunContext, cpu_clock
from ...engine.inputs import feed
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ...project.usercode import call_user
from ...wording import cut_list
from .batch import distinct_rows, fixed_batch, tensor_sample
from .model import FORWARD_ROWS

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
# A curve whose last value is below this share of its value STILL_FALLING_WINDOW records earlier is
# still going down (10% per 100 steps), not sitting on a floor.
STILL_FALLING_RATIO = 0.9
STILL_FALLING_WINDOW = 10


def budget_left(ctx: RunContext) -> None:
    if ctx.budget.remaining() < 1.0:
        raise SkipCheck("the training budget is used up; raise [budget] seconds")


# ---- overfit_small_batch -----------------------------------------------------------------------

def _tiny_batch(ctx: RunContext, n: int):
    """n training rows with distinct inputs (identical inputs with different labels cannot be memorised).
    A tensor project's rows are TensorRows (its targets come collated with them: y is None)."""
    import numpy as np

    if ctx.is_tensor:
        return distinct_rows(tensor_sample(ctx, 4 * n + 64, salt=4), n), None
    X, y = sample_rows(ctx, 4 * n + 64, salt=4)
    _, first = np.unique(X, axis=0, return_index=True)
    keep = np.sort(first)[:n]
    return X[keep], y[keep]


def _memorise_goal(ctx: RunContext, model, X, y, loss_fn) -> float:
    """OVERFIT_LOSS_FRACTION of the uninformed loss (of the fresh model's own loss for a custom loss)."""
    from ...analyses.modeling import eval_loss, target_tensor
    from .uninformed import uninformed_prediction

    yb = target_tensor(ctx, y) if y is not None else _flat_targets(ctx, batch_of(ctx, X)[1]).cpu()
    try:
        reference_loss = float(loss_fn(uninformed_prediction(ctx, yb), yb))
    except SkipCheck:  # a custom loss: measure against the fresh model's own loss instead
        reference_loss = eval_loss(ctx, model, X, y, loss_fn)
    return OVERFIT_LOSS_FRACTION * reference_loss


def _memorise(ctx: RunContext, X, y, reference: bool, seconds: float) -> dict:
    """Full-batch training of a fresh model on (X, y) with mltriage's own step; stops once memorised.
    `stopped`: "memorised", "steps" (ran all OVERFIT_MAX_STEPS), "diverged" or "time" (cut short).
    `reference`: Adam at REFERENCE_LR instead of the configured optimizer."""
    import time

    import torch

    from ...analyses.modeling import (
        loss_value,
        make_loss,
        make_optimizer,
        run_step,
        target_tensor,
        without_dynamo_import,
    )

    model = fresh_model(ctx)
    params = [p for p in model.parameters() if p.requires_grad]
    without_dynamo_import()
    optimizer = torch.optim.Adam(params, lr=REFERENCE_LR) if reference else make_optimizer(ctx, params, model=model)
    loss_fn = make_loss(ctx)
    if ctx.is_tensor:
        xb, yb = batch_of(ctx, X)
    else:
        xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
        yb = target_tensor(ctx, y).to(ctx.device)
    goal = _memorise_goal(ctx, model, X, y, loss_fn)
    # A tensor project's configured attempt trains with its own step (its train_step, a LightningModule's
    # training_step): that is where such projects clip gradients or compute a loss of their own.
    project_step = ctx.function("train_step")
    own_step = ctx.is_tensor and not reference and (project_step is not None or bool(ctx.config.lightning))
    curve, step, start, acc, stopped = [], 0, time.perf_counter(), None, "steps"
    cpu_start, in_train_mode = cpu_clock(), False
    with ctx.budget.spend():
        while step < OVERFIT_MAX_STEPS:
            if cpu_clock() - cpu_start > seconds:
                stopped = "time"
                break
            if own_step:
                run_step(ctx, model, optimizer, loss_fn, xb, yb, project_step, step)
            else:
                if not in_train_mode:  # only the evaluation below leaves train mode: train() walks every module
                    model.train()
                    in_train_mode = True
                optimizer.zero_grad()
                loss = loss_value(ctx, loss_fn, call_model(model, xb), yb)
                loss.backward()
                optimizer.step()
            step += 1
            if step % 10 == 0 or step == 1 or step == OVERFIT_MAX_STEPS:
                model.eval()
                in_train_mode = False
                with torch.no_grad():
                    out = call_model(model, xb)
                    eval_loss = float(loss_value(ctx, loss_fn, out, yb))
                    acc = _accuracy(ctx, out, yb) if ctx.is_classification else None
                curve.append((step, eval_loss))
                if not math.isfinite(eval_loss):
                    stopped = "diverged"
                    break
                if eval_loss <= goal and (acc is None or acc == 1.0 or ctx.target_kind == "sequence"):
                    stopped = "memorised"
                    break
    finite = [v for _, v in curve if math.isfinite(v)]
    return {"memorised": stopped == "memorised", "stopped": stopped, "goal": goal, "steps": step,
            "seconds": time.perf_counter() - start, "curve": curve,
            "final_loss": curve[-1][1] if curve else float("nan"), "accuracy": acc,
            "min_loss": min(finite) if finite else float("nan")}


def _flat_targets(ctx: RunContext, yb):
    """Sequence targets (N, T) as the (N*T,) labels mltriage's loss compares per position."""
    return yb.reshape(-1) if ctx.target_kind == "sequence" else yb


def _accuracy(ctx: RunContext, out, yb) -> float:
    """The share of labels predicted right; for sequence targets per position, ignoring positions marked
    ignore_index (negative). A language model cannot be required to get every position right: the first
    token of sequences that start alike is ambiguous, so memorising is judged on the loss alone."""
    from ...analyses.modeling import predicted_labels

    if ctx.target_kind == "sequence":
        out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
        keep = yb >= 0
        return float((out.argmax(dim=1)[keep] == yb[keep]).float().mean()) if bool(keep.any()) else 0.0
    return float((predicted_labels(ctx, out) == yb).float().mean())


def _still_falling(curve: list[tuple[int, float]]) -> bool:
    if len(curve) <= STILL_FALLING_WINDOW:
        return False
    last, earlier = curve[-1][1], curve[-1 - STILL_FALLING_WINDOW][1]
    return earlier > 0 and last < STILL_FALLING_RATIO * earlier


def _overfit_cap(ctx: RunContext) -> float:
    return min(OVERFIT_SECONDS, max(0.5, ctx.budget.remaining() / 4))


@dataclass
class Memorising:
    """The attempts to memorise a tiny batch: "configured" (the project's optimizer), then, only when it
    fails, "reference" (Adam at REFERENCE_LR), then "four_rows" (the reference on OVERFIT_SMALL_ROWS rows).
    Each attempt is the dict _memorise returns (JSON evidence, less its curve)."""

    rows: int
    setting: str                         # the configured optimizer, e.g. "adam lr=0.005"
    cap_seconds: float                   # the time cap per attempt, as it stood after the attempts
    attempts: dict[str, dict] = field(default_factory=dict)


@analysis  # once per run: training.lr_range reads it (by its ANALYSES name) before advising an lr
def _measure_memorising(ctx: RunContext) -> Memorising:
    X, y = _tiny_batch(ctx, OVERFIT_ROWS)
    cfg = ctx.config
    attempts = {"configured": _memorise(ctx, X, y, False, _overfit_cap(ctx))}
    if not attempts["configured"]["memorised"]:
        attempts["reference"] = _memorise(ctx, X, y, True, _overfit_cap(ctx))
        if not attempts["reference"]["memorised"]:
            Xs, ys = X[:OVERFIT_SMALL_ROWS], (None if y is None else y[:OVERFIT_SMALL_ROWS])
            attempts["four_rows"] = _memorise(ctx, Xs, ys, True, _overfit_cap(ctx))
    return Memorising(rows=len(X), setting=f"{cfg.optimizer} lr={cfg.lr:g}", cap_seconds=_overfit_cap(ctx),
                      attempts=attempts)


def _memorising_record(m: Memorising) -> tuple[dict, list[PlotSpec]]:
    plots = [PlotSpec(kind="line", title=f"loss on a fixed batch of {m.rows} examples (eval mode)",
                      series=[Series(name, [s for s, _ in a["curve"]], [v for _, v in a["curve"]])
                              for name, a in m.attempts.items()],
                      x_label="step", y_label="loss", y_log=True)]
    evidence = {"rows": m.rows, "goal_loss": m.attempts["configured"]["goal"], "max_steps": OVERFIT_MAX_STEPS,
                "attempts": {k: {kk: v for kk, v in a.items() if kk != "curve"} for k, a in m.attempts.items()}}
    return evidence, plots


def _memorising_verdict(m: Memorising) -> Finding:
    evidence, plots = _memorising_record(m)
    conf = m.attempts["configured"]
    if conf["memorised"]:
        return passed(f"memorised {m.rows} examples in {conf['steps']} steps ({m.setting}, "
                      f"loss {conf['final_loss']:.3g})", evidence=evidence, plots=plots)
    measured = (f"after {conf['steps']} steps the loss is {conf['final_loss']:.3g} (goal: below "
                f"{conf['goal']:.3g}, {OVERFIT_LOSS_FRACTION:.0%} of the uninformed loss"
                + (f", accuracy {conf['accuracy']:.0%}" if conf["accuracy"] is not None else "") + ")")
    ref = m.attempts["reference"]
    if ref["memorised"]:
        if conf["stopped"] == "time":
            return info(f"memorised {m.rows} examples with Adam lr={REFERENCE_LR:g}; {m.setting} ran out of time",
                        detail=f"With the configured optimizer the time cap stopped training: {measured}.",
                        evidence=evidence, plots=plots)
        return warn(f"cannot memorise {m.rows} examples with {m.setting}; Adam lr={REFERENCE_LR:g} can",
                    detail=f"With the configured optimizer {measured}. The same model memorises the batch in "
                           f"{ref['steps']} steps with Adam at {REFERENCE_LR:g}, so the network is fine and the "
                           f"optimizer settings are the problem.",
                    fix="Run training.lr_range and pick a learning rate where the loss falls steadily.",
                    evidence=evidence, plots=plots)
    cut_short = [k for k, a in m.attempts.items() if a["stopped"] == "time"]
    if "reference" in cut_short or "four_rows" in cut_short:
        return info("inconclusive: the time cap stopped training before the batch was memorised",
                    detail=f"With the configured optimizer {measured}. Attempts cut short by the time cap "
                           f"({m.cap_seconds:.1f} s each): {', '.join(cut_short)}. A busy machine or a small "
                           f"[budget] seconds does this.",
                    fix="Raise [budget] seconds, or rerun on an idle machine.", evidence=evidence, plots=plots)
    return _not_memorised_verdict(m, measured, evidence, plots)


def _not_memorised_verdict(m: Memorising, measured: str, evidence: dict, plots: list[PlotSpec]) -> Finding:
    """Neither the configured optimizer nor the reference memorised the batch, and time did not stop them."""
    ref, four = m.attempts["reference"], m.attempts["four_rows"]
    if four["memorised"]:
        return warn(f"cannot memorise {m.rows} examples, only {OVERFIT_SMALL_ROWS}",
                    detail=f"With the configured optimizer {measured}; with Adam lr={REFERENCE_LR:g} the loss "
                           f"reaches {ref['final_loss']:.3g} in {ref['steps']} steps. {OVERFIT_SMALL_ROWS} examples "
                           f"are memorised. For a linear or very small model this is expected; a deep network that "
                           f"cannot memorise {m.rows} examples is too narrow or has a bottleneck.",
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
    floor = min(a["min_loss"] for a in m.attempts.values())
    return fail(f"cannot memorise even {OVERFIT_SMALL_ROWS} examples: the loss floors at {floor:.3g}",
                detail=f"With the configured optimizer {measured}; with Adam lr={REFERENCE_LR:g} it reaches "
                       f"{ref['final_loss']:.3g}, and on {OVERFIT_SMALL_ROWS} examples {four['final_loss']:.3g} "
                       f"after {four['steps']} steps. A working network drives the loss on a handful of examples "
                       f"to almost zero. A floor like this usually means an activation before the loss (softmax "
                       f"before cross-entropy, a bounded output for an unbounded target), a frozen or detached "
                       f"part of the model, or dead units.",
                fix="Check architecture.output_layer and sanity.gradient_flow; remove any softmax/sigmoid "
                    "before a loss that expects logits.", evidence=evidence, plots=plots)


@check("sanity.overfit_small_batch", title="The model can memorise a tiny batch", needs=("model",))
@single_threaded
def overfit_small_batch(ctx: RunContext):
    require_torch_model(ctx, "memorising a batch is a test of a network and its training loop")
    budget_left(ctx)
    return _memorising_verdict(_measure_memorising(ctx))


# ---- gradient_flow -----------------------------------------------------------------------------

@dataclass
class GradientFlow:
    """One backward pass of a fresh model on a training batch: which trainable tensors got what gradient."""

    loss: float
    connected: bool = True               # the loss depends on some trainable parameter
    no_gradient_used: list[str] = field(default_factory=list)    # None although their module ran
    no_gradient_unused: list[str] = field(default_factory=list)  # their module never ran
    zero_gradient: list[str] = field(default_factory=list)
    nonfinite_gradient: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    grad_norms: dict[str, float] = field(default_factory=dict)


def _measure_gradient_flow(ctx: RunContext) -> GradientFlow:
    import torch

    from ...analyses.model_trace import model_trace
    from ...analyses.modeling import loss_value, make_loss, target_tensor

    model = fresh_model(ctx)
    model.train()
    if ctx.is_tensor:
        xb, yb = fixed_batch(ctx, FORWARD_ROWS)
        torch.manual_seed(ctx.seed)
        with _modules_called(model) as ran:
            out = first_tensor(call_user(ctx.config, "the model's forward()", feed, model, xb))
    else:
        X, y = sample_rows(ctx, FORWARD_ROWS)
        xb, yb, ran = torch.as_tensor(X, device=ctx.device), target_tensor(ctx, y).to(ctx.device), None
        torch.manual_seed(ctx.seed)
        out = first_tensor(call_user(ctx.config, "the model's forward()", model, xb))
    loss = loss_value(ctx, make_loss(ctx), out, yb)
    m = GradientFlow(loss=float(loss.detach()), connected=loss.requires_grad)
    if not m.connected:
        return m
    loss.backward()
    called = set(ran) if ran is not None else {c.name for c in model_trace(ctx).calls if c.source == "module"}
    owners = {name: mod for name, mod in model.named_modules()}
    # Frozen parameters are no gradient failure: architecture.frozen_layers judges them.
    m.frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        if p.grad is None:
            used = owner in called or owner == "" or owner not in owners
            (m.no_gradient_used if used else m.no_gradient_unused).append(name)
            continue
        g = _gradient_values(p.grad.detach())
        if not bool(torch.isfinite(g).all()):
            m.nonfinite_gradient.append(name)
        elif float(g.abs().max()) == 0.0:
            m.zero_gradient.append(name)
        m.grad_norms[name] = float(g.norm())
    return m


def _gradient_values(grad):
    """The values a gradient holds: a sparse gradient (Embedding/EmbeddingBag with sparse=True) is a
    gradient too, its non-zero rows only (an all-zero dense view would read as "no gradient")."""
    if grad.is_sparse:
        values = grad.coalesce().values()
        return values if values.numel() else grad.to_dense()
    return grad


class _modules_called:
    """Names of the modules that ran during a forward (forward hooks on every submodule)."""

    def __init__(self, model):
        self.model, self.names, self.handles = model, [], []

    def __enter__(self) -> list[str]:
        for name, module in self.model.named_modules():
            self.handles.append(module.register_forward_hook(lambda *_a, _n=name: self.names.append(_n)))
        return self.names

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def _gradient_flow_verdict(m: GradientFlow) -> Finding:
    if not m.connected:
        return fail("the loss does not depend on any trainable parameter",
                    detail="The output of forward() carries no gradient: it was computed under torch.no_grad(), "
                           "detached, or converted through numpy.",
                    fix="Keep forward() in torch from input to output, without .detach()/.numpy()/no_grad.",
                    evidence={"loss": m.loss})
    norms, none_used, none_unused = m.grad_norms, m.no_gradient_used, m.no_gradient_unused
    nonfinite, zero = m.nonfinite_gradient, m.zero_gradient
    evidence = {"loss": m.loss, "no_gradient_used": none_used, "no_gradient_unused": none_unused,
                "zero_gradient": zero, "nonfinite_gradient": nonfinite, "frozen": m.frozen[:50],
                "grad_norms": dict(list(norms.items())[:100])}
    plots = [PlotSpec(kind="bar", title="gradient norm per parameter (one backward pass)",
                      series=[Series("grad norm", list(norms), list(norms.values()))], y_label="L2 norm",
                      y_log=True)] if norms else []
    if nonfinite or none_used or zero:
        parts = []
        if nonfinite:
            parts.append(f"non-finite gradients: {cut_list(nonfinite, 8)}")
        if none_used:
            parts.append(f"no gradient although their module ran (detached): {cut_list(none_used, 8)}")
        if zero:
            parts.append(f"gradient exactly zero: {cut_list(zero, 8)}")
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
                    detail=f"No gradient reaches {cut_list(none_unused, 8)}: their modules are defined but not "
                           f"used. They are trained by nothing and still count in the parameter total.",
                    fix="Remove the unused layers, or call them in forward() if they were meant to be used.",
                    evidence=evidence, plots=plots)
    note = f" ({len(m.frozen)} frozen tensors skipped)" if m.frozen else ""
    return passed(f"all {len(norms)} trainable parameter tensors get finite, non-zero gradients{note}",
                  evidence=evidence, plots=plots)


@check("sanity.gradient_flow", title="Every trainable parameter gets a gradient", needs=("model",))
@single_threaded
def gradient_flow(ctx: RunContext):
    require_torch_model(ctx, "estimators are not trained by backpropagation")
    return _gradient_flow_verdict(_measure_gradient_flow(ctx))
