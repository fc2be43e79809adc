"""architecture.dead_units, architecture.saturation, architecture.init_scale, architecture.dropout: how the
units of a fresh model behave on one real batch (model_trace), and how its weights and dropout are set.
When a monitor file exists (DESIGN §9), dead units and saturation are judged as they evolved over the user's
own run instead: the level a layer settled at over the last records, not one batch of a fresh model.

Each check measures (`_measure_*`) and then decides in a pure `_*_verdict`, so the thresholds are
unit-tested without building a project."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...analyses.model_trace import (RECURRENT_GATED, SATURATION_PRE, call_labels, single_threaded,
                                     torch_trace)
from ...analyses.monitored import (FINAL_SHARE, MIN_DEAD_EXAMPLES, MonitorSource, monitor_unit_series, monitored,
                                   monitored_steps)
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, passed, warn

# Dying ReLU: a unit whose output is zero for every example of the batch gets no gradient and stays
# dead. Lu et al. 2019 ("Dying ReLU and Initialization: Theory and Numerical Examples") show a network
# whose layers are mostly dead collapses to a constant function; we call a layer broken when at least
# 70% of its units are dead, and worth a look from 25% (under He/default initialisation on a real batch
# of TRACE_ROWS examples practically no unit is dead, so a quarter dead is already abnormal).
DEAD_FAIL_FRACTION = 0.70
DEAD_WARN_FRACTION = 0.25
# Saturation (Glorot & Bengio 2010): sigmoid/tanh units whose pre-activations sit beyond |5| pass
# almost no gradient. "Most" pre-activations saturated -> warn; nearly all -> fail.
SATURATED_WARN_FRACTION = 0.5
SATURATED_FAIL_FRACTION = 0.9
# Initialisation scale (He et al. 2015, "Delving Deep into Rectifiers"; Glorot & Bengio 2010): a good
# initialisation keeps the activation scale roughly constant with depth. We warn when the output
# standard deviation of the last parametrised layer differs from the first one by more than two orders
# of magnitude, and when a layer's weight std is more than WEIGHT_STD_FACTOR times outside the range
# between PyTorch's default (1/sqrt(3 fan_in)) and He (sqrt(2/fan_in)).
ACTIVATION_DRIFT_WARN = 100.0
WEIGHT_STD_FACTOR = 10.0
# A weight tensor whose mean is larger than its spread is not a zero-centred initialisation: every unit
# starts biased the same way (e.g. all-negative weights feeding ReLUs).
WEIGHT_MEAN_OVER_STD = 1.0
# Dropout: Srivastava et al. 2014 (JMLR, "Dropout", section 7.3) find test error flat for retention
# probabilities 0.4-0.8 in hidden layers and rising steeply below 0.4; they recommend dropping 0.5 at most
# in hidden layers. Above 0.5 we warn; at 0.8 and beyond most of the signal is thrown away: fail.
DROPOUT_WARN_RATE = 0.5
DROPOUT_FAIL_RATE = 0.8
PROBE_SOURCE = "from mltriage's probe (a fresh model on one batch)"


# ---- dead_units --------------------------------------------------------------------------------

@dataclass
class DeadUnits:
    """Per ReLU layer (JSON evidence): units, units zero on every example, their fraction, zero outputs."""

    layers: list[dict]
    rows: int  # examples in the traced batch


def _measure_dead_units(ctx: RunContext) -> DeadUnits:
    trace = torch_trace(ctx, "there are no ReLU units to inspect")
    layers = []
    for label, c in zip(call_labels(trace.calls), trace.calls):
        if c.kind != "relu" or not c.unit_fired:
            continue
        fired = c.unit_fired
        dead = sum(1 for f in fired if f == 0.0)
        layers.append({"layer": label, "units": len(fired), "dead": dead, "dead_fraction": dead / max(len(fired), 1),
                       "zero_fraction": c.out.get("frac_zero", 0.0)})
    return DeadUnits(layers=layers, rows=trace.rows)


def _dead_units_verdict(m: DeadUnits) -> Finding:
    if not m.layers:
        return passed("no ReLU layers in the model", evidence={"relu_layers": 0})
    layers, rows = m.layers, m.rows
    worst = max(layers, key=lambda r: r["dead_fraction"])
    evidence = {"layers": layers, "batch_rows": rows, "fail_fraction": DEAD_FAIL_FRACTION,
                "warn_fraction": DEAD_WARN_FRACTION}
    plots = [PlotSpec(kind="bar", title=f"dead ReLU units per layer (zero on all {rows} examples)",
                      series=[Series("dead fraction", [r["layer"] for r in layers],
                                     [r["dead_fraction"] for r in layers])], y_label="fraction of units")]
    measured = (f"{worst['dead']} of {worst['units']} units of {worst['layer']} output zero for every one of {rows} "
                f"training examples ({worst['dead_fraction']:.0%})")
    fix = ("Normalise the inputs, use He initialisation with zero or small positive biases, lower the learning rate, "
           "or use LeakyReLU/GELU.")
    detail = ("A ReLU unit that is zero for every input passes no gradient to its weights and cannot recover. "
              "Typical causes: large negative biases, weights initialised with a negative mean, inputs on a scale "
              "far from the initialisation's assumptions.")
    if worst["dead_fraction"] >= DEAD_FAIL_FRACTION:
        return fail(f"dead ReLU layer: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    if worst["dead_fraction"] >= DEAD_WARN_FRACTION:
        return warn(f"many dead ReLU units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    return passed(f"at most {worst['dead_fraction']:.0%} dead units in {len(layers)} ReLU layer(s) on a fresh model",
                  evidence=evidence, plots=plots)


# "gradients": the user's monitored run, or a torch model to probe (DESIGN §9)
@check("architecture.dead_units", title="ReLU units that never fire", needs=("gradients",))
def dead_units(ctx: RunContext):
    source = monitored(ctx)
    m = _measure_monitored_units(ctx, source, "dead_fraction") if source is not None else None
    if m is not None:
        return _monitored_dead_verdict(m)
    finding = _dead_units_verdict(single_threaded(_measure_dead_units)(ctx))
    return _from_probe(finding, source, _no_dead_records(source) if source is not None else "")


# ---- saturation --------------------------------------------------------------------------------

@dataclass
class Saturation:
    """Per sigmoid/tanh layer (JSON evidence): the share of pre-activations beyond |SATURATION_PRE|."""

    layers: list[dict]


def _measure_saturation(ctx: RunContext) -> Saturation:
    trace = torch_trace(ctx, "there are no sigmoid/tanh units to inspect")
    return Saturation([{"layer": label, "kind": f"{c.type} gates" if c.type in RECURRENT_GATED else c.kind,
                        "saturated_fraction": c.pre_saturated,
                        "pre_std": c.pre.get("std"), "pre_abs_mean": c.pre.get("abs_mean")}
                       for label, c in zip(call_labels(trace.calls), trace.calls)
                       if (c.kind in ("sigmoid", "tanh") or c.type in RECURRENT_GATED) and c.pre_saturated is not None])


def _saturation_verdict(m: Saturation) -> Finding:
    if not m.layers:
        return passed("no sigmoid or tanh units in the model", evidence={"bounded_layers": 0})
    layers = m.layers
    worst = max(layers, key=lambda r: r["saturated_fraction"])
    evidence = {"layers": layers, "threshold_abs_preactivation": SATURATION_PRE,
                "warn_fraction": SATURATED_WARN_FRACTION, "fail_fraction": SATURATED_FAIL_FRACTION}
    plots = [PlotSpec(kind="bar", title=f"share of pre-activations beyond |{SATURATION_PRE:g}|",
                      series=[Series("saturated", [r["layer"] for r in layers],
                                     [r["saturated_fraction"] for r in layers])], y_label="fraction")]
    measured = (f"{worst['saturated_fraction']:.0%} of the pre-activations of {worst['layer']} ({worst['kind']}) "
                f"lie beyond |{SATURATION_PRE:g}|")
    detail = (f"Beyond |{SATURATION_PRE:g}| the derivative of sigmoid is below 0.007 and that of tanh below 0.0002: "
              "saturated units barely learn. Causes: unnormalised inputs, weights initialised too large, or a "
              "sigmoid placed after a layer whose outputs are large.")
    fix = "Standardise the inputs and use Glorot (Xavier) initialisation for sigmoid/tanh layers."
    if worst["saturated_fraction"] >= SATURATED_FAIL_FRACTION:
        return fail(f"saturated units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    if worst["saturated_fraction"] >= SATURATED_WARN_FRACTION:
        return warn(f"mostly saturated units: {measured}", detail=detail, fix=fix, evidence=evidence, plots=plots)
    return passed(f"at most {worst['saturated_fraction']:.0%} of sigmoid/tanh pre-activations beyond "
                  f"|{SATURATION_PRE:g}|", evidence=evidence, plots=plots)


@check("architecture.saturation", title="Sigmoid/tanh units pinned at their bounds", needs=("gradients",))
def saturation(ctx: RunContext):
    source = monitored(ctx)
    m = _measure_monitored_units(ctx, source, "saturated_fraction") if source is not None else None
    if m is not None:
        return _monitored_saturation_verdict(m)
    finding = _saturation_verdict(single_threaded(_measure_saturation)(ctx))
    return _from_probe(finding, source, "no nn.Sigmoid/Tanh module")


# ---- dead units and saturation over the monitored run -----------------------------------------
# The monitor measures on the batch of each recorded step (mltriage.monitor): a ReLU unit is dead when it
# is zero for every example and position of that batch; a sigmoid output within 0.01 of 0 or 1 (|pre| >
# 4.6, derivative < 0.01) or a tanh output beyond +-0.99 (|pre| > 2.6, derivative < 0.02) is saturated.
# The thresholds are the probe's (Lu et al. 2019 for dead layers, Glorot & Bengio 2010 for saturation),
# applied to the level a layer held at every one of the last FINAL_SHARE of the records: one batch that
# is mostly zero is noise, a layer that climbs there and stays has stopped learning.

@dataclass
class MonitoredUnits:
    """Per activation module of the monitored run (JSON evidence): start, peak, the level held at the end."""

    source: str               # "from the monitored run (N steps)"
    note: str                 # which file, and how it was chosen
    layers: list[dict]
    series: dict[str, tuple[list[int], list[float]]]


def _measure_monitored_units(ctx: RunContext, source: MonitorSource, key: str) -> MonitoredUnits | None:
    """The monitored run's `key` per activation module; None when the run recorded none (then the probe
    judges the project's model when there is one)."""
    units = monitor_unit_series(source, key, _module_order(ctx))
    if not units:
        if ctx.has_model:
            return None
        if key == "dead_fraction":
            raise SkipCheck(f"{source.run.describe()} records {_no_dead_records(source)}")
        raise SkipCheck(f"{source.run.describe()} records no {key.replace('_', ' ')}: the monitor sees nn.ReLU, "
                        f"nn.Sigmoid and nn.Tanh modules, not functional calls")
    return MonitoredUnits(monitored_steps(source), f"{source.run.describe()}, {source.note}",
                          [u.summary() for u in units], {u.layer: (u.steps, u.values) for u in units})


def _no_dead_records(source: MonitorSource) -> str:
    """Why the monitored run gives no dead-unit evidence: no ReLU module, or only batches too small to tell."""
    if any(math.isfinite(v) for series in source.run.layers.values() for v in series.get("dead_fraction", [])):
        return (f"dead ReLU units only on batches of fewer than {MIN_DEAD_EXAMPLES} examples, and no pool of its "
                f"recorded batches reached that many: on so few examples a live unit is zero on all of them by "
                f"chance (run longer, or monitor with a larger batch)")
    return "no nn.ReLU/ReLU6 module (the monitor cannot see F.relu calls)"


def _module_order(ctx: RunContext) -> list[str] | None:
    """The project model's modules in registration order (which activation is the output one)."""
    try:
        if ctx.has_model and ctx.model_kind == "torch":
            return [name for name, _ in ctx.first_model().named_modules()]
    except Exception:  # noqa: BLE001 - sanity.model_builds reports a model that does not build
        pass
    return None


def _from_probe(finding: Finding, source: MonitorSource | None, why: str) -> Finding:
    finding.evidence["source"] = PROBE_SOURCE
    if source is not None:
        finding.evidence["monitored_run"] = f"{source.run.describe()} records {why}; the probe judged instead"
    return finding


def _evolution_plot(m: MonitoredUnits, title: str, y_label: str) -> list[PlotSpec]:
    return [PlotSpec(kind="line", title=title, x_label="step", y_label=y_label,
                     series=[Series(name, steps, values) for name, (steps, values) in m.series.items()])]


def _settled(r: dict, what: str) -> str:
    """Where a layer went over the run, in words."""
    if r["held"] > r["start"] + 0.1:
        path = f"up from {r['start']:.0%} at step {r['start_step']}"
    elif r["held"] < r["start"] - 0.1:
        path = f"down from {r['start']:.0%} at step {r['start_step']}"
    else:
        path = f"{r['start']:.0%} already at step {r['start_step']}"
    return (f"layer {r['layer']}: {r['held']:.0%} or more of its {what} at each of the last {r['final_records']} "
            f"records (steps {r['final_from_step']}-{r['last_step']}), {path}")


def _monitored_dead_verdict(m: MonitoredUnits) -> Finding:
    worst = max(m.layers, key=lambda r: r["held"])
    evidence = {"source": m.source, "monitored_run": m.note, "layers": m.layers, "fail_fraction": DEAD_FAIL_FRACTION,
                "warn_fraction": DEAD_WARN_FRACTION, "final_share": FINAL_SHARE, "min_examples": MIN_DEAD_EXAMPLES}
    plots = _evolution_plot(m, "dead ReLU units over the monitored run", "fraction of units dead")
    measured = f"{_settled(worst, 'units dead')}, {m.source}"
    detail = ("A ReLU unit that is zero for every example of a batch passes no gradient to its weights; once most "
              "of a layer is there and stays, the layer has stopped learning (dying ReLU). A fraction that "
              "climbs during training points at a learning rate that knocked the units' biases negative; one "
              f"that is high from the first record, at the initialisation or the inputs. Thresholds: fail when "
              f"{DEAD_FAIL_FRACTION:.0%} of a layer's units are dead at every one of the last {FINAL_SHARE:.0%} of the "
              f"records, warn from {DEAD_WARN_FRACTION:.0%}; each record counts on at least {MIN_DEAD_EXAMPLES} "
              f"examples (smaller batches pooled over recorded steps). In {m.note}.")
    fix = ("Lower the learning rate (or its warm-up peak), use He initialisation with zero or small positive biases, "
           "normalise the inputs, or use LeakyReLU/GELU.")
    if worst["held"] >= DEAD_FAIL_FRACTION and "examples" in worst and worst["examples"] is None:
        # an older monitor file: the batch behind each fraction is unknown, and on a few examples live units
        # look dead by chance, so without that count this is at most a warning
        detail += (f" This file does not record how many examples each fraction was measured on (an older "
                   f"monitor): fewer than {MIN_DEAD_EXAMPLES} can make live units look dead, so it is not a fail.")
    elif worst["held"] >= DEAD_FAIL_FRACTION:
        return fail(f"dead ReLU layer in the real run: {measured}", detail=detail, fix=fix, evidence=evidence,
                    plots=plots)
    if worst["held"] >= DEAD_WARN_FRACTION:
        return warn(f"many dead ReLU units in the real run: {measured}", detail=detail, fix=fix, evidence=evidence,
                    plots=plots)
    peak = max(m.layers, key=lambda r: r["peak"])
    spike = (f"; {peak['layer']} peaked at {peak['peak']:.0%} at step {peak['peak_step']} and recovered"
             if peak["peak"] >= DEAD_FAIL_FRACTION else "")
    return passed(f"at most {worst['held']:.0%} dead units held at the end in {len(m.layers)} ReLU layer(s) "
                  f"{m.source}{spike}", evidence=evidence, plots=plots)


def _monitored_saturation_verdict(m: MonitoredUnits) -> Finding:
    # An output sigmoid/tanh of a model that has grown confident sits near its bounds by design (a probability
    # near 0 or 1): only the activations before the last weight layer are judged.
    judged = [r for r in m.layers if r["output"] is not True]
    evidence = {"source": m.source, "monitored_run": m.note, "layers": m.layers,
                "not_judged_output_layers": [r["layer"] for r in m.layers if r["output"] is True],
                "warn_fraction": SATURATED_WARN_FRACTION, "fail_fraction": SATURATED_FAIL_FRACTION,
                "final_share": FINAL_SHARE}
    plots = _evolution_plot(m, "saturated sigmoid/tanh outputs over the monitored run", "fraction saturated")
    if not judged:
        return passed(f"only output activations are bounded ({', '.join(evidence['not_judged_output_layers'])}): "
                      f"near their bounds as the model grows confident, not judged", evidence=evidence, plots=plots)
    worst = max(judged, key=lambda r: r["held"])
    measured = f"{_settled(worst, 'outputs saturated')}, {m.source}"
    detail = ("A sigmoid output within 0.01 of 0 or 1, or a tanh output beyond +-0.99, has a derivative below 0.02: "
              "a hidden layer that stays saturated barely learns, and starves the layers before it of gradient. "
              f"Thresholds: fail when {SATURATED_FAIL_FRACTION:.0%} of a hidden layer's outputs are saturated at every "
              f"one of the last {FINAL_SHARE:.0%} of the records, warn from {SATURATED_WARN_FRACTION:.0%}. "
              f"In {m.note}.")
    fix = ("Standardise the inputs, use Glorot (Xavier) initialisation, lower the learning rate, or add a "
           "normalisation layer before the activation.")
    status = (fail if worst["held"] >= SATURATED_FAIL_FRACTION else
              warn if worst["held"] >= SATURATED_WARN_FRACTION else None)
    if status is fail and worst["output"] is None:
        status = warn  # it may be the output activation: the file does not say where it sits
        detail += f" (Whether {worst['layer']} is the model's output activation cannot be told from the file.)"
    if status is not None:
        return status(f"saturated units in the real run: {measured}", detail=detail, fix=fix, evidence=evidence,
                      plots=plots)
    return passed(f"at most {worst['held']:.0%} of sigmoid/tanh outputs saturated at the end in {len(judged)} "
                  f"hidden layer(s) {m.source}", evidence=evidence, plots=plots)


# ---- init_scale --------------------------------------------------------------------------------

def _fan_in(weight) -> int:
    return int(weight.shape[1] * (weight[0][0].numel() if weight.ndim > 2 else 1)) if weight.ndim >= 2 else 0


# Reference scales of the other layers with weights, each from its standard initialisation (every layer is
# judged within WEIGHT_STD_FACTOR of its range, as Linear/Conv layers are between PyTorch's default and He):
# - Embedding: between the d^-1/2 scale of Transformer embeddings (Vaswani et al. 2017, §3.4, scale the
#   embeddings by sqrt(d_model) -- i.e. unit-scale outputs from d^-1/2 weights; GPT-2's 0.02 at d=768 is
#   close) and PyTorch's N(0, 1) default.
# - LSTM/GRU/RNN: PyTorch's default U(-1/sqrt(hidden), 1/sqrt(hidden)), std 1/sqrt(3 hidden); Glorot
#   (xavier) input weights and orthogonal recurrent weights (std 1/sqrt(hidden)) lie within a factor 2 of it.
# - MultiheadAttention: PyTorch's xavier_uniform_ on in_proj_weight (3E, E), std sqrt(2 / (E + 3E)).
RECURRENT = ("LSTM", "GRU", "RNN")
WEIGHTED_TYPES = ("Linear", "Embedding", "EmbeddingBag", "MultiheadAttention") + RECURRENT


def _layer_weights(m, type_name: str):
    """The weight tensor(s) of a layer whose initial scale is judged, flattened; None when it has none."""
    import torch

    if type_name in RECURRENT:
        ws = [p.detach().float().reshape(-1) for n, p in m.named_parameters(recurse=False) if n.startswith("weight_")]
        return torch.cat(ws) if ws else None
    w = getattr(m, "in_proj_weight", None) if type_name == "MultiheadAttention" else getattr(m, "weight", None)
    if type_name == "MultiheadAttention" and w is None:
        w = getattr(m, "q_proj_weight", None)
    if w is None or w.ndim < 2:
        return None
    return w.detach().float()


def _reference_scales(m, type_name: str, w) -> dict:
    """The weight std range a layer's initialisation should fall in, with the names of both ends."""
    import math

    if type_name in ("Embedding", "EmbeddingBag"):
        dim = int(w.shape[1])
        return {"fan_in": dim, "reference_low": 1 / math.sqrt(dim), "low_name": "the d^-1/2 embedding scale",
                "reference_high": 1.0, "high_name": "PyTorch's N(0, 1) embedding default"}
    if type_name in RECURRENT:
        hidden = int(m.hidden_size)
        std = 1 / math.sqrt(3 * hidden)
        name = "the default recurrent scale 1/sqrt(3 hidden)"
        return {"fan_in": hidden, "reference_low": std, "low_name": name, "reference_high": std, "high_name": name}
    if type_name == "MultiheadAttention":
        embed = int(m.embed_dim)
        std = math.sqrt(2 / (4 * embed))
        name = "the Glorot scale of attention projections"
        return {"fan_in": embed, "reference_low": std, "low_name": name, "reference_high": std, "high_name": name}
    fan_in = _fan_in(w)
    return {"fan_in": fan_in, "default_std": 1 / math.sqrt(3 * fan_in), "he_std": math.sqrt(2 / fan_in)}


def _measure_init_scale(ctx: RunContext) -> list[dict]:
    """Per layer with weights (Linear, Conv, Embedding, LSTM/GRU, attention; JSON evidence): fan-in, weight std
    and mean next to the layer type's reference scales, and the std of the layer's output on the traced
    batch (the first tensor of a tuple output)."""
    trace = torch_trace(ctx, "there are no layer weights to inspect")
    modules = dict(trace.model.named_modules())
    rows = []
    layers = [c for c in trace.parametrized() if c.type in WEIGHTED_TYPES or c.type.startswith("Conv")]
    for i, c in enumerate(layers):
        m = modules.get(c.name)
        w = _layer_weights(m, c.type) if m is not None else None
        if w is None or w.numel() < 2:
            continue
        rows.append({"layer": c.name, "type": c.type, **_reference_scales(m, c.type, w),
                     "weight_std": float(w.std()), "weight_mean": float(w.mean()),
                     "output_std": c.out.get("std", float("nan")), "last": i == len(layers) - 1, "numel": w.numel()})
    return rows


def _weight_problems(r: dict) -> list[str]:
    problems = []
    low_ref, high_ref = r.get("reference_low", r.get("default_std")), r.get("reference_high", r.get("he_std"))
    low_name = r.get("low_name", "the default scale")
    high_name = r.get("high_name", "the He scale sqrt(2/fan_in)")
    low, high = low_ref / WEIGHT_STD_FACTOR, high_ref * WEIGHT_STD_FACTOR
    if r["weight_std"] > high:
        problems.append(f"{r['layer']} weights have std {r['weight_std']:.3g}, over {WEIGHT_STD_FACTOR:g}x "
                        f"{high_name} = {high_ref:.3g}")
    elif r["weight_std"] < low and not r["last"]:
        problems.append(f"{r['layer']} weights have std {r['weight_std']:.3g}, under 1/{WEIGHT_STD_FACTOR:g} of "
                        f"{low_name} {low_ref:.3g} (near-zero init makes hidden units identical)")
    if r["numel"] >= 16 and abs(r["weight_mean"]) > WEIGHT_MEAN_OVER_STD * max(r["weight_std"], 1e-12):
        problems.append(f"{r['layer']} weights are not centred: mean {r['weight_mean']:.3g} vs std "
                        f"{r['weight_std']:.3g}")
    return problems


def _init_scale_verdict(rows: list[dict]) -> Finding:
    import math

    if not rows:
        return passed("no linear or convolutional layers to inspect", evidence={})
    problems = [p for r in rows for p in _weight_problems(r)]
    stds = [r["output_std"] for r in rows if math.isfinite(r["output_std"]) and r["output_std"] > 0]
    drift = stds[-1] / stds[0] if len(stds) >= 2 else 1.0
    evidence = {"layers": rows, "activation_std_last_over_first": drift, "drift_warn": ACTIVATION_DRIFT_WARN}
    if len(stds) >= 3 and (drift > ACTIVATION_DRIFT_WARN or drift < 1 / ACTIVATION_DRIFT_WARN):
        problems.append(f"the activation scale {'grows' if drift > 1 else 'shrinks'} {max(drift, 1 / drift):.0f}x "
                        f"from the first to the last layer ({stds[0]:.3g} -> {stds[-1]:.3g})")
    plots = [PlotSpec(kind="line", title="output std per layer (fresh model, one batch)", x_label="layer index",
                      y_label="std", y_log=True,
                      series=[Series("activation std", list(range(len(rows))), [r["output_std"] for r in rows]),
                              Series("weight std", list(range(len(rows))), [r["weight_std"] for r in rows])])]
    if problems:
        return warn(problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                    detail="; ".join(problems) + ". Initialisation that does not preserve the signal's scale "
                           "from layer to layer makes gradients vanish or explode before training starts.",
                    fix="Use the default PyTorch initialisation or nn.init.kaiming_normal_ (ReLU) / xavier_normal_ "
                        "(tanh, sigmoid), with zero biases; standardise the inputs.", evidence=evidence, plots=plots)
    return passed(f"{len(rows)} layers initialised on a sound scale; activation std changes {drift:.2g}x with depth",
                  evidence=evidence, plots=plots)


@check("architecture.init_scale", title="Initial weight and activation scale across depth", needs=("model",))
@single_threaded
def init_scale(ctx: RunContext):
    return _init_scale_verdict(_measure_init_scale(ctx))


# ---- dropout -----------------------------------------------------------------------------------

@dataclass
class DropoutLayers:
    rates: list[dict]          # per dropout module (JSON evidence): layer, type, p
    after_output: list[str]    # dropout calls after the last layer with parameters
    called_order: list[str]    # module calls in the order forward() made them


def _built_in_dropout(model) -> list[dict]:
    """Dropout rates held by layers rather than Dropout modules: between the layers of a stacked LSTM/GRU
    (it does nothing with one layer) and on MultiheadAttention's attention weights."""
    rates = []
    for name, m in model.named_modules():
        kind = type(m).__name__
        p = getattr(m, "dropout", None)
        if kind not in RECURRENT + ("MultiheadAttention",) or not isinstance(p, float) or p <= 0:
            continue
        if kind in RECURRENT and getattr(m, "num_layers", 1) < 2:
            continue
        rates.append({"layer": name, "type": f"{kind}.dropout", "p": p})
    return rates


def _measure_dropout(ctx: RunContext) -> DropoutLayers:
    trace = torch_trace(ctx, "estimators have no dropout")
    drops = [(name, m) for name, m in trace.model.named_modules() if "Dropout" in type(m).__name__]
    rates = [{"layer": name, "type": type(m).__name__, "p": float(getattr(m, "p", 0.0))} for name, m in drops]
    rates += _built_in_dropout(trace.model)
    order = [c.name for c in trace.calls if c.source == "module"]
    last_param = max((i for i, c in enumerate(trace.calls) if c.source == "module" and c.n_params), default=-1)
    after_output = [c.name for i, c in enumerate(trace.calls)
                    if i > last_param and c.kind == "dropout" and c.source == "module"]
    return DropoutLayers(rates=rates, after_output=after_output, called_order=order)


def _dropout_verdict(m: DropoutLayers) -> Finding:
    if not m.rates:
        return passed("no dropout layers", evidence={"dropout_layers": []})
    rates, after_output = m.rates, m.after_output
    evidence = {"dropout_layers": rates, "after_last_layer": after_output, "called_order": m.called_order[:100],
                "warn_rate": DROPOUT_WARN_RATE, "fail_rate": DROPOUT_FAIL_RATE}
    worst = max(rates, key=lambda r: r["p"])
    if after_output:
        return fail(f"dropout {after_output[0]} is applied to the model's output",
                    detail="Dropout after the last layer zeroes random outputs (logits or predicted values) during "
                           "training and rescales the others, so the loss trains against corrupted predictions.",
                    fix="Move the dropout before the last layer, or remove it.", evidence=evidence)
    if worst["p"] >= DROPOUT_FAIL_RATE:
        return fail(f"dropout rate {worst['p']:g} in {worst['layer']}",
                    detail=f"Dropping {worst['p']:.0%} of the units leaves too little signal to learn from; "
                           f"rates above {DROPOUT_WARN_RATE:g} are rarely useful in hidden layers.",
                    fix="Use 0.1-0.5 (0.5 for wide fully-connected layers, lower for convolutional ones).",
                    evidence=evidence)
    if worst["p"] > DROPOUT_WARN_RATE:
        return warn(f"high dropout rate {worst['p']:g} in {worst['layer']}",
                    detail=f"Above {DROPOUT_WARN_RATE:g} dropout usually costs more accuracy than it saves in "
                           f"overfitting.", fix="Try 0.1-0.5.", evidence=evidence)
    return passed(f"{len(rates)} dropout layer(s), rates up to {worst['p']:g}, none on the output",
                  evidence=evidence)


@check("architecture.dropout", title="Dropout rates and placement", needs=("model",))
@single_threaded
def dropout(ctx: RunContext):
    return _dropout_verdict(_measure_dropout(ctx))
