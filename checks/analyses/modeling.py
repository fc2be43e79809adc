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
from ..engine.inputs import feed, is_tensor_rows
from ..project.usercode import call_user, resolve_function
from ..vocab import loss_info

PREDICT_BATCH = 4096
PREDICT_BATCH_TENSOR = 256  # items per forward when scoring a tensor split (images are large)
# vocab.LOSSES name -> torch.nn class name (a test checks every vocab loss has one).
TORCH_LOSS_CLASSES = {"cross_entropy": "CrossEntropyLoss", "nll": "NLLLoss", "bce": "BCELoss",
                      "bce_with_logits": "BCEWithLogitsLoss", "mse": "MSELoss", "l1": "L1Loss",
                      "huber": "HuberLoss"}


def make_loss(ctx: RunContext):
    """The configured loss module: a builtin name or a project function returning one."""
    import torch.nn as nn

    name = ctx.loss_name
    if name in TORCH_LOSS_CLASSES and not project_defines(ctx, name):
        return getattr(nn, TORCH_LOSS_CLASSES[name])()
    fn = resolve_function(ctx.config, ctx.code, "loss", name)
    return call_user(ctx.config, f"loss function {name}", fn)


# The torch modules whose use of torch._dynamo, outside torch.compile, only calls through (below).
DYNAMO_CALL_THROUGH = {"torch.optim.optimizer": "graph_break", "torch._compile": "disable"}


def without_dynamo_import() -> None:
    """Optimizer.step calls torch._dynamo.graph_break() and its other methods go through
    torch._disable_dynamo: both import torch._dynamo and sympy, 2.0 s of CPU measured here (more than the
    rest of a table project's sanity step), to do nothing outside torch.compile (an empty body; fn run as
    is). Until anything else asks for torch._dynamo, a stand-in answers exactly those two callers; any
    other access (torch.compile, the project's own use) loads the real module in its place."""
    import importlib
    import importlib.util
    import sys
    import types

    if "torch._dynamo" in sys.modules:
        return
    import torch

    call_through = {"graph_break": lambda msg="": None,
                    "disable": lambda fn=None, recursive=True, **kw: fn if fn is not None else (lambda f: f)}

    class LazyDynamo(types.ModuleType):
        def __getattr__(self, name):
            if DYNAMO_CALL_THROUGH.get(sys._getframe(1).f_globals.get("__name__")) == name:
                return call_through[name]
            if sys.modules.get("torch._dynamo") is self:
                del sys.modules["torch._dynamo"]
            torch._dynamo = importlib.import_module("torch._dynamo")
            return getattr(torch._dynamo, name)

    stand_in = LazyDynamo("torch._dynamo")
    stand_in.__spec__ = importlib.util.find_spec("torch._dynamo")  # what find_spec callers read; no __path__
    sys.modules["torch._dynamo"] = torch._dynamo = stand_in


def make_optimizer(ctx: RunContext, params, lr: float | None = None, model=None):
    """The configured optimizer; a LightningModule's configure_optimizers() when the project is one
    (its lr replaced by `lr` when a probe sweeps it)."""
    import torch

    without_dynamo_import()
    if ctx.config.lightning and model is not None and hasattr(model, "configure_optimizers"):
        return lightning_optimizer(ctx, model, lr)
    lr = ctx.config.lr if lr is None else lr
    name = ctx.config.optimizer
    if project_defines(ctx, name):  # a project function named like a builtin (`def sgd(params, lr)`) wins
        fn = resolve_function(ctx.config, ctx.code, "optimizer", name)
        return call_user(ctx.config, f"optimizer function {name}", fn, params, lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM)
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


SGD_MOMENTUM = 0.9  # optimizer = "sgd": torch.optim.SGD with this momentum (the common default in practice)


def project_defines(ctx: RunContext, name: str) -> bool:
    """Whether the project's code itself defines a function called `name` (not one it imported)."""
    module = ctx.code
    fn = getattr(module, name, None) if module is not None else None
    return callable(fn) and getattr(fn, "__module__", None) == getattr(module, "__name__", "")


def optimizer_description(ctx: RunContext) -> str:
    """The optimizer in words, for evidence: "sgd (momentum 0.9)", "adam", "the project's make_opt"."""
    name = ctx.config.optimizer
    if ctx.config.lightning:
        return f"{ctx.config.lightning}.configure_optimizers()"
    if project_defines(ctx, name) or name not in ("adam", "adamw", "sgd"):
        return f"the project's {name}(params, lr)"
    return f"sgd (momentum {SGD_MOMENTUM})" if name == "sgd" else name


def lightning_optimizer(ctx: RunContext, module, lr: float | None = None):
    """The first optimizer configure_optimizers() returns (an optimizer, a list, a (list, list) pair or a
    dict with "optimizer"), with its learning rate set to `lr` when one is given."""
    import torch

    from ..project.usercode import UserCodeError

    out = call_user(ctx.config, f"{ctx.config.lightning}.configure_optimizers", module.configure_optimizers)
    optimizer = _first_optimizer(out)
    if optimizer is None:
        raise UserCodeError(f"{ctx.config.lightning}.configure_optimizers() returned {type(out).__name__}; it must "
                            f"return an optimizer (or a list of them, or a dict with \"optimizer\")", "")
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    assert isinstance(optimizer, torch.optim.Optimizer)
    return optimizer


def _first_optimizer(out):
    import torch

    if isinstance(out, torch.optim.Optimizer):
        return out
    if isinstance(out, dict):
        return _first_optimizer(out.get("optimizer"))
    if isinstance(out, (list, tuple)) and out:
        return _first_optimizer(out[0])
    return None


def lightning_step(ctx: RunContext, model, optimizer, xb, yb, step: int) -> float:
    """One training step of a LightningModule without a Trainer: its training_step gives the loss."""
    from ..project.usercode import UserCodeError

    model.train()
    optimizer.zero_grad()
    out = call_user(ctx.config, f"{ctx.config.lightning}.training_step", model.training_step, (xb, yb), step)
    loss = out.get("loss") if isinstance(out, dict) else out
    if not hasattr(loss, "backward"):
        raise UserCodeError(f"{ctx.config.lightning}.training_step returned {type(out).__name__}; it must return "
                            f"the loss tensor (or a dict with \"loss\")", "")
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def call_model(model, xb, where: str = "the model's forward()"):
    """The model's output tensor for a batch (DESIGN §3b: model(x), model(*x), model(**x); a tensor, a
    tuple's first element or .logits)."""
    return output_tensor(feed(model, xb), where)


def cast_targets(ctx: RunContext, yb):
    """A collated target batch in the dtype the loss takes: int64 class indices or float32."""
    import torch

    if not isinstance(yb, torch.Tensor):
        yb = torch.as_tensor(yb)
    if index_targets(ctx):
        return yb.long() if yb.is_floating_point() or yb.dtype != torch.int64 else yb
    return yb.float() if yb.dtype != torch.float32 else yb


def batch_of(ctx: RunContext, X, y=None):
    """(xb, yb) on ctx.device for a whole set of rows: a float matrix and its targets as the contract gives
    them (DESIGN §3), or TensorRows collated with the project's collate (DESIGN §3b)."""
    import torch

    if is_tensor_rows(X):
        import numpy as np

        xb, yb = X.batch(np.arange(len(X)), ctx.device)
        return xb, cast_targets(ctx, yb)
    xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    return xb, (None if y is None else target_tensor(ctx, y).to(ctx.device))


def labelled_rows(ctx: RunContext, split: str):
    """(X, y) of a split without rows whose label is missing or outside `classes`."""
    import numpy as np

    if ctx.is_tensor and ctx.target_kind == "sequence":
        return ctx.X(split), None  # targets come with each collated batch
    X, y = ctx.X(split), ctx.y(split)
    keep = (y >= 0) if ctx.is_classification else np.isfinite(y)
    return X[keep], y[keep]


def loss_value(ctx: RunContext, loss_fn, out, yb):
    """mltriage's own loss call: squeeze a trailing output dimension of 1 for bce/regression losses;
    sequence targets (N, T) against (N, T, V) or (N*T, V) outputs are flattened to tokens."""
    if not index_targets(ctx) and out.ndim == 2 and out.shape[1] == 1:
        out = out.squeeze(1)
    if index_targets(ctx) and yb.ndim >= 2:
        out, yb = out.reshape(-1, out.shape[-1]), yb.reshape(-1)
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
    loss = loss_value(ctx, loss_fn, call_model(model, xb), yb)
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

    history = FitHistory()
    model.to(ctx.device)
    epochs = epochs or ctx.config.epochs
    batch_size = batch_size or ctx.config.batch_size
    limit = min(seconds if seconds is not None else float("inf"), ctx.budget.remaining())
    loss_fn = make_loss(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], lr, model=model)
    scheduler = make_scheduler(ctx, optimizer)
    project_step = ctx.function("train_step") if use_project_step else None
    get_batch = batch_getter(ctx, X, y)
    n_rows = len(X)
    rng = np.random.default_rng(ctx.seed if seed is None else seed)
    start, cpu_start = time.perf_counter(), cpu_clock()
    with ctx.budget.spend():
        for epoch in range(epochs):
            order = rng.permutation(n_rows)
            total, count = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                xb, yb = get_batch(idx)
                value = run_step(ctx, model, optimizer, loss_fn, xb, yb, project_step, len(history.step_loss))
                if scheduler is not None:
                    scheduler.step()
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


def batch_getter(ctx: RunContext, X, y):
    """idx -> (xb, yb) on ctx.device: rows of a float matrix and its targets, or TensorRows collated."""
    import torch

    if is_tensor_rows(X):
        def tensor_batch(idx):
            xb, yb = X.batch(idx, ctx.device)
            return xb, cast_targets(ctx, yb)
        return tensor_batch
    Xt = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    yt = target_tensor(ctx, y).to(ctx.device)
    return lambda idx: (Xt[torch.as_tensor(idx)], yt[torch.as_tensor(idx)])


def run_step(ctx: RunContext, model, optimizer, loss_fn, xb, yb, project_step, step: int) -> float:
    """One training step: the project's train_step, a LightningModule's training_step, or mltriage's."""
    if project_step is not None:
        value = call_user(ctx.config, "train_step", project_step, model, optimizer, loss_fn, xb, yb)
        return step_loss_value(value)
    if ctx.config.lightning and hasattr(model, "training_step"):
        return lightning_step(ctx, model, optimizer, xb, yb, step)
    return default_step(ctx, model, optimizer, loss_fn, xb, yb)


def make_scheduler(ctx: RunContext, optimizer):
    """The project's lr scheduler ([model] scheduler = "make_scheduler"), stepped once per batch; None."""
    fn = ctx.function("scheduler")
    if fn is None:
        return None
    return call_user(ctx.config, "make_scheduler", fn, optimizer)


def forward_scores(ctx: RunContext, model, X, use_project_predict: bool = True):
    """Raw model outputs as a numpy array: the project's predict when given, else eval-mode forward."""
    import numpy as np
    import torch

    predict = ctx.function("predict") if use_project_predict else None
    model.to(ctx.device)
    if is_tensor_rows(X):
        return _tensor_scores(ctx, model, X, predict)
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


def _tensor_scores(ctx: RunContext, model, X, predict):
    """Scores of TensorRows batch by batch: predict(model, xb) per DataLoader batch (DESIGN §3b), else an
    eval-mode forward. Sequence outputs are flattened to one row per position."""
    import numpy as np
    import torch

    chunks = []
    was_training = model.training
    if predict is None:
        model.eval()
    try:
        with torch.no_grad():
            for xb, _ in X.batches(PREDICT_BATCH_TENSOR, ctx.device):
                if predict is not None:
                    out = call_user(ctx.config, "predict", predict, model, xb)
                    out = first_tensor(out) if first_tensor(out) is not None else torch.as_tensor(np.asarray(out))
                else:
                    out = call_model(model, xb)
                out = out.detach().float().cpu()
                if out.ndim >= 3:
                    out = out.reshape(-1, out.shape[-1])
                chunks.append(out.numpy())
    finally:
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


def eval_loss(ctx: RunContext, model, X, y, loss_fn=None) -> float:
    """mltriage's loss of a model on (X, y) in eval mode, without gradients (mode restored)."""
    import torch

    loss_fn = loss_fn or make_loss(ctx)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            if is_tensor_rows(X):
                return _tensor_eval_loss(ctx, model, X, loss_fn)
            xb = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
            out = first_tensor(feed(model, xb))
            return float(loss_value(ctx, loss_fn, out, target_tensor(ctx, y).to(ctx.device)))
    finally:
        model.train(was)


def _tensor_eval_loss(ctx: RunContext, model, X, loss_fn) -> float:
    """The mean loss over TensorRows, batch by batch, weighted by batch size."""
    total, count = 0.0, 0
    for xb, yb in X.batches(PREDICT_BATCH_TENSOR, ctx.device):
        n = len(yb)
        total += float(loss_value(ctx, loss_fn, call_model(model, xb), cast_targets(ctx, yb))) * n
        count += n
    return total / max(count, 1)


def predicted_labels(ctx: RunContext, out):
    """Class predictions from raw outputs in the form the configured loss implies."""
    builtin = loss_info(ctx.loss_name)
    if (builtin is not None and builtin.per_class_outputs) or (out.ndim == 2 and out.shape[1] > 1):
        return out.argmax(dim=1)
    scores = out.reshape(len(out))
    threshold = 0.5 if _expected_activation(ctx) == "sigmoid" else 0.0
    return (scores > threshold).long()
