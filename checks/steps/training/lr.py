"""training.lr_range: the configured learning rate against a learning-rate range test (Smith 2017)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.lr_test import LR_DIVERGE_FACTOR, LR_START, LRSummary, LRTest, lr_range_summary, lr_range_test
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, warn

LR_FAIL_ABOVE_BLOWUP = 1.0     # configured lr at or beyond the lr where loss blew up -> fail
LR_FAR_ABOVE_STEEPEST = 100.0  # configured lr two orders of magnitude above the steepest fall -> warn
LR_TOO_LOW_DECADES = 2.0       # configured lr >= 2 orders of magnitude below the useful range -> warn


@dataclass
class LRMeasure:
    """The range test, what it says, and the lr and optimizer the project configured."""

    sweep: LRTest
    summary: LRSummary
    configured: float
    optimizer: str


def _measure_lr(ctx: RunContext) -> LRMeasure:
    sweep = lr_range_test(ctx)
    return LRMeasure(sweep, lr_range_summary(sweep), float(ctx.config.lr), ctx.config.optimizer)


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
    swept = (f"Swept lr from {LR_START:g} to {s.get('swept_to') or 0:.3g} over {s['steps']} steps with the "
             f"configured {m.optimizer} optimizer on a fresh model (Smith 2017 range test; loss "
             f"smoothed with an EMA, stopped when it passed {LR_DIVERGE_FACTOR:g}x its minimum).")
    if not m.summary.readable:
        raise SkipCheck(f"the range test ran too few steps ({s['steps']}) to read\n{swept} Raise the budget.")
    cut = m.sweep.stopped == "budget"
    if cut and (not s.get("fell") or s["lr_at_min_loss"] >= m.sweep.lrs[-4]):
        return info(f"the range test was cut by the time budget at lr {s['swept_to']:.2g}",
                    detail=f"{swept} The sweep stopped before the loss reached its lowest point, so the useful "
                           f"range cannot be read yet (loss {s['loss_start']:.4g} -> {s['loss_min']:.4g}).",
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
    return _configured_vs_range(m.configured, s, swept)


def _configured_vs_range(configured: float, s: dict, swept: str) -> Finding:
    """The configured lr against the blow-up, the useful range and the steepest fall of the sweep."""
    lo, hi = s["useful_range"]
    blowup = s.get("lr_blowup")
    rng = f"The loss falls fastest near lr {s['lr_steepest']:.2g} and is lowest near {hi:.2g}"
    rng += f"; it blew up by lr {blowup:.2g}." if blowup else "; it did not blow up within the sweep."
    fix_to = f"Use an lr near {s['suggested_lr']:.2g} (a tenth of the lr of lowest loss)"
    if blowup and configured >= LR_FAIL_ABOVE_BLOWUP * blowup:
        return fail(f"lr {configured:g} is at or beyond where the loss blows up ({blowup:.2g})",
                    detail=f"{swept} {rng} The configured lr is {configured / blowup:.3g}x the lr at which "
                           f"training diverged.", fix=fix_to + ", or run the range test yourself and pick the "
                           "steep part of the curve.", evidence=s)
    if configured > hi and configured >= 100 * s["lr_steepest"]:
        return fail(f"lr {configured:g} is far above the useful range ({lo:.2g} to {hi:.2g})",
                    detail=f"{swept} {rng} The configured lr is past the point where the loss stopped falling and "
                           f"{configured / s['lr_steepest']:.0f}x the lr of steepest fall: updates overshoot.",
                    fix=fix_to + ".", evidence=s)
    if configured > hi:
        return warn(f"lr {configured:g} is above the lr where the loss stopped falling ({hi:.2g})",
                    detail=f"{swept} {rng} Past that point the loss of the sweep rises again, so training at "
                           f"lr {configured:g} is likely unstable.", fix=fix_to + ".", evidence=s)
    if not blowup and configured >= LR_FAR_ABOVE_STEEPEST * s["lr_steepest"]:
        # No blow-up inside the sweep usually means bounded outputs (a softmax/sigmoid head) cap the loss,
        # so the upper end of the range cannot be read; the steepest fall is then the best guide.
        return warn(f"lr {configured:g} is {configured / s['lr_steepest']:.0f}x the lr where the loss falls fastest",
                    detail=f"{swept} {rng} Good learning rates sit near the steepest part of the curve (Smith "
                           f"2017); two orders of magnitude above it, updates overshoot even when a capped loss "
                           f"hides the blow-up.",
                    fix=f"Use an lr near {s['lr_steepest']:.2g}, where the loss falls fastest (with a capped loss "
                        f"the lr of lowest loss says little).", evidence=s)
    decades_below = math.log10(lo / configured) if configured > 0 else math.inf
    s["decades_below_range"] = round(decades_below, 2)
    if decades_below >= LR_TOO_LOW_DECADES:
        return warn(f"lr {configured:g} is {decades_below:.1f} orders of magnitude below the useful range",
                    detail=f"{swept} {rng} The loss only starts to fall at lr {lo:.2g}; at {configured:g} "
                           f"training will crawl and may look like a plateau.", fix=fix_to + ".", evidence=s)
    return passed(f"lr {configured:g} is inside the usable range (loss lowest near {hi:.2g})",
                  detail=f"{swept} {rng}", evidence=s)
