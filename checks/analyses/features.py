"""What a trained model "sees": the inputs of its last linear layer (penultimate features) for the items
of a tensor split. Label checks on images and token ids cross-validate a classifier on these instead of
on raw pixels or ids, which no linear model can read (DESIGN §3b)."""

from __future__ import annotations

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..engine.inputs import TensorRows

FEATURE_BATCH = 256


def last_linear(model):
    """The model's last nn.Linear by registration order (the usual classification head), or None."""
    import torch.nn as nn

    found = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            found = module
    return found


def penultimate_features(ctx: RunContext, model, rows: TensorRows):
    """(features (N, F) float32, description): the inputs of the last Linear layer in eval mode, else the
    model's outputs when it has no Linear layer."""
    import numpy as np
    import torch

    from .modeling import call_model

    head = last_linear(model)
    captured: list = []
    handle = None
    if head is not None:
        handle = head.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().float().cpu()))
    was = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for xb, _ in rows.batches(FEATURE_BATCH, ctx.device):
                outputs.append(call_model(model, xb).detach().float().cpu())
    finally:
        model.train(was)
        if handle is not None:
            handle.remove()
    source = captured if head is not None and len(captured) == len(outputs) else outputs
    feats = [t.reshape(t.shape[0], -1) for t in source]
    what = "the inputs of its last linear layer" if source is captured else "its outputs"
    return np.concatenate([f.numpy() for f in feats]).astype(np.float32), what


@analysis
def probe_features(ctx: RunContext):
    """Penultimate features of the probe's trained model on every train item, and what they are."""
    from .probe import probe

    run = probe(ctx)
    feats, what = penultimate_features(ctx, run.model, ctx.tensor_rows("train"))
    return feats, f"{what} in the project's model after mltriage's probe run ({run.describe()})"
