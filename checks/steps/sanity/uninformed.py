"""The uninformed model: what a model that knows nothing about the input scores under the configured
loss. sanity.loss_at_init compares a fresh model with it; sanity.overfit_small_batch sets its goal from it."""

from __future__ import annotations

from ...engine.context import RunContext
from ...findings import SkipCheck
from ...vocab import loss_info


def uninformed_prediction(ctx: RunContext, yt):
    """The output of a model that knows nothing about the input, in the form the loss expects:
    uniform logits / log-probabilities / probabilities, or the target mean (median for l1)."""
    import math

    import torch

    n = len(yt)
    builtin = loss_info(ctx.loss_name)
    if builtin is None:
        raise SkipCheck(f"custom loss {ctx.loss_name!r}: mltriage has no theoretical value for an uninformed model")
    if builtin.task == "regression":
        centre = yt.float().median() if builtin.init_theory == "mad" else yt.float().mean()
        return torch.full((n,), float(centre))
    shape = (n, ctx.n_outputs) if builtin.per_class_outputs else (n,)
    if builtin.activation == "log_softmax":
        return torch.full(shape, -math.log(ctx.n_outputs))
    if builtin.activation == "sigmoid":
        return torch.full(shape, 0.5)
    return torch.zeros(shape)  # raw logits: all zero is uniform


def theory_description(ctx: RunContext) -> str:
    """The uninformed loss in words, for titles: "ln 10 = 2.303 (uniform over 10 classes)"."""
    import math

    builtin = loss_info(ctx.loss_name)
    theory = builtin.init_theory if builtin is not None else "none"
    if theory == "ln_classes":
        return f"ln {ctx.n_outputs} = {math.log(ctx.n_outputs):.3f} (uniform over {ctx.n_outputs} classes)"
    if theory == "ln_2":
        return f"ln 2 = {math.log(2):.3f} (probability 0.5)"
    if theory == "variance":
        return "var(y), the loss of predicting the target mean"
    return f"the {ctx.loss_name} loss of predicting the target {'median' if theory == 'mad' else 'mean'}"
