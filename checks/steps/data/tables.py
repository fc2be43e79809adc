"""Counting checks on the raw tables: missing values, constant features, row identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...analyses.exact_counts import counted_splits, exact_counts
from ...analyses.sampling import (STATS_SAMPLE, chunk_width, numeric_chunks, numeric_values, plain_number_columns,
                                  sample_note, sample_range)
from ...engine.analysis import analysis
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, fail, info, passed, warn
from ._common import short, split_rows, stack_rows
from ...wording import cut_list

# --- missing values ------------------------------------------------------------------------------
# Share of missing values in one column above which a feature is "largely missing". Common practice
# (e.g. scikit-learn's SimpleImputer guidance, survey methodology) treats >5% as needing a deliberate strategy.
MISSING_WARN_FRACTION = 0.05
# Missingness counts as concentrated in a group when that group's missing share is at least this many
# times the rest's (and the group is not tiny): a source or site that never recorded the column.
MISSING_GROUP_RATIO = 3.0
MISSING_GROUP_MIN_ROWS = 10
MISSING_GROUP_MAX_LEVELS = 50


@dataclass
class MissingMeasure:
    target: str
    missing: dict[str, dict[str, int]]            # split -> column -> missing cells (columns with any)
    rows: dict[str, int]                          # split -> rows
    nonfinite: dict[str, int] | None = None       # split -> NaN/inf cells after featurize; None: not built
    groups: dict[str, dict] = field(default_factory=dict)  # column -> the group it is missing in
    counted_by: str | None = None                 # the engine that counted every row (None: pandas, in memory)

    @property
    def target_missing(self) -> dict[str, int]:
        return {name: m.get(self.target, 0) for name, m in self.missing.items() if m.get(self.target)}

    def worst_columns(self) -> list[tuple[str, float]]:
        """(column, largest missing share over the splits), worst first."""
        per_col: dict[str, float] = {}
        for name, m in self.missing.items():
            for c, n in m.items():
                per_col[c] = max(per_col.get(c, 0.0), n / max(self.rows[name], 1))
        return sorted(per_col.items(), key=lambda kv: -kv[1])


def _missing_table(ctx: RunContext) -> dict[str, dict[str, int]]:
    cols = list(ctx.feature_columns) + [ctx.target]
    # isna() block by block, one byte a cell (df[cols] would copy the table first; a column at a time costs
    # 0.3 ms of pandas overhead: 3 s on 10,000 columns; at 1M x 31 either takes about 0.05 s)
    counts = {name: df.isna().sum().to_dict() for name, df in ctx.splits.items()}
    return {name: {c: int(per[c]) for c in cols if per[c]} for name, per in counts.items()}


def _exact_missing(ctx: RunContext, counts) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Missing cells per split from the exact counts (DuckDB/Dask over every row). A held-out valid
    split is a part of the train file, whose counts already hold it."""
    cols = list(ctx.feature_columns) + [ctx.target]
    missing, rows = {}, {}
    for name in counted_splits(counts, ctx):
        per = counts.missing.get(name, {})
        missing[name], rows[name] = {c: per[c] for c in cols if per.get(c)}, counts.rows[name]
    return missing, rows


def _featurized_nonfinite(ctx: RunContext) -> dict[str, int] | None:
    """Non-finite values per split after featurize, or None when the features cannot be built."""
    import numpy as np

    try:
        return {name: int((~np.isfinite(ctx.X(name))).sum()) for name in ctx.splits}
    except Exception:
        return None


def _group_levels(ctx: RunContext, pos) -> dict:
    """column -> (codes, uniques, value counts, code of each counted value) of each categorical column over
    the training rows `pos` with at most MISSING_GROUP_MAX_LEVELS values: once, for every missing column."""
    import pandas as pd

    out = {}
    for g in ctx.categorical_columns:
        keys = ctx.train[g].iloc[pos].astype("string").fillna("<missing>")
        counts = keys.value_counts()
        if len(counts) > MISSING_GROUP_MAX_LEVELS:
            continue
        codes, uniques = pd.factorize(keys)
        out[g] = (codes, uniques, counts, dict(zip(counts.index, pd.Index(uniques).get_indexer(counts.index))))
    return out


def _best_group(levels: dict, miss, column: str) -> dict | None:
    """The categorical value (of any other column) where `column` is missing most, if concentrated.
    `levels` are _group_levels of the rows `miss` (the column's missing mask) covers."""
    import numpy as np

    best = None
    for g, (codes, uniques, counts, code_of) in levels.items():
        if g == column:
            continue
        # missing cells per value, counted once (exact integer counts, so the shares equal the masks' means)
        missing_in = np.bincount(codes, weights=miss, minlength=len(uniques))
        total_missing = missing_in.sum()
        for value, n in counts.items():
            if n < MISSING_GROUP_MIN_ROWS or n == len(codes):
                continue
            inside_missing = missing_in[code_of[value]]
            there, elsewhere = inside_missing / n, (total_missing - inside_missing) / (len(codes) - n)
            if there >= 0.5 and there >= MISSING_GROUP_RATIO * max(elsewhere, 1e-9) and \
                    (best is None or there - elsewhere > best["missing_there"] - best["missing_elsewhere"]):
                best = {"column": g, "value": str(value), "missing_there": round(float(there), 3),
                        "missing_elsewhere": round(float(elsewhere), 3), "rows": int(n)}
    return best


def _missing_by_group(ctx: RunContext, columns: list[str]) -> dict[str, dict]:
    """For each largely-missing column, the categorical value where it is missing most, if concentrated."""
    if not columns:
        return {}
    pos = sample_range(len(ctx.train), STATS_SAMPLE, ctx.seed)
    levels = _group_levels(ctx, pos)
    found = {}
    for c in columns:
        best = _best_group(levels, ctx.train[c].iloc[pos].isna().to_numpy(), c)
        if best:
            found[c] = best
    return found


def _measure_missing(ctx: RunContext) -> MissingMeasure:
    counts = exact_counts(ctx)
    if counts is None:
        m = MissingMeasure(ctx.target, _missing_table(ctx), {name: len(df) for name, df in ctx.splits.items()})
    else:
        m = MissingMeasure(ctx.target, *_exact_missing(ctx, counts), counted_by=counts.engine)
    worst = m.worst_columns()
    if m.target_missing or not worst:
        return m
    # Without model code there is no feature matrix to poison; judge the raw columns only.
    m.nonfinite = _featurized_nonfinite(ctx) if ctx.has_model else None
    if not (m.nonfinite and any(m.nonfinite.values())):
        m.groups = _missing_by_group(ctx, [c for c, f in worst if f > MISSING_WARN_FRACTION][:5])
    return m


def _missing_verdict(m: MissingMeasure) -> Finding:
    evidence = {"missing_per_split": m.missing, "rows": m.rows}
    if m.counted_by:
        evidence["counted_by"] = m.counted_by
    if m.target_missing:
        return fail(f"{sum(m.target_missing.values())} row(s) have no label",
                    detail=f"Missing target '{m.target}' per split: {m.target_missing}. Rows without a label "
                           f"are dropped or mis-encoded silently by most training loops.",
                    fix="Drop unlabelled rows at export, or label them.", evidence=evidence)
    worst = m.worst_columns()
    if not worst:
        return passed("no missing values in features or target", evidence=evidence)
    nonfinite = m.nonfinite
    evidence["nonfinite_after_featurize"] = nonfinite
    listing = cut_list([f"{c} ({f:.1%})" for c, f in worst], 8)
    plot = PlotSpec(kind="bar", title="missing share per column (worst split)", x_label="column",
                    y_label="fraction missing", series=[Series("missing", [c for c, _ in worst[:15]],
                                                               [f for _, f in worst[:15]])])
    if nonfinite and any(nonfinite.values()):
        return fail(f"missing values reach the model: {sum(nonfinite.values()):,} missing or infinite values in the feature matrix",
                    detail=f"Columns with missing values: {listing}. After featurize, the matrices still hold "
                           f"non-finite values {nonfinite}; one missing value in a batch makes the whole loss undefined.",
                    fix="Impute in featurize (e.g. sklearn SimpleImputer fitted on fit_df, plus a missing-indicator "
                        "column), or drop the column.", evidence=evidence, plots=[plot])
    handled = nonfinite is not None and not any(nonfinite.values())
    evidence["concentrated_in"] = m.groups
    group_note = "".join(f" '{c}' is missing mostly where {g['column']} = {g['value']!r} ({g['missing_there']:.0%} "
                         f"missing there vs {g['missing_elsewhere']:.0%} elsewhere)." for c, g in m.groups.items())
    (top, top_share), n_cols = worst[0], len(worst)
    if handled and top_share <= MISSING_WARN_FRACTION:
        return info(f"{n_cols} column(s) have missing values, handled by featurize",
                    detail=f"Columns: {listing}. The feature matrices are finite, so featurize fills them.",
                    evidence=evidence, plots=[plot])
    if handled:
        return warn(f"'{top}' is {top_share:.0%} missing; featurize fills it in",
                    detail=f"Columns: {listing}. The feature matrices are finite, so featurize imputes them, but "
                           f"above {MISSING_WARN_FRACTION:.0%} the filled value stands in for many rows and hides "
                           f"whatever made them missing.{group_note}",
                    fix="Find out why the values are missing (an export or a source that lacks the column); add an "
                        "is-missing indicator column beside the imputed value, and check the model per group.",
                    evidence=evidence, plots=[plot])
    if top_share > MISSING_WARN_FRACTION:
        return warn(f"{n_cols} column(s) have missing values, up to {top_share:.0%}",
                    detail=f"Columns: {listing}. Above {MISSING_WARN_FRACTION:.0%} missing, how you fill a column "
                           f"changes what the model learns; check whether missingness itself predicts the target."
                           + group_note,
                    fix="Impute deliberately (median/most-frequent fitted on train, plus an is-missing column) "
                        "or drop columns that are mostly empty.", evidence=evidence, plots=[plot])
    return info(f"{n_cols} column(s) have a few missing values", detail=f"Columns: {listing}.",
                evidence=evidence, plots=[plot])


def _missing_column_lists(miss, names: list[str]) -> list[str]:
    """Per row of the boolean matrix `miss` (rows x names), the names of its missing columns joined by
    ", ". Rows share few patterns, so each distinct pattern is spelled once."""
    import numpy as np

    if not len(miss):
        return []
    if len(names) < 63:  # a pattern as the bits of one integer: a 1-d unique instead of a row-wise one
        bits = miss.astype(np.int64) @ (np.int64(1) << np.arange(len(names), dtype=np.int64))
        codes, inverse = np.unique(bits, return_inverse=True)
        patterns = ((codes[:, None] >> np.arange(len(names))) & 1).astype(bool)
    else:
        patterns, inverse = np.unique(miss, axis=0, return_inverse=True)
    spelled = [", ".join(n for n, gone in zip(names, row) if gone) for row in patterns.tolist()]
    return [spelled[i] for i in inverse.reshape(-1).tolist()]


def missing_rows(ctx: RunContext, m: MissingMeasure):
    """The rows behind a missing-values finding: every row of a split (in memory) with a missing feature
    or label, those without a label first, then the most cells missing; with the columns missing there."""
    import numpy as np

    from ...findings import ROWS_KEPT

    columns = list(ctx.feature_columns) + [ctx.target]
    parts, total = [], 0
    for split, df in ctx.splits.items():
        wanted = [c for c in columns if m.missing.get(split, {}).get(c) and c in df.columns]
        if not wanted:
            continue
        miss = np.column_stack([df[c].isna().to_numpy() for c in wanted])
        count = miss.sum(axis=1)
        no_label = miss[:, wanted.index(ctx.target)] if ctx.target in wanted else np.zeros(len(df), bool)
        pos = np.flatnonzero(count)
        total += len(pos)
        pos = pos[np.lexsort((pos, -count[pos], ~no_label[pos]))][:ROWS_KEPT]
        parts.append(split_rows(ctx, split, pos, extra={
            "missing_columns": _missing_column_lists(miss[pos], wanted),
            "n_missing": count[pos], "is_missing_label": no_label[pos]}))
    return stack_rows(parts, total=total, plain=True)


@check("data.missing_values", title="Missing values")
def missing_values(ctx: RunContext):
    m = _measure_missing(ctx)
    finding = _missing_verdict(m)
    if finding.status != "pass":
        finding.rows = missing_rows(ctx, m)
    return finding


# --- constant features ---------------------------------------------------------------------------
# A column whose most common value covers at least this share of rows carries almost no signal.
QUASI_CONSTANT_SHARE = 0.999


def _top_value_share(sample) -> tuple[float, bool]:
    """(share of the most common value, whether there is only one value), missing values counting as
    one value. For numbers, a value covering more than half the rows is the median, so comparing
    against the median answers in linear time without counting every distinct value."""
    import numpy as np
    import pandas as pd

    n = len(sample)
    if n == 0:
        return 0.0, True
    if pd.api.types.is_numeric_dtype(sample) and not pd.api.types.is_bool_dtype(sample):
        return _top_number_share(sample.to_numpy(dtype=np.float64, na_value=np.nan))
    counts = sample.value_counts(dropna=False)
    return float(counts.iloc[0] / n), len(counts) <= 1


def _top_number_share(values) -> tuple[float, bool]:
    """_top_value_share of numbers as float64 (NaN = missing; infinities are values)."""
    import numpy as np

    n = len(values)
    if n == 0:
        return 0.0, True
    missing = np.isnan(values)
    n_missing = int(missing.sum())
    if n_missing == n:
        return 1.0, True
    present = values[~missing]
    median = np.partition(present, len(present) // 2)[len(present) // 2]
    at_median = int((present == median).sum())
    single = at_median == len(present) and n_missing == 0
    return max(at_median, n_missing) / n, single


def _constant_after_featurize(ctx: RunContext) -> int | None:
    """Columns of the training feature matrix with zero spread (on a sample), or None if it cannot be built."""
    import numpy as np

    try:
        X = ctx.X("train")
        return int((np.nanstd(X[sample_range(len(X), STATS_SAMPLE, ctx.seed)], axis=0) == 0).sum())
    except Exception:
        return None


@dataclass
class ConstantMeasure:
    constant: list[str]                       # one value in every training row
    all_missing: list[str]                    # ... that value being "missing"
    quasi_constant: dict[str, float]          # column -> share of its most common value
    varies_in_other_splits: dict[str, list[str]]
    columns: int
    sample_rows: int
    train_rows: int
    constant_after_featurize: int | None = None  # None: no model, or the features cannot be built
    counted_by: str | None = None                # the engine that counted every row (None: pandas, in memory)


def _varies_in(counts, split: str, column: str) -> bool:
    """Whether `column` holds more than one value in a split counted exactly (a held-out valid split is
    a part of the train file, where the column is constant)."""
    return split in counts.rows and column not in counts.constant.get(split, [])


def _exact_constants(ctx: RunContext, counts) -> ConstantMeasure:
    """Constant and quasi-constant columns over every training row (the exact counts)."""
    n = counts.rows["train"]
    m = ConstantMeasure([], [], {}, {}, len(ctx.feature_columns), n, n, counted_by=counts.engine)
    constant = set(counts.constant.get("train", []))
    for c in ctx.feature_columns:
        share = counts.top_share.get(c)
        if c in constant:
            m.constant.append(c)
            if c in counts.all_missing:
                m.all_missing.append(c)
            m.varies_in_other_splits.update({c: [s for s in ("valid", "test") if _varies_in(counts, s, c)]})
            if not m.varies_in_other_splits[c]:
                del m.varies_in_other_splits[c]
        elif share is not None and share >= QUASI_CONSTANT_SHARE:
            m.quasi_constant[c] = round(float(share), 5)
    m.constant_after_featurize = _constant_after_featurize(ctx) if ctx.has_model else None
    return m


def _number_top_shares(df, columns, pos) -> dict[str, tuple[float, bool]]:
    """column -> _top_value_share of its values at `pos`, for the columns of numpy integer or float dtype,
    converted a block of columns at a time (a column at a time costs 0.1 ms of pandas overhead: 1 s on 10,000
    columns; a block stays within BLOCK_CELLS)."""
    import numpy as np

    plain = plain_number_columns(df, columns)
    width, shares = chunk_width(len(pos)), {}
    for start in range(0, len(plain), width):
        names = plain[start:start + width]
        block = df.iloc[pos, df.columns.get_indexer(names)].to_numpy(dtype=np.float64)
        shares.update({c: _top_number_share(block[:, j]) for j, c in enumerate(names)})
    return shares


def _measure_constants(ctx: RunContext) -> ConstantMeasure:
    counts = exact_counts(ctx)
    if counts is not None:
        return _exact_constants(ctx, counts)
    train = ctx.train
    pos = sample_range(len(train), STATS_SAMPLE, ctx.seed)
    m = ConstantMeasure([], [], {}, {}, len(ctx.feature_columns), int(len(pos)), len(train))
    numbers = _number_top_shares(train, ctx.feature_columns, pos)
    for c in ctx.feature_columns:
        top_share, single = numbers[c] if c in numbers else _top_value_share(train[c].iloc[pos])
        if single and train[c].nunique(dropna=False) <= 1:  # confirm on every row
            m.constant.append(c)
            if train[c].isna().all():
                m.all_missing.append(c)
            for s in ("valid", "test"):
                if s in ctx.splits and ctx.splits[s][c].nunique(dropna=False) > 1:
                    m.varies_in_other_splits.setdefault(c, []).append(s)
        elif top_share >= QUASI_CONSTANT_SHARE:
            m.quasi_constant[c] = round(float(top_share), 5)
    m.constant_after_featurize = _constant_after_featurize(ctx) if ctx.has_model else None
    return m


def _constants_verdict(m: ConstantMeasure) -> Finding:
    constant, all_missing, quasi, varies_elsewhere = (m.constant, m.all_missing, m.quasi_constant,
                                                      m.varies_in_other_splits)
    evidence = {"constant": constant, "all_missing": all_missing, "quasi_constant": quasi,
                "varies_in_other_splits": varies_elsewhere, "columns": m.columns, "sample_rows": m.sample_rows}
    if m.constant_after_featurize is not None:
        evidence["constant_after_featurize"] = m.constant_after_featurize
    if m.counted_by:
        evidence["counted_by"] = m.counted_by
    fix = "Drop constant columns (they only cost memory and time), and find out why a column is empty."
    if all_missing or varies_elsewhere:
        named = all_missing + [c for c in varies_elsewhere if c not in all_missing]
        return warn(f"{len(named)} feature(s) are empty or constant in train but not elsewhere: {cut_list(named, 6)}",
                    detail=(f"Entirely missing in train: {all_missing or 'none'}. Constant in train but varying in "
                            f"{varies_elsewhere or 'no other split'}: the model cannot learn from a column that "
                            f"never changes during training, yet will meet other values later; this usually means "
                            f"a broken join or export step."),
                    fix="Check how these columns are produced for the training file.", evidence=evidence)
    if constant:
        return info(f"{len(constant)} constant feature(s): {cut_list(constant, 6)}",
                    detail="These columns hold a single value in every training row and carry no information."
                           + (f" {len(quasi)} more are at least {QUASI_CONSTANT_SHARE:.1%} one value." if quasi else ""),
                    fix=fix, evidence=evidence)
    if quasi:
        return info(f"{len(quasi)} feature(s) are nearly constant", detail=(
            f"Columns whose most common value covers at least {QUASI_CONSTANT_SHARE:.1%} of training rows"
            f"{sample_note(m.sample_rows, m.train_rows)}: {cut_list(quasi, 8)}. Fine if the rare "
            f"values matter (rare events); otherwise they are noise."), evidence=evidence)
    return passed("every feature varies", evidence=evidence)


@check("data.constant_features", title="Features that never change")
def constant_features(ctx: RunContext):
    return _constants_verdict(_measure_constants(ctx))


# --- id columns ----------------------------------------------------------------------------------
_ID_NAME = re.compile(r"(^|[_\W])(id|ids|uuid|guid|key|index|idx|row|rownum|record)$|^(id|index)[_\W]", re.I)
# A row identifier: distinct in (almost) every row. 0.99 allows a few repeated or missing ids.
ID_UNIQUE_SHARE = 0.99
# Monotonic columns shorter than this are too short to call a row counter.
ID_MIN_ROWS = 20
ID_PROBE_ROWS = 5_000
# From this many numeric columns they are screened a block at a time (_numeric_id_screen): there the 0.1 ms of
# one call per column dominates; on long, narrow tables the column-by-column rule is cheaper (it stops at the
# probe rows for most columns: 0.13 s against 0.5 s for 20 columns of 1M rows).
ID_SCREEN_COLUMNS = 256


def _numeric_id_reason(col, n: int, probe, named: bool) -> str | None:
    """Why a numeric column identifies rows (a counter, an index, a dense id), or None."""
    import numpy as np

    values = numeric_values(col)
    finite = values[np.isfinite(values)]
    if len(finite) < ID_MIN_ROWS:
        return None
    diffs = np.diff(finite)
    strictly = bool(np.all(diffs > 0) or np.all(diffs < 0))
    head = finite[probe[probe < len(finite)]]
    integral = bool(np.all(head == np.round(head))) and (strictly or bool(np.all(finite == np.round(finite))))
    if strictly:
        return ("a strictly increasing integer: a row counter" if integral
                else "strictly monotonic over the file: an index or timestamp")
    if not integral or len(np.unique(head)) < ID_UNIQUE_SHARE * len(head):
        return None
    unique = len(np.unique(finite))
    if unique >= ID_UNIQUE_SHARE * n and (finite.max() - finite.min() + 1) <= 1.5 * n:
        return "a distinct integer per row covering a dense range: a row id"
    if named and unique >= ID_UNIQUE_SHARE * len(finite):
        return "named like an id and distinct per row"
    return None


def _other_id_reason(col, n: int, probe, named: bool) -> str | None:
    """Why a string (or other non-numeric) column identifies rows, or None."""
    head = col.iloc[probe]
    if head.nunique(dropna=True) < (ID_UNIQUE_SHARE if not named else 0.5) * len(head):
        return None
    distinct = col.nunique(dropna=True)
    if distinct >= ID_UNIQUE_SHARE * n:
        return "a distinct string per row: an identifier"
    if named and distinct >= 0.5 * n:
        return "named like an id with mostly distinct values"
    return None


@analysis
def id_like_columns(ctx: RunContext) -> dict[str, str]:
    """Feature columns that identify rows rather than describe them, with the reason (read by
    data.id_columns, and by data.drift, which leaves them out)."""
    import pandas as pd

    train = ctx.raw_splits["train"]  # file order: a held-out valid split shuffles ctx.train
    n = len(train)
    found = {}
    if n < ID_MIN_ROWS:
        return found
    text = set(ctx.text_columns)
    probe = sample_range(n, ID_PROBE_ROWS, ctx.seed)  # cheap look first; the full column only for candidates
    plain = plain_number_columns(train, [c for c in ctx.feature_columns if c not in text])
    decided = _numeric_id_screen(train, plain, probe) if len(plain) >= ID_SCREEN_COLUMNS else {}
    for c in ctx.feature_columns:
        if c in text:
            continue
        named = bool(_ID_NAME.search(str(c)))
        if c in decided:
            why = decided[c]
        else:
            col = train[c]
            is_number = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
            why = (_numeric_id_reason if is_number else _other_id_reason)(col, n, probe, named)
        if why:
            found[c] = why
    return found


def _numeric_id_screen(train, columns, probe) -> dict[str, str | None]:
    """_numeric_id_reason of the numpy-number columns it decides without their name, a block of columns at a
    time (one call per column costs 0.1 ms: 1 s on 10,000 columns): columns with no missing or infinite
    value that are strictly monotonic (a counter, an index) or not whole numbers on the probe rows (no id).
    The others are left to _numeric_id_reason."""
    import numpy as np

    decided: dict[str, str | None] = {}
    for names, V in numeric_chunks(train, columns):
        complete = ~np.isnan(V).any(axis=0)
        diffs = np.diff(V, axis=0)
        strictly = (diffs > 0).all(axis=0) | (diffs < 0).all(axis=0)
        head = V[probe]
        whole_head = (head == np.round(head)).all(axis=0)
        for j, c in enumerate(names):
            if not complete[j]:
                continue
            if strictly[j]:
                decided[c] = ("a strictly increasing integer: a row counter" if whole_head[j]
                              else "strictly monotonic over the file: an index or timestamp")
            elif not whole_head[j]:
                decided[c] = None
    return decided


def _id_verdict(found: dict[str, str], examples: dict[str, list]) -> Finding:
    evidence = {"id_like": found, "examples": examples}
    if not found:
        return passed("no feature looks like a row identifier", evidence=evidence)
    listing = cut_list([f"'{c}' ({why})" for c, why in found.items()], 6, "; ")
    return warn(f"{len(found)} feature(s) look like row identifiers: {cut_list(found, 5)}",
                detail=f"{listing}. An id carries no information about new rows; the model can only memorise it, "
                       f"and when ids follow collection time or were assigned by class it becomes a leak.",
                fix="List these columns under [data] ignore (and drop them in featurize); keep them only to join "
                    "or trace rows.", evidence=evidence)


@check("data.id_columns", title="Row identifiers used as features")
def id_columns(ctx: RunContext):
    found = id_like_columns(ctx)
    train = ctx.raw_splits["train"]
    return _id_verdict(found, {c: [short(v) for v in train[c].head(5).tolist()] for c in found})
