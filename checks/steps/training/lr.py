"""training.lr_range: the configured learning rate against a learning-rate range test (Smith 2017)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.lr_test import (ADVICE_MIN_DROP, LR_DIVERGE_FACTOR, LR_START, OPTIMIZER_LR_BOUNDS, LRAdvice,
                                 LRSummary, LRTest, lr_advice, lr_range_summary, lr_range_test)
from ...engine.analysis import ANALYSES
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, warn

LR_FAIL_ABOVE_BLOWUP = 1.0     # configured lr at or beyond the lr where loss blew up -> fail
LR_FAR_ABOVE_STEEPEST = 100.0  # configured lr two orders of magnitude above the steepest fall -> warn
LR_TOO_LOW_DECADES = 2.0       # configured lr >= 2 orders of magnitude below the useful range -> warn
# The measurement behind sanity.overfit_small_batch, as a named analysis (engine/analysis.py): cached, so
# reading it here reuses the run's own result when that check ran, and computes it once when it did not.
MEMORISING_ANALYSIS = "steps.sanity.fitting._measure_memorising"


@dataclass
class LRMeasure:
    """The range test, what it says, and the lr and optimizer the project configured; whether the model
    memorised a tiny batch (sanity.overfit_small_batch), None when that could not be told."""

    sweep: LRTest
    summary: LRSummary
    configured: float
    optimizer: str
    memorised: bool | None = None
    memorised_note: str = ""       # why there is no lr advice on that account

    @property
    def advice(self) -> LRAdvice:
        return lr_advice(self.summary, self.sweep.optimizer or self.optimizer, self.memorised, self.memorised_note)


def _memorisation(ctx: RunContext) -> tuple[bool | None, str]:
    """Whether sanity.overfit_small_batch's configured attempt memorised its batch, and why not in words."""
    measure = ANALYSES.get(MEMORISING_ANALYSIS)
    if measure is None:
        return None, "the result of sanity.overfit_small_batch is not available to this check"
    try:
        result = measure(ctx)
    except SkipCheck as exc:
        return None, f"sanity.overfit_small_batch could not run ({str(exc).splitlines()[0]})"
    attempt = getattr(result, "attempts", {}).get("configured") or {}
    if attempt.get("memorised"):
        return True, ""
    if attempt.get("stopped") == "time":
        return None, "sanity.overfit_small_batch was cut short by its time cap, so it is not known to pass"
    return False, (f"sanity.overfit_small_batch did not pass: the model could not memorise "
                   f"{getattr(result, 'rows', 'a few')} examples with the configured optimizer, so the sweep "
                   f"measures what blocks learning, not a good learning rate")


def _measure_lr(ctx: RunContext) -> LRMeasure:
    sweep = lr_range_test(ctx)
    memorised, note = _memorisation(ctx)
    return LRMeasure(sweep, lr_range_summary(sweep), float(ctx.config.lr), ctx.config.optimizer, memorised, note)


def _lr_plot(result: LRTest, configured: float) -> PlotSpec:
    finite = [(lr, s) for lr, s in zip(result.lrs, result.smoothed) if math.isfinite(s)]
    series = [Series("loss (raw)", result.lrs, [v if math.isfinite(v) else None for v in result.losses]),
              Series("loss (smoothed)", [p[0] for p in finite], [p[1] for p in finite])]
    if finite:
        lo, hi = min(p[1] for p in finite), max(p[1] for p in finite)
        series.append(Series(f"configured lr {configured:g}", [configured, configured], [lo, hi]))
    return PlotSpec("line", "Learning-rate range test: loss vs lr", series, x_label="learning rate",
                    y_label="training loss", x_log=True)


@check("training.lr_range", title="The learning rate sits inside the range where the loss falls",
       needs=("torch_model",))
def lr_range(ctx: RunContext):
    m = _measure_lr(ctx)
    finding = lr_verdict(m)
    finding.plots = [_lr_plot(m.sweep, m.configured)]
    return finding


def lr_verdict(m: LRMeasure) -> Finding:
    """Skipped, cut short or no fall at any lr; otherwise the configured lr against the useful range."""
    s = m.summary.evidence()
    s["configured_lr"] = m.configured
    s["seconds"] = round(m.sweep.seconds, 2)
    s["advice"] = m.advice.evidence()
    s.pop("suggested_lr", None)  # set again only where an lr is advised (_configured_vs_range)
    swept = (f"Swept lr from {LR_START:g} to {s.get('swept_to') or 0:.3g} over {s['steps']} steps with the "
             f"configured {m.optimizer} optimizer on a fresh model (Smith 2017 range test; loss "
             f"smoothed with an EMA, stopped when it passed {LR_DIVERGE_FACTOR:g}x its minimum).")
    if not m.summary.readable:
        raise SkipCheck(f"the range test ran too few steps ({s['steps']}) to read\n{swept} Raise the budget.")
    cut = m.sweep.stopped == "budget"
    if cut and (not s.get("fell") or s["lr_at_min_loss"] >= m.sweep.lrs[-4]):
        # The title names no lr: where a CPU-time budget cuts the sweep depends on the machine, and the
        # same project must give the same findings on an idle laptop and a loaded box (the lr is in detail).
        return info("the range test was cut by the time budget before the loss reached its lowest point",
                    detail=f"{swept} The sweep stopped at lr {s['swept_to']:.2g}, before the loss reached its lowest "
                           f"point, so the useful range cannot be read yet (loss {s['loss_start']:.4g} -> "
                           f"{s['loss_min']:.4g}).",
                    fix="Raise [budget] seconds (or --budget) so the sweep can reach lr 1 and beyond.",
                    evidence=s)
    if not s.get("fell"):
        return warn("the loss did not fall at any learning rate of the sweep",
                    detail=f"{swept} The smoothed loss went from {s['loss_start']:.4g} to at best "
                           f"{s['loss_min']:.4g} (less than 5% lower). A model that cannot lower its loss at any lr "
                           f"usually has no gradient reaching its weights (dead units, a detached graph, frozen "
                           f"parameters), a loss dominated by a bad initialisation or unscaled inputs, or inputs "
                           f"that carry no signal.",
                    fix="Check sanity.gradient_flow, architecture.dead_units and architecture.init_scale; "
                        "overfit a single batch first.",
                    evidence=s)
    return _configured_vs_range(m.configured, s, swept, m.advice)


def _lr(x: float) -> str:
    """An lr in one significant digit, as people write them: 3e-04 -> "3e-4", 0.03 -> "0.03"."""
    text = f"{x:.1g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def advice_sentence(a: LRAdvice) -> str:
    """"Try lr in [3e-4, 3e-3] ..." with the heuristic it comes from, or why no lr is advised."""
    if a.lr_range is None:
        return f"No lr is advised from this sweep: {a.why_not}."
    lo, hi = a.lr_range
    text = (f"Try lr in [{_lr(lo)}, {_lr(hi)}]: one order of magnitude below the lr of lowest loss, half a decade "
            f"either side (Smith 2017; fastai's lr_find).")
    if a.capped:
        slo, shi = a.raw_range
        b_lo, b_hi = OPTIMIZER_LR_BOUNDS[a.family]
        usual = (f"the usual {_lr(b_lo)} to {_lr(b_hi)} for "
                 + ("Adam-family optimizers" if a.family == "adam" else "SGD"))
        why = ("a sweep of a few steps per lr shows where an lr blows up, never that a large one stays stable "
               "over a long run" if shi > hi else "nothing in the sweep shows that lrs this small are needed")
        text += f" The sweep alone reads [{_lr(slo)}, {_lr(shi)}], outside {usual}: {why}."
    elif a.family == "other":
        text += " Your optimizer is not Adam or SGD, so no usual range was applied."
    return text


def _configured_vs_range(configured: float, s: dict, swept: str, advice: LRAdvice) -> Finding:
    """The configured lr against the blow-up, the useful range and the steepest fall of the sweep."""
    lo, hi = s["useful_range"]
    blowup = s.get("lr_blowup")
    rng = f"The loss falls fastest near lr {s['lr_steepest']:.2g} and is lowest near {hi:.2g}"
    rng += f"; it blew up by lr {blowup:.2g}." if blowup else "; it did not blow up within the sweep."
    s["advice"] = advice.evidence()
    s.pop("suggested_lr", None)
    if advice.lr_range is not None:
        s["suggested_lr"] = (advice.lr_range[0] * advice.lr_range[1]) ** 0.5
    fix_to = advice_sentence(advice)
    if blowup and advice.lr_range is None:
        fix_to += f" Stay well below lr {blowup:.2g}, where the loss blew up."
    if blowup and configured >= LR_FAIL_ABOVE_BLOWUP * blowup:
        return fail(f"lr {configured:g} is at or beyond where the loss blows up ({blowup:.2g})",
                    detail=f"{swept} {rng} The configured lr is {configured / blowup:.3g}x the lr at which "
                           f"training diverged.", fix=fix_to, evidence=s)
    drop = s.get("relative_drop") or 0.0
    if drop < ADVICE_MIN_DROP:
        # Where a faint fall bottoms out is the EMA's wandering, not the model's limit (the same reason no lr is
        # advised from it): placing the configured lr above or below that point would cry wolf. A model that needs
        # many steps to move its loss (an LSTM language model at lr 20, PyTorch's word_language_model) sweeps
        # like this; only a blow-up (above) is a clear reading.
        return info(f"the range test's loss fell only {drop:.0%}: too little to place lr {configured:g} in a range",
                    detail=f"{swept} {rng} A range is read from a fall of at least {ADVICE_MIN_DROP:.0%} of the "
                           f"starting loss; below that, where the smoothed loss is lowest is noise.",
                    fix="Judge the lr from the real training curves (training.divergence, oscillation, plateau). "
                        "A model that needs many steps per lr to move its loss cannot be read from one sweep.",
                    evidence=s)
    if configured > hi and configured >= 100 * s["lr_steepest"]:
        return fail(f"lr {configured:g} is far above the useful range ({lo:.2g} to {hi:.2g})",
                    detail=f"{swept} {rng} The configured lr is past the point where the loss stopped falling and "
                           f"{configured / s['lr_steepest']:.0f}x the lr of steepest fall: updates overshoot.",
                    fix=fix_to, evidence=s)
    if configured > hi:
        return warn(f"lr {configured:g} is above the lr where the loss stopped falling ({hi:.2g})",
                    detail=f"{swept} {rng} Past that point the loss of the sweep rises again, so training at "
                           f"lr {configured:g} is likely unstable.", fix=fix_to, evidence=s)
    if not blowup and configured >= LR_FAR_ABOVE_STEEPEST * s["lr_steepest"]:
        # No blow-up inside the sweep usually means bounded outputs (a softmax/sigmoid head) cap the loss,
        # so the upper end of the range cannot be read; the steepest fall is then the best guide.
        return warn(f"lr {configured:g} is {configured / s['lr_steepest']:.0f}x the lr where the loss falls fastest",
                    detail=f"{swept} {rng} Good learning rates sit near the steepest part of the curve (Smith "
                           f"2017); two orders of magnitude above it, updates overshoot even when a capped loss "
                           f"hides the blow-up.",
                    fix=fix_to, evidence=s)
    decades_below = math.log10(lo / configured) if configured > 0 else math.inf
    s["decades_below_range"] = round(decades_below, 2)
    if decades_below >= LR_TOO_LOW_DECADES:
        return warn(f"lr {configured:g} is {decades_below:.1f} orders of magnitude below the useful range",
                    detail=f"{swept} {rng} The loss only starts to fall at lr {lo:.2g}; at {configured:g} "
                           f"training will crawl and may look like a plateau.", fix=fix_to, evidence=s)
    return passed(f"lr {configured:g} is inside the usable range (loss lowest near {hi:.2g})",
                  detail=f"{swept} {rng} {fix_to}", evidence=s)
