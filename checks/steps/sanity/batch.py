"""sanity.input_batch, and the fixed batches the sanity checks run through a tensor project's model.

The batch helpers give every model-touching sanity check the same (xb, yb) for a table (the float matrix
and its targets, exactly as before) and for a tensor project (Dataset items collated with the project's
collate, DESIGN §3b). sanity.input_batch shows a (seeded) training batch exactly as the model receives
it: per input tensor its shape, dtype and range, the target, and a few examples (images as PNGs, token
ids decoded when the project gives [model] decode).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

from ...analyses.model_trace import sample_rows, single_threaded
from ...analyses.modeling import batch_of, target_tensor
from ...analyses.tensor_stats import (
    channel_layout_verdict,
    infer_pad_id,
    measure_channel_layout,
    sequence_length,
    token_ids_of,
)
from ...engine.context import RunContext
from ...engine.inputs import (
    TensorRows,
    batch_size_of,
    content_hash,
    input_tensors,
    replace_inputs,
)
from ...engine.registry import check
from ...findings import Finding, fail, passed, warn
from ...project.usercode import UserCodeError, call_user

# Float image inputs above this value are raw 0-255 pixels: normalised images stay within a few units
# (ImageNet mean/std normalisation tops out at (1 - 0.406) / 0.225 = 2.64; ToTensor gives [0, 1]), and
# 20 leaves room for unusual normalisations while still catching 0-255 data.
RAW_PIXEL_MAX = 20.0
EXAMPLES = 8            # examples shown from the batch
EXAMPLE_IDS = 64        # token ids kept per example
PNG_SIDE = 64           # the largest side of an example image (the app draws them in a few cells)
PAD_PROBE_ITEMS = 64    # items read to find a short and a long sequence when inferring the padding id


# ---- the fixed batches of the sanity checks -------------------------------------------------------

def tensor_sample(ctx: RunContext, n: int, split: str = "train", salt: int = 0) -> TensorRows:
    """Up to n labelled items of a tensor split, the same seeded draw sample_rows makes for tables.
    Sequence targets have no per-item label to filter on: every item counts."""
    import numpy as np

    rows = ctx.tensor_rows(split)
    if ctx.target_kind != "sequence":
        y = ctx.y(split)
        keep = (y >= 0) if ctx.is_classification else np.isfinite(y)
        rows = rows[np.flatnonzero(keep)]
    if len(rows) <= n:
        return rows
    rng = np.random.default_rng(ctx.seed + 7919 * salt)
    return rows[np.sort(rng.choice(len(rows), size=n, replace=False))]


def fixed_rows(ctx: RunContext, n: int, split: str = "train", salt: int = 0):
    """(X, y) of a fixed sample: a float matrix and its targets for tables; TensorRows and None
    (the targets come with the collated batch) for tensor projects."""
    if ctx.is_tensor:
        return tensor_sample(ctx, n, split, salt), None
    return sample_rows(ctx, n, split, salt)


def fixed_batch(ctx: RunContext, n: int, split: str = "train", salt: int = 0):
    """(xb, yb) on ctx.device for a fixed sample: tables as torch.as_tensor(X) and the contract's
    targets; tensor projects collated with the project's collate, targets cast for the loss."""
    import torch

    X, y = fixed_rows(ctx, n, split, salt)
    if ctx.is_tensor:
        return batch_of(ctx, X)
    return torch.as_tensor(X, device=ctx.device), target_tensor(ctx, y).to(ctx.device)


def distinct_rows(rows: TensorRows, n: int) -> TensorRows:
    """The first n rows whose inputs differ (by content hash): identical inputs with different labels
    cannot be memorised."""
    import numpy as np

    seen, keep = set(), []
    for pos, i in enumerate(rows.indices):
        x, _ = rows.split.item(int(i))
        digest = content_hash(x)
        if digest not in seen:
            seen.add(digest)
            keep.append(pos)
        if len(keep) == n:
            break
    return rows[np.asarray(keep, dtype=np.int64)]


def batch_rows(xb, yb) -> int:
    """The number of examples in a batch: its targets' first dimension (an EmbeddingBag batch's first
    input is every token of the batch concatenated), else its first input's."""
    if yb is not None and getattr(yb, "dim", lambda: 0)() >= 1:
        return int(yb.shape[0])
    return batch_size_of(xb)


def input_shapes(xb) -> dict[str, list[int]]:
    """Each input tensor's shape, by name."""
    return {name: list(t.shape) for name, t in input_tensors(xb)}


# ---- blanked inputs (sanity.input_independent) ----------------------------------------------------

def padding_id(ctx: RunContext) -> int:
    """The id the project's collate pads sequences with (a short and a long train item collated), else 0:
    the id a model sees at padded positions, so a model fed only it sees "no text"."""
    def compute() -> int:
        split = ctx.tensor_split("train")
        if split.collate is None:
            return 0
        items = [split.item(i) for i in range(min(PAD_PROBE_ITEMS, len(split)))]
        lengths = [sequence_length(x) for x, _ in items]
        short, long = items[lengths.index(min(lengths))], items[lengths.index(max(lengths))]
        if min(lengths) == max(lengths):
            return 0
        try:
            found = infer_pad_id(split.collate_items, tuple(short), tuple(long))
        except (UserCodeError, ValueError, TypeError, IndexError):
            found = None
        return 0 if found is None else found

    return ctx.shared(("sanity.padding_id",), compute)


def blank_batch(xb, pad: int):
    """The batch with its information removed: integer token ids replaced by the padding id (only the ids
    tensor: attention masks, offsets and lengths stay valid); without ids, every float tensor zeroed."""
    import torch

    ids = token_ids_of(xb)
    if ids is not None:
        return replace_inputs(xb, lambda t: torch.full_like(t, pad) if t is ids else t)
    return replace_inputs(xb, lambda t: torch.zeros_like(t) if t.is_floating_point() else t)


class BlankedRows(TensorRows):
    """TensorRows whose batches come out blanked (blank_batch), for training a model on no information."""

    def __init__(self, split, indices, pad: int):
        super().__init__(split, indices)
        self.pad = pad

    def __getitem__(self, key) -> BlankedRows:
        return BlankedRows(self.split, self.indices[key], self.pad)

    def batch(self, positions, device: str = "cpu"):
        xb, yb = super().batch(positions, device)
        return blank_batch(xb, self.pad), yb

    def batches(self, size: int, device: str = "cpu"):
        for start in range(0, len(self), size):
            xb, yb = self.split.batch(self.indices[start:start + size], device)
            yield blank_batch(xb, self.pad), yb


# ---- sanity.input_batch ----------------------------------------------------------------------------

@dataclass
class InputBatch:
    """A seeded training batch as the model receives it, in the evidence contract's terms."""

    modality: str
    batch_size: int
    inputs: list[dict]                          # name, shape, dtype, min, max, mean, std
    target: dict                                # shape, dtype
    examples: list[dict]
    nonfinite: dict[str, int] = field(default_factory=dict)   # input name -> NaN/inf values
    image_max: dict[str, float] = field(default_factory=dict)  # float image input name -> its max
    scrambled: list[str] = field(default_factory=list)          # image inputs laid out NHWC-as-NCHW
    layout: dict[str, dict] = field(default_factory=dict)       # the layout measures, for the detail

    def evidence(self) -> dict:
        return {"modality": self.modality, "batch_size": self.batch_size, "inputs": self.inputs,
                "target": self.target, "examples": self.examples}


def _dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _finite_or_none(value: float):
    return float(value) if math.isfinite(value) else None


def tensor_summary(name: str, t) -> dict:
    """Shape, dtype and the range of the finite values of one input tensor (JSON-safe)."""
    import torch

    values = t.detach().cpu()
    values = values.to_dense() if values.is_sparse else values
    values = values.double().reshape(-1)
    values = values[torch.isfinite(values)]
    stats = {"min": None, "max": None, "mean": None, "std": None}
    if values.numel():
        stats = {"min": _finite_or_none(values.min()), "max": _finite_or_none(values.max()),
                 "mean": _finite_or_none(values.mean()),
                 "std": _finite_or_none(values.std(unbiased=False))}
    return {"name": name, "shape": list(t.shape), "dtype": _dtype_name(t), **stats}


def is_image_batch(t) -> bool:
    """(N, C, H, W) with C in 1, 3, 4 and images of at least 4x4."""
    return t.dim() == 4 and t.shape[1] in (1, 3, 4) and min(t.shape[2:]) >= 4


def image_png(image) -> str:
    """A (C, H, W) image as a base64 PNG of at most PNG_SIDE pixels a side, scaled to 0-255 by its own
    min/max (so normalised and raw images both show)."""
    import numpy as np
    from PIL import Image

    a = image.detach().cpu().double().numpy()
    a = np.where(np.isfinite(a), a, 0.0)
    lo, hi = float(a.min()), float(a.max())
    scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    pixels = np.ascontiguousarray(np.moveaxis(scaled.round().astype(np.uint8), 0, -1))
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[-1]]
    picture = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
    if max(picture.size) > PNG_SIDE:
        picture.thumbnail((PNG_SIDE, PNG_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _example_ids(xb, split, item_index: int, position: int) -> list[int] | None:
    """The token ids of one example: its row of a padded (N, T) batch, else its own item's ids."""
    ids = token_ids_of(xb)
    if ids is None:
        return None
    n = input_tensors(xb)[0][1].shape[0] if input_tensors(xb)[0][1].dim() else 1
    if ids.dim() == 2 and ids.shape[0] == n:
        return [int(v) for v in ids[position].tolist()]
    own = token_ids_of(split.item(item_index)[0])
    return None if own is None else [int(v) for v in own.reshape(-1).tolist()]


def _label_text(ctx: RunContext, y) -> str | None:
    from ...engine.inputs import label_value

    value = label_value(y)
    if value is None:
        return None
    names = ctx.tensor_split("train").class_names
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return str(names[value])
    return str(value)


def _decoded(ctx: RunContext, ids: list[int] | None) -> str | None:
    """decode(ids) -> str from the project ([model] decode), or None (no decode, or it failed)."""
    decode = ctx.function("decode")
    if decode is None or ids is None:
        return None
    try:
        text = call_user(ctx.config, "decode", decode, list(ids))
    except UserCodeError:
        return None
    return text if isinstance(text, str) else None


def _examples(ctx: RunContext, split, indices, xb, yb) -> list[dict]:
    first = input_tensors(xb)[0][1] if input_tensors(xb) else None
    examples = []
    for pos, index in enumerate(indices[:EXAMPLES]):
        _, y = split.item(int(index))
        png = image_png(first[pos]) if first is not None and is_image_batch(first) else None
        ids = None if png is not None else _example_ids(xb, split, int(index), pos)
        examples.append({"index": int(index), "label": _label_text(ctx, y), "prediction": None, "png": png,
                         "text": _decoded(ctx, ids), "ids": None if ids is None else ids[:EXAMPLE_IDS]})
    return examples


def _measure_input_batch(ctx: RunContext) -> InputBatch:
    import numpy as np
    import torch

    # a training batch as a shuffled DataLoader deals it (seeded): train transforms applied, classes mixed
    split = ctx.tensor_split("train")
    indices = np.random.default_rng(ctx.seed).permutation(len(split))[:min(ctx.config.batch_size, len(split))]
    ctx.seed_everything()  # the train transforms' random draws too: the same batch on every run
    xb, yb = split.batch(indices)
    yb = yb if isinstance(yb, torch.Tensor) else torch.as_tensor(yb)
    tensors = input_tensors(xb)
    m = InputBatch(modality=ctx.modality, batch_size=len(indices),
                   inputs=[tensor_summary(name, t) for name, t in tensors],
                   target={"shape": list(yb.shape), "dtype": _dtype_name(yb)},
                   examples=_examples(ctx, split, indices, xb, yb))
    for name, t in tensors:
        if t.is_floating_point():
            bad = int(t.numel() - torch.isfinite(t).sum())
            if bad:
                m.nonfinite[name] = bad
            if is_image_batch(t):
                summary = tensor_summary(name, t)
                if summary["max"] is not None:
                    m.image_max[name] = summary["max"]
        if is_image_batch(t):
            layout = measure_channel_layout(t)
            if layout is not None:
                m.layout[name] = {"lag_1": layout.lag1, "lag_c": layout.lag_c, "peak": layout.peak}
                if channel_layout_verdict(layout):
                    m.scrambled.append(name)
    return m


def _range_text(summary: dict) -> str:
    lo, hi = summary["min"], summary["max"]
    if lo is None:
        return "no finite values"
    return f"in [{lo:.3g}, {hi:.3g}]"


def batch_description(m: InputBatch) -> str:
    """"x float32 (64, 1, 8, 8) in [0, 1]; target int64 (64,)"."""
    parts = [f"{s['name']} {s['dtype']} {tuple(s['shape'])} {_range_text(s)}" for s in m.inputs]
    return "; ".join(parts) + f"; target {m.target['dtype']} {tuple(m.target['shape'])}"


def _input_batch_verdict(m: InputBatch) -> Finding:
    evidence = m.evidence()
    described = batch_description(m)
    if m.nonfinite:
        listing = ", ".join(f"{k}: {v:,}" for k, v in m.nonfinite.items())
        return fail(f"the batch the model receives holds missing (not-a-number) or infinite values ({listing})",
                    detail=f"A training batch of {m.batch_size}: {described}. A single not-a-number input makes "
                           f"the outputs, the loss and every gradient not-a-number too.",
                    fix="Find where the Dataset or its transforms produce them (a division by a zero std, a log "
                        "of 0, a corrupt file) and clean or drop those items.", evidence=evidence)
    if m.scrambled:
        name = m.scrambled[0]
        lay = m.layout[name]
        return fail(f"the channels of {name} look interleaved: channels-last data reshaped, not permuted",
                    detail=f"Along the width, values {lay['lag_c']:.2f}-correlated at a lag of the channel count "
                           f"vs {lay['lag_1']:.2f} at lag 1 (peak {lay['peak']:.2f}): each row mixes the colour "
                           f"channels of neighbouring pixels, as (N, H, W, C) data reshaped to (N, C, H, W) "
                           f"does. Batch: {described}.",
                    fix="Use x.permute(0, 3, 1, 2) (or np.transpose(x, (2, 0, 1)) per image), not "
                        "reshape/view, to move channels first.", evidence=evidence)
    raw = {k: v for k, v in m.image_max.items() if v > RAW_PIXEL_MAX}
    if raw:
        name, top = next(iter(raw.items()))
        return warn(f"image input {name} reaches {top:.4g}: raw 0-255 pixels?",
                    detail=f"Float images above {RAW_PIXEL_MAX:g} are not normalised (ToTensor gives [0, 1], "
                           f"mean/std normalisation a few units around 0). Batch: {described}. "
                           f"data.feature_scale measures the scale over the whole split.",
                    fix="Divide by 255 (transforms.ToTensor) and normalise with the training mean/std.",
                    evidence=evidence)
    return passed(f"batch of {m.batch_size}: {described}", evidence=evidence)


@check("sanity.input_batch", title="The batch the model receives: shapes, dtypes, ranges", needs=("tensor",),
       tensor=True)
@single_threaded
def input_batch(ctx: RunContext):
    return _input_batch_verdict(_measure_input_batch(ctx))


__all__: list[Any] = ["BlankedRows", "batch_rows", "blank_batch", "distinct_rows", "fixed_batch", "fixed_rows", "input_batch",
                      "input_shapes", "padding_id", "tensor_sample"]
