"""The user's own training run, as the monitor recorded it (DESIGN §9), in the shapes the training checks
read: curves (step losses, eval points) and per-layer gradient and update series like mltriage's probe.

Found from `[artifacts] monitor` (a file, or a folder whose newest file is read) or, by default, the newest
file in `.mltriage/monitor/` next to mltriage.toml. When one is found, the training checks judge the real
run instead of the probe and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..io.logs import TrainingCurves, classify_column
from ..io.monitor_file import MonitoredRun, find_monitor_file, read_monitor
from ..vocab import higher_is_better
from .probe import Probe


@dataclass
class MonitorSource:
    run: MonitoredRun
    note: str                 # how the file was chosen, for the evidence


@analysis
def monitored(ctx: RunContext) -> MonitorSource | None:
    """The monitored run when a monitor file with at least one step record exists, else None."""
    path, note = find_monitor_file(ctx.config.monitor, ctx.root)
    if path is None:
        return None
    run = read_monitor(path)
    if not run.records:
        return None
    mismatch = _model_mismatch(ctx, run)
    return MonitorSource(run, note + (f"; {mismatch}" if mismatch else ""))


def _model_mismatch(ctx: RunContext, run: MonitoredRun) -> str | None:
    """Words for a monitor file that records a different model than the project's build gives (another
    class or another parameter count): its findings are still the real run's, but the user must know."""
    if not ctx.has_model or run.model is None and run.parameters is None:
        return None
    try:
        model = ctx.first_model()
        if ctx.model_kind != "torch":
            return None
        name = type(model).__name__
        count = sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - the model checks report a model that does not build
        return None
    if run.model not in (None, name) or (run.parameters is not None and run.parameters != count):
        recorded = " with ".join(x for x in (run.model, f"{run.parameters:,} parameters"
                                             if run.parameters is not None else None) if x)
        return (f"the monitor file records {recorded}, but this project's build_model gives {name} with "
                f"{count:,} parameters: it may come from a different model or an older version of it")
    return None


def monitor_curves(run: MonitoredRun, metric: str | None = None) -> TrainingCurves:
    """Step losses as the step series; each eval record a point of the eval series, with the mean of the
    step losses recorded since the previous point as its train loss (unless the eval names one)."""
    curves = TrainingCurves(path=run.path, source_format="mltriage monitor", index_name="step",
                            step=[float(s) for s in run.steps], step_loss=list(run.loss))
    roles = _eval_roles(run)
    curves.columns = sorted({k for e in run.evals for k in e})
    curves.mapped = {role: key for role, key in roles.items()}
    if "valid_metric" in roles or "train_metric" in roles:
        name = roles.get("valid_metric") or roles.get("train_metric")
        kind = classify_column(name)[0]
        curves.metric_name = kind
        curves.metric_higher_is_better = higher_is_better(kind) if kind in _KNOWN_METRICS else True
    previous = -math.inf
    for step, values in zip(run.eval_steps, run.evals):
        curves.index.append(float(step))
        for role in ("valid_loss", "train_metric", "valid_metric"):
            getattr(curves, role).append(values.get(roles[role], math.nan) if role in roles else math.nan)
        if "train_loss" in roles:
            curves.train_loss.append(values.get(roles["train_loss"], math.nan))
        else:
            since = [loss for s, loss in zip(run.steps, run.loss) if previous < s <= step and math.isfinite(loss)]
            curves.train_loss.append(sum(since) / len(since) if since else math.nan)
        previous = step
    return curves


_KNOWN_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss", "rmse",
                  "mae", "r2", "error_rate")


def _eval_roles(run: MonitoredRun) -> dict[str, str]:
    """Eval keys by role (valid_loss, train_loss, valid_metric, train_metric), read like log columns."""
    roles: dict[str, str] = {}
    for key in sorted({k for e in run.evals for k in e}):
        kind = classify_column(key)
        if kind is None or kind[1] == "test":
            continue
        what, phase, _ = kind
        if phase == "train" and "train" not in key.lower():
            phase = "valid"  # mon.eval(loss=..., accuracy=...) reports an evaluation, not training
        roles.setdefault(f"{phase}_{'loss' if what == 'loss' else 'metric'}", key)
    return roles


def monitor_probe(source: MonitorSource) -> Probe:
    """The monitored run in the probe's shape, so the gradient and update checks read it unchanged."""
    run = source.run
    names = run.matrix_layers or [n for n, s in run.layers.items() if "grad_norm" in s]
    names = [n for n in names if "grad_norm" in run.layers.get(n, {})]
    label = {n: f"{n} ({run.layer_types[n]})" if n in run.layer_types else n for n in names}
    grad_norms = {label[n]: list(run.layers[n]["grad_norm"]) for n in names}
    update_ratios = {label[n]: list(run.layers[n].get("update_ratio", [])) for n in names}
    total = [math.sqrt(sum(g[i] ** 2 for g in grad_norms.values())) if grad_norms else math.nan
             for i in range(run.records)]
    return Probe(loss=list(run.loss), layers=[label[n] for n in names], grad_norms=grad_norms,
                 total_grad_norm=total, update_ratios=update_ratios,
                 nonfinite_grad_steps=sum(1 for t in total if not math.isfinite(t)),
                 source=f"{run.describe()}, {source.note}")


# --- units as they evolve over the run (architecture.dead_units, architecture.saturation) -----------------
# The share of the recorded steps at the end of the run over which a level must hold to count as where the
# run settled ("climbs and stays"), and the fewest such records (one record is one mini-batch).
FINAL_SHARE = 0.2
FINAL_MIN_RECORDS = 3
# A ReLU layer's dead fraction is evidence of dead units only when measured on at least MIN_DEAD_EXAMPLES
# examples: the smallest n at which a unit firing on >= DEAD_P_MIN of the inputs is zero on all n with
# probability < DEAD_ALPHA. mltriage.monitor pools smaller batches up to it and gives the derivation and
# sources; a test keeps the two equal. Saturation needs no such minimum: it is the share of output values
# beyond a bound, an unbiased estimate on any batch (a small batch makes it noisier, not higher), and the
# level held over FINAL_MIN_RECORDS or more records already absorbs that noise.
DEAD_P_MIN = 0.1
DEAD_ALPHA = 0.05
MIN_DEAD_EXAMPLES = math.ceil(math.log(DEAD_ALPHA) / math.log(1 - DEAD_P_MIN))


@dataclass
class UnitSeries:
    """One activation module's dead or saturated fraction at each recorded step (NaN-free)."""

    layer: str
    steps: list[int]
    values: list[float]
    output: bool | None = None    # after the model's last weight layer (None: the order is unknown)
    examples: list[float] | None = None  # dead fractions only: examples behind each value (NaN: not recorded)

    def summary(self) -> dict:
        """Start, peak and the level held over the final records (their minimum: held at every one); for dead
        fractions also the fewest examples behind a final record (None: the file does not say)."""
        n = len(self.values)
        window = min(n, max(FINAL_MIN_RECORDS, math.ceil(FINAL_SHARE * n)))
        peak = max(range(n), key=lambda i: self.values[i])
        out = {"layer": self.layer, "records": n, "start": self.values[0], "start_step": self.steps[0],
               "peak": self.values[peak], "peak_step": self.steps[peak], "end": self.values[-1],
               "held": min(self.values[-window:]), "final_records": window,
               "final_from_step": self.steps[-window], "last_step": self.steps[-1], "output": self.output}
        if self.examples is not None:
            final = self.examples[-window:]
            out["examples"] = int(min(final)) if all(math.isfinite(e) for e in final) else None
        return out


def monitor_unit_series(source: MonitorSource, key: str, module_order: list[str] | None = None) -> list[UnitSeries]:
    """Per activation module, the monitor's `key` ("dead_fraction" or "saturated_fraction") over the run.

    `module_order` (the project model's named_modules, when it builds) tells which activations come after
    the last weight layer; without it a Sequential's numeric indices are compared, else the order is unknown."""
    run = source.run
    weights = run.matrix_layers or [n for n in run.layers if "weight_norm" in run.layers[n]]
    out = []
    for name, series in run.layers.items():
        values, examples = dead_unit_evidence(series) if key == "dead_fraction" else (series.get(key, []), None)
        kept = [i for i, v in enumerate(values) if math.isfinite(v)]
        if kept:
            out.append(UnitSeries(name, [run.steps[i] for i in kept], [values[i] for i in kept],
                                  _after_last_weight(name, weights, module_order),
                                  [examples[i] for i in kept] if examples is not None else None))
    return out


def dead_unit_evidence(series: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """Per record, the dead fraction that is evidence and the examples behind it: the batch's own when it
    held MIN_DEAD_EXAMPLES examples, the pooled one on the record that closed a pool of smaller batches, NaN
    (left out) for a small batch still pooling. Records without the count (an older monitor) keep their
    fraction with NaN examples: how much it proves is unknown, and the verdict says so."""
    dead = series.get("dead_fraction", [])
    missing = [math.nan] * len(dead)
    values, behind = [], []
    for fraction, examples, pooled, pooled_examples in zip(dead, series.get("examples", missing),
                                                            series.get("pooled_dead_fraction", missing),
                                                            series.get("pooled_examples", missing)):
        if not math.isfinite(examples) or examples >= MIN_DEAD_EXAMPLES:
            values.append(fraction)
            behind.append(examples)
        elif pooled_examples >= MIN_DEAD_EXAMPLES:  # (False for NaN)
            values.append(pooled)
            behind.append(pooled_examples)
        else:
            values.append(math.nan)
            behind.append(examples)
    return values, behind


def _after_last_weight(name: str, weights: list[str], order: list[str] | None) -> bool | None:
    if not weights:
        return None
    if order and name in order and all(w in order for w in weights):
        return order.index(name) > max(order.index(w) for w in weights)
    parent, _, index = name.rpartition(".")
    last_parent, _, last_index = weights[-1].rpartition(".")
    if parent == last_parent and index.isdigit() and last_index.isdigit():  # siblings in one nn.Sequential
        return int(index) > int(last_index)
    return None


def monitored_steps(source: MonitorSource) -> str:
    """How the evidence names the monitored run: "from the monitored run (N steps)"."""
    run = source.run
    return f"from the monitored run ({run.steps[-1] if run.steps else 0} steps)"
