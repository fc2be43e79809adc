"""The exact counts every engine returns (pandas, DuckDB, Dask): one shape, so that the counting checks
read the same numbers whichever engine computed them (DESIGN §3, data larger than memory).

`CountRequest` says what to count: the splits (a file, a Parquet folder, or a DataFrame for pandas), the
feature columns and the target. `ExactCounts` holds the result. `count_frames` fills it from DataFrames:
the reference the DuckDB and Dask engines are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A value covering more than half of a column is found exactly by every engine: the Misra-Gries /
# space-saving guarantee (Metwally, Agrawal & El Abbadi 2005: with k counters every value of frequency
# > n/k is kept; DuckDB's approx_top_k) and, for Dask, the fact that a global majority is the majority
# of at least one partition. Below half no engine reports a share (None): the checks only ask about
# shares near 1 (quasi-constant at 0.999).
TOP_SHARE_EXACT_ABOVE = 0.5


@dataclass
class CountRequest:
    """What to count. `sources`: split -> a Path (file or Parquet folder) or a pandas DataFrame."""

    sources: dict[str, Any]
    features: list[str]
    target: str
    classification: bool = True


@dataclass
class ExactCounts:
    """Exact counts over every row of every split (no sample)."""

    engine: str                                              # "pandas" | "duckdb" | "dask"
    rows: dict[str, int] = field(default_factory=dict)       # split -> rows
    missing: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> column -> missing (only > 0)
    duplicate_rows: dict[str, int] = field(default_factory=dict)      # rows repeating an earlier row (features + label)
    distinct_inputs: dict[str, int] = field(default_factory=dict)     # distinct feature rows
    conflict_groups: dict[str, int] = field(default_factory=dict)     # feature rows seen with >= 2 labels
    conflict_rows: dict[str, int] = field(default_factory=dict)       # rows in those groups
    overlap_rows: dict[str, int] = field(default_factory=dict)        # valid/test rows whose features occur in train
    constant: dict[str, list[str]] = field(default_factory=dict)      # split -> columns holding one value (missing counts as one)
    all_missing: list[str] = field(default_factory=list)              # train columns with no value at all
    top_share: dict[str, float | None] = field(default_factory=dict)  # train column -> share of its top value (> 0.5), else None
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> str(label) -> rows (missing left out)
    label_same_adjacent: int = 0                             # train, file order, missing labels dropped: equal neighbours
    label_rows_in_order: int = 0                             # ... the labelled rows that sequence holds
    seconds: float = 0.0

    @property
    def duplicate_fraction(self) -> dict[str, float]:
        return {s: self.duplicate_rows[s] / n if n else 0.0 for s, n in self.rows.items()}

    def comparable(self) -> dict:
        """Everything but the engine name and timing: equal across engines on the same data."""
        from dataclasses import asdict

        out = asdict(self)
        out.pop("engine")
        out.pop("seconds")
        out["top_share"] = {c: None if v is None else round(v, 9) for c, v in out["top_share"].items()}
        out["constant"] = {s: sorted(v) for s, v in out["constant"].items()}
        out["all_missing"] = sorted(out["all_missing"])
        return out


def label_key(value) -> str:
    """A label as the key of label_counts, identical across engines and equal to RunContext.label_key
    (a float 3.0 is the class 3): str() of the Python value."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def top_share_or_none(top_count: int, rows: int) -> float | None:
    share = top_count / rows if rows else 0.0
    return share if share > TOP_SHARE_EXACT_ABOVE else None


def run_statistics(codes_same: int, n: int, counts: list[int]) -> dict:
    """Runs of equal labels along the file (a k-category Wald-Wolfowitz runs test, as data.label_order
    reads it): kappa = (s - s0) / (1 - s0), s the share of neighbours with the same label, s0 its
    expectation under a random order; z its significance. None for s0 when there is one class."""
    import math

    if n < 2:
        return {"rows": n, "same": codes_same, "s0": None}
    s0 = float(sum(c * (c - 1) for c in counts) / (n * (n - 1)))
    out = {"rows": n, "same": codes_same, "s0": s0, "runs": int(n - codes_same),
           "expected_runs": float(n - (n - 1) * s0), "classes": len([c for c in counts if c > 0])}
    if s0 >= 1:
        return out
    s = codes_same / (n - 1)
    out["kappa"] = (s - s0) / (1 - s0)
    out["z"] = (codes_same - (n - 1) * s0) / math.sqrt(max((n - 1) * s0 * (1 - s0), 1e-12))
    return out


# --- the pandas engine ---------------------------------------------------------------------------
def _missing_mask(series):
    return series.isna().to_numpy()


def _frame_missing(df, columns: list[str]) -> dict[str, int]:
    counts = {c: int(_missing_mask(df[c]).sum()) for c in columns}
    return {c: n for c, n in counts.items() if n}


def hashable_columns(df, columns: list[str]):
    """The columns as hashed: numbers as float64, so that 1 in an integer column of one split equals
    1.0 in a float column of another (a column with a missing value turns float on export)."""
    import numpy as np
    import pandas as pd

    out = {}
    for c in columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            col = pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan), index=df.index)
        out[c] = col
    return pd.DataFrame(out, index=df.index)


def row_hashes(df, columns: list[str]):
    """pandas' 64-bit hash of each row's values (NaN and None hash alike, as DuckDB's hash of NULL)."""
    import pandas as pd

    return pd.util.hash_pandas_object(hashable_columns(df, columns), index=False).to_numpy()


def _frame_duplicates(df, features: list[str], target: str, classification: bool) -> dict[str, int]:
    import pandas as pd

    keys = pd.DataFrame({"h": row_hashes(df, features), "y": df[target].to_numpy()})
    labelled = keys.dropna(subset=["y"])
    with_label = keys.assign(y=keys["y"].astype("string").fillna("\x00<missing>")).drop_duplicates()
    out = {"duplicate_rows": int(len(keys) - len(with_label)), "distinct_inputs": int(keys["h"].nunique()),
           "conflict_groups": 0, "conflict_rows": 0}
    if classification and len(labelled):
        per_group = labelled.assign(y=labelled["y"].astype("string")).groupby("h")["y"].nunique()
        bad = per_group.index[per_group.to_numpy() > 1]
        out["conflict_groups"] = len(bad)
        out["conflict_rows"] = int(keys["h"].isin(bad).sum())
    return out


def _frame_constant(df, columns: list[str]) -> list[str]:
    return [c for c in columns if df[c].nunique(dropna=False) <= 1]


def _frame_top_share(series) -> float | None:
    counts = series.astype("string").value_counts(dropna=False) if series.dtype == object else \
        series.value_counts(dropna=False)
    return top_share_or_none(int(counts.iloc[0]) if len(counts) else 0, len(series))


def _frame_label_counts(series) -> dict[str, int]:
    counts = series.dropna().value_counts(sort=False)
    out: dict[str, int] = {}
    for value, n in counts.items():
        out[label_key(value)] = out.get(label_key(value), 0) + int(n)
    return out


def _frame_same_adjacent(series) -> tuple[int, int]:
    """(neighbours with equal labels, labelled rows) along the file, missing labels dropped."""
    values = series.dropna().to_numpy()
    return same_neighbours(values), len(values)


def same_neighbours(values) -> int:
    """How many neighbours in a 1-D array (numpy or Arrow) hold equal values."""
    import numpy as np

    if len(values) < 2:
        return 0
    if not isinstance(values, np.ndarray):
        import pyarrow.compute as pc

        return int(pc.sum(pc.equal(values[1:], values[:-1])).as_py() or 0)
    return int(np.sum(values[1:] == values[:-1]))


def count_frames(request: CountRequest) -> ExactCounts:
    """The exact counts of in-memory DataFrames (the pandas engine; the reference for the others)."""
    import time

    import pandas as pd

    start = time.process_time()
    frames = {s: src if isinstance(src, pd.DataFrame) else _read_whole(src) for s, src in request.sources.items()}
    features, target = list(request.features), request.target
    out = ExactCounts("pandas")
    for split, df in frames.items():
        out.rows[split] = len(df)
        out.missing[split] = _frame_missing(df, features + [target])
        dup = _frame_duplicates(df, features, target, request.classification)
        for key, value in dup.items():
            getattr(out, key)[split] = value
        out.constant[split] = _frame_constant(df, features)
        out.label_counts[split] = _frame_label_counts(df[target]) if request.classification else {}
    train = frames["train"]
    train_keys = pd.Index(row_hashes(train, features))
    for split in [s for s in frames if s != "train"]:
        out.overlap_rows[split] = int(pd.Index(row_hashes(frames[split], features)).isin(train_keys).sum())
    out.all_missing = [c for c in features if train[c].isna().all()]
    out.top_share = {c: _frame_top_share(train[c]) for c in features}
    if request.classification:
        out.label_same_adjacent, out.label_rows_in_order = _frame_same_adjacent(train[target])
    out.seconds = time.process_time() - start
    return out


def _read_whole(path: Path):
    """A file or Parquet folder read whole (tests and benchmarks compare engines on small data)."""
    from ..readers import read_table

    return read_table(Path(path), "data")
