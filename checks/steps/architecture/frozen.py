"""architecture.frozen_layers: parameters with requires_grad=False that are still at their random
initialisation. A frozen block built from scratch never learns: its random features pass through training
unchanged (issue 14 §3: "a frozen block from scratch is a bug, a frozen pretrained backbone is not").

Measurement (`_measure_frozen`): the frozen parameters of the model build_model returns, grouped by the
module that owns them, and for each whether it is at random initialisation. That is read by building the
model a second time under another seed: a randomly initialised weight differs between the two builds,
one loaded from a file (a pretrained backbone) or set to a constant (a norm layer's ones and zeros) is the
same. When nothing at all differs between the builds, build_model seeds itself and the comparison cannot
tell. With `[model] checkpoint` the weights come from the checkpoint, so a frozen block is pretrained.
The verdict (`_frozen_verdict`) is a pure function of that measurement."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ...analyses.model_trace import require_torch_model, single_threaded
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, info, passed, warn
from ...wording import cut_list

# The second build's seed is the run's seed plus this offset: any other seed draws different random weights.
RESEED_OFFSET = 104729


@dataclass
class FrozenParameters:
    total: int                 # parameters (elements) in the model
    frozen: int                # of which requires_grad=False
    modules: list[dict]        # per module and reason: module, type, reason, parameters, random_init
    checkpoint: str | None     # [model] checkpoint, when configured
    seeds_differ: bool         # whether two builds under different seeds differ anywhere (False: cannot tell)
    note: str | None = None    # what could not be measured (a configure_optimizers that needs a Trainer)


@contextlib.contextmanager
def _run_seed(ctx: RunContext, seed: int):
    """ctx.build_model() seeded with `seed` instead of the run's seed; the run's seed and the global random
    states are put back afterwards, so later checks draw exactly what they would have."""
    import random

    import numpy as np
    import torch

    saved_seed, saved_py, saved_np = ctx.seed, random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        ctx.seed = seed
        try:
            yield
        finally:
            ctx.seed = saved_seed
            random.setstate(saved_py)
            np.random.set_state(saved_np)


NOT_OPTIMIZED = "not in configure_optimizers()"
REQUIRES_GRAD_FALSE = "requires_grad=False"


def _lightning_unoptimized(ctx: RunContext, model) -> tuple[set[str], str | None]:
    """Names of trainable parameters a LightningModule's configure_optimizers() leaves out of its optimizer
    (they never change either), and a note when configure_optimizers could not be called without a Trainer."""
    if not ctx.config.lightning or not hasattr(model, "configure_optimizers"):
        return set(), None
    from ...analyses.modeling import lightning_optimizer
    from ...project.usercode import UserCodeError

    try:
        optimizer = lightning_optimizer(ctx, model)
    except UserCodeError as exc:
        return set(), f"configure_optimizers() could not be called outside a Trainer ({str(exc)[:120]})"
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return {n for n, p in model.named_parameters() if p.requires_grad and id(p) not in optimized}, None


def _frozen_modules(model, unoptimized: set[str]) -> dict[tuple[str, str], list[str]]:
    """(module name, why it never changes) -> names of its own parameters that training leaves unchanged:
    requires_grad=False, or left out of the optimizer."""
    owned: dict[tuple[str, str], list[str]] = {}
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{module_name}.{pname}" if module_name else pname
            reason = REQUIRES_GRAD_FALSE if not p.requires_grad else NOT_OPTIMIZED if full in unoptimized else None
            if reason is not None:
                owned.setdefault((module_name, reason), []).append(full)
    return owned


def _differs(a, b) -> bool:
    return a.shape != b.shape or not bool((a.detach().cpu() == b.detach().cpu()).all())


def _measure_frozen(ctx: RunContext) -> FrozenParameters:
    require_torch_model(ctx, "estimators have no frozen parameters")
    model = ctx.first_model()  # built (and cached) under the run's seed before the second build
    params = dict(model.named_parameters())
    unoptimized, note = _lightning_unoptimized(ctx, model)
    owned = _frozen_modules(model, unoptimized)
    checkpoint = ctx.config.checkpoint.name if ctx.config.checkpoint is not None else None
    types = {name: type(m).__name__ for name, m in model.named_modules()}
    rows = [{"module": name or type(model).__name__, "type": types[name], "reason": reason,
             "parameters": sum(params[n].numel() for n in names), "random_init": None}
            for (name, reason), names in owned.items()]
    seeds_differ = True
    if owned and checkpoint is None:
        with _run_seed(ctx, ctx.seed + RESEED_OFFSET):
            other = dict(ctx.build_model().named_parameters())
        seeds_differ = any(_differs(p, other[n]) for n, p in params.items() if n in other)
        for row, names in zip(rows, owned.values()):
            row["random_init"] = (any(_differs(params[n], other[n]) for n in names if n in other)
                                  if seeds_differ else None)
    return FrozenParameters(total=sum(p.numel() for p in params.values()), frozen=sum(r["parameters"] for r in rows),
                            modules=rows, checkpoint=checkpoint, seeds_differ=seeds_differ, note=note)


def _names(modules: list[dict]) -> str:
    return cut_list(list(dict.fromkeys(m["module"] for m in modules)), 4)


def _why_unchanged(modules: list[dict]) -> str:
    """How these parameters escape training, in words: requires_grad=False and/or left out of the optimizer."""
    reasons = dict.fromkeys(m.get("reason", REQUIRES_GRAD_FALSE) for m in modules)
    words = {REQUIRES_GRAD_FALSE: "have requires_grad=False",
             NOT_OPTIMIZED: "are left out of the optimizer configure_optimizers() returns"}
    return " or ".join(words[r] for r in reasons)


def _frozen_verdict(m: FrozenParameters) -> Finding:
    share = m.frozen / max(m.total, 1)
    evidence = {"parameters": m.total, "frozen_parameters": m.frozen, "frozen_share": share,
                "modules": m.modules, "checkpoint": m.checkpoint, "builds_differ_by_seed": m.seeds_differ,
                "note": m.note}
    if not m.modules:
        return passed(f"all {m.total:,} parameters are trainable (none has requires_grad=False)",
                      detail=m.note or "", evidence=evidence)
    if m.checkpoint is not None:
        return info(f"{share:.0%} of the parameters are frozen ({_names(m.modules)}), loaded from the checkpoint "
                    f"{m.checkpoint}: a frozen pretrained block is fine",
                    detail="Freezing pretrained weights (fine-tuning only the head) is standard transfer learning.",
                    evidence=evidence)
    random = [r for r in m.modules if r["random_init"]]
    fix = ("Unfreeze them (requires_grad=True, and give them to the optimizer) or load their pretrained weights "
           "before freezing; if the weights come from a file, give it as [model] checkpoint.")
    if random:
        n_random = sum(r["parameters"] for r in random)
        return warn(f"a frozen block at random init learns nothing: {_names(random)} ({n_random / max(m.total, 1):.0%} "
                    f"of the parameters)",
                    detail=f"{n_random:,} parameters {_why_unchanged(random)}, and they differ between two builds "
                           "under different seeds, so they are random weights, and no [model] checkpoint replaces "
                           "them. Training never changes them: the block stays a fixed random projection that the "
                           "layers after it must work around.", fix=fix, evidence=evidence)
    if not m.seeds_differ:
        return warn(f"{share:.0%} of the parameters are frozen ({_names(m.modules)}) and mltriage cannot tell "
                    f"whether they are still at random init",
                    detail=f"They {_why_unchanged(m.modules)}. build_model returns the same weights under every seed "
                           "(it seeds itself), so random initialisation cannot be told from loaded weights. Frozen "
                           "random weights never learn.", fix=fix, evidence=evidence)
    return info(f"{share:.0%} of the parameters are frozen ({_names(m.modules)}), not at their random "
                f"initialisation: a pretrained or fixed block, which is fine",
                detail=f"They {_why_unchanged(m.modules)}, and their values are the same in builds under different "
                       "seeds: build_model loads them (or sets them to constants, as a norm layer's ones and "
                       "zeros).", evidence=evidence)


@check("architecture.frozen_layers", title="Frozen parameters still at random initialisation", needs=("model",))
@single_threaded
def frozen_layers(ctx: RunContext):
    return _frozen_verdict(_measure_frozen(ctx))
