"""The project's torch model and the rows the model-touching checks feed it: a fresh seeded model, fixed
samples of a split, the torch-only guard and the one-thread decorator. What model_trace and the sanity and
architecture steps share before any forward pass is traced (model_trace re-exports every name).
"""

from __future__ import annotations

from typing import Any

from ..engine.context import RunContext
from ..findings import SkipCheck
from .modeling import labelled_rows


def single_threaded(fn):
    """Run fn with torch limited to one CPU thread. The checks train tiny models on small batches, where
    intra-op threads buy nothing, and on a busy machine OpenMP's spinning threads make each step tens of
    times slower (measured: 100 Adam steps of a 30-32-2 MLP, 1.45 s with 2 threads vs 0.08 s with 1 on a
    loaded 2-core box) -- enough to push training past its time caps."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


def require_torch_model(ctx: RunContext, why: str) -> None:
    kind = ctx.model_kind
    if kind == "torch":
        return
    if kind == "sklearn":
        name = type(ctx.first_model()).__name__
        raise SkipCheck(f"scikit-learn estimator ({name}): {why}")
    raise SkipCheck("build_model did not return a torch.nn.Module (see sanity.model_builds)")


def sample_rows(ctx: RunContext, n: int, split: str = "train", salt: int = 0):
    """Up to n labelled rows of a split, a fixed random sample (sorted back into file order)."""
    import numpy as np

    X, y = labelled_rows(ctx, split)
    if len(X) <= n:
        return X, y
    rng = np.random.default_rng(ctx.seed + 7919 * salt)
    idx = np.sort(rng.choice(len(X), size=n, replace=False))
    return X[idx], y[idx]


def sample_inputs(ctx: RunContext, n: int, split: str = "train", salt: int = 0):
    """Up to n rows of a split to feed the model: sample_rows' rows when targets are per example; for a
    tensor project with sequence targets (no per-example label to filter on) the same kind of fixed random
    sample of the split's items, as TensorRows."""
    import numpy as np

    if not (ctx.is_tensor and ctx.target_kind == "sequence"):
        return sample_rows(ctx, n, split, salt)[0]
    rows = ctx.tensor_rows(split)
    if len(rows) <= n:
        return rows
    rng = np.random.default_rng(ctx.seed + 7919 * salt)
    return rows[np.sort(rng.choice(len(rows), size=n, replace=False))]


def fresh_model(ctx: RunContext):
    model = ctx.build_model()
    return model.to(ctx.device)


def parameter_layers(model) -> list[tuple[str, Any]]:
    return [(name, m) for name, m in model.named_modules()
            if any(True for _ in m.parameters(recurse=False))]
