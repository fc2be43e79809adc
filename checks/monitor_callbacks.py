"""The monitor as callbacks of Lightning and Hugging Face Trainer (DESIGN §9): `LightningMonitor()` and
`HFMonitor()`, each importing its framework only when called. Re-exported by mltriage.monitor."""

from __future__ import annotations

import os
import warnings

from .monitor import Monitor, _inner_optimizer, _loss_of, _raw


class _CallbackCore:
    """What both callbacks share: one Monitor per fit, created when training starts, closed at its end."""

    def __init__(self, every: int = 50, path: str | os.PathLike | None = None, run: str | None = None):
        super().__init__()
        self.every, self.path, self.run = every, path, run
        self.monitor: Monitor | None = None
        self._warned = False

    def _safely(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # never into the user's training
            if not self._warned:
                self._warned = True
                warnings.warn(f"mltriage monitor callback disabled: {type(exc).__name__}: {exc}", RuntimeWarning,
                              stacklevel=3)
            if self.monitor is not None:
                self.monitor._teardown()

    def _start(self, model, optimizer) -> None:
        if self.monitor is not None:
            self.monitor.close()
        self.monitor = Monitor(model, _inner_optimizer(optimizer), every=self.every, path=self.path, run=self.run)

    def _eval(self, metrics: dict) -> None:
        if self.monitor is None:
            return
        values = {}
        for key, value in metrics.items():
            value = _raw(value)
            if value is not None:
                values[str(key)] = value
        if values:
            self.monitor.eval(**values)

    def _close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()


_LIGHTNING_CLASSES: dict[str, type] = {}


def LightningMonitor(every: int = 50, path: str | os.PathLike | None = None, run: str | None = None):
    """A Lightning Callback recording the run as Monitor does: `Trainer(callbacks=[LightningMonitor()])`.

    Uses `lightning.pytorch` or `pytorch_lightning`, whichever the script imported (else the one installed).
    It steps the monitor after backward (on_before_optimizer_step, so gradient accumulation counts optimizer
    steps), takes the loss from the training step's output, and records the validation metrics Lightning
    collected (trainer.callback_metrics) after each validation run outside the sanity check.
    """
    import sys

    names = [n for n in ("lightning.pytorch", "pytorch_lightning") if n in sys.modules] or \
        ["lightning.pytorch", "pytorch_lightning"]
    callback_base = None
    for name in names:
        if name in _LIGHTNING_CLASSES:
            return _LIGHTNING_CLASSES[name](every, path, run)
        try:
            module = __import__(name, fromlist=["Callback"])
            callback_base = module.Callback
            break
        except ImportError:
            continue
    if callback_base is None:
        raise ImportError("LightningMonitor needs Lightning: pip install lightning")

    class _Lightning(_CallbackCore, callback_base):
        def on_fit_start(self, trainer, pl_module):
            optimizers = getattr(trainer, "optimizers", None) or [None]
            self._safely(self._start, pl_module, optimizers[0])

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if self.monitor is not None:
                self.monitor.step(None)   # the loss follows in on_train_batch_end

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.monitor is not None:
                self.monitor.set_loss(_loss_of(outputs))

        def on_validation_end(self, trainer, pl_module):
            if not getattr(trainer, "sanity_checking", False):
                metrics = {k: v for k, v in dict(getattr(trainer, "callback_metrics", {}) or {}).items()
                           if _is_eval_key(k)}
                self._safely(self._eval, metrics)

        def on_fit_end(self, trainer, pl_module):
            self._safely(self._close)

        def on_exception(self, trainer, pl_module, exception):
            self._safely(self._close)

    _Lightning.__name__ = _Lightning.__qualname__ = "LightningMonitor"
    _LIGHTNING_CLASSES[name] = _Lightning
    return _Lightning(every, path, run)


def _is_eval_key(key: str) -> bool:
    parts = [p for p in key.lower().replace("/", "_").split("_") if p]
    return any(p in ("val", "valid", "validation", "eval", "dev") for p in parts)


_HF_CLASS: list[type] = []


def HFMonitor(every: int = 50, path: str | os.PathLike | None = None, run: str | None = None):
    """A Hugging Face TrainerCallback recording the run as Monitor does: `Trainer(callbacks=[HFMonitor()])`.

    The monitor steps in on_pre_optimizer_step (after backward and gradient clipping, before the optimizer);
    the loss is the one the model returned on the last training forward pass of that step (a forward hook
    keeps that one detached scalar until the step is recorded, no more); `on_evaluate` records the eval_*
    metrics.
    """
    if _HF_CLASS:
        return _HF_CLASS[0](every, path, run)
    try:
        from transformers import TrainerCallback
    except ImportError as exc:
        raise ImportError("HFMonitor needs transformers: pip install transformers") from exc
    if not hasattr(TrainerCallback, "on_pre_optimizer_step"):  # older transformers never call it
        warnings.warn("mltriage HFMonitor needs a transformers release whose Trainer calls on_pre_optimizer_step "
                      "(pip install -U transformers); this one records nothing", RuntimeWarning, stacklevel=2)

    class _HF(_CallbackCore, TrainerCallback):
        def __init__(self, every=50, path=None, run=None):
            super().__init__(every, path, run)
            self._last_loss = None
            self._handle = None

        def _capture(self, module, inputs, output):
            if module.training:
                loss = _loss_of(output)
                self._last_loss = loss.detach() if torch.is_tensor(loss) else None

        def _begin(self, model, optimizer):
            self._start(model, optimizer)
            if self._handle is None and model is not None:
                self._handle = model.register_forward_hook(self._capture)

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            self._safely(self._begin, model, optimizer)

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            if self.monitor is not None:
                loss, self._last_loss = self._last_loss, None
                self.monitor.step(loss)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self._safely(self._eval, {k: v for k, v in (metrics or {}).items()
                                      if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))})

        def on_train_end(self, args, state, control, **kwargs):
            self._safely(self._end)

        def _end(self):
            if self._handle is not None:
                self._handle.remove()
                self._handle = None
            self._last_loss = None
            self._close()

    _HF.__name__ = _HF.__qualname__ = "HFMonitor"
    _HF_CLASS.append(_HF)
    return _HF(every, path, run)
