"""Shared model machinery: losses, optimizers, mltriage's own training loop, scoring a model, and the
reference model every later step uses when the project gives no predictions. Also what an uninformed
model scores under the configured loss (the sanity step compares a fresh model with it).

Everything here honours the run's training budget (ctx.budget) and fixed seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..engine.context import RunContext, cpu_clock
from ..findings import SkipCheck
from ..project.usercode import call_user, resolve_function
from ..vocab import loss_info

PREDICT_BATCH = 4096
# vocab.LOSSES name -> torch.nn class name (a test checks every vocab loss has one).
TORCH_LOSS_CLASSES = {"cross_entropy": "CrossEntropyLoss", "nll": "NLLLoss", "bce": "BCELoss",
                      "bce_with_logits": "BCEWithLogitsLoss", "mse": "MSELoss", "l1": "L1Loss",
                      "huber": "HuberLoss"}


def make_loss(ctx: RunContext):
    """The configured loss module: a builtin name or a project function returning one."""
    import torch.nn as nn

    name = ctx.loss_name
    if name in TORCH_LOSS_CLASSES:
        return getattr(nn, TORCH_LOSS_CLASSES[name])()
    fn = resolve_function(ctx.config, ctx.code, "loss", name)
    return call_user(ctx.config, f"loss function {name}", fn)


def make_optimizer(ctx: RunContext, params, lr: float | None = None):
    import torch

    lr = ctx.config.lr if lr is None else lr
    name = ctx.config.optimizer
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    fn = resolve_function(ctx.config, ctx.code, "optimizer", name)
    return call_user(ctx.config, f"optimizer function {name}", fn, params, lr)


def index_targets(ctx: RunContext) -> bool:
    """Whether the loss takes class indices: cross_entropy/nll, and a project's own loss on a
    multi-output classifier (DESIGN §3 leaves custom losses open; class indices are what such
    losses almost always take, e.g. a label-smoothed or focal cross-entropy)."""
    builtin = loss_info(ctx.loss_name)
    if builtin is not None:
        return builtin.takes_class_indices
    return ctx.is_classification and ctx.n_outputs > 1


def target_tensor(ctx: RunContext, y):
    """Targets as the contract gives them to train_step: int64 (N,) for cross_entropy/nll, else float32 (N,)."""
    import numpy as np
    import torch

    if index_targets(ctx):
        return torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return torch.as_tensor(np.asarray(y, dtype=np.float32), dtype=torch.float32)


def labelled_rows(ctx: RunContext, split: str):
    """(X, y) of a split without rows whose label is missing or outside `classes`."""
    import numpy as np

    X, y = ctx.X(split), ctx.y(split)
    keep = (y >= 0) if ctx.is_classification else np.isfinite(y)
    return X[keep], y[keep]


def loss_value(ctx: RunContext, loss_fn, out, yb):
    """mltriage's own loss call: squeeze a trailing output dimension of 1 for bce/regression losses."""
    if not index_targets(ctx) and out.ndim == 2 and out.shape[1] == 1:
        out = out.squeeze(1)
    return loss_fn(out, yb)


def step_loss_value(value) -> float:
    """The float a project's train_step returned; a clear UserCodeError when it returned no number."""
    from ..project.usercode import UserCodeError

    try:
        return float(value.detach()) if hasattr(value, "detach") else float(value)
    except (TypeError, ValueError, RuntimeError):
        shown = "None (nothing)" if value is None else f"a {type(value).__name__}"
        raise UserCodeError(f"train_step returned {shown}; it must return the batch loss as a float "
                            f"(e.g. `return loss.item()`)") from None


def default_step(ctx: RunContext, model, optimizer, loss_fn, xb, yb) -> float:
    model.train()
    optimizer.zero_grad()
    loss = loss_value(ctx, loss_fn, output_tensor(model(xb)), yb)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@dataclass
class FitHistory:
    step_loss: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)
    epochs_done: int = 0
    stopped: str = ""  # "", "budget", "diverged"
    seconds: float = 0.0


def fit_torch(ctx: RunContext, model, X, y, epochs: int | None = None, seconds: float | None = None,
              lr: float | None = None, batch_size: int | None = None, use_project_step: bool = True,
              on_step: Callable[[int, float], None] | None = None, seed: int | None = None) -> FitHistory:
    """Train with the configured loss/optimizer/batch size (the project's train_step when given),
    shuffling each epoch with a fixed seed, until `epochs` or `seconds` (capped by the budget) run out."""
    import math

    import numpy as np
    import torch

    history = FitHistory()
    model.to(ctx.device)
    epochs = epochs or ctx.config.epochs
    batch_size = batch_size or ctx.config.batch_size
    limit = min(seconds if seconds is not None else float("inf"), ctx.budget.remaining())
    loss_fn = make_loss(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], lr)
    project_step = ctx.function("train_step") if use_project_step else None
    Xt = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    yt = target_tensor(ctx, y).to(ctx.device)
    rng = np.random.default_rng(ctx.seed if seed is None else seed)
    start, cpu_start = time.perf_counter(), cpu_clock()
    with ctx.budget.spend():
        for epoch in range(epochs):
            order = torch.as_tensor(rng.permutation(len(Xt)))
            total, count = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                xb, yb = Xt[idx], yt[idx]
                if project_step is not None:
                    value = call_user(ctx.config, "train_step", project_step, model, optimizer, loss_fn, xb, yb)
                    value = step_loss_value(value)
                else:
                    value = default_step(ctx, model, optimizer, loss_fn, xb, yb)
                history.step_loss.append(value)
                if on_step:
                    on_step(len(history.step_loss), value)
                total, count = total + value * len(idx), count + len(idx)
                if not math.isfinite(value):
                    history.stopped = "diverged"
                    break
                if cpu_clock() - cpu_start > limit:
                    history.stopped = "budget"
                    break
            history.epoch_train_loss.append(total / max(count, 1))
            history.epochs_done = epoch + 1
            if history.stopped:
                break
    history.seconds = time.perf_counter() - start
    return history


def forward_scores(ctx: RunContext, model, X, use_project_predict: bool = True):
    """Raw model outputs as a numpy array: the project's predict when given, else eval-mode forward."""
    import numpy as np
    import torch

    predict = ctx.function("predict") if use_project_predict else None
    model.to(ctx.device)
    if predict is not None:
        Xt = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
        out = call_user(ctx.config, "predict", predict, model, Xt)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=np.float64)
    was_training = model.training
    model.eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(X), PREDICT_BATCH):
            xb = torch.as_tensor(X[i:i + PREDICT_BATCH], dtype=torch.float32, device=ctx.device)
            chunks.append(output_tensor(model(xb)).detach().cpu().numpy())
    model.train(was_training)
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros((0, ctx.n_outputs))


def scores_to_proba(ctx: RunContext, scores):
    """Class probabilities (N, C) from model outputs, whatever the head: logits, log-probabilities,
    probabilities, or one binary logit/probability."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    activation = _expected_activation(ctx)
    if s.ndim == 1:  # one output: binary
        p1 = s if activation == "sigmoid" or (np.all(s >= 0) and np.all(s <= 1)) else 1 / (1 + np.exp(-s))
        return np.column_stack([1 - p1, p1])
    rows = s.sum(axis=1)
    if np.all(s >= 0) and np.allclose(rows, 1.0, atol=1e-3):
        return s
    if activation == "log_softmax" or (np.all(s <= 1e-6) and np.allclose(np.exp(s).sum(axis=1), 1.0, atol=1e-3)):
        return np.exp(s)
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)




def _expected_activation(ctx: RunContext) -> str | None:
    """What the configured loss expects the model's last layer to produce (None for a project's own loss)."""
    builtin = loss_info(ctx.loss_name)
    return builtin.activation if builtin is not None else None


def first_tensor(value):
    """The model's output as DESIGN §3b reads it: a tensor itself, the first element of a tuple/list,
    or the `.logits` of an object that has them (Hugging Face outputs); None when there is no tensor."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    logits = getattr(value, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def output_tensor(value, where: str = "the model's forward()"):
    """first_tensor, or a clear UserCodeError naming what forward() returned instead."""
    tensor = first_tensor(value)
    if tensor is None:
        from ..project.usercode import UserCodeError

        raise UserCodeError(f"{where} returned {type(value).__name__}, not a tensor: return the scores as a "
                            f"tensor, a tuple whose first element is that tensor, or an object with .logits", "")
    return tensor


# ---- the uninformed model: what a model that knows nothing about the input scores -----------------

def uninformed_prediction(ctx: RunContext, yt):
    """The output of a model that knows nothing about the input, in the form the loss expects:
    uniform logits / log-probabilities / probabilities, or the target mean (median for l1)."""
    import math

    import torch

    n = len(yt)
    builtin = loss_info(ctx.loss_name)
    if builtin is None:
        raise SkipCheck(f"custom loss {ctx.loss_name!r}: mltriage has no theoretical value for an uninformed model")
    if builtin.task == "regression":
        centre = yt.float().median() if builtin.init_theory == "mad" else yt.float().mean()
        return torch.full((n,), float(centre))
    shape = (n, ctx.n_outputs) if builtin.per_class_outputs else (n,)
    if builtin.activation == "log_softmax":
        return torch.full(shape, -math.log(ctx.n_outputs))
    if builtin.activation == "sigmoid":
        return torch.full(shape, 0.5)
    return torch.zeros(shape)  # raw logits: all zero is uniform


def theory_description(ctx: RunContext) -> str:
    """The uninformed loss in words, for titles: "ln 10 = 2.303 (uniform over 10 classes)"."""
    import math

    builtin = loss_info(ctx.loss_name)
    theory = builtin.init_theory if builtin is not None else "none"
    if theory == "ln_classes":
        return f"ln {ctx.n_outputs} = {math.log(ctx.n_outputs):.3f} (uniform over {ctx.n_outputs} classes)"
    if theory == "ln_2":
        return f"ln 2 = {math.log(2):.3f} (probability 0.5)"
    if theory == "variance":
        return "var(y), the loss of predicting the target mean"
    return f"the {ctx.loss_name} loss of predicting the target {'median' if theory == 'mad' else 'mean'}"


def eval_loss(ctx: RunContext, model, X, y, loss_fn=None) -> float:
    """mltriage's loss of a model on (X, y) in eval mode, without gradients (mode restored)."""
    import torch

    loss_fn = loss_fn or make_loss(ctx)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
            out = first_tensor(model(xb))
            return float(loss_value(ctx, loss_fn, out, target_tensor(ctx, y).to(ctx.device)))
    finally:
        model.train(was)


def predicted_labels(ctx: RunContext, out):
    """Class predictions from raw outputs in the form the configured loss implies."""
    builtin = loss_info(ctx.loss_name)
    if (builtin is not None and builtin.per_class_outputs) or (out.ndim == 2 and out.shape[1] > 1):
        return out.argmax(dim=1)
    scores = out.reshape(len(out))
    threshold = 0.5 if _expected_activation(ctx) == "sigmoid" else 0.0
    return (scores > threshold).long()
