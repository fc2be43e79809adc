"""The check registry and the catalog of check ids (DESIGN §6, contract).

A check is a plain function `fn(ctx) -> Finding`, registered with its id, step, title and the
inputs it needs. Step modules register their checks when imported; `all_checks()` imports them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from ..vocab import STEPS  # noqa: F401  (defined with the other shared names; re-exported here)

STEP_TITLES = {
    "problem": "Problem definition",
    "sanity": "Sanity checks",
    "data": "Data",
    "architecture": "Architecture",
    "training": "Training",
    "metrics": "Metrics",
    "errors": "Error analysis",
}

# The contract: these ids, in this order. The runner runs checks in this order.
CATALOG: dict[str, tuple[str, ...]] = {
    "problem": ("task_type", "class_balance", "baseline", "metric_choice"),
    "sanity": ("data_loads", "model_builds", "input_batch", "forward_pass", "loss_at_init", "loss_shapes",
               "overfit_small_batch", "gradient_flow", "input_independent", "train_step",
               "eval_determinism"),
    "data": ("missing_values", "duplicates", "split_overlap", "constant_features", "id_columns",
             "target_leakage", "feature_scale", "outliers", "label_values", "label_issues", "drift",
             "text_quality", "label_order", "feature_relevance", "token_ids", "image_quality",
             "augmentation"),
    "architecture": ("summary", "output_layer", "output_size", "capacity", "dead_units",
                     "saturation", "init_scale", "dropout", "frozen_layers"),
    "training": ("lr_range", "divergence", "exploding_gradients", "vanishing_gradients",
                 "oscillation", "plateau", "update_ratio", "overfitting", "underfitting",
                 "early_stopping"),
    "metrics": ("summary", "vs_baseline", "generalization_gap", "per_class", "confusion",
                "calibration", "split_consistency"),
    "errors": ("confident_mistakes", "weak_slices", "slice_tests", "regressions", "similar_unlabeled"),
}
CATALOG_IDS: tuple[str, ...] = tuple(f"{step}.{name}" for step in STEPS for name in CATALOG[step])

# Modules that hold each step's checks, imported lazily by all_checks().
STEP_MODULES = {step: f"mltriage.checks.steps.{step}" for step in STEPS}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    step: str
    title: str
    fn: Callable
    needs: tuple[str, ...] = field(default_factory=tuple)
    # Model-touching checks share the training budget; `timeout` is the per-check hard cap in seconds
    # (None: the runner's default).
    timeout: float | None = None
    # Speed hints, never needed for correctness. `prefetch(ctx)` computes shared analyses the check will
    # read (through ctx.shared) and may run on a background thread while earlier checks run: only pure
    # numpy/pyarrow work that releases the GIL belongs there. `imports` names heavy libraries the check
    # imports, so that the engine can load them while the prefetch thread computes.
    prefetch: Callable | None = None
    imports: tuple[str, ...] = field(default_factory=tuple)
    # Whether the check runs on tensor projects (DESIGN §3b: a Dataset, no table). Data checks read table
    # columns unless they say otherwise; the model, metrics and error checks work on any project.
    tensor: bool = True


_REGISTRY: dict[str, CheckSpec] = {}


def check(id: str, step: str | None = None, title: str = "", needs: tuple[str, ...] | list[str] = (),
          timeout: float | None = None, prefetch: Callable | None = None, imports: tuple[str, ...] = (),
          tensor: bool | None = None):
    """Register a check function under a catalog id."""
    step = step or id.split(".", 1)[0]
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r} for check {id!r}")
    if not id.startswith(step + "."):
        raise ValueError(f"check id {id!r} must start with its step {step!r}")

    def register(fn: Callable) -> Callable:
        _REGISTRY[id] = CheckSpec(id=id, step=step, title=title or id, fn=fn, needs=tuple(needs),
                                  timeout=timeout, prefetch=prefetch, imports=tuple(imports),
                                  tensor=(step != "data") if tensor is None else tensor)
        return fn

    return register


_TENSOR_VARIANTS: dict[str, Callable] = {}


def tensor_variant(id: str):
    """Register how a check runs on a tensor project (DESIGN §3b) when its table implementation does not
    apply: the same id, the same verdict contract, measured through the Dataset (e.g. data.duplicates by
    content hash). The engine runs it instead of the table function when ctx.is_tensor."""
    def register(fn: Callable) -> Callable:
        _TENSOR_VARIANTS[id] = fn
        return fn

    return register


def tensor_implementation(spec: CheckSpec) -> Callable | None:
    """The function that runs `spec` on a tensor project, or None when the check does not apply there."""
    if spec.id in _TENSOR_VARIANTS:
        return _TENSOR_VARIANTS[spec.id]
    return spec.fn if spec.tensor else None


def all_checks() -> dict[str, CheckSpec]:
    """Every registered check, importing the step modules that exist and any modules named in the
    MLTRIAGE_PLUGINS environment variable (comma-separated), which may register extra checks."""
    import os

    plugins = [m.strip() for m in os.environ.get("MLTRIAGE_PLUGINS", "").split(",") if m.strip()]
    for module in list(STEP_MODULES.values()) + plugins:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside an existing module
                raise
    return dict(_REGISTRY)


def checks_for(steps: list[str] | tuple[str, ...] | None = None) -> list[CheckSpec]:
    """Registered checks of the given steps, in catalog order, then any extra ids alphabetically."""
    wanted = set(steps or STEPS)
    return in_catalog_order([s for s in all_checks().values() if s.step in wanted], id_of=lambda s: s.id)


def catalog_position(check_id: str, step: str | None = None) -> tuple:
    """Sort key of a check id: its step, then its place in the catalog, then extra ids alphabetically."""
    step = step or check_id.split(".", 1)[0]
    order = _CATALOG_ORDER.get(check_id, len(_CATALOG_ORDER))
    return (STEPS.index(step) if step in STEPS else len(STEPS), order, check_id)


def in_catalog_order(items, id_of=lambda f: f.check):
    """Findings (or anything with a check id) in catalog order: the order every view lists them in."""
    return sorted(items, key=lambda item: catalog_position(id_of(item)))


_CATALOG_ORDER = {cid: i for i, cid in enumerate(CATALOG_IDS)}
