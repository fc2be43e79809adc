"""The DuckDB engine: the exact counts (counts.py) in SQL over CSV/TSV, Parquet files and Parquet folders,
embedded in this process, out of core under a memory limit (DuckDB spills hash tables and sorts to a
temp directory), so the data may be far larger than memory (DESIGN §3, data larger than memory).

Rows are compared by a 64-bit hash of their feature values (NULL and NaN hash alike): with n rows the
chance that two different rows collide anywhere is about n^2 / 2^65 (the birthday bound), 3e-6 at 10M
rows, well under any count a check reports; hashing keeps the group-by tables 8 bytes a row wide.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ...project.config import ProjectError
from .counts import (
    CountRequest,
    ExactCounts,
    label_key,
    same_neighbours,
    top_share_or_none,
)

# DuckDB's default is 80% of RAM; a data check shares the machine with the user's editor, training and
# the rest of mltriage, so it takes a quarter of physical memory at most, and never less than 64 MB.
DEFAULT_MEMORY_FRACTION = 0.25
MIN_MEMORY_MB = 64
# Two threads: the worker runs beside the TUI and the model checks; DuckDB's aggregates scale near
# linearly, so this is the knob users turn (MLTRIAGE_DUCKDB_THREADS).
DEFAULT_THREADS = 2
# approx_top_k keeps this many candidates; any value of share > 1/k is among them (space-saving bound).
TOP_K = 3
LABEL_BATCH_ROWS = 1 << 20


def memory_limit_mb() -> int:
    raw = os.environ.get("MLTRIAGE_DUCKDB_MEMORY_MB")
    if raw is not None:
        try:
            value = int(float(raw))
        except ValueError:
            value = 0
        if value < MIN_MEMORY_MB:
            raise ProjectError(f"MLTRIAGE_DUCKDB_MEMORY_MB={raw!r}: give a number of megabytes, at least "
                               f"{MIN_MEMORY_MB} (e.g. 2048), or unset it.")
        return value
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        total = 4096
    return max(MIN_MEMORY_MB, int(total * DEFAULT_MEMORY_FRACTION))


def _threads() -> int:
    raw = os.environ.get("MLTRIAGE_DUCKDB_THREADS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_THREADS


def connect(spill_dir: Path | None = None):
    """An in-process DuckDB connection with mltriage's limits; spills under `spill_dir` (or system temp)."""
    import duckdb

    con = duckdb.connect(database=":memory:")
    spill = Path(tempfile.gettempdir()) / "mltriage-duckdb"
    if spill_dir is not None:
        try:
            Path(spill_dir).mkdir(parents=True, exist_ok=True)
            spill = Path(spill_dir)
        except OSError:  # a read-only project: spill to the system temp directory instead
            pass
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit_mb()}MB'")
    con.execute(f"SET threads = {_threads()}")
    con.execute(f"SET temp_directory = {_literal(str(spill))}")
    con.execute("SET preserve_insertion_order = false")  # aggregates only; the label scan turns it on
    con.execute("SET enable_progress_bar = false")  # it prints to stdout: the JSON report and the TUI own it
    return con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a dataset folder in path order (the order its rows are read in)."""
    from ..readers import parquet_folder_files

    return parquet_folder_files(folder)


def source_sql(path: Path) -> str:
    """A FROM-clause table function reading one split."""
    path = Path(path)
    if path.is_dir():
        files = parquet_files(path)
        if not files:
            raise ProjectError(f"{path}: the folder holds no .parquet files. Point [data] at a Parquet file, a "
                               f"folder of Parquet files, or a CSV.")
        hive = any("=" in part for f in files for part in f.relative_to(path).parts[:-1])
        listing = "[" + ", ".join(_literal(str(f)) for f in files) + "]"
        return f"read_parquet({listing}, hive_partitioning = {str(hive).lower()}, union_by_name = true)"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return f"read_parquet({_literal(str(path))})"
    if suffix in (".csv", ".tsv"):
        delim = "\\t" if suffix == ".tsv" else ","
        return f"read_csv({_literal(str(path))}, delim = '{delim}', header = true)"
    raise ProjectError(f"{path}: the DuckDB engine reads CSV/TSV and Parquet (files or folders), not '{suffix}'. "
                       f"Set [data] engine = \"pandas\", or convert the file to Parquet.")


class _Split:
    """One split as DuckDB sees it: its FROM clause and a NULL-for-NaN expression per column."""

    def __init__(self, con, name: str, path: Path, columns: list[str]):
        self.name, self.path = name, Path(path)
        self.source = source_sql(path)
        try:
            schema = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {self.source}").fetchall()}
        except Exception as exc:  # duckdb raises its own exception types; the message is what matters
            raise ProjectError(f"{path}: [data] {name} could not be read by DuckDB: {_first_line(exc)}") from None
        missing = [c for c in columns if c not in schema]
        if missing:
            raise ProjectError(f"{path}: [data] {name} has no column(s) {', '.join(map(repr, missing))} "
                               f"(columns: {', '.join(list(schema)[:20])}).")
        # pandas counts NaN as missing; so must SQL, where NaN is a value unlike NULL
        self.expr = {c: (f"(CASE WHEN isnan({quote(c)}) THEN NULL ELSE {quote(c)} END)"
                         if schema[c] in ("FLOAT", "DOUBLE", "REAL") else quote(c)) for c in columns}
        # hashed as DOUBLE: 1 in an integer column equals 1.0 in a float column of another split
        self.hashed = {c: f"CAST({e} AS DOUBLE)" if _is_number(schema[c]) else e for c, e in self.expr.items()}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _column_stats(con, split: _Split, features: list[str], target: str, top: bool) -> dict:
    """One scan: rows, missing per column, min/max per feature, and (train) top-value candidates."""
    parts = ["count(*)"]
    for c in features + [target]:
        parts.append(f"count_if({split.expr[c]} IS NULL)")
    for c in features:
        parts += [f"min({split.expr[c]})", f"max({split.expr[c]})"]
        if top:
            parts.append(f"approx_top_k({split.expr[c]}, {TOP_K})")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {split.source}").fetchone()
    n, cols = int(row[0]), features + [target]
    nulls = dict(zip(cols, (int(v) for v in row[1:1 + len(cols)])))
    rest, width = row[1 + len(cols):], 3 if top else 2
    per = {c: rest[i * width:(i + 1) * width] for i, c in enumerate(features)}
    return {"rows": n, "nulls": nulls, "min": {c: v[0] for c, v in per.items()},
            "max": {c: v[1] for c, v in per.items()},
            "candidates": {c: list(v[2] or []) for c, v in per.items()} if top else {}}


def _top_counts(con, split: _Split, candidates: dict[str, list]) -> dict[str, int]:
    """The exact number of rows holding each column's best candidate value (a second scan)."""
    parts, params, owners = [], [], []
    for c, values in candidates.items():
        for v in values:
            parts.append(f"count_if({split.expr[c]} = ?)")
            params.append(v)
            owners.append(c)
    best = {c: 0 for c in candidates}
    if not parts:
        return best
    row = con.execute(f"SELECT {', '.join(parts)} FROM {split.source}", params).fetchone()
    for c, n in zip(owners, row):
        best[c] = max(best[c], int(n))
    return best


_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")


def _is_number(sql_type: str) -> bool:
    return sql_type in _NUMBER_TYPES or sql_type.startswith("DECIMAL")


def _hash_sql(split: _Split, features: list[str]) -> str:
    return f"hash({', '.join(split.hashed[c] for c in features)})"


def _duplicate_stats(con, split: _Split, features: list[str], target: str, table: str) -> dict:
    """Materialise (row hash, label) as `table`, then count duplicates and conflicting labels on it."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {_hash_sql(split, features)} AS h, "
                f"CAST({split.expr[target]} AS VARCHAR) AS y FROM {split.source}")
    row = con.execute(
        f"SELECT count(*), coalesce(sum(n), 0), coalesce(sum(nl + hn), 0), count_if(nl > 1), "
        f"coalesce(sum(CASE WHEN nl > 1 THEN n ELSE 0 END), 0) FROM (SELECT h, count(*) AS n, "
        f"count(DISTINCT y) AS nl, max(CAST(y IS NULL AS INTEGER)) AS hn FROM {table} GROUP BY h)").fetchone()
    groups, rows, distinct_with_label, bad_groups, bad_rows = (int(v) for v in row)
    return {"distinct_inputs": groups, "duplicate_rows": rows - distinct_with_label,
            "conflict_groups": bad_groups, "conflict_rows": bad_rows}


def _overlap(con, split: _Split, features: list[str], train_table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM (SELECT {_hash_sql(split, features)} AS h FROM {split.source}) "
                           f"WHERE h IN (SELECT h FROM {train_table})").fetchone()[0])


def _label_counts(con, split: _Split, target: str) -> dict[str, int]:
    rows = con.execute(f"SELECT {split.expr[target]} AS y, count(*) FROM {split.source} "
                       f"WHERE {split.expr[target]} IS NOT NULL GROUP BY y").fetchall()
    out: dict[str, int] = {}
    for value, n in rows:
        out[label_key(value)] = out.get(label_key(value), 0) + int(n)
    return out


def _label_order(con, split: _Split, target: str) -> tuple[int, int]:
    """(equal neighbours, labelled rows) in file order: a streamed scan of the label column alone."""
    con.execute("SET preserve_insertion_order = true")  # the scan returns rows in file (and file-list) order
    try:
        reader = con.sql(f"SELECT {split.expr[target]} AS y FROM {split.source}").to_arrow_reader(LABEL_BATCH_ROWS)
        same, n, last = 0, 0, None
        for batch in reader:
            values = batch.column(0).drop_null()
            if len(values) == 0:
                continue
            same += same_neighbours(values)
            if last is not None and values[0].as_py() == last:
                same += 1
            last, n = values[-1].as_py(), n + len(values)
    finally:
        con.execute("SET preserve_insertion_order = false")
    return same, n


def count_duckdb(request: CountRequest, spill_dir: Path | None = None) -> ExactCounts:
    """The exact counts of `request` (paths only) computed by DuckDB."""
    start = time.process_time()
    features, target = list(request.features), request.target
    con = connect(spill_dir)
    try:
        splits = {s: _Split(con, s, p, features + [target]) for s, p in request.sources.items()}
        out = ExactCounts("duckdb")
        for name, split in splits.items():
            _fill_split(con, out, split, request, name == "train")
        for name, split in splits.items():
            if name != "train":
                out.overlap_rows[name] = _overlap(con, split, features, "keys_train")
        if request.classification:
            out.label_same_adjacent, out.label_rows_in_order = _label_order(con, splits["train"], target)
    except ProjectError:
        raise
    except Exception as exc:
        raise ProjectError(f"{request.sources.get('train')}: the DuckDB engine failed: {_first_line(exc)}. "
                           f"Set [data] engine = \"pandas\" to read a sample instead.") from None
    finally:
        con.close()
    out.seconds = time.process_time() - start
    return out


def _fill_split(con, out: ExactCounts, split: _Split, request: CountRequest, is_train: bool) -> None:
    features, target = list(request.features), request.target
    stats = _column_stats(con, split, features, target, top=is_train)
    n = stats["rows"]
    out.rows[split.name] = n
    out.missing[split.name] = {c: k for c, k in stats["nulls"].items() if k}
    out.constant[split.name] = [c for c in features if stats["nulls"][c] == n or
                                (stats["nulls"][c] == 0 and stats["min"][c] == stats["max"][c])]
    out.label_counts[split.name] = _label_counts(con, split, target) if request.classification else {}
    dup = _duplicate_stats(con, split, features, target, f"keys_{split.name}")
    if not request.classification:
        dup["conflict_groups"] = dup["conflict_rows"] = 0
    for key, value in dup.items():
        getattr(out, key)[split.name] = value
    if is_train:
        out.all_missing = [c for c in features if stats["nulls"][c] == n]
        tops = _top_counts(con, split, stats["candidates"])
        out.top_share = {c: top_share_or_none(max(tops[c], stats["nulls"][c]), n) for c in features}
