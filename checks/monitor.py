"""The monitor: what the training checks need, recorded from the user's own training run (DESIGN §9).

    from mltriage.monitor import Monitor
    mon = Monitor(model, optimizer, every=50)   # .mltriage/monitor/<run>.jsonl next to mltriage.toml
    for xb, yb in loader:
        ...; loss.backward(); mon.step(loss); optimizer.step()
        mon.eval(val_loss=..., val_accuracy=...)   # whenever the loop evaluates

Every `every` steps one JSON line is appended: the loss, the lr, and per layer the gradient norm, the
weight norm, the update-to-weight ratio of the optimizer step that follows, and (through forward hooks
armed for that step only) the share of dead ReLU units (a unit: a channel of a convolution output, else a
feature on the last axis, so (N, T, F) sequence activations count F units) and of saturated sigmoid/tanh
outputs. Beside a ReLU module's "dead_fraction" go "examples" (the batch it was measured on) and, where
batches are too small to tell a dead unit from a quiet one, "pooled_dead_fraction" / "pooled_examples" over
several recorded batches.

Promises to the training loop, which matters more than any diagnostic:
- it never raises into the loop: any failure disables the monitor with one warning;
- on the steps it does not record it does nothing but count (no device synchronisation on CUDA);
- it holds the model and optimizer only weakly and keeps no tensor past the record it belongs to, but for
  one boolean per ReLU unit while batches too small to judge a dead unit are pooled (DEAD_POOL_EXAMPLES);
- a killed run leaves a readable file: lines are written whole and flushed, and fsynced every few lines.

Imports only torch (and the standard library), so it is safe in any training script. The Lightning and
Hugging Face callbacks are in monitor_callbacks.py.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
FSYNC_EVERY = 20            # records between fsyncs: a crash loses at most this many lines' durability
# The update ratio is measured on at most this many evenly spaced elements per parameter, so the copy of
# the weights it needs stays small on a large model (a 4096-element sample estimates a norm ratio to ~2%).
UPDATE_SAMPLE = 4096
# A sigmoid output within 0.01 of 0 or 1 (|pre-activation| > 4.6), or a tanh output beyond +-0.99
# (|pre-activation| > 2.6), passes less than 1% of the gradient: saturated (Glorot & Bengio 2010).
SATURATION_MARGIN = 0.01
# A unit is "dead" on a batch when it is zero on every example of it; a live unit firing with probability p is
# zero on all of n independent examples with probability (1 - p)^n: 70% for p = 0.3 at n = 1. So the monitor
# pools the units' firing over consecutive recorded batches until they hold at least DEAD_POOL_EXAMPLES
# examples: the smallest n at which a unit firing on >= DEAD_P_MIN of the inputs is zero on all n with
# probability < DEAD_ALPHA (0.9^29 = 0.047). p_min = 0.1: a unit active on fewer than 1 in 10 inputs is near
# dead anyway, while a rectifier unit fires on about half the inputs at initialisation (Glorot, Bordes &
# Bengio 2011, "Deep Sparse Rectifier Neural Networks"); alpha = 0.05 keeps the expected share of live units
# that look dead five times under the 25% warn level of architecture.dead_units. analyses/monitored.py judges with the same minimum (a test keeps them equal).
DEAD_P_MIN = 0.1
DEAD_ALPHA = 0.05
DEAD_POOL_EXAMPLES = math.ceil(math.log(DEAD_ALPHA) / math.log(1 - DEAD_P_MIN))
RELU_TYPES = (torch.nn.ReLU, torch.nn.ReLU6)
SIGMOID_TYPES = (torch.nn.Sigmoid, torch.nn.Hardsigmoid)
TANH_TYPES = (torch.nn.Tanh, torch.nn.Hardtanh)


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a mltriage.toml."""
    for folder in (start, *start.parents):
        if (folder / "mltriage.toml").is_file():
            return folder
    return None


def default_path(run: str | None = None) -> Path:
    """.mltriage/monitor/<run>.jsonl next to the project file above the working directory (or in it)."""
    root = find_project_root(Path.cwd().resolve()) or Path.cwd()
    name = run or time.strftime("run-%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    state = root / ".mltriage"
    # as for all of mltriage's state: never written through a link that may lead out of the project
    if state.is_symlink() or (state / "monitor").is_symlink():
        raise OSError(f"{state} (or its monitor folder) is a symbolic link; pass Monitor(path=...) or make it "
                      f"a plain folder")
    return state / "monitor" / f"{name}.jsonl"


def weight_layers(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Modules that own trainable parameters directly: name -> their parameters (registration order)."""
    layers = {}
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            layers[name or type(module).__name__] = params
    return layers


def _norm(tensors) -> torch.Tensor:
    """The joint L2 norm of tensors, computed on their device (no synchronisation)."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.detach().float()) for t in tensors]))


# --- where a ReLU output's units are --------------------------------------------------------------
# The twin of checks/analyses/model_trace.py's rule (LAYOUT_KEEPING, _layout_after, _Recorder.unit_dim), written
# out again here because this module imports only torch (DESIGN §2: the training-loop hook must not pull in the
# library's engine); tests/test_monitor_axis.py keeps the two in agreement. PyTorch lays convolution outputs out
# as (N, C, ...): a unit is a channel. Everything else puts its features last: (N, F), and (N, T, F) from an
# Embedding, a Linear applied per time step, an LSTM/GRU or attention, where dim 1 is time. A 3-D activation
# is told apart by the modules with parameters that ran before it in the forward pass.
# Normalisation layers keep the layout of what they normalise (BatchNorm1d follows a Conv1d or a Linear).
LAYOUT_KEEPING = ("BatchNorm", "SyncBatchNorm", "GroupNorm", "InstanceNorm", "LazyBatchNorm", "LazyInstanceNorm")


def layout_after(type_name: str, layout: str) -> str:
    """The layout of activations after a module with parameters of this type ran: "channels" or "last"."""
    if type_name.startswith(("Conv", "LazyConv")):
        return "channels"
    return layout if type_name.startswith(LAYOUT_KEEPING) else "last"


def unit_dim(ndim: int, layout: str) -> int:
    """The axis of an activation's units: channels (dim 1) for 4-D/5-D outputs and for 3-D ones after a
    convolution, else the last axis (which is dim 1 for (N, F))."""
    if ndim >= 4 or ndim == 3 and layout == "channels":
        return 1
    return ndim - 1


class _ActivationProbe:
    """Forward hooks that measure dead ReLU units and saturated sigmoid/tanh outputs on one forward pass.

    Beside the activation hooks, a hook on each module with parameters keeps the running layout of the
    forward pass (layout_after), reset when the model's forward starts; all are armed for a recorded step only."""

    def __init__(self, model: torch.nn.Module):
        self.handles = []
        self.values: dict[str, dict[str, torch.Tensor | int]] = {}
        self.fired: dict[str, torch.Tensor] = {}     # ReLU module -> which of its units fired on the batch
        self.layout = "last"
        self.handles.append(model.register_forward_pre_hook(self._start_pass))
        for name, module in model.named_modules():
            kind = ("relu" if isinstance(module, RELU_TYPES) else "sigmoid" if isinstance(module, SIGMOID_TYPES)
                    else "tanh" if isinstance(module, TANH_TYPES) else None)
            if kind:
                self.handles.append(module.register_forward_hook(self._hook(name or type(module).__name__, kind)))
            if module is not model and next(module.parameters(recurse=False), None) is not None:
                # (after the activation hook of the same module, as model_trace records a call before it
                # updates the layout; the model itself is left out, as there: its hook fires after all it holds)
                self.handles.append(module.register_forward_hook(self._follow_layout))

    def _start_pass(self, module, inputs) -> None:
        self.layout = "last"

    def _follow_layout(self, module, inputs, output) -> None:
        self.layout = layout_after(type(module).__name__, self.layout)

    def _hook(self, name: str, kind: str):
        def record(module, inputs, output):
            if not torch.is_tensor(output) or output.numel() == 0 or name in self.values:
                return
            with torch.no_grad():
                out = output.detach()
                if kind == "relu":
                    # A unit is dead when it is zero for every example and position (time step, pixel).
                    if out.dim() > 1:
                        dim = unit_dim(out.dim(), self.layout)
                        fired = out.amax(dim=tuple(d for d in range(out.dim()) if d != dim)) > 0
                    else:
                        fired = (out.amax() > 0).reshape(1)
                    # positions of one example are not independent evidence: only the examples count
                    examples = int(out.shape[0]) if out.dim() > 1 else 1
                    self.values[name] = {"dead_fraction": (~fired).float().mean(), "examples": examples}
                    self.fired[name] = fired
                else:
                    # per output value: the same share whichever axis holds the units
                    low, high = (0.0, 1.0) if kind == "sigmoid" else (-1.0, 1.0)
                    saturated = (out <= low + SATURATION_MARGIN) | (out >= high - SATURATION_MARGIN)
                    self.values[name] = {"saturated_fraction": saturated.float().mean()}
        return record

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class Monitor:
    """Records the run every `every` steps into a JSON-lines file (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, every: int = 50,
                 path: str | os.PathLike | None = None, run: str | None = None):
        self.every = max(1, int(every))
        self.steps = 0
        self.enabled = True
        self.path = Path(path) if path is not None else None  # the default is found in _open, guarded
        self._model = weakref.ref(model)
        self._optimizer = weakref.ref(optimizer) if optimizer is not None else None
        self._file = None
        self._lines = 0
        self._pending: dict[str, Any] | None = None
        self._before: dict[str, torch.Tensor] | None = None
        self._probe: _ActivationProbe | None = None
        self._dead_pools: dict[str, tuple[torch.Tensor, int]] = {}  # ReLU module -> (units fired, examples)
        self._hook = None
        self._guard(self._open, model, run)
        if self.every == 1:  # the first step is recorded: its forward pass must already be observed
            self._guard(self._arm_activation_probe)

    # --- the user's calls ---------------------------------------------------------------------------
    def step(self, loss=None) -> None:
        """Call once per training step, after backward() and before optimizer.step()."""
        if not self.enabled:
            return
        self.steps += 1
        if self._pending is not None:
            self._guard(self._write_pending)
        if self.steps % self.every == 0:
            self._guard(self._record, loss)
        if self.enabled and (self.steps + 1) % self.every == 0:
            self._guard(self._arm_activation_probe)

    def set_loss(self, loss) -> None:
        """The loss of the recorded step when it is known only after the optimizer step (callbacks)."""
        if self.enabled and self._pending is not None and self._pending.get("loss") is None:
            self._guard(self._set_loss, loss)

    def eval(self, step: int | None = None, **metrics) -> None:
        """Record evaluation metrics (val_loss=..., val_accuracy=...) at the current step."""
        if self.enabled:
            self._guard(self._write_eval, step, metrics)

    def close(self) -> None:
        """End the record: `mltriage watch` takes the closing line as the end of the run."""
        if self._pending is not None:
            self._guard(self._write_pending)
        if self.enabled and self._file is not None:
            self._guard(self._emit, {"step": self.steps, "time": time.time(), "end": True})
        self._teardown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- recording ----------------------------------------------------------------------------------
    def _open(self, model, run) -> None:
        if self.path is None:
            self.path = default_path(run)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # line-buffered: whole lines
        n_params = sum(p.numel() for p in model.parameters())
        layers = weight_layers(model)
        modules = dict(model.named_modules())
        self._emit({"monitor": FORMAT_VERSION, "model": type(model).__name__, "parameters": n_params,
                    "layers": list(layers), "every": self.every, "time": time.time(),
                    "layer_types": {n: type(modules.get(n, model)).__name__ for n in layers},
                    # layers with a weight matrix or kernel (not norms and biases): the ones whose gradient
                    # flow the checks compare, as mltriage's own probe does
                    "matrix": [n for n, params in layers.items() if any(p.dim() >= 2 for p in params)]})
        optimizer = self._optimizer() if self._optimizer else None
        if optimizer is not None and hasattr(optimizer, "register_step_post_hook"):
            self._hook = optimizer.register_step_post_hook(self._after_optimizer_step)

    def _arm_activation_probe(self) -> None:
        model = self._model()
        if model is not None and self._probe is None:
            self._probe = _ActivationProbe(model)

    def _record(self, loss) -> None:
        model = self._model()
        if model is None:
            return self._teardown()
        layers = weight_layers(model)
        stats: dict[str, dict[str, torch.Tensor]] = {}
        for name, params in layers.items():
            grads = [p.grad for p in params if p.grad is not None]
            entry = {"weight_norm": _norm(params)}
            if grads:
                entry["grad_norm"] = _norm([g.to_dense() if g.is_sparse else g for g in grads])
            stats[name] = entry
        if self._probe is not None:
            for name, values in self._probe.values.items():
                stats.setdefault(name, {}).update(values)
            for name, fired in self._probe.fired.items():
                stats[name].update(self._pool_dead_units(name, fired, stats[name]["examples"]))
            self._probe.remove()
            self._probe = None
        optimizer = self._optimizer() if self._optimizer else None
        self._pending = {"step": self.steps, "time": time.time(), "loss": _raw(loss),
                         "lr": _lr(optimizer), "layers": stats}
        if self._hook is not None:
            # weights before the step; the post-hook turns them into update ratios, then writes the record
            self._before = {name: [_sample(p) for p in params] for name, params in layers.items()}
        elif loss is not None:
            self._write_pending()

    def _pool_dead_units(self, name: str, fired: torch.Tensor, examples: int) -> dict[str, Any]:
        """A batch of fewer than DEAD_POOL_EXAMPLES examples joins the pool of the recorded batches before it;
        the record that brings the pool to that many examples carries the share of units that fired on none
        of them ("pooled_dead_fraction") and their number ("pooled_examples"). A batch large enough on its
        own needs no pool: its dead_fraction is the evidence."""
        pool = self._dead_pools.pop(name, None)
        if pool is not None and pool[0].shape == fired.shape:  # (a new unit count starts a new pool)
            fired, examples = pool[0] | fired, pool[1] + examples
        elif examples >= DEAD_POOL_EXAMPLES:
            return {}
        if examples < DEAD_POOL_EXAMPLES:
            self._dead_pools[name] = (fired, examples)
            return {}
        return {"pooled_dead_fraction": (~fired).float().mean(), "pooled_examples": examples}

    def _after_optimizer_step(self, optimizer, args, kwargs) -> None:
        if not self.enabled or self._before is None or self._pending is None:
            return
        self._guard(self._update_ratios)

    def _update_ratios(self) -> None:
        model = self._model()
        before, self._before = self._before, None
        if model is None:
            return
        for name, params in weight_layers(model).items():
            old = before.get(name)
            if old is None or len(old) != len(params):
                continue
            delta = _norm([_sample(p) - o for p, o in zip(params, old)])
            self._pending["layers"].setdefault(name, {})["update_ratio"] = delta / (_norm(old) + 1e-12)
        if self._pending.get("loss") is not None:
            self._write_pending()

    def _set_loss(self, loss) -> None:
        self._pending["loss"] = _raw(loss)
        if self._before is None:
            self._write_pending()

    def _write_pending(self) -> None:
        record, self._pending, self._before = self._pending, None, None
        nonfinite = []
        layers = {}
        for name, values in record["layers"].items():
            layers[name] = {key: value if type(value) is int else _scalar(_raw(value))  # counts stay ints
                            for key, value in values.items()}
            nonfinite += [f"{name}.{key}" for key, value in layers[name].items() if value is None]
        loss = record["loss"]
        record["loss"], record["layers"] = _scalar(loss), layers
        if loss is not None and record["loss"] is None:
            nonfinite.insert(0, "loss")
        if nonfinite:  # JSON has no NaN: the value is null and this list says it was not finite
            record["nonfinite"] = nonfinite
        self._emit(record)

    def _write_eval(self, step, metrics) -> None:
        if self._pending is not None:
            self._write_pending()
        values = {str(k): _scalar(v) for k, v in metrics.items()}  # a NaN metric is recorded as null
        self._emit({"step": self.steps if step is None else int(step), "time": time.time(), "eval": values})

    def _emit(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=False, default=str) + "\n")
        self._lines += 1
        if self._lines % FSYNC_EVERY == 0:
            os.fsync(self._file.fileno())

    # --- never into the user's loop -----------------------------------------------------------------
    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # the training run matters more than its diagnostics
            warnings.warn(f"mltriage monitor disabled: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3)
            self._teardown()

    def _teardown(self) -> None:
        self.enabled = False
        self._pending, self._before = None, None
        for remove in (self._probe.remove if self._probe else None, self._hook.remove if self._hook else None):
            if remove is not None:
                try:
                    remove()
                except Exception:
                    pass
        self._probe = self._hook = None
        self._dead_pools = {}
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
            except (OSError, ValueError):
                pass
            self._file = None


def _sample(param: torch.Tensor) -> torch.Tensor:
    """Evenly spaced elements of a parameter (all of a small one), copied: the same positions each call."""
    flat = param.detach().reshape(-1)
    return flat[:: max(1, flat.numel() // UPDATE_SAMPLE)].clone()


def _raw(value) -> float | None:
    """A Python float (NaN and inf kept) from a number or a tensor (its mean), None when it is neither."""
    if value is None:
        return None
    if torch.is_tensor(value):
        if value.numel() == 0:
            return None
        value = value.detach().float().mean().item()  # the one synchronisation, on recorded steps only
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _scalar(value) -> float | None:
    """A finite float for JSON, or None (JSON has no NaN; the record lists what was not finite)."""
    value = _raw(value)
    return value if value is not None and math.isfinite(value) else None


def _lr(optimizer) -> float | None:
    if optimizer is None or not getattr(optimizer, "param_groups", None):
        return None
    return _scalar(optimizer.param_groups[0].get("lr"))


# --- framework callbacks --------------------------------------------------------------------------
# Trainer(callbacks=[LightningMonitor()]) / Trainer(callbacks=[HFMonitor()]): the same Monitor, driven by
# the framework's hooks. Each factory imports its framework only when called, so this module imports
# with neither installed. Like Monitor, a callback never raises into training.

def _inner_optimizer(optimizer):
    """The torch optimizer under a wrapper (accelerate's AcceleratedOptimizer, Lightning's
    LightningOptimizer): its step is the one whose post-hooks fire."""
    seen = 0
    while optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer) and seen < 4:
        optimizer = getattr(optimizer, "optimizer", getattr(optimizer, "_optimizer", None))
        seen += 1
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


def _loss_of(output):
    """The loss in what a training step or a model returned: a tensor, {"loss": ...}, or `.loss`."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, dict):
        return output.get("loss")
    return getattr(output, "loss", None)
