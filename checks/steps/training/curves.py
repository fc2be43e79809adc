"""training.divergence, training.oscillation, training.plateau: does the loss fall, and how."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...analyses.curves import (
    LossEnds,
    chunk_means,
    curve_source,
    finite_series,
    finite_values,
    start_and_end,
    step_swing,
    trivial_loss,
    zigzag,
)
from ...analyses.probe import EVAL_MAX_ROWS
from ...engine.context import RunContext
from ...engine.registry import check
from ...wording import change
from ...findings import Finding, SkipCheck, fail, info, passed, warn
from .common import loss_plots, no_loss_curve

DIVERGE_RISE = 0.5             # smoothed loss 50% above its start at the end, rising steadily -> fail
DIVERGE_RISE_WARN = 0.1        # ended 10% above its start -> warn
OSCILLATION_WARN = 0.5         # zig-zag amplitude (robust) >= 50% of the loss level's total drop...
OSCILLATION_FAIL = 1.0
OSCILLATION_MIN_FALL = 0.02    # a curve must fall 2% before its zig-zag is judged
# Step level (analyses.curves.step_swing): a mini-batch loss that swings around its own moving mean by half
# its level or more, peak to peak, *with a pattern* (residual autocorrelation >= 0.4: independent mini-batch
# noise stays under ~0.2 even on 200 points, whose standard error is 1/sqrt(n)) is bouncing between regimes
# (an lr at the edge of stability, unshuffled data ordered by class or source), whatever the epoch means do.
STEP_SWING_WARN = 0.5
STEP_SWING_FAIL = 1.0          # swings as large as the level itself (0.5 <-> 2.0 reads 1.2) ...
STEP_STRUCTURE_WARN = 0.4
STEP_STRUCTURE_FAIL = 0.6      # ... with a clear pattern
PLATEAU_DROP_FAIL = 0.02       # smoothed loss fell < 2% below where it started (and the trivial level)
PLATEAU_DROP_WARN = 0.05
PLATEAU_AT_TRIVIAL = 0.02      # ended within 2% of the loss of predicting the prior (Karpathy's "loss at
                               # init" reference: a model that learnt nothing from its inputs sits there)
PLATEAU_ROSE = -0.1            # a "drop" of -10% or less is a rise: divergence's business, not a plateau
# Metrics that are proportions of the validation rows: their noise is the binomial standard error.
PROPORTION_METRICS = ("accuracy", "balanced_accuracy", "error_rate")


# --- divergence -------------------------------------------------------------------------------------
@dataclass
class DivergenceMeasure:
    source: str
    nonfinite_values: int           # NaN/inf among the logged or probed training losses
    first_nonfinite_step: int | None
    ends: LossEnds | None           # None: no training loss curve to read
    columns: str = ""               # the columns the source holds, for the skip message


def _measure_divergence(src) -> DivergenceMeasure:
    c = src.curves
    # step_loss holds logged points only, so any non-finite value there is a bad loss; in the per-point
    # series NaN means "not logged at this point" (a log's non-finite values are kept as inf).
    bad_steps = [i for i, v in enumerate(c.step_loss) if not _finite(v)]
    raw = [v for v in c.train_loss if v is not None and not _is_nan(v)] if not c.step_loss else []
    if src.probe is not None:
        raw += src.probe.train_loss
    bad = len(bad_steps) + sum(1 for v in raw if not _finite(v))
    at = None
    if bad_steps:
        i = bad_steps[0]
        at = int(c.step[i]) if i < len(c.step) and _finite(c.step[i]) else i + 1
    return DivergenceMeasure(src.label, bad, at, start_and_end(src), c.describe_columns())


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


@check("training.divergence", title="The loss stays finite and does not rise from the start")
def divergence(ctx: RunContext):
    src = curve_source(ctx, owner=True)
    finding = divergence_verdict(_measure_divergence(src))
    finding.plots = loss_plots(src.curves)
    return finding


def divergence_verdict(m: DivergenceMeasure) -> Finding:
    evidence = {"source": m.source, "nonfinite_values": m.nonfinite_values}
    if m.nonfinite_values:
        at = m.first_nonfinite_step
        return fail("the training loss became NaN/inf" + (f" at step {at}" if at else ""),
                    detail=f"In {m.source} the loss reached a non-finite value ({m.nonfinite_values} value(s)). The "
                           f"usual causes: a learning rate too high for the loss scale, log(0) in a hand-written "
                           f"loss, unscaled inputs or targets, or a division by a zero-sized batch.",
                    fix="Lower the learning rate (see training.lr_range), scale inputs and regression targets, "
                        "use the library's fused losses (cross_entropy on logits, bce_with_logits), and clip "
                        "gradients (torch.nn.utils.clip_grad_norm_).",
                    evidence=evidence)
    if m.ends is None:
        raise no_loss_curve(m.source, m.columns)
    ends = m.ends
    evidence.update(ends.evidence())
    rise = (ends.end - ends.start) / abs(ends.start) if ends.start else 0.0
    evidence["relative_change"] = rise
    msg = f"In {m.source} the {ends.series} {change(ends.start, ends.end)}."
    if rise >= DIVERGE_RISE:
        return fail(f"the loss rose {100 * rise:.0f}% over training instead of falling",
                    detail=msg + f" A rise of {100 * DIVERGE_RISE:.0f}% or more means the updates make the model "
                                 f"worse: the optimizer is diverging.",
                    fix="Lower the learning rate by 10x (training.lr_range suggests a value), check the sign "
                        "of the loss, and clip gradients.", evidence=evidence)
    if rise >= DIVERGE_RISE_WARN:
        return warn(f"the loss ended {100 * rise:.0f}% above where it started",
                    detail=msg + " Training made the model worse than its untrained self; the learning rate "
                                 "is the first suspect.",
                    fix="Lower the learning rate (see training.lr_range) and rerun.", evidence=evidence)
    return passed(f"the loss stayed finite ({change(ends.start, ends.end, 3)})",
                  detail=msg, evidence=evidence)


# --- oscillation ------------------------------------------------------------------------------------
@dataclass
class OscillationMeasure:
    source: str
    candidates: dict[str, dict] = field(default_factory=dict)  # curve -> zigzag() of a curve that fell
    flat: list[str] = field(default_factory=list)              # curves that never fell beyond their noise
    step: dict | None = None                                   # step_swing() of the mini-batch loss


def _curves_to_judge(ctx: RunContext, src) -> list[tuple[str, list[float], list[float] | None]]:
    """(name, values oriented to fall, standard errors or None) of every curve long enough to judge."""
    c = src.curves
    out = []
    for role, name in (("train_loss", "train loss"), ("valid_loss", "valid loss")):
        _, ys = finite_series(c, role)
        if len(ys) >= 4:
            out.append((f"{name} per {c.index_name}", ys, None))
    _, metric = finite_series(c, "valid_metric")
    if len(metric) >= 4 and c.metric_name:
        signed = [-v for v in metric] if c.metric_higher_is_better else metric
        errors = None
        if c.metric_name in PROPORTION_METRICS and "valid" in ctx.splits and len(ctx.valid):
            # binomial standard error of an accuracy measured on the validation rows
            n = len(ctx.valid) if src.probe is None else min(len(ctx.valid), EVAL_MAX_ROWS)
            errors = [math.sqrt(max(p * (1 - p), 0.0) / n) for p in metric]
        out.append((f"valid {c.metric_name} per {c.index_name}", signed, errors))
    if len(c.step_loss) >= 60:
        means, errors = chunk_means(finite_values(c.step_loss))
        out.append(("mini-batch loss (means of 20 chunks, moves within 2 standard errors ignored)", means, errors))
    return out


def _measure_oscillation(ctx: RunContext, src) -> OscillationMeasure:
    m = OscillationMeasure(src.label)
    for name, values, errors in _curves_to_judge(ctx, src):
        # A curve that never fell beyond its noise did not learn: that is a plateau, not an oscillation.
        z = zigzag(values, errors)
        noise = 2 * max(errors) if errors else 0.0
        if z["drop"] <= max(noise, OSCILLATION_MIN_FALL * abs(values[0])):
            m.flat.append(name)
        else:
            m.candidates[name] = z
    m.step = step_swing(src.curves.step_loss) if src.probe is None else None
    return m


@check("training.oscillation", title="The curves fall without zig-zagging beyond their noise")
def oscillation(ctx: RunContext):
    src = curve_source(ctx)
    finding = oscillation_verdict(_measure_oscillation(ctx, src))
    finding.plots = loss_plots(src.curves)
    return finding


def oscillation_verdict(m: OscillationMeasure) -> Finding:
    step = _step_verdict(m)
    if step is not None:
        return step
    if not m.candidates and m.flat:
        return passed("no curve fell enough to judge oscillation (see training.plateau)",
                      detail=f"In {m.source}, these curves did not fall beyond their noise: {', '.join(m.flat)}.",
                      evidence={"source": m.source, "flat_curves": m.flat})
    if not m.candidates:
        raise SkipCheck(f"too few points to judge oscillation in {m.source} (need 4 epochs or 60 steps)")
    worst_name, worst = max(m.candidates.items(), key=lambda kv: (kv[1]["reversals"] >= 2, kv[1]["index"]))
    evidence = {"source": m.source, "curves": m.candidates, "worst": worst_name, "flat_curves": m.flat}
    msg = (f"In {m.source}, the {worst_name} rose by {worst['ups']:.3g} in total (significant rises only) "
           f"against an overall fall of {worst['drop']:.3g}, changing direction {worst['reversals']} time(s). "
           f"A curve that climbs back {100 * OSCILLATION_WARN:.0f}% or more of what it fell, more than once, "
           f"is bouncing, not converging.")
    fix = ("Lower the learning rate (training.lr_range), or use a larger batch; with momentum SGD lower the "
           "momentum; add a learning-rate schedule that decays.")
    curve = worst_name.split(" (")[0]
    if worst["reversals"] >= 3 and worst["index"] >= OSCILLATION_FAIL:
        return fail(f"the {curve} zig-zags: it climbs back more than it falls",
                    detail=msg, fix=fix, evidence=evidence)
    if worst["reversals"] >= 2 and worst["index"] >= OSCILLATION_WARN:
        return warn(f"the {curve} goes up and down beyond its noise", detail=msg, fix=fix, evidence=evidence)
    if m.step is not None:
        evidence["step_series"] = m.step
        msg += (f" Step by step, the mini-batch loss swings {100 * m.step['swing']:.0f}% of its level around its "
                f"moving mean with a pattern strength of {m.step['structure']:.2f} (flagged from "
                f"{100 * STEP_SWING_WARN:.0f}% with {STEP_STRUCTURE_WARN:g}; independent mini-batch noise has "
                f"no pattern).")
    return passed("the curves fall without oscillating beyond their noise", detail=msg, evidence=evidence)


def _step_verdict(m: OscillationMeasure) -> Finding | None:
    """A mini-batch loss that alternates between levels, judged on the step series itself: its epoch or
    chunk means can fall while it bounces."""
    s = m.step
    if s is None or s["swing"] < STEP_SWING_WARN or s["structure"] < STEP_STRUCTURE_WARN:
        return None
    evidence = {"source": m.source, "step_series": s, "curves": m.candidates, "flat_curves": m.flat,
                "worst": "mini-batch loss (step series)",
                "thresholds": {"swing_warn": STEP_SWING_WARN, "swing_fail": STEP_SWING_FAIL,
                               "structure_warn": STEP_STRUCTURE_WARN, "structure_fail": STEP_STRUCTURE_FAIL}}
    detail = (f"In {m.source}, the mini-batch loss ({s['points']} steps) swings by {100 * s['swing']:.0f}% of its "
              f"level, peak to peak, around its {s['window']}-step moving mean, and the swings follow a pattern: "
              f"the residual's autocorrelation reaches {s['structure']:.2f} at lag {s['lag']} (independent "
              f"mini-batch noise stays near 0). The loss alternates between regimes every few steps even if "
              f"its per-epoch means fall. Flagged from a {100 * STEP_SWING_WARN:.0f}% swing with a pattern of "
              f"{STEP_STRUCTURE_WARN:g} or more.")
    fix = ("Shuffle the training data (a loader ordered by class or by source makes consecutive batches "
           "differ), then lower the learning rate (training.lr_range) or raise the batch size; clip gradients "
           "if the swings come with gradient spikes.")
    if s["swing"] >= STEP_SWING_FAIL and s["structure"] >= STEP_STRUCTURE_FAIL:
        return fail(f"the mini-batch loss alternates between levels every ~{s['lag']} step(s) "
                    f"(swing {100 * s['swing']:.0f}% of its level)", detail=detail, fix=fix, evidence=evidence)
    return warn(f"the mini-batch loss swings with a pattern every ~{s['lag']} step(s) "
                f"({100 * s['swing']:.0f}% of its level)", detail=detail, fix=fix, evidence=evidence)


# --- plateau ----------------------------------------------------------------------------------------
@dataclass
class PlateauMeasure:
    source: str
    ends: LossEnds
    trivial: float | None                      # the loss of predicting the prior, when it can be known
    probe_epochs: int | None = None            # None: the curves come from the project's log
    dead_relu_fraction: dict[str, float] | None = None


def _measure_plateau(ctx: RunContext, src) -> PlateauMeasure:
    ends = start_and_end(src)
    if ends is None:
        raise no_loss_curve(src.label, src.curves.describe_columns())
    trivial = trivial_loss(ctx) if not src.from_log or ctx.config.loss else None
    m = PlateauMeasure(src.label, ends, trivial)
    if src.probe is not None:
        m.probe_epochs = len(src.probe.epochs) - 1
        m.dead_relu_fraction = {k: sum(v) / len(v) for k, v in src.probe.relu_zero.items() if v}
        if len(src.probe.epochs) < 2:
            raise SkipCheck(f"the probe did not finish one epoch within its share of the budget "
                            f"({src.probe.seconds_allowed:.1f} s); raise [budget] seconds")
    return m


@check("training.plateau", title="The loss moves away from its starting value")
def plateau(ctx: RunContext):
    src = curve_source(ctx)
    finding = plateau_verdict(_measure_plateau(ctx, src))
    finding.plots = loss_plots(src.curves)
    return finding


def plateau_verdict(m: PlateauMeasure) -> Finding:
    ends, trivial = m.ends, m.trivial
    drop = (ends.start - ends.end) / abs(ends.start) if ends.start else 0.0
    evidence = {"source": m.source, **ends.evidence(), "trivial_loss": trivial, "relative_drop": drop}
    if m.probe_epochs is not None:
        evidence["probe_epochs"] = m.probe_epochs
        evidence["dead_relu_fraction"] = m.dead_relu_fraction
    at_trivial = trivial is not None and abs(ends.end - trivial) <= PLATEAU_AT_TRIVIAL * abs(trivial)
    evidence["at_trivial_level"] = at_trivial
    trivial_txt = (f" The loss of a model that only predicts the training prior is {trivial:.4g}."
                   if trivial is not None else "")
    msg = (f"In {m.source} the {ends.series} {change(ends.start, ends.end)}.{trivial_txt} Thresholds: less than {100 * PLATEAU_DROP_FAIL:.0f}% "
           f"lower is stuck, less than {100 * PLATEAU_DROP_WARN:.0f}% is barely moving, and ending within "
           f"{100 * PLATEAU_AT_TRIVIAL:.0f}% of the prior's loss means nothing was learnt from the inputs.")
    dead = {k: v for k, v in (m.dead_relu_fraction or {}).items() if v >= 0.99}
    if dead:
        msg += f" ReLU outputs that are zero on (almost) every input: {', '.join(dead)}."
    fix = ("Overfit one small batch first (sanity.overfit_small_batch). If that fails, look for dead units, "
           "a detached graph or frozen weights; if it works, raise the learning rate (training.lr_range) and "
           "check that inputs are scaled.")
    if drop <= PLATEAU_ROSE:
        return info(f"the loss rose ({ends.start:.3g} -> {ends.end:.3g}) rather than stalling: see "
                    f"training.divergence", detail=msg, evidence=evidence)
    if drop < PLATEAU_DROP_FAIL:
        return fail(f"the loss is stuck at its starting level ({ends.start:.4g} -> {ends.end:.4g})",
                    detail=msg, fix=fix, evidence=evidence)
    if drop < PLATEAU_DROP_WARN:
        return warn(f"the loss barely moved ({100 * drop:.1f}% below its start)", detail=msg, fix=fix,
                    evidence=evidence)
    if at_trivial:
        return warn(f"the loss settled at the level of predicting the prior ({trivial:.4g})", detail=msg,
                    fix=fix, evidence=evidence)
    return passed(f"the loss fell {100 * drop:.0f}% below its starting level", detail=msg, evidence=evidence)
