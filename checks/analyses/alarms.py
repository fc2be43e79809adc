"""Alarms on a training run while it trains (`mltriage watch`): each new record is judged as it arrives,
so the cost of an update is the cost of the new records, however long the run has been going.

The thresholds are the training checks' own (steps/training), restated here because an analysis does not
import a step: divergence is a smoothed loss 50% above its lowest point and still rising; exploding
gradients are norms beyond 1e4 (Pascanu et al. 2013 clip at norms of order 1-10); a layer whose gradient
is exactly zero for several records in a row receives nothing; a validation loss 10% above its best at two
evaluations in a row has turned up. Each alarm fires once per kind (and layer).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

EMA_BETA = 0.9                 # smoothing of the recorded losses (as the training checks)
DIVERGE_RISE = 0.5             # smoothed loss 50% above its lowest point ...
DIVERGE_MIN_RECORDS = 10       # ... after at least this many records (the start of a run is noisy) ...
DIVERGE_RISING = 3             # ... and higher at each of the last 3 records: a rise, not a spike
EXPLODE_NORM_FAIL = 1e4
EXPLODE_NORM_WARN = 1e2
ZERO_GRAD = 1e-12
ZERO_GRAD_RECORDS = 5          # a layer with no gradient at this many records in a row
VALID_RISE_WARN = 0.10         # validation loss 10% above its best ...
VALID_RISE_EVALS = 2           # ... at this many evaluations in a row


@dataclass
class Alarm:
    kind: str                  # "nonfinite_loss" | "divergence" | "exploding_gradients" | ...
    status: str                # "warn" | "fail"
    step: int
    title: str
    fix: str
    layer: str | None = None
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _LossState:
    ema: float = 0.0
    records: int = 0
    lowest: float = math.inf
    rising: int = 0
    previous: float = math.nan


class RunWatcher:
    """Feed it the records of a run as they come (`step`, `eval`); it returns the alarms they raise."""

    def __init__(self):
        self.fired: set[tuple[str, str | None]] = set()
        self.loss = _LossState()
        self.zero_grad_runs: dict[str, int] = {}
        self.best_valid = math.inf
        self.valid_above = 0

    def _fire(self, alarm: Alarm) -> list[Alarm]:
        key = (alarm.kind, alarm.layer)
        if key in self.fired:
            return []
        self.fired.add(key)
        return [alarm]

    def step(self, step: int, loss: float, layers: dict[str, dict[str, float]] | None = None) -> list[Alarm]:
        """One training record: its loss (NaN when it was not finite) and per-layer statistics."""
        alarms = self._loss(step, loss)
        for name, values in (layers or {}).items():
            alarms += self._gradient(step, name, values.get("grad_norm"))
        return alarms

    def _loss(self, step: int, loss: float) -> list[Alarm]:
        if loss is None or not math.isfinite(loss):
            return self._fire(Alarm("nonfinite_loss", "fail", step, f"the loss became non-finite at step {step}",
                                    "Stop the run: lower the learning rate, clip gradients "
                                    "(torch.nn.utils.clip_grad_norm_), and look for log(0) or a division by zero "
                                    "in the loss."))
        s = self.loss
        s.records += 1
        s.ema = EMA_BETA * s.ema + (1 - EMA_BETA) * loss
        smooth = s.ema / (1 - EMA_BETA ** s.records)
        s.rising = s.rising + 1 if smooth > s.previous else 0
        s.previous = smooth
        s.lowest = min(s.lowest, smooth)
        if (s.records >= DIVERGE_MIN_RECORDS and s.rising >= DIVERGE_RISING
                and smooth >= (1 + DIVERGE_RISE) * s.lowest and s.lowest > 0):
            rise = smooth / s.lowest - 1
            return self._fire(Alarm("divergence", "fail", step,
                                    f"the loss is diverging: smoothed {smooth:.4g} at step {step}, "
                                    f"{100 * rise:.0f}% above its lowest {s.lowest:.4g} and rising",
                                    "Lower the learning rate (or its warm-up peak), check the schedule, and clip "
                                    "gradients; resume from the checkpoint before the rise.",
                                    evidence={"smoothed_loss": smooth, "lowest": s.lowest,
                                              "threshold": 1 + DIVERGE_RISE}))
        return []

    def _gradient(self, step: int, layer: str, norm: float | None) -> list[Alarm]:
        if norm is None or (isinstance(norm, float) and math.isnan(norm)):
            return []
        if not math.isfinite(norm) or norm >= EXPLODE_NORM_FAIL:
            return self._fire(Alarm("exploding_gradients", "fail", step,
                                    f"gradients exploded in layer {layer}: norm {norm:.3g} at step {step}",
                                    "Clip the gradient norm (e.g. 1.0), lower the learning rate, and check for "
                                    "unnormalised inputs or a missing normalisation layer.", layer=layer,
                                    evidence={"grad_norm": norm, "threshold": EXPLODE_NORM_FAIL}))
        alarms = []
        if norm >= EXPLODE_NORM_WARN:
            alarms += self._fire(Alarm("large_gradients", "warn", step,
                                       f"large gradients in layer {layer}: norm {norm:.3g} at step {step}",
                                       "Watch for a blow-up; gradient clipping keeps such steps bounded.",
                                       layer=layer, evidence={"grad_norm": norm, "threshold": EXPLODE_NORM_WARN}))
        self.zero_grad_runs[layer] = self.zero_grad_runs.get(layer, 0) + 1 if norm <= ZERO_GRAD else 0
        if self.zero_grad_runs[layer] >= ZERO_GRAD_RECORDS:
            alarms += self._fire(Alarm("vanishing_gradients", "warn", step,
                                       f"layer {layer} has received no gradient for {ZERO_GRAD_RECORDS} records "
                                       f"(step {step})",
                                       "A frozen or disconnected layer, dead ReLUs before it, or a detach() in "
                                       "forward: check requires_grad and the graph.", layer=layer))
        return alarms

    def eval(self, step: int, valid_loss: float | None) -> list[Alarm]:
        """One evaluation: the validation loss (None when the eval did not report one)."""
        if valid_loss is None or not math.isfinite(valid_loss):
            return []
        if valid_loss < self.best_valid:
            self.best_valid, self.valid_above = valid_loss, 0
            return []
        rise = valid_loss / self.best_valid - 1 if self.best_valid > 0 else 0.0
        self.valid_above = self.valid_above + 1 if rise >= VALID_RISE_WARN else 0
        if self.valid_above >= VALID_RISE_EVALS:
            return self._fire(Alarm("valid_rising", "warn", step,
                                    f"validation loss turned up: {valid_loss:.4g} at step {step}, "
                                    f"{100 * rise:.0f}% above its best {self.best_valid:.4g}",
                                    "The model is starting to overfit: keep the best checkpoint (early stopping), "
                                    "add regularisation or data.",
                                    evidence={"valid_loss": valid_loss, "best": self.best_valid,
                                              "threshold": VALID_RISE_WARN}))
        return []
