"""architecture.output_layer: the model's final activation fits what the configured loss expects.

The check measures (`_measure_output_head`: the final activation of a traced fresh model and, for
regression, how much of the target range that activation can reach) and decides in pure functions of
that measurement, one per kind of loss head (read from vocab: per-class or single output, expected
activation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...analyses.model_trace import FinalActivation, final_activation, single_threaded, torch_trace
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, fail, info, passed, warn
from ...vocab import loss_info

# Bounds of the outputs each final activation can produce.
ACTIVATION_RANGE = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, None),
                    "nonneg": (0.0, None), "log_softmax": (None, 0.0)}


@dataclass
class TargetCoverage:
    """Regression: the finite training targets against the range the final activation can produce."""

    low: float
    high: float
    outside: float | None = None  # share of targets the activation cannot reach; None when unbounded


@dataclass
class OutputHead:
    activation: FinalActivation
    loss: str
    n_outputs: int
    targets: TargetCoverage | None = None  # regression losses only


def _target_coverage(ctx: RunContext, bounds) -> TargetCoverage:
    import numpy as np

    y = ctx.y("train")
    y = y[np.isfinite(y)]
    coverage = TargetCoverage(float(y.min()), float(y.max())) if len(y) else TargetCoverage(0.0, 0.0)
    if bounds is not None:
        lo, hi = bounds
        coverage.outside = float(np.mean((y < lo if lo is not None else False) | (y > hi if hi is not None else False)))
    return coverage


def _measure_output_head(ctx: RunContext) -> OutputHead:
    trace = torch_trace(ctx, "the estimator produces its own predictions; there is no output layer to inspect")
    m = OutputHead(activation=final_activation(trace), loss=ctx.loss_name, n_outputs=ctx.n_outputs)
    spec = loss_info(m.loss)
    if spec is not None and spec.task == "regression":
        m.targets = _target_coverage(ctx, ACTIVATION_RANGE.get(m.activation.kind))
    return m


@dataclass
class _Head:
    """What the verdicts of output_layer share: the measurement, where the activation sits, the evidence."""

    m: OutputHead
    evidence: dict

    @property
    def kind(self) -> str:
        return self.m.activation.kind

    @property
    def where(self) -> str:
        act = self.m.activation
        return f" ({act.module})" if act.module else " (found from the output values)" if act.how == "values" else ""

    @property
    def certain(self) -> bool:
        # Softmax/log_softmax betray themselves in the values (rows summing to one); a sigmoid or a clamp
        # read from values alone could be a coincidence of a fresh model's small outputs, so at most warn.
        return self.m.activation.how != "values" or self.kind in ("softmax", "log_softmax")

    def flag(self, make, title: str, detail: str, fix: str) -> Finding:
        if not self.certain and make is fail:
            make, title = warn, f"{title} (inferred from the output values)"
        return make(title, detail=detail, fix=fix, evidence=self.evidence)

    def ok(self, title: str, detail: str = "") -> Finding:
        return passed(title, detail=detail, evidence=self.evidence)


def _logits_head(h: _Head) -> Finding:
    """cross_entropy: raw logits, one per class."""
    import math

    kind, where, n = h.kind, h.where, h.m.n_outputs
    if kind == "softmax":
        return h.flag(fail, f"softmax{where} before CrossEntropyLoss",
                      "CrossEntropyLoss applies log-softmax itself; given probabilities it computes "
                      "log_softmax(softmax(z)), whose inputs live in [0, 1]. The loss cannot fall much below "
                      f"{math.log(1 + (n - 1) / math.e):.2f} for {n} classes and the gradients "
                      "vanish as the model becomes confident.",
                      "Return raw logits from the model; apply softmax only in predict() when you need "
                      "probabilities.")
    if kind == "sigmoid":
        return h.flag(fail, f"sigmoid{where} on the output before CrossEntropyLoss",
                      "A sigmoid squashes every logit into (0, 1) independently, which caps how far apart the "
                      "classes can be and kills the gradient of confident outputs.",
                      "Remove the sigmoid; CrossEntropyLoss wants raw logits.")
    if kind in ("relu", "nonneg"):
        return h.flag(warn, f"ReLU{where} on the logits before CrossEntropyLoss",
                      "Logits clipped at zero cannot express 'not this class' below zero, and classes whose "
                      "logit is clipped get no gradient.",
                      "Remove the activation after the last linear layer.")
    if kind == "log_softmax":
        return h.ok("log_softmax before CrossEntropyLoss: harmless (log_softmax is idempotent)",
                    detail="log_softmax(log_softmax(z)) = log_softmax(z), so the loss and gradients are those "
                           "of plain logits. nll would be the conventional pairing.")
    return h.ok(f"raw logits{where} into CrossEntropyLoss")


def _log_probabilities_head(h: _Head) -> Finding:
    """nll: log-probabilities, one per class."""
    kind, where = h.kind, h.where
    if kind == "log_softmax":
        return h.ok(f"log_softmax{where} into NLLLoss")
    if kind == "softmax":
        return h.flag(fail, f"softmax without log{where} before NLLLoss",
                      "NLLLoss expects log-probabilities and just negates the entry of the true class; on "
                      "probabilities it minimises -p, which is bounded, negative and badly scaled.",
                      "Use log_softmax as the last layer (or cross_entropy on raw logits).")
    return h.flag(fail, f"NLLLoss on outputs that are not log-probabilities ({kind}{where})",
                  "NLLLoss does not normalise: on raw scores it rewards making the true class's score "
                  "arbitrarily large, and the loss goes to minus infinity.",
                  "Add log_softmax after the last layer, or switch the loss to cross_entropy.")


def _binary_logit_head(h: _Head) -> Finding:
    """bce_with_logits: one raw logit."""
    kind, where = h.kind, h.where
    if kind in ("sigmoid", "softmax"):
        return h.flag(fail, f"{kind}{where} before BCEWithLogitsLoss (applied twice)",
                      "BCEWithLogitsLoss applies the sigmoid itself; with another one in the model the "
                      "predicted probability can only range over (0.5, 0.73) and learning stalls.",
                      "Return the raw logit; apply sigmoid only in predict().")
    return h.ok(f"raw logit{where} into BCEWithLogitsLoss")


def _probability_head(h: _Head) -> Finding:
    """bce: one probability, from a sigmoid."""
    kind, where = h.kind, h.where
    if kind == "sigmoid":
        return h.ok(f"sigmoid{where} into BCELoss", detail="Consider bce_with_logits with raw logits: it is "
                    "numerically more stable.")
    if kind == "softmax":
        return h.flag(fail, f"softmax{where} on the output before BCELoss",
                      "A softmax over a single output is always 1; over several it does not give independent "
                      "probabilities.", "Use a single output with sigmoid (or bce_with_logits).")
    return h.flag(fail, f"BCELoss on outputs without a sigmoid ({kind}{where})",
                  "BCELoss expects probabilities in [0, 1]; raw scores make it fail or clamp its log.",
                  "Add a sigmoid as the last layer, or better use bce_with_logits on raw logits.")


def _regression_head(h: _Head) -> Finding:
    targets, kind, where = h.m.targets, h.kind, h.where
    h.evidence.update({"target_min": targets.low, "target_max": targets.high})
    bounds = ACTIVATION_RANGE.get(kind)
    if bounds is None:
        return h.ok(f"unbounded output{where} for a {h.m.loss} regression")
    lo, hi = bounds
    outside = targets.outside
    h.evidence["fraction_targets_out_of_range"] = outside
    span = f"[{lo if lo is not None else '-∞'}, {hi if hi is not None else '∞'}]"
    if outside > 0:
        return (fail if h.certain else warn)(
            f"{kind}{where} limits outputs to {span} but {outside:.0%} of targets lie outside",
            detail=f"Targets range from {targets.low:.4g} to {targets.high:.4g}; the output activation can never "
                   f"reach {outside:.0%} of them, so their error has a floor and their gradient may vanish.",
            fix="Drop the final activation (a plain linear output), or rescale the target into the "
                "activation's range.", evidence=h.evidence)
    return h.ok(f"{kind}{where} output range {span} covers the targets [{targets.low:.3g}, {targets.high:.3g}]")


# (vocab Loss.outputs, Loss.activation) of a classification loss -> its verdict.
CLASSIFICATION_HEADS: dict[tuple[str, str], Callable[[_Head], Finding]] = {
    ("classes", "logits"): _logits_head,
    ("classes", "log_softmax"): _log_probabilities_head,
    ("one", "logits"): _binary_logit_head,
    ("one", "sigmoid"): _probability_head,
}


def _output_head_verdict(m: OutputHead) -> Finding:
    act = m.activation
    h = _Head(m, {"final_activation": act.kind, "found_by": act.how, "module": act.module, "loss": m.loss,
                  "n_outputs": m.n_outputs})
    spec = loss_info(m.loss)
    if spec is not None and spec.task == "regression":
        return _regression_head(h)
    verdict = CLASSIFICATION_HEADS.get((spec.outputs, spec.activation)) if spec is not None else None
    if verdict is not None:
        return verdict(h)
    return info(f"final activation {act.kind}{h.where}; custom loss {m.loss!r}",
                detail="mltriage cannot tell what a custom loss expects; make sure it matches the final activation.",
                evidence=h.evidence)


@check("architecture.output_layer", title="The final activation fits the loss", needs=("model",))
@single_threaded
def output_layer(ctx: RunContext):
    return _output_head_verdict(_measure_output_head(ctx))
