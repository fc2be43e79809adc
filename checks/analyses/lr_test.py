"""The learning-rate range test: a fresh model trained while the lr sweeps exponentially, the loss
smoothed, stopped at divergence (Smith 2017; fastai's lr_find)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..engine.analysis import analysis
from ..engine.context import RunContext, cpu_clock
from .probe import LR_TEST_BUDGET_SHARE, fresh_training


# Smith, "Cyclical Learning Rates for Training Neural Networks" (2017), in the variant popularised by
# fastai's lr_find: exponential sweep, EMA-smoothed loss, stop at divergence.
LR_START, LR_END = 1e-7, 10.0
LR_TEST_STEPS = 100            # points of the sweep, 12.5 per decade (fastai's lr_find uses 100)
LR_SMOOTH_BETA = 0.9           # EMA factor on the loss (fastai uses 0.98 with ~100 steps at bs 64;
                               # 0.9 follows the sweep closely enough with our shorter sweeps)
LR_DIVERGE_FACTOR = 4.0        # stop once the smoothed loss exceeds 4x its minimum (fastai's criterion)


@dataclass
class LRTest:
    """The sweep as it ran: lr, raw and smoothed loss per step, and why it stopped."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stopped: str = ""          # "diverged" | "budget" | "end"
    seconds: float = 0.0


def _batch_stream(n: int, batch_size: int, rng):
    """Endless mini-batches of row indices, reshuffled every pass."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            yield order[i:i + batch_size]


@analysis
def lr_range_test(ctx: RunContext) -> LRTest:
    """The range test on a fresh model with the configured optimizer (once per run)."""
    import numpy as np
    import torch

    from ..project.usercode import call_user
    from .modeling import default_step, make_loss, make_optimizer, step_loss_value, target_tensor

    seconds, model, X, y = fresh_training(ctx, LR_TEST_BUDGET_SHARE, "learning-rate range test")
    Xt = torch.as_tensor(X, dtype=torch.float32, device=ctx.device)
    yt = target_tensor(ctx, y).to(ctx.device)
    loss_fn = make_loss(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], LR_START)
    step_fn = ctx.function("train_step")
    rng = np.random.default_rng(ctx.seed)
    bs = ctx.config.batch_size
    batches = _batch_stream(len(Xt), bs, rng)

    def one_step(lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.as_tensor(next(batches))
        xb, yb = Xt[idx], yt[idx]
        if step_fn is not None:
            value = call_user(ctx.config, "train_step", step_fn, model, optimizer, loss_fn, xb, yb)
            return step_loss_value(value)
        return default_step(ctx, model, optimizer, loss_fn, xb, yb)

    result, best, avg = LRTest(), math.inf, 0.0
    start, cpu_start = time.perf_counter(), cpu_clock()
    with ctx.budget.spend():
        n = LR_TEST_STEPS
        lrs = [LR_START * (LR_END / LR_START) ** (k / (n - 1)) for k in range(n)]
        i = 0
        while i < len(lrs):
            lr = lrs[i]
            value = one_step(lr)
            result.lrs.append(lr)
            result.losses.append(value)
            i += 1
            if not math.isfinite(value):
                result.smoothed.append(math.inf)
                result.stopped = "diverged"
                break
            avg = LR_SMOOTH_BETA * avg + (1 - LR_SMOOTH_BETA) * value
            smooth = avg / (1 - LR_SMOOTH_BETA ** i)
            result.smoothed.append(smooth)
            best = min(best, smooth)
            if i > 8 and smooth > LR_DIVERGE_FACTOR * best:
                result.stopped = "diverged"
                break
            if cpu_clock() - cpu_start > seconds:
                result.stopped = "budget"
                break
        else:
            result.stopped = "end"
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class LRSummary:
    """What the sweep says: where the loss falls fastest, where it is lowest, where it blew up, and the
    useful range. Fields stay None when the sweep is too short (or did not fall) to read them; the
    evidence of training.lr_range is `evidence()`, which lists only the fields that were read."""

    swept_from: float | None
    swept_to: float | None
    stopped: str
    steps: int
    loss_start: float | None = None
    loss_min: float | None = None
    lr_at_min_loss: float | None = None
    relative_drop: float | None = None
    lr_blowup: float | None = None
    fell: bool | None = None
    lr_steepest: float | None = None
    useful_range: list[float] | None = None
    suggested_lr: float | None = None

    @property
    def readable(self) -> bool:
        """Enough finite points of the smoothed loss to read a minimum."""
        return self.loss_min is not None

    def evidence(self) -> dict:
        always = ("swept_from", "swept_to", "stopped", "steps")
        return {k: v for k, v in vars(self).items() if k in always or v is not None}


def lr_range_summary(result: LRTest) -> LRSummary:
    """Read the sweep: lowest point, blow-up, steepest fall and the useful range."""
    import numpy as np

    lrs = np.array(result.lrs, dtype=float)
    sm = np.array(result.smoothed, dtype=float)
    finite = np.isfinite(sm)
    summary = LRSummary(swept_from=float(lrs[0]) if len(lrs) else None,
                        swept_to=float(lrs[-1]) if len(lrs) else None, stopped=result.stopped, steps=int(len(lrs)))
    if finite.sum() < 8:
        return summary
    i_min = int(np.nanargmin(np.where(finite, sm, np.inf)))
    start = float(np.median(sm[:5]))
    drop = start - float(sm[i_min])
    summary.loss_start, summary.loss_min, summary.lr_at_min_loss = start, float(sm[i_min]), float(lrs[i_min])
    summary.relative_drop = drop / abs(start) if start else 0.0
    if result.stopped == "diverged":
        summary.lr_blowup = float(lrs[-1])
    # The loss never fell by 5%, or its lowest point came within the first two decades of the sweep
    # (lrs too small to move any weight): no useful range at all.
    summary.fell = not (drop <= 0.05 * abs(start) or lrs[i_min] < 100 * LR_START)
    if summary.fell:
        _read_useful_range(summary, lrs, sm, i_min, start, drop)
    return summary


def _read_useful_range(summary: LRSummary, lrs, sm, i_min: int, start: float, drop: float) -> None:
    import numpy as np

    # Slope of the smoothed loss per decade of lr, over a window of +-3 points, up to the minimum.
    logs = np.log10(lrs)
    w = 3
    slopes = [(sm[min(i + w, i_min)] - sm[max(i - w, 0)]) / (logs[min(i + w, i_min)] - logs[max(i - w, 0)])
              for i in range(1, i_min)] if i_min > 1 else []
    i_steep = 1 + int(np.argmin(slopes)) if slopes else i_min
    summary.lr_steepest = float(lrs[i_steep])
    # Lower end of the useful range: the loss has covered 10% of its total fall.
    lower = next(i for i in range(i_min + 1) if sm[i] <= start - 0.1 * drop)
    summary.useful_range = [float(lrs[lower]), float(lrs[i_min])]
    # fastai-style suggestion: a tenth of the lr at the minimum, which sits near the steepest fall.
    summary.suggested_lr = float(lrs[i_min] / 10)
