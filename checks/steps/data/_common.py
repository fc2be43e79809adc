"""Small helpers the data checks share: example rows for evidence, and picking the worst of a list of
problems. Nothing here reads a run context's caches."""

from __future__ import annotations

from math import isfinite

from ...findings import Finding, fail, info, jsonable, warn

# A problem is (status, title, detail); the worst one titles the finding.
Problem = tuple[str, str, str]
_SEVERITY = {"fail": 0, "warn": 1, "info": 2}
_MAKE = {"fail": fail, "warn": warn, "info": info}


def records(df, positions, columns, limit: int = 5) -> list[dict]:
    """Up to `limit` rows of df (by position) as JSON-able dicts of the given columns, with their row."""
    cols = [c for c in columns if c in df.columns]
    out = []
    for p in list(positions)[:limit]:
        row = {"row": int(p)}
        row.update({c: short(df[c].iloc[int(p)]) for c in cols})
        out.append(row)
    return out


def short(value, width: int = 80):
    """A cell value fit for evidence: JSON-able, long strings cut to `width` characters."""
    from ...findings import jsonable

    value = jsonable(value)
    if isinstance(value, str) and len(value) > width:
        return value[:width - 1] + "…"
    return value


def worst_problem_finding(problems: list[Problem], fix: str, detail_suffix: str = "", **kw) -> Finding:
    """One finding for several problems: titled by the worst (+N more), detailing all of them."""
    problems = sorted(problems, key=lambda p: _SEVERITY[p[0]])  # stable: equal severities keep their order
    status, title, _ = problems[0]
    return _MAKE[status](title + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                         detail=" ".join(f"{t}: {d}" for _, t, d in problems) + detail_suffix, fix=fix, **kw)


# --- the rows behind a finding (issue 18, findings.RowTable) ----------------------------------------
# Texts in a row table are cut to this many characters: enough to read a review or a prompt whole in most
# data sets, while 50,000 rows of it stay a few tens of MB in the worker's messages.
ROW_TEXT = 500


def row_cell(value):
    """A cell of a row table: JSON-able; missing values empty; long strings cut to ROW_TEXT characters.
    Plain Python values take the short way (a row table has up to 50,000 rows of them)."""
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        return value if isfinite(value) else None   # as findings.jsonable: JSON has no NaN/inf
    if kind.__name__ in ("NAType", "NaTType"):   # pandas' missing markers
        return None
    if kind is not str:
        value = jsonable(value)
    if isinstance(value, str):
        return value if len(value) <= ROW_TEXT else value[:ROW_TEXT - 1] + "…"
    if isinstance(value, float):
        return float(value) if isfinite(value) else None
    return value


def _cells(column, n: int) -> list:
    """The first n cells of a column (a list or a numpy array), as row cells. Numpy booleans and integers
    become Python ones, which row_cell keeps as they are, so they skip it; floats only need NaN -> None."""
    import numpy as np

    kind = column.dtype.kind if isinstance(column, np.ndarray) else None
    values = column[:n].tolist() if hasattr(column, "tolist") else list(column)[:n]
    if kind in ("b", "i", "u"):
        return values
    if kind == "f":
        return [v if isfinite(v) else None for v in values]
    return [row_cell(v) for v in values]


def id_column(ctx, frame) -> str | None:
    """The `[data] ignore` column that identifies rows (unique values; a name ending in id first), or None:
    the same column errors.confident_mistakes names rows by."""
    columns = getattr(frame, "columns", ())
    candidates = [c for c in (getattr(ctx.config, "ignore", None) or []) if c in columns]
    candidates.sort(key=lambda c: not str(c).lower().endswith("id"))
    return next((c for c in candidates if frame[c].is_unique), None)


def split_rows(ctx, split: str, positions, values: list[str] = (), extra: dict | None = None) -> dict:
    """The leading columns of a row table for `positions` (0-based rows of `split`): position, split, the
    id column when the project has one, the named value columns (texts cut), then `extra` (equal-length
    columns: the issue's flags and scores). Columns as lists, ready for stacking with other splits."""
    import numpy as np

    from ...findings import ROWS_KEPT

    frame = ctx.splits[split]
    pos = np.asarray(positions, dtype=np.int64)[:ROWS_KEPT]
    out = {"position": pos.tolist(), "split": [split] * len(pos)}
    # A valid split held out of the train file shuffles both parts: name the row of the file as well, where
    # the context records it (RunContext.file_rows: split -> the file's row of each position).
    file_rows = (getattr(ctx, "file_rows", None) or {}).get(split)
    if file_rows is not None:
        out["file_row"] = _cells(np.asarray(file_rows)[pos], len(pos))
    ident = id_column(ctx, frame)
    if ident is not None:
        out[str(ident)] = _cells(frame[ident].iloc[pos].tolist(), len(pos))
    for c in values:
        if c in frame.columns and str(c) not in out:
            out[str(c)] = _cells(frame[c].iloc[pos].tolist(), len(pos))
    for name, column in (extra or {}).items():
        out[name] = _cells(column, len(pos))
    return out


def stack_rows(parts: list[dict], total: int | None = None, key: str = "position", plain: bool = False):
    """One RowTable from per-split column dicts (split_rows); a column missing from a part is left empty
    there. None when no part has a row (a finding without rows). `plain`: every cell already went through
    row_cell (split_rows' columns do), so the table takes them as they are instead of converting 50,000
    rows x 10 cells once more (RowTable.from_dict(plain=True), as for the worker's own messages)."""
    from ...findings import ROWS_KEPT, RowTable

    parts = [p for p in parts if p and len(p["position"])]
    if not parts:
        return None
    names: list[str] = []
    for p in parts:
        names += [c for c in p if c not in names]
    records, rows = [], 0
    for p in parts:
        n = len(p["position"])
        rows += n
        take = min(n, ROWS_KEPT - len(records))
        cols = [p.get(c, [None] * n) for c in names]
        records += [list(r) for r in zip(*(c[:take] for c in cols))]
    total = rows if total is None else int(total)
    if plain:
        return RowTable.from_dict({"columns": names, "records": records, "total": total, "key": key}, plain=True)
    return RowTable(columns=names, records=records, total=total, key=key)


def near_twins(found_list: list[dict], columns: list[str], n: int) -> dict:
    """Merge near-duplicate searches (neardup.near_rows results, one per text column) of one split's n
    rows: the first column whose search flags a row gives its twin, score and column."""
    import numpy as np

    out = {"near": np.zeros(n, bool), "conflict": np.zeros(n, bool), "score": np.full(n, np.nan),
           "partner": np.full(n, -1, np.int64), "column": np.full(n, None, dtype=object)}
    for found, column in zip(found_list, columns):
        new = found["near"] & ~out["near"]
        out["near"] |= new
        out["conflict"] |= new & found["conflict"]
        out["score"][new], out["partner"][new] = found["jaccard"][new], found["partner"][new]
        out["column"][new] = column
    return out


def near_partner_cells(ctx, other: str, near: dict, positions) -> dict:
    """The near twin of each row at `positions` (a row of split `other`): its position, label and text."""
    import numpy as np

    frame = ctx.splits[other]
    partner, column = near["partner"][positions], near["column"][positions]
    found = partner >= 0
    target = ctx.target
    label = np.full(len(partner), None, dtype=object)
    if target in frame.columns:
        label[found] = frame[target].to_numpy(dtype=object)[partner[found]]
    text = np.full(len(partner), None, dtype=object)
    for c in set(column[found].tolist()):
        rows = found & (column == c)
        text[rows] = frame[c].to_numpy(dtype=object)[partner[rows]]
    position = partner.astype(object)
    position[~found] = None
    return {"near_partner_position": _cells(position, len(partner)),
            "near_partner_label": _cells(label, len(label)), "near_partner_text": _cells(text, len(text))}


def outlier_rows(ctx, columns, score_of, threshold: float):
    """Rows behind data.outliers: every value of `columns` whose score (score_of(values) -> (z, how), the
    check's robust z) exceeds `threshold` among the training rows the check measured (the same seeded
    sample), with the column, the value and the score as outlier_score, the farthest first."""
    import numpy as np

    from ...analyses.sampling import STATS_SAMPLE, numeric_values, sample_range

    train, found = ctx.train, []
    pos = np.asarray(sample_range(len(train), STATS_SAMPLE, ctx.seed))
    for c in columns:
        values = numeric_values(train[c].iloc[pos])
        z, _ = score_of(values)
        far = np.flatnonzero(np.nan_to_num(z) > threshold) if z is not None else np.empty(0, np.int64)
        found.append((pos[far], np.full(len(far), c, dtype=object), values[far], z[far] if len(far) else values[far]))
    if not found:
        return None
    rows, feature, value, z = (np.concatenate([f[k] for f in found]) for k in range(4))
    order = np.lexsort((rows, -z))
    return stack_rows([split_rows(ctx, "train", rows[order], [], {
        "feature": feature[order], "value": value[order], "outlier_score": np.round(z[order], 2),
        "is_outlier": np.ones(len(order), bool)})], plain=True)
