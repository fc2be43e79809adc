"""Issue 17: the counted (instead of looped) parts of the table checks and row tables give exactly the
values of their plain definitions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from mltriage.checks.steps.data import tables
from mltriage.checks.steps.data._common import _cells, row_cell


def test_missing_column_lists_spell_each_row():
    rng = np.random.default_rng(0)
    miss = rng.random((500, 5)) < 0.3
    names = ["a", "b", "c", "d", "e"]
    want = [", ".join(n for n, m in zip(names, row) if m) for row in miss]
    assert tables._missing_column_lists(miss, names) == want
    assert tables._missing_column_lists(miss[:0], names) == []


def test_cells_fast_paths_equal_row_cell():
    columns = [np.array([True, False]), np.array([3, -1], dtype=np.int64), np.array([2, 7], dtype=np.uint8),
               np.array([1.5, np.nan, np.inf]), np.array(["x" * 900, None], dtype=object), [np.float32(2.5), "y"]]
    for column in columns:
        values = column.tolist() if hasattr(column, "tolist") else column
        want = [row_cell(v) for v in values]
        got = _cells(column, len(values))
        assert [type(v) for v in got] == [type(v) for v in want]
        assert [v if v == v else "nan" for v in got] == [v if v == v else "nan" for v in want]


def _best_group_by_masks(train, miss, pos, column, categorical):
    """tables._best_group's definition: each value's missing share from boolean masks."""
    best = None
    for g in categorical:
        if g == column:
            continue
        keys = train[g].iloc[pos].astype("string").fillna("<missing>")
        counts = keys.value_counts()
        if len(counts) > tables.MISSING_GROUP_MAX_LEVELS:
            continue
        for value, n in counts.items():
            if n < tables.MISSING_GROUP_MIN_ROWS or n == len(keys):
                continue
            inside = (keys == value).to_numpy()
            there, elsewhere = miss[inside].mean(), miss[~inside].mean()
            if there >= 0.5 and there >= tables.MISSING_GROUP_RATIO * max(elsewhere, 1e-9) and \
                    (best is None or there - elsewhere > best["missing_there"] - best["missing_elsewhere"]):
                best = {"column": g, "value": str(value), "missing_there": round(float(there), 3),
                        "missing_elsewhere": round(float(elsewhere), 3), "rows": int(n)}
    return best


def test_best_group_counts_equal_mask_means():
    rng = np.random.default_rng(3)
    n = 3000
    site = rng.choice(["north", "south", "east", None], n)
    kind = rng.choice(["a", "b"], n)
    x = rng.normal(size=n)
    x[(site == "east") & (rng.random(n) < 0.9)] = np.nan      # concentrated where site == east
    x[rng.random(n) < 0.02] = np.nan
    train = pd.DataFrame({"site": site, "kind": kind, "x": x})
    ctx = SimpleNamespace(train=train, categorical_columns=["site", "kind"])
    pos = np.arange(0, n, 2)
    miss = train["x"].iloc[pos].isna().to_numpy()
    levels = tables._group_levels(ctx, pos)
    got = tables._best_group(levels, miss, "x")
    assert got is not None and got["value"] == "east"
    assert got == _best_group_by_masks(train, miss, pos, "x", ["site", "kind"])
    # the levels are read, not recomputed: the same levels serve another missing column, and a column is
    # never its own group
    assert tables._best_group(levels, miss, "site") == _best_group_by_masks(train, miss, pos, "site", ["kind"])


def test_missing_column_lists_of_many_columns():
    rng = np.random.default_rng(1)
    names = [f"c{i}" for i in range(70)]          # beyond one integer's bits: the row-wise path
    miss = rng.random((200, 70)) < 0.05
    want = [", ".join(n for n, m in zip(names, row) if m) for row in miss]
    assert tables._missing_column_lists(miss, names) == want
    assert tables._missing_column_lists(miss[:, :62], names[:62]) == [
        ", ".join(n for n, m in zip(names[:62], row) if m) for row in miss[:, :62]]
