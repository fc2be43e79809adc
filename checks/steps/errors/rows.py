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
