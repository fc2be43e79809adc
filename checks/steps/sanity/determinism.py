"""sanity.eval_determinism: the project's predict gives the same output twice, and a row's score does not
depend on the other rows of its batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...analyses.model_trace import (
    fresh_model,
    require_torch_model,
    sample_rows,
    single_threaded,
)
from ...analyses.modeling import first_tensor
from ...engine.context import RunContext
from ...engine.inputs import replace_inputs, to_device
from ...engine.registry import check
from ...findings import Finding, fail, passed
from ...project.usercode import call_user
from .batch import fixed_rows, input_shapes
from .model import FORWARD_ROWS


# outputs that differ by more than this (max abs) between two calls are not the same
DETERMINISM_ATOL = 1e-5


# ---- eval_determinism --------------------------------------------------------------------------

@dataclass
class Determinism:
    """The project's predict on one batch twice (other seeds in between), and on its first half alone."""

    rows: int                  # rows in the batch
    first: Any                 # numpy float64 outputs
    second: Any
    alone: Any                 # the first rows // 2 rows predicted on their own (None: not comparable)
    model_training: bool       # the model's mode after predict() returned (it starts in train mode)


def _measure_determinism(ctx: RunContext) -> Determinism:
    import numpy as np
    import torch

    predict = ctx.function("predict")
    if ctx.is_tensor:  # the same validation batch twice, as the project's evaluation sees it
        X, _ = fixed_rows(ctx, FORWARD_ROWS, split="valid", salt=3)
        # both batches from the same items, read once: a Dataset that augments at random would otherwise
        # give the half batch other inputs (data.augmentation reports that)
        items = [X.split.item(int(i)) for i in X.indices]
        xt = to_device(X.split.collate_items(items)[0], ctx.device)
        half_batch = to_device(X.split.collate_items(items[:len(X) // 2])[0], ctx.device)
        if not _same_padding(xt, half_batch):
            half_batch = None  # padded to another length: outputs differ by padding, not by batch statistics
    else:
        X, _ = sample_rows(ctx, FORWARD_ROWS, salt=3)
        xt = torch.as_tensor(X, device=ctx.device)
        half_batch = xt[:len(X) // 2]
    model = fresh_model(ctx)
    # After a training loop the model is in train mode: that is the state predict() meets in practice.
    model.train()

    def run(x):
        out = call_user(ctx.config, "predict", predict, model, replace_inputs(x, lambda t: t.clone()))
        tensor = first_tensor(out)
        if tensor is not None:
            out = tensor.detach().float().cpu().numpy()
        return np.asarray(out, dtype=np.float64)

    torch.manual_seed(ctx.seed + 11)
    first = run(xt)
    torch.manual_seed(ctx.seed + 12)
    second = run(xt)
    alone = run(half_batch) if half_batch is not None else None
    return Determinism(rows=len(X), first=first, second=second, alone=alone, model_training=model.training)


def _same_padding(full, half) -> bool:
    """Whether two batches of the same items have the same shape beyond the batch dimension (a padding
    collate pads each batch to its own longest sequence)."""
    a, b = input_shapes(full), input_shapes(half)
    return all(len(a[k]) < 2 or a[k][1:] == b.get(k, [None])[1:] for k in a)


def _determinism_verdict(m: Determinism) -> Finding:
    import numpy as np

    first, second, alone, n = m.first, m.second, m.alone, m.rows
    half = n // 2
    evidence = {"rows": n, "model_training_after_predict": m.model_training}
    if first.shape != second.shape:
        return fail("predict returns differently shaped outputs for the same input",
                    detail=f"{first.shape} then {second.shape}.", fix="Make predict a pure function of X.",
                    evidence=evidence)
    diff = float(np.nanmax(np.abs(first - second))) if first.size else 0.0
    batch_diff = float(np.nanmax(np.abs(first[:half] - alone))) \
        if alone is not None and alone.shape == first[:half].shape and alone.size else 0.0
    evidence.update({"max_abs_diff_same_input": diff, "max_abs_diff_other_batch": batch_diff,
                     "tolerance": DETERMINISM_ATOL, "differing_rows": int(np.sum(np.any(
                         np.abs(first - second).reshape(len(first), -1) > DETERMINISM_ATOL, axis=1)))})
    cause = ("the model is still in train mode inside predict(), so dropout stays on" if m.model_training
             else "something random runs at prediction time (augmentation, sampling, dropout applied functionally)")
    if diff > DETERMINISM_ATOL:
        return fail(f"the same {n} rows give different predictions on two calls (max diff {diff:.3g})",
                    detail=f"{evidence['differing_rows']} of {n} rows changed between two predict() calls "
                           f"on identical input (tolerance {DETERMINISM_ATOL:g}). Most likely {cause}.",
                    fix="Call model.eval() (and use torch.no_grad()) at the start of predict(); keep random "
                        "augmentation out of inference.", evidence=evidence)
    if batch_diff > DETERMINISM_ATOL:
        return fail(f"a row's prediction depends on the other rows in the batch (max diff {batch_diff:.3g})",
                    detail=f"Predicting the first {half} rows alone gives different outputs than predicting them "
                           f"with {n - half} more rows. Batch normalisation left in train mode normalises "
                           f"with each batch's statistics.",
                    fix="Call model.eval() at the start of predict().", evidence=evidence)
    return passed(f"predict is deterministic on {n} rows and independent of the batch", evidence=evidence)


@check("sanity.eval_determinism", title="The project's predict gives the same output twice",
       needs=("model", "predict"))
@single_threaded
def eval_determinism(ctx: RunContext):
    require_torch_model(ctx, "predict(model, X) is exercised for PyTorch models only")
    return _determinism_verdict(_measure_determinism(ctx))
