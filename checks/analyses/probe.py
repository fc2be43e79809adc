"""The training probe: a short, instrumented run of the project's model (configured loss, optimizer, lr,
batch size and train_step) that records per step the loss, per-layer gradient norms, update-to-weight
ratios and the share of zero ReLU outputs, and per epoch the train/valid loss and metric. Its trained
model is also the reference model of the metrics and errors steps.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..findings import SkipCheck
from ..project.usercode import call_user
from ..vocab import higher_is_better
from .modeling import (FitHistory, fit_torch, forward_scores, labelled_rows, loss_value, make_loss, scores_to_proba,
                       target_tensor)


# --- budget shares ----------------------------------------------------------------------------------
# Both runs are defined by counts (a fixed sweep; the configured epochs), so the same project gives the
# same findings on a busy or an idle machine. Time is only a ceiling: each may use at most this share
# of the run's whole budget (and never more than is left). The probe's trained model is also the
# reference model of the metrics and errors steps, so it gets the larger share.
LR_TEST_BUDGET_SHARE = 0.25
PROBE_BUDGET_SHARE = 0.5
MIN_SECONDS = 0.5              # below this nothing useful can be trained: report skipped
EVAL_MAX_ROWS = 2000           # rows scored per epoch for the train/valid curves


@dataclass
class Probe:
    """Per-step and per-epoch records of a short instrumented run of the project's model."""

    loss: list[float] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    total_grad_norm: list[float] = field(default_factory=list)
    update_ratios: dict[str, list[float]] = field(default_factory=dict)
    relu_zero: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)           # 0 = before training
    train_loss: list[float] = field(default_factory=list)     # eval-mode, on up to EVAL_MAX_ROWS rows
    valid_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    valid_metric: list[float] = field(default_factory=list)
    valid_row_losses: list = field(default_factory=list)  # per-row valid losses per epoch (builtin losses)
    metric: str = ""
    steps_per_epoch: int = 0
    stopped: str = ""
    seconds: float = 0.0
    seconds_allowed: float = 0.0
    grads_missing: bool = False   # the project's step cleared .grad before we could read it
    model: Any = None             # the trained model: the reference model of the later steps
    nonfinite_grad_steps: int = 0
    source: str = ""              # set when the records come from elsewhere (the monitored run)

    def describe(self) -> str:
        if self.source:
            return self.source
        epochs = len(self.epochs) - 1
        why = {"budget": ", stopped by its time share", "diverged": ", stopped when the loss became non-finite"}
        # No seconds here: this text reaches titles, and the same project must read the same on any machine.
        return f"mltriage's probe run ({len(self.loss)} steps, {epochs} full epoch(s){why.get(self.stopped, '')})"


def _layers(model):
    """Weight-bearing modules in registration order: name -> their weight tensors (dim >= 2)."""
    layers: dict[str, list] = {}
    for module_name, module in model.named_modules():
        weights = [p for n, p in module.named_parameters(recurse=False) if p.requires_grad and p.dim() >= 2]
        if weights:
            label = f"{module_name or 'model'} ({type(module).__name__})"
            layers[label] = weights
    return layers


def _norm(tensors) -> float:
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


class _ReluRecorder:
    """Forward hooks on ReLU modules: fraction of exactly-zero outputs, per call, during training steps."""

    def __init__(self, model):
        import torch.nn as nn

        self.active = False
        self.calls: dict[str, list[float]] = {}
        self.handles = []
        for name, module in model.named_modules():
            if isinstance(module, (nn.ReLU, nn.ReLU6)):
                self.handles.append(module.register_forward_hook(self._hook(name or "relu")))

    def _hook(self, name):
        def hook(module, inputs, output):
            if self.active and hasattr(output, "detach"):
                self.calls.setdefault(name, []).append(float((output.detach() == 0).float().mean()))
        return hook

    def take(self) -> dict[str, float]:
        out = {}
        for name, fractions in self.calls.items():
            for k, frac in enumerate(fractions):
                out[name if len(fractions) == 1 else f"{name} [call {k + 1}]"] = frac
        self.calls = {}
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def _eval_rows(ctx: RunContext, split: str):
    """A fixed subsample (seeded) of a split's labelled rows, to score the model once per epoch."""
    import numpy as np

    X, y = labelled_rows(ctx, split)
    if len(X) > EVAL_MAX_ROWS:
        idx = np.random.default_rng(ctx.seed).choice(len(X), EVAL_MAX_ROWS, replace=False)
        X, y = X[idx], (None if y is None else y[idx])
    return X, y


def evaluate(ctx: RunContext, model, loss_fn, X, y):
    """(loss, metric, per-sample losses or None) of the model on rows: eval-mode forward, configured loss."""
    import numpy as np
    import torch

    from .scoring import score

    if y is None:  # sequence targets: the mean loss over every position, no per-example metric
        from .modeling import eval_loss

        return eval_loss(ctx, model, X, None, loss_fn), None, None
    scores = forward_scores(ctx, model, X, use_project_predict=False)
    out, target = torch.as_tensor(scores, dtype=torch.float32), target_tensor(ctx, y)
    per_sample = None
    with torch.no_grad():
        if getattr(loss_fn, "reduction", None) == "mean":
            # builtin losses: per-row values give the noise of the mean (its standard error)
            loss_fn.reduction = "none"
            try:
                values = loss_value(ctx, loss_fn, out, target)
            finally:
                loss_fn.reduction = "mean"
            per_sample = values.reshape(len(values), -1).mean(dim=1).double().numpy()
            loss = float(per_sample.mean())
        else:
            loss = float(loss_value(ctx, loss_fn, out, target))
    metric = None
    if np.all(np.isfinite(scores)):
        try:
            if ctx.is_classification:
                metric = score(ctx.metric, y, proba=scores_to_proba(ctx, scores), n_classes=len(ctx.classes))
            else:
                metric = score(ctx.metric, y, pred=scores.reshape(len(scores), -1)[:, 0])
        except ValueError:
            metric = None
    return loss, metric, per_sample


def seconds_for(ctx: RunContext, share: float, what: str) -> float:
    seconds = min(share * ctx.budget.seconds, ctx.budget.remaining())
    if seconds < MIN_SECONDS:
        raise SkipCheck(f"the training budget is spent, so the {what} could not run\n"
                        f"{ctx.budget.remaining():.1f} s of the {ctx.budget.seconds:.0f} s budget were left. "
                        f"Raise [budget] seconds (or --budget) to get this check.")
    return seconds


def fresh_training(ctx: RunContext, share: float, what: str):
    """How every training analysis starts: its time share (SkipCheck when the budget is spent), a fresh
    seeded model on the run's device, and the labelled training rows."""
    seconds = seconds_for(ctx, share, what)
    model = ctx.build_model()
    model.to(ctx.device)
    X, y = labelled_rows(ctx, "train")
    return seconds, model, X, y


@analysis
def probe(ctx: RunContext) -> Probe:
    """The shared instrumented run (once per run)."""
    seconds, model, X, y = fresh_training(ctx, PROBE_BUDGET_SHARE, "instrumented training probe")
    train_eval, valid_eval = _eval_rows(ctx, "train"), _eval_rows(ctx, "valid")
    loss_fn = make_loss(ctx)
    result = Probe(metric=ctx.metric, seconds_allowed=seconds, model=model)
    result.steps_per_epoch = max(1, math.ceil(len(X) / ctx.config.batch_size))
    layers = _layers(model)
    result.layers = list(layers)
    result.grad_norms = {name: [] for name in layers}
    result.update_ratios = {name: [] for name in layers}
    before = {name: [w.detach().clone() for w in ws] for name, ws in layers.items()}
    relus = _ReluRecorder(model)

    def record_epoch(epoch: int) -> None:
        relus.active = False
        with ctx.budget.spend() if epoch == 0 else contextlib.nullcontext():
            tl, tm, _ = evaluate(ctx, model, loss_fn, *train_eval)
            vl, vm, v_rows = evaluate(ctx, model, loss_fn, *valid_eval)
        result.valid_row_losses.append(v_rows)
        result.epochs.append(epoch)
        result.train_loss.append(tl)
        result.valid_loss.append(vl)
        result.train_metric.append(math.nan if tm is None else tm)
        result.valid_metric.append(math.nan if vm is None else vm)
        relus.active = True

    def on_step(step: int, value: float) -> None:
        result.loss.append(value)
        total_sq, any_grad = 0.0, False
        for name, weights in layers.items():
            grads = [w.grad for w in weights if w.grad is not None]
            g = _norm(grads) if grads else 0.0
            any_grad = any_grad or bool(grads)
            result.grad_norms[name].append(g)
            total_sq += g * g
            w_norm = _norm(before[name])
            delta = math.sqrt(sum(float((w.detach() - b).double().pow(2).sum()) for w, b in zip(weights, before[name])))
            result.update_ratios[name].append(delta / w_norm if w_norm > 0 else math.nan)
            before[name] = [w.detach().clone() for w in weights]
        if not any_grad:
            result.grads_missing = True
        total = math.sqrt(total_sq)
        if not math.isfinite(total):
            result.nonfinite_grad_steps += 1
        result.total_grad_norm.append(total)
        for name, frac in relus.take().items():
            result.relu_zero.setdefault(name, []).append(frac)
        if step % result.steps_per_epoch == 0:
            record_epoch(step // result.steps_per_epoch)

    start = time.perf_counter()
    try:
        record_epoch(0)
        history = fit_torch(ctx, model, X, y, seconds=seconds, on_step=on_step)
        result.stopped = history.stopped
    finally:
        relus.remove()
    result.seconds = time.perf_counter() - start
    return result


def probe_curves(ctx: RunContext, result: Probe):
    """The probe's per-epoch and per-step records as TrainingCurves, like a log."""
    from ..io.logs import TrainingCurves

    return TrainingCurves(
        path="(probe)", source_format="probe", index_name="epoch", index=[float(e) for e in result.epochs],
        train_loss=list(result.train_loss), valid_loss=list(result.valid_loss),
        train_metric=list(result.train_metric), valid_metric=list(result.valid_metric),
        metric_name=ctx.metric, metric_higher_is_better=higher_is_better(ctx.metric),
        step=[float(i) for i in range(1, len(result.loss) + 1)], step_loss=list(result.loss),
        columns=[], mapped={"train_loss": "eval-mode loss on train rows", "valid_loss": "eval-mode loss on valid rows"})


@dataclass
class ReferenceModel:
    """A model trained (or fitted) by mltriage and its outputs on every split."""

    kind: str                      # "torch" | "sklearn"
    model: Any
    outputs: dict[str, Any]        # split -> proba (N, C) for classification, predictions (N,) for regression
    history: FitHistory | None = None
    note: str = ""


@analysis
def train_reference(ctx: RunContext) -> ReferenceModel:
    """Train the project's model once per run within the budget (cached for every check)."""
    import numpy as np

    model = ctx.build_model()
    X, y = labelled_rows(ctx, "train")
    if ctx.model_kind == "sklearn":
        with ctx.budget.spend():
            call_user(ctx.config, "the estimator's fit", model.fit, X, y)
        outputs = {}
        for split in ctx.splits:
            Xs = ctx.X(split)
            if ctx.is_classification and hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(Xs), dtype=float)
                full = np.zeros((len(Xs), len(ctx.classes)))
                for j, c in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
                    full[:, int(c)] = proba[:, j]
                outputs[split] = full
            else:
                pred = np.asarray(model.predict(Xs))
                if ctx.is_classification:
                    onehot = np.zeros((len(Xs), len(ctx.classes)))
                    onehot[np.arange(len(Xs)), pred.astype(int)] = 1.0
                    outputs[split] = onehot
                else:
                    outputs[split] = pred.astype(float).reshape(-1)
        return ReferenceModel("sklearn", model, outputs)
    # torch: the training step's instrumented probe already trains the project's model with the
    # configured loss, optimizer, lr, batch size, epochs and train_step; reuse it instead of training twice.
    run = probe(ctx)
    model = run.model
    outputs = {}
    for split in ctx.splits:
        scores = forward_scores(ctx, model, ctx.X(split))
        outputs[split] = scores_to_proba(ctx, scores) if ctx.is_classification else scores.reshape(len(scores), -1)[:, 0]
    epochs = max(0, len(run.epochs) - 1)
    history = FitHistory(step_loss=list(run.loss), epoch_train_loss=list(run.train_loss[1:]), epochs_done=epochs,
                         stopped=run.stopped, seconds=run.seconds)
    note = (f"trained by mltriage for {epochs} of {ctx.config.epochs} epoch(s) in {run.seconds:.1f} s"
            + (" (stopped by the time budget)" if run.stopped == "budget" else "")
            + (" (stopped: the loss became non-finite)" if run.stopped == "diverged" else ""))
    return ReferenceModel("torch", model, outputs, history, note)
