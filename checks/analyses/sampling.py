"""Seeded samples of rows and small helpers for the statistics the data checks estimate from them."""

from __future__ import annotations

from ..engine.context import RunContext


def sample_positions(positions, cap: int, seed: int):
    """`positions` itself when it has at most `cap` entries, else a sorted seeded random subset."""
    import numpy as np

    positions = np.asarray(positions)
    if len(positions) <= cap:
        return positions
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(positions, size=cap, replace=False))


def labelled_positions(ctx: RunContext, split: str):
    """Row positions of a split whose label is usable (inside `classes`, or a finite number)."""
    import numpy as np

    y = ctx.y(split)
    return np.flatnonzero(y >= 0) if ctx.is_classification else np.flatnonzero(np.isfinite(y))


# --- shared helpers ------------------------------------------------------------------------------
# Per-column statistics (scale, outliers, drift, text hygiene) are estimated from at most this many
# rows per split: quantiles and shares from 100k rows are accurate to well under 1%.
STATS_SAMPLE = 100_000


# Models fitted by the data checks (domain classifier, out-of-fold label model) see at most this many rows.
MODEL_SAMPLE = 10_000


def sample_note(used: int, total: int) -> str:
    return f" (estimated on a seeded random sample of {used:,} of {total:,} rows)" if used < total else ""


def sample_range(n: int, cap: int, seed: int):
    """Positions 0..n-1, or a sorted seeded sample of `cap` of them."""
    import numpy as np

    return sample_positions(np.arange(n), cap, seed)


def numeric_values(series):
    """A column as float64 with NaN for missing and non-finite values."""
    import numpy as np
    import pandas as pd

    v = np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan))  # writable copy
    v[~np.isfinite(v)] = np.nan
    return v


def one_thread():
    """Run scikit-learn fits single-threaded: once torch is loaded, two OpenMP runtimes share the two
    cores and small fits run 3-10x slower than on one thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)
