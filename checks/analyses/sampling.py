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


def _plain_number(dtype, kinds: str = "biuf") -> bool:
    """A numpy bool, integer or float dtype (of `kinds`): pd.to_numeric returns such a column as it is."""
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind in kinds


def plain_number_columns(df, columns) -> list:
    """The `columns` of df whose dtype is a numpy integer or float (not bool, not a pandas extension type),
    read from df.dtypes at once (df[c].dtype costs 50 us a column)."""
    dtypes = dict(zip(df.columns, df.dtypes))
    return [c for c in columns if _plain_number(dtypes[c], "iuf")]


def numeric_values(series):
    """A column as float64 with NaN for missing and non-finite values."""
    import numpy as np
    import pandas as pd

    if _plain_number(series.dtype):  # pd.to_numeric's checks cost 80 us a column (10,000 columns: 0.8 s)
        v = series.to_numpy(dtype=float, copy=True)
    else:
        v = np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan))  # a copy
    v[~np.isfinite(v)] = np.nan
    return v


def numeric_block(df, columns, positions=None):
    """numeric_values of each of `columns` of df (at row `positions`, or every row), as the columns of one
    float64 matrix: np.column_stack([numeric_values(df[c].iloc[positions]) for c in columns]), with the
    plain numpy columns taken in one df.iloc (a table of 10,000 columns: 0.1 s instead of 3 s)."""
    import numpy as np

    columns = list(columns)
    rows = len(df) if positions is None else len(positions)
    out = np.empty((rows, len(columns)))
    dtypes = dict(zip(df.columns, df.dtypes))
    plain = [j for j, c in enumerate(columns) if _plain_number(dtypes[c])]
    if plain:
        where = df.columns.get_indexer([columns[j] for j in plain])
        part = df.iloc[:, where] if positions is None else df.iloc[positions, where]
        out[:, plain] = part.to_numpy(dtype=float)
    for j in sorted(set(range(len(columns))) - set(plain)):
        column = df[columns[j]]
        out[:, j] = numeric_values(column if positions is None else column.iloc[positions])
    out[~np.isfinite(out)] = np.nan
    return out


def one_thread():
    """Run scikit-learn fits single-threaded: once torch is loaded, two OpenMP runtimes share the two
    cores and small fits run 3-10x slower than on one thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


# numeric_chunks hands out blocks of at most this many cells (32 MB of float64): a wide table's block of
# sampled rows stays small, whatever the number of columns.
BLOCK_CELLS = 4_000_000


def chunk_width(rows: int) -> int:
    """Columns per block of `rows` rows within BLOCK_CELLS (at least one)."""
    return max(1, BLOCK_CELLS // max(rows, 1))


def numeric_chunks(df, columns, positions=None, width: int | None = None):
    """(names, numeric_block of them) for consecutive runs of `width` of `columns` (default: chunk_width)."""
    columns = list(columns)
    width = width or chunk_width(len(df) if positions is None else len(positions))
    for start in range(0, len(columns), width):
        names = columns[start:start + width]
        yield names, numeric_block(df, names, positions)
