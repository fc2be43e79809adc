"""Training curves and their statistics: where the curves come from (the project's log or the probe),
smoothing, the loss of a trivial model, zig-zag amplitude, a real rise of the validation loss."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..findings import SkipCheck
from ..io.logs import TrainingCurves, TrainingLogError, read_training_log
from ..vocab import loss_info
from .probe import Probe, probe, probe_curves

EMA_BETA = 0.9                 # smoothing of mini-batch losses
ZIGZAG_FLOOR = 0.01            # moves under 1% of the curve's level are too small to matter
RISE_T = 2.0                   # paired t statistic for "the valid loss really rose" (about 97.5% one-sided)


def finite_values(values) -> list[float]:
    return [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def ema(values, beta: float = EMA_BETA) -> list[float]:
    """Bias-corrected exponential moving average (as in Adam and fastai's smoothed loss)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** i))
    return out


@dataclass
class CurveSource:
    """The curves a training check reads and where they came from."""

    curves: TrainingCurves
    label: str                # said in every finding
    probe: Probe | None = None
    from_log: bool = False


@analysis
def training_log(ctx: RunContext) -> TrainingCurves:
    """The project's [artifacts] training_log, read once per run."""
    return read_training_log(ctx.config.training_log)


# The one check that reports an unreadable training log; the other training checks skip, pointing at it.
LOG_ERROR_OWNER = "training.divergence"


def curve_source(ctx: RunContext, owner: bool = False) -> CurveSource:
    """The user's monitored run when a monitor file exists (DESIGN §9), else the project's training log
    when given, else the probe; SkipCheck when none is available.

    An unreadable log is said once per run: the check passing `owner=True` (LOG_ERROR_OWNER) reports the
    error, every other check that reads the curves is skipped with a pointer to it."""
    from .monitored import monitor_curves, monitored

    source = monitored(ctx)
    if source is not None:
        curves = monitor_curves(source.run)
        return CurveSource(curves, f"{source.run.describe()}, {source.note}", from_log=True)
    if ctx.config.training_log is not None:
        try:
            curves = training_log(ctx)
        except TrainingLogError as exc:
            if owner:
                raise
            raise SkipCheck(f"the training log could not be read: see {LOG_ERROR_OWNER}\n{exc}") from None
        name = Path(curves.path).name if Path(curves.path).name != ctx.config.training_log.name else \
            ctx.config.training_log.name
        label = f"the training log {name} (read as {curves.source_format})"
        if curves.notes:
            label += "; " + "; ".join(curves.notes)
        return CurveSource(curves, label, from_log=True)
    if ctx.has_model and ctx.model_kind == "torch":
        result = probe(ctx)
        return CurveSource(probe_curves(ctx, result), result.describe(), probe=result)
    if ctx.has_model:
        raise SkipCheck("needs a training log: scikit-learn estimators have no training curve to probe\n"
                        "Add [artifacts] training_log = \"logs/metrics.csv\" to read your own curves.")
    raise SkipCheck("needs a training log or a PyTorch model\nAdd [artifacts] training_log = \"logs/metrics.csv\" "
                    "or a [model] section (code, build) so mltriage can run a short probe.")


@analysis
def trivial_loss(ctx: RunContext) -> float | None:
    """The loss of a model that ignores its inputs and predicts the training prior (or the mean), for
    the built-in losses whose uninformed level vocab.py names (`init_theory`); None for the others."""
    import numpy as np

    from .modeling import labelled_rows

    loss = loss_info(ctx.loss_name)
    if loss is None or (loss.task == "classification") != ctx.is_classification:
        return None
    try:
        _, y = labelled_rows(ctx, "train")
    except Exception:  # featurize may be missing for a logs-only project: use the raw labels
        y = ctx.y("train")
        y = y[y >= 0] if ctx.is_classification else y[np.isfinite(y)]
    if y is None:  # sequence targets: the ids at every position
        y = ctx.sequence_tokens("train")
    if len(y) == 0:
        return None
    return _uninformed_loss(loss.init_theory, y)


def _uninformed_loss(theory: str, y) -> float | None:
    import numpy as np

    if theory == "ln_classes":     # entropy of the class prior (ln C when balanced)
        p = np.bincount(np.asarray(y, dtype=int)) / len(y)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    if theory == "ln_2":           # binary entropy of the positive rate (ln 2 when balanced)
        p = float(np.mean(y))
        return 0.0 if p in (0.0, 1.0) else float(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    if theory == "variance":       # mse of predicting the mean
        return float(np.var(y))
    if theory == "mad":            # l1 of predicting the median
        return float(np.mean(np.abs(y - np.median(y))))
    return None


def finite_series(curves, role: str) -> tuple[list[float], list[float]]:
    """(x, y) of the finite points of a per-epoch series."""
    pairs = [(x, v) for x, v in zip(curves.index, getattr(curves, role))
             if isinstance(v, (int, float)) and math.isfinite(v)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def chunk_means(values: list[float], chunks: int = 20) -> tuple[list[float], list[float]]:
    """Means of consecutive chunks of a step series and their standard errors."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    size = max(2, len(v) // chunks)
    means, errors = [], []
    for i in range(0, len(v) - size + 1, size):
        part = v[i:i + size]
        means.append(float(part.mean()))
        errors.append(float(part.std(ddof=1) / math.sqrt(len(part))))
    return means, errors


@dataclass(frozen=True)
class LossEnds:
    """The loss where training started and where it ended, and which series they were read on."""

    start: float
    end: float
    series: str

    def evidence(self) -> dict:
        return asdict(self)


def start_and_end(src: CurveSource) -> LossEnds | None:
    """Loss where training started and where it ended, on the least noisy series available."""
    c = src.curves
    if src.probe is not None and len(src.probe.train_loss) >= 2:
        return LossEnds(src.probe.train_loss[0], src.probe.train_loss[-1],
                        "eval-mode train loss per epoch (epoch 0 = before training)")
    steps = finite_values(c.step_loss)
    if len(steps) >= 20:
        sm = ema(steps)
        k = max(1, len(sm) // 10)
        return LossEnds(float(sum(steps[:k]) / k), sm[-1],
                        "mini-batch loss (first 10% of steps vs EMA at the end)")
    _, ys = finite_series(c, "train_loss")
    if len(ys) >= 2:
        return LossEnds(ys[0], ys[-1], "train loss per " + c.index_name)
    return None


STEP_MIN_POINTS = 200         # a step series is judged on its own from this many points ("hundreds per epoch")
STEP_WINDOW = 51              # the trend of a step series: a centred moving mean over this many steps, so a
                              # swing "every few steps" (periods up to ~STEP_WINDOW/2) is left in the residual
STEP_SKIP_START = 0.1         # the first 10% of steps (warm-up, the steep first fall) are not judged


def step_swing(values) -> dict | None:
    """How a step-level loss moves around its own trend: `swing` (twice the standard deviation of the
    residual relative to the trend: about the peak-to-peak swing as a share of the level; 0.5 -> 2.0 around
    1.25 reads 1.2) and `structure` (the largest |autocorrelation| of the residual at lags 1..25: near 0 for
    mini-batch noise, which is independent from batch to batch, near 1 for a loss that alternates with a
    pattern). None when the series is too short. A dict: it is part of training.oscillation's evidence."""
    import numpy as np

    v = np.asarray(finite_values(values), dtype=float)
    if len(v) < STEP_MIN_POINTS:
        return None
    half = min(STEP_WINDOW // 2, len(v) // 20)
    w = 2 * half + 1
    c = np.concatenate([[0.0], np.cumsum(v)])
    trend = (c[w:] - c[:-w]) / w                      # centred mean at positions half .. n-half-1
    centre = v[half:len(v) - half]
    start = int(STEP_SKIP_START * len(centre))
    trend, centre = trend[start:], centre[start:]
    level = np.maximum(np.abs(trend), 1e-12)
    rel = (centre - trend) / level
    rel = rel - rel.mean()
    denom = float((rel * rel).sum())
    if denom <= 0 or len(rel) < 4 * half:
        return {"points": int(len(v)), "swing": 0.0, "structure": 0.0, "lag": 0, "window": w}
    acf = [(k, float((rel[:-k] * rel[k:]).sum() / denom)) for k in range(1, half + 1)]
    lag, strongest = max(acf, key=lambda kv: abs(kv[1]))
    return {"points": int(len(v)), "swing": float(2 * rel.std()), "structure": abs(strongest), "lag": lag,
            "window": w}


def zigzag(values: list[float], errors: list[float] | None = None) -> dict:
    """How much a curve that should fall goes back up: upward moves beyond noise vs its total fall.

    Returns ups (sum of rises larger than 2 standard errors of the difference and than 1% of the
    level), drop (start minus the lowest value), reversals (direction changes among significant moves)
    and index = ups / drop. A dict, because it is the evidence of training.oscillation as it stands.
    """
    ups, reversals, last_sign = 0.0, 0, 0
    for i in range(1, len(values)):
        d = values[i] - values[i - 1]
        band = 2 * math.hypot(errors[i], errors[i - 1]) if errors else 0.0
        band = max(band, ZIGZAG_FLOOR * abs(values[i - 1]))
        if abs(d) <= band:
            continue
        sign = 1 if d > 0 else -1
        if d > 0:
            ups += d - band
        if last_sign and sign != last_sign:
            reversals += 1
        last_sign = sign
    drop = values[0] - min(values) if values else 0.0
    scale = max(drop, 1e-3 * abs(values[0]) if values else 0.0, 1e-12)
    return {"ups": ups, "drop": drop, "reversals": reversals, "index": ups / scale}


def epoch_curves(ctx: RunContext, need_valid: bool = True) -> tuple[CurveSource, TrainingCurves]:
    """The curve source and its curves; SkipCheck when a validation loss is needed and has < 3 points."""
    src = curve_source(ctx)
    c = src.curves
    _, valid = finite_series(c, "valid_loss")
    if need_valid and len(valid) < 3:
        what = (f"{len(valid)} validation point(s)" if valid else "no validation loss")
        raise SkipCheck(f"{src.label} has {what}; this check needs a validation loss over at least 3 "
                        f"{c.index_name}s\n{c.describe_columns() if src.from_log else ''}".rstrip())
    return src, c


def valid_rise(src: CurveSource, best: int, valid: list[float], warn_rise: float) -> dict:
    """Is the validation loss at the end really above its best, beyond noise? (A dict: it is part of the
    evidence of training.overfitting and training.early_stopping as it stands.)

    Probe: a paired t-test on the per-row validation losses of the best and the last epoch (the same
    rows, so only the model changed). Log: the rise must be sustained - the median of the values after
    the best one already sits half of `warn_rise` above it.
    """
    import numpy as np

    rise = (valid[-1] - valid[best]) / abs(valid[best]) if valid[best] else 0.0
    out = {"relative_rise": rise, "after_best": len(valid) - 1 - best}
    rows = src.probe.valid_row_losses if src.probe is not None else []
    if len(rows) == len(valid) and rows[best] is not None and rows[-1] is not None:
        d = np.asarray(rows[-1]) - np.asarray(rows[best])
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf
        out["paired_t"] = float(d.mean() / se) if se > 0 else (math.inf if d.mean() > 0 else 0.0)
        out["significant"] = out["paired_t"] >= RISE_T
        out["noise_test"] = f"paired t-test on {len(d)} validation rows (t >= {RISE_T:g})"
    else:
        later = valid[best + 1:]
        sustained = bool(later) and float(np.median(later)) >= valid[best] * (1 + warn_rise / 2)
        out["significant"] = sustained
        out["noise_test"] = "median after the best is at least 5% above it (a sustained rise, not one bad epoch)"
    return out


def patience_that_works(valid: list[float], tolerance: float = 0.01) -> int | None:
    """The smallest patience whose early stopping (restoring the best epoch so far) keeps a loss within
    `tolerance` of the best of the whole run."""
    best_all = min(valid)
    for patience in range(1, len(valid)):
        best, since = math.inf, 0
        for v in valid:
            if v < best:
                best, since = v, 0
            else:
                since += 1
                if since >= patience:
                    break
        if best <= best_all + tolerance * abs(best_all):
            return patience
    return None
