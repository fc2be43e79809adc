"""Findings and plot specs: the data every check returns (DESIGN §2, §5).

A Finding is plain data. It never knows how it will be shown: the app draws its plot specs with
plotext, reports render them as text. Everything here round-trips through JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .vocab import SEVERITY, STATUSES  # noqa: F401  (re-exported: tui/ and tests read them here)

PLOT_KINDS = ("line", "scatter", "bar", "histogram", "heatmap")


def jsonable(value: Any) -> Any:
    """Turn numpy/pandas scalars, arrays and non-finite floats into plain JSON values."""
    kind = type(value)
    # plain values first, by exact type: row tables pass every one of up to 50,000 x 10 cells through here
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    # numpy / pandas objects, without importing them here.
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if hasattr(value, "item"):
        return jsonable(value.item())
    return str(value)


@dataclass
class Series:
    """One named series of a plot. For bar plots x holds the category labels."""

    name: str
    x: list[Any]
    y: list[float]

    def __post_init__(self) -> None:
        self.x = jsonable(list(self.x))
        self.y = jsonable(list(self.y))


@dataclass
class PlotSpec:
    """A plot as data: line/scatter/bar/histogram (pre-binned: x = bin centres, y = counts)/heatmap."""

    kind: str
    title: str
    series: list[Series] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    x_log: bool = False
    y_log: bool = False
    # heatmap only
    matrix: list[list[float]] | None = None
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    # Drawing hints (issue 18), optional: a run written without them reads the same.
    x_integer: bool = False       # x holds epochs/steps/counts: ticks on whole numbers only
    # series name -> "line" | "scatter": that series drawn so whatever the plot's kind (the y = x line of a
    # predicted-vs-actual scatter, the one marked threshold on an ROC curve)
    series_kind: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in PLOT_KINDS:
            raise ValueError(f"plot kind must be one of {PLOT_KINDS}, got {self.kind!r}")
        if self.matrix is not None:
            self.matrix = jsonable(self.matrix)
        self.x_integer = bool(self.x_integer)
        self.series_kind = {str(k): str(v) for k, v in (self.series_kind or {}).items()
                            if v in ("line", "scatter")}

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlotSpec":
        data = dict(data)
        data["series"] = [Series(**s) for s in data.get("series", [])]
        return cls(**data)

    @classmethod
    def histogram(cls, title: str, values: dict[str, Any], bins: int = 30, x_label: str = "",
                  y_label: str = "count") -> "PlotSpec":
        """Bin several named samples on shared edges so they can be overlaid."""
        import numpy as np

        arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
        arrays = {k: a[np.isfinite(a)] for k, a in arrays.items()}
        pooled = np.concatenate([a for a in arrays.values() if a.size]) if arrays else np.array([])
        if pooled.size == 0:
            return cls(kind="histogram", title=title, x_label=x_label, y_label=y_label)
        edges = np.histogram_bin_edges(pooled, bins=bins)
        centres = (edges[:-1] + edges[1:]) / 2
        series = [Series(name, centres, np.histogram(a, bins=edges)[0]) for name, a in arrays.items()]
        return cls(kind="histogram", title=title, series=series, x_label=x_label, y_label=y_label)


# A finding keeps at most this many of its rows (the most telling first, as the check sorts them); `total`
# still counts them all. Enough for any review by hand, and it keeps a run's messages and memory bounded
# on data with a million flagged rows.
ROWS_KEPT = 50_000


def _is_numpy_array(value: Any) -> bool:
    """A numpy ndarray (or subclass), told without importing numpy here."""
    return any(t.__module__ == "numpy" and t.__name__ == "ndarray" for t in type(value).__mro__)


@dataclass
class RowTable:
    """The rows behind a finding (issue 18): one record per flagged row, most telling first.

    Columns follow cleanlab's Datalab where it fits: `position` (0-based row of the split), `split`, the
    project's id column when it has one, the values that matter (the text, the key columns), then
    `is_<issue>` / `<issue>_score`. `key` names the column that identifies a row (what the app copies).
    """

    columns: list[str]
    records: list[list[Any]]
    total: int = -1                  # rows flagged in all; -1: len(records)
    key: str = "position"

    def __post_init__(self) -> None:
        self.columns = [str(c) for c in self.columns]
        self.records = [jsonable(list(r)) for r in self.records[:ROWS_KEPT]]
        if self.total < 0:
            self.total = len(self.records)
        if self.key not in self.columns and self.columns:
            self.key = self.columns[0]

    def __len__(self) -> int:
        return len(self.records)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "records": self.records, "total": self.total, "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any], plain: bool = False) -> "RowTable":
        """`plain`: the records are already plain JSON values, as our own worker encodes them (messages.py),
        so they are not converted again: 50,000 rows x 10 cells cost the parent ~0.1 s per table."""
        if not plain:
            return cls(columns=list(data.get("columns", [])), records=list(data.get("records", [])),
                       total=int(data.get("total", -1)), key=str(data.get("key", "position")))
        table = cls.__new__(cls)
        table.columns = [str(c) for c in data.get("columns", [])]
        table.records = [r if type(r) is list else list(r) for r in data.get("records", [])[:ROWS_KEPT]]
        table.total = int(data.get("total", -1))
        table.key = str(data.get("key", "position"))
        if table.total < 0:
            table.total = len(table.records)
        if table.key not in table.columns and table.columns:
            table.key = table.columns[0]
        return table

    @classmethod
    def from_frame(cls, frame: Any, total: int | None = None, key: str = "position") -> "RowTable":
        """From a pandas DataFrame whose columns are the table's (the index is dropped)."""
        head = frame.head(ROWS_KEPT)
        records = [list(r) for r in head.itertuples(index=False, name=None)]
        return cls(columns=list(frame.columns), records=records,
                   total=len(frame) if total is None else int(total), key=key)

    @classmethod
    def from_columns(cls, columns: dict[str, Any], total: int | None = None, key: str = "position") -> "RowTable":
        """From equal-length named columns (lists or arrays), e.g. {"position": pos, "text": texts}."""
        from itertools import islice

        values = [v if hasattr(v, "__len__") else list(v) for v in columns.values()]
        lengths = [len(v) for v in values]
        if len(set(lengths)) > 1:
            raise ValueError(f"row table columns differ in length: {lengths}")
        # only the kept prefix is read; __post_init__ turns it into plain values (once). A numpy column
        # becomes Python values in one C call (.tolist(), as jsonable would do cell by cell, 3-4x slower).
        kept = [v[:ROWS_KEPT].tolist() if _is_numpy_array(v) else list(islice(v, ROWS_KEPT)) for v in values]
        return cls(columns=list(columns), records=[list(r) for r in zip(*kept)],
                   total=(lengths[0] if lengths else 0) if total is None else int(total), key=key)


@dataclass
class Finding:
    """What one check found. `check` and `step` are filled in by the runner when left empty."""

    status: str
    title: str
    detail: str = ""
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    plots: list[PlotSpec] = field(default_factory=list)
    check: str = ""
    step: str = ""
    seconds: float = 0.0
    # DESIGN §5 extension: the id of the finding of the same run this one is a knock-on effect of
    # (set by engine/causes.assign_causes); None (and absent from the JSON) for a root or a lone finding.
    caused_by: str | None = None
    # Issue 18: the flagged rows (carried from the worker, never written into the run's JSON as such) and,
    # once `--export-rows` wrote them, the CSV's path: DESIGN §5's `"rows": "<file>"`.
    rows: RowTable | None = None
    rows_file: str | None = None
    rows_total: int = 0  # rows flagged when the run had them (kept in the JSON when the rows are not)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self, with_rows: bool = False) -> dict[str, Any]:
        """The finding as DESIGN §5 writes it; `with_rows` adds the row table under "row_table" (the
        worker-to-parent messages and the app's saved runs carry it; the JSON output names the file)."""
        out = {
            "check": self.check,
            "step": self.step,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
            "evidence": jsonable(self.evidence),
            "seconds": round(float(self.seconds), 3),
            "plots": [p.to_dict() for p in self.plots],
        }
        if self.caused_by:
            out["caused_by"] = self.caused_by
        if self.rows_file:
            out["rows"] = self.rows_file
        if self.rows is not None and len(self.rows):
            out["rows_total"] = self.rows.total  # a saved run keeps no rows, but says it had some
        if with_rows and self.rows is not None:
            out["row_table"] = self.rows.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], plain_rows: bool = False) -> "Finding":
        """`plain_rows`: the row table is our worker's own, already plain JSON (RowTable.from_dict)."""
        return cls(
            status=data["status"],
            title=data.get("title", ""),
            detail=data.get("detail", ""),
            fix=data.get("fix", ""),
            evidence=data.get("evidence", {}) or {},
            plots=[PlotSpec.from_dict(p) for p in data.get("plots", [])],
            check=data.get("check", ""),
            step=data.get("step", ""),
            seconds=float(data.get("seconds", 0.0) or 0.0),
            caused_by=data.get("caused_by") if isinstance(data.get("caused_by"), str) else None,
            rows=(RowTable.from_dict(data["row_table"], plain=plain_rows) if isinstance(data.get("row_table"), dict)
                  else None),
            rows_file=data.get("rows") if isinstance(data.get("rows"), str) else None,
            rows_total=data["rows_total"] if isinstance(data.get("rows_total"), int) else 0,
        )


def _make(status: str):
    def make(title: str, detail: str = "", fix: str = "", evidence: dict | None = None,
             plots: list[PlotSpec] | None = None, rows: RowTable | None = None) -> Finding:
        return Finding(status=status, title=title, detail=detail, fix=fix,
                       evidence=evidence or {}, plots=plots or [], rows=rows)

    make.__name__ = status
    make.__doc__ = f"A Finding with status {status!r}."
    return make


passed = _make("pass")
info = _make("info")
warn = _make("warn")
fail = _make("fail")
skipped = _make("skipped")
errored = _make("error")


class SkipCheck(Exception):
    """Raise from a check when its inputs are missing or it does not apply; the message says what to add."""


def summarize(findings: list[Finding]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for f in findings:
        counts[f.status] += 1
    return counts


def run_document(project: str, findings: list[Finding], version: str | None = None, **extra: Any) -> dict:
    """The run as DESIGN §5 writes it (mltriage, project, findings, summary), plus any extra keys
    (started, seconds, notes, ...): the one place that document is built."""
    if version is None:
        from mltriage import __version__ as version
    return {"mltriage": version, "project": project, "findings": [f.to_dict() for f in findings],
            "summary": summarize(findings), **extra}
