"""Row tables cost little to build and to carry from the worker (issue 17), with the same values as the
cell-by-cell conversion: numpy columns turn into Python values in one call, and the parent takes the
worker's already-plain records as they are."""

from __future__ import annotations

import json
from itertools import islice

import numpy as np
import pandas as pd

from mltriage.checks import findings as F
from mltriage.checks.engine import messages
from mltriage.checks.findings import Finding, RowTable


def _columns(n=2_000):
    rng = np.random.default_rng(0)
    score = rng.random(n)
    score[::7], score[::11], score[::13] = np.nan, np.inf, -np.inf
    return {"position": np.arange(n), "split": ["train"] * n,
            "text": np.array(["café ☕", None] * (n // 2), dtype=object), "score": score,
            "score32": score.astype(np.float32), "is_x": rng.random(n) > 0.5, "u8": np.arange(n).astype(np.uint8),
            "series": pd.Series(score), "when": np.array(["2020-01-01T10:00"] * n, dtype="datetime64[ns]"),
            "masked": np.ma.masked_array(np.arange(n), mask=np.arange(n) % 5 == 0)}


def _cell_by_cell(columns):
    kept = [list(islice(v, F.ROWS_KEPT)) for v in columns.values()]
    return [F.jsonable(list(r)) for r in zip(*kept)]


def test_from_columns_gives_the_values_of_the_cell_by_cell_conversion():
    columns = _columns()
    table = RowTable.from_columns(columns)
    expected = _cell_by_cell(columns)
    assert json.dumps(table.records) == json.dumps(expected)
    assert all(type(v) in (int, float, str, bool, type(None)) for r in table.records for v in r)
    assert table.records[7][3] is None and table.records[11][3] is None          # nan, inf -> None


def test_from_columns_keeps_only_the_kept_prefix_of_numpy_columns(monkeypatch):
    monkeypatch.setattr(F, "ROWS_KEPT", 10)
    table = RowTable.from_columns({"position": np.arange(1_000), "v": np.ones(1_000)})
    assert len(table.records) == 10 and table.total == 1_000


def test_the_parent_takes_the_workers_plain_records_as_they_are():
    finding = Finding(status="warn", title="t", check="data.x", rows=RowTable.from_columns(_columns(), total=5_000))
    line = messages.encode(messages.FindingMessage(finding=finding, budget_used=0.0))
    got = messages.decode(line).finding.rows
    assert got.records == finding.rows.records and got.columns == finding.rows.columns
    assert got.total == 5_000 and got.key == "position"
    # the same table through the converting path is equal: nothing was left unconverted
    assert RowTable.from_dict(json.loads(line)["finding"]["row_table"]) == got


def test_a_row_table_read_from_elsewhere_is_still_converted():
    data = {"columns": ["position", "score"], "records": [[0, float("nan")], [1, float("inf")], [2, 0.5]],
            "total": 3, "key": "nope"}
    table = Finding.from_dict({"status": "warn", "row_table": data}).rows
    assert table.records == [[0, None], [1, None], [2, 0.5]]
    assert table.key == "position"                                      # an unknown key falls back to a column
