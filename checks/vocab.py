"""The names the whole library shares (DESIGN §2): losses and their properties, metrics, statuses.

Every test of a loss or metric name goes through these tables, so adding a loss is one row here.
Standard library only: the CLI and the app import it at start-up.
"""

from __future__ import annotations

from typing import NamedTuple

# --- statuses (DESIGN §5) --------------------------------------------------------------------------
STATUSES = ("pass", "info", "warn", "fail", "error", "skipped")
# Severity order used for --fail-on and for sorting: higher is worse. "error" means the check itself
# broke, which is reported but not ranked above a real fail.
SEVERITY = {"skipped": 0, "pass": 1, "info": 2, "warn": 3, "error": 3, "fail": 4}

TASKS = ("classification", "regression")

# The seven steps, in the order a debugging session walks them (DESIGN §1); the registry re-exports them.
STEPS = ("problem", "sanity", "data", "architecture", "training", "metrics", "errors")


# --- losses (DESIGN §3 `[model] loss`) -------------------------------------------------------------
class Loss(NamedTuple):  # a NamedTuple, not a dataclass: `mltriage --help` imports this module
    """What a built-in loss expects and what an uninformed model scores under it."""

    name: str
    task: str            # "classification" | "regression"
    targets: str         # "index": int64 class indices (N,); "float": float32 (N,)
    outputs: str         # "classes": one output per class; "one": a single output
    activation: str      # what the model's last layer must produce: "logits" | "log_softmax" | "sigmoid" | "none"
    init_theory: str     # the loss of an uninformed model: "ln_classes" | "ln_2" | "variance" | "mad" | "none"

    @property
    def takes_class_indices(self) -> bool:
        return self.targets == "index"

    @property
    def per_class_outputs(self) -> bool:
        return self.outputs == "classes"

    @property
    def is_binary(self) -> bool:
        return self.task == "classification" and self.outputs == "one"


LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("cross_entropy", "classification", "index", "classes", "logits", "ln_classes"),
    Loss("nll", "classification", "index", "classes", "log_softmax", "ln_classes"),
    Loss("bce", "classification", "float", "one", "sigmoid", "ln_2"),
    Loss("bce_with_logits", "classification", "float", "one", "logits", "ln_2"),
    Loss("mse", "regression", "float", "one", "none", "variance"),
    Loss("l1", "regression", "float", "one", "none", "mad"),
    Loss("huber", "regression", "float", "one", "none", "none"),
)}
LOSS_NAMES = tuple(LOSSES)
CLASSIFICATION_LOSSES = tuple(n for n, loss in LOSSES.items() if loss.task == "classification")
REGRESSION_LOSSES = tuple(n for n, loss in LOSSES.items() if loss.task == "regression")
INDEX_TARGET_LOSSES = tuple(n for n, loss in LOSSES.items() if loss.takes_class_indices)
BINARY_LOSSES = tuple(n for n, loss in LOSSES.items() if loss.is_binary)
# Losses that take raw scores (no final activation): a softmax/sigmoid before them is a bug.
LOGIT_LOSSES = tuple(n for n, loss in LOSSES.items() if loss.activation == "logits")
OPTIMIZERS = ("adam", "adamw", "sgd")


def loss_info(name: str) -> Loss | None:
    """The built-in loss of that name, or None for a project's own loss function."""
    return LOSSES.get(name)


def default_loss(task: str) -> str:
    return "cross_entropy" if task == "classification" else "mse"


# --- metrics (DESIGN §3 `[project] metric`) --------------------------------------------------------
HIGHER_IS_BETTER = {
    "accuracy": True, "balanced_accuracy": True, "f1_macro": True, "f1_weighted": True, "roc_auc": True,
    "r2": True, "log_loss": False, "rmse": False, "mae": False, "error_rate": False,
}
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss",
           "rmse", "mae", "r2")
CLASSIFICATION_METRICS = METRICS[:6]
REGRESSION_METRICS = METRICS[6:]
NEEDS_PROBABILITIES = ("roc_auc", "log_loss")
# Metrics a [[slices]] test may use (error_rate: 1 - accuracy, handy for max = ...).
SLICE_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "error_rate",
                 "rmse", "mae", "r2")
# Scores on a 0..1 scale (R² at most 1): gaps and drops on them are read as absolute differences.
BOUNDED_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc", "r2")


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER[metric]


def default_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "rmse"
