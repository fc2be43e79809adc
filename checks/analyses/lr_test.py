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
    optimizer: str = ""        # the optimizer's class name (Adam, AdamW, SGD, ...): its lr scale differs


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

    from .modeling import batch_getter, make_loss, make_optimizer, run_step

    seconds, model, X, y = fresh_training(ctx, LR_TEST_BUDGET_SHARE, "learning-rate range test")
    get_batch = batch_getter(ctx, X, y)
    loss_fn = make_loss(ctx)
    optimizer = make_optimizer(ctx, [p for p in model.parameters() if p.requires_grad], LR_START, model=model)
    step_fn = ctx.function("train_step")
    rng = np.random.default_rng(ctx.seed)
    bs = ctx.config.batch_size
    batches = _batch_stream(len(X), bs, rng)
    steps = iter(range(10 ** 9))

    def one_step(lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb, yb = get_batch(next(batches))
        return run_step(ctx, model, optimizer, loss_fn, xb, yb, step_fn, next(steps))

    result, best, avg = LRTest(optimizer=type(optimizer).__name__), math.inf, 0.0
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


# --- advice: a range to try, only where the sweep supports one ------------------------------------------
# Smith 2017 (and fastai's lr_find) read the lr to use about one order of magnitude below the lr of lowest
# loss; the range is one decade centred there (half a decade either side).
ADVICE_BELOW_MINIMUM = 10.0
ADVICE_HALF_WIDTH = 10 ** 0.5
# The loss must fall clearly before a range is read from it: at least 20% of its starting value, four
# times the 5% floor of `fell`, well beyond what the EMA of a 100-step mini-batch sweep wanders by.
ADVICE_MIN_DROP = 0.2
# Where each optimizer family trains in practice. Adam-family: Kingma & Ba's (2015) default 1e-3, fine-tuning
# down to ~1e-5 (Devlin et al. 2019 fine-tune BERT at 2e-5..5e-5), rarely above 1e-2. SGD's step is
# lr x gradient with no per-parameter scaling, so it sits one to two orders higher (Goyal et al. 2017: 0.1
# per 256 examples with momentum 0.9). The upper bound always holds: a sweep spends a few steps per lr, so it
# shows where an lr blows up but never that a large one stays stable over a long run (and a bounded loss
# hides the blow-up altogether). The lower bound holds unless the sweep blew up: then its small readings
# are what the model can take.
OPTIMIZER_LR_BOUNDS = {"adam": (1e-5, 1e-2), "sgd": (1e-4, 1.0)}
ADAM_FAMILY = ("adam", "adamw", "adamax", "nadam", "radam", "sparseadam", "lamb")


def optimizer_family(name: str) -> str:
    """"adam" (Adam and its variants), "sgd", or "other" (a project's own optimizer, RMSprop, ...)."""
    n = (name or "").lower().replace("_", "")
    if n in ADAM_FAMILY:
        return "adam"
    return "sgd" if n == "sgd" else "other"


@dataclass
class LRAdvice:
    """A range of learning rates to try, or why none is given."""

    family: str                                # optimizer_family of the sweep's optimizer
    lr_range: tuple[float, float] | None = None
    capped: bool = False                       # the sweep's own reading lay outside the family's bounds
    raw_range: tuple[float, float] | None = None
    why_not: str = ""                          # when lr_range is None: the reason, in words

    def evidence(self) -> dict:
        return {"family": self.family, "range": list(self.lr_range) if self.lr_range else None,
                "capped": self.capped, "sweep_range": list(self.raw_range) if self.raw_range else None,
                "why_not": self.why_not or None}


def _clamp(lo: float, hi: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """[lo, hi] inside bounds; a range wholly outside becomes the decade at the nearer bound."""
    b_lo, b_hi = bounds
    if hi <= b_lo:
        return b_lo, b_lo * 10
    if lo >= b_hi:
        return b_hi / 10, b_hi
    return max(lo, b_lo), min(hi, b_hi)


def lr_advice(summary: LRSummary, optimizer: str, memorised: bool | None, memorised_note: str = "") -> LRAdvice:
    """A range to try when the sweep's loss fell clearly and the model memorised a tiny batch (a range test
    on a model that cannot learn measures its defect, not its learning rate). Pure."""
    family = optimizer_family(optimizer)
    advice = LRAdvice(family)
    if memorised is not True:
        advice.why_not = memorised_note or "sanity.overfit_small_batch did not pass in this run"
        return advice
    if not summary.fell or summary.lr_at_min_loss is None or (summary.relative_drop or 0) < ADVICE_MIN_DROP:
        advice.why_not = (f"the sweep's loss did not fall clearly (by {100 * (summary.relative_drop or 0):.0f}% at "
                          f"best; a range is read from a fall of {ADVICE_MIN_DROP:.0%} or more)")
        return advice
    centre = summary.lr_at_min_loss / ADVICE_BELOW_MINIMUM
    raw = (centre / ADVICE_HALF_WIDTH, centre * ADVICE_HALF_WIDTH)
    advice.raw_range, advice.lr_range = raw, raw
    bounds = OPTIMIZER_LR_BOUNDS.get(family)
    if bounds is not None:
        low = min(bounds[0], raw[0]) if summary.lr_blowup is not None else bounds[0]
        advice.lr_range = _clamp(*raw, (low, bounds[1]))
        advice.capped = advice.lr_range != raw
    return advice
