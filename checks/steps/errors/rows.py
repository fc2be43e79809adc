"""Per-row helpers the error checks share: the error of each row and how a row is shown in evidence."""

from __future__ import annotations

import math
from typing import Any

from ...engine.context import RunContext

# Rows listed in a finding's evidence (most confident mistakes, flipped rows, largest residuals).
SHOWN_EXAMPLES = 10
# Columns of a row shown with an example, and the length a text value is cut to.
SHOWN_COLUMNS = 8
SHOWN_TEXT_LENGTH = 100


def row_errors(ctx: RunContext, so):
    """(keep mask over the split's rows, per-row error on kept rows): 0/1 for classification,
    absolute error for regression."""
    import numpy as np

    keep = so.labelled
    if ctx.is_classification:
        err = (so.pred[keep] != so.y_true[keep]).astype(np.float64)
    else:
        err = np.abs(so.pred[keep] - so.y_true[keep].astype(np.float64))
    return keep, err


def _display(value: Any, limit: int = SHOWN_TEXT_LENGTH) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit - 1] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row_values(ctx: RunContext, frame, row: int, limit_cols: int = SHOWN_COLUMNS) -> dict:
    """The first feature values of one row, JSON-ready, for an example in evidence."""
    cols = ctx.feature_columns[:limit_cols]
    return {str(c): _display(frame[c].iloc[row].item() if hasattr(frame[c].iloc[row], "item") else frame[c].iloc[row])
            for c in cols}


def label_name(ctx: RunContext, code: int) -> str:
    return str(ctx.classes[code]) if 0 <= code < len(ctx.classes) else "?"


# A text cell in a row table is cut to this length (as the data step cuts it): a review whole, bounded for 50k rows.
ROW_TEXT = 500


def _cell(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, str) and len(value) > ROW_TEXT:
        return value[:ROW_TEXT - 1] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def id_column_of(ctx: RunContext, frame) -> str | None:
    """The `[data] ignore` column that identifies rows (unique values; a name ending in id first), or None."""
    columns = getattr(frame, "columns", ())
    candidates = [c for c in (ctx.config.ignore or []) if c in columns]
    candidates.sort(key=lambda c: not str(c).lower().endswith("id"))
    return next((c for c in candidates if frame[c].is_unique), None)


def row_key_columns(ctx: RunContext, frame, positions, split: str | None = None) -> dict:
    """The columns that let a reader find and read rows of a row table (issue 18): the split, the id
    column, and the text columns (else the first feature columns), for `positions` of `frame`."""
    import numpy as np

    pos = np.asarray(positions, dtype=np.int64)
    out: dict = {}
    if split is not None:
        out["split"] = [split] * len(pos)
    if ctx.is_tensor or not hasattr(frame, "columns"):
        return out
    ident = id_column_of(ctx, frame)
    if ident is not None:
        out[str(ident)] = [_cell(v) for v in frame[ident].iloc[pos].tolist()]
    shown = [c for c in ctx.text_columns if c in frame.columns] or \
        [c for c in ctx.feature_columns if c in frame.columns][:SHOWN_COLUMNS]
    for c in shown:
        if str(c) not in out:
            out[str(c)] = [_cell(v) for v in frame[c].iloc[pos].tolist()]
    return out
