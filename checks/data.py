"""Step 3, data: missing values, duplicates, leakage, scale, label quality, drift, text hygiene."""

from __future__ import annotations

import re

from .context import RunContext
from .findings import PlotSpec, Series, SkipCheck, fail, info, passed, warn
from .registry import check

# Share of missing values in one column above which a feature is "largely missing". Common practice
# (e.g. scikit-learn's SimpleImputer guidance, survey methodology) treats >5% as needing a deliberate strategy.
MISSING_WARN_FRACTION = 0.05
# Share of validation rows found in train beyond which scores are inflated enough to matter.
OVERLAP_FAIL_FRACTION = 0.01
OVERLAP_FAIL_MIN_ROWS = 5


def _missing_table(ctx: RunContext) -> dict[str, dict[str, int]]:
    cols = list(ctx.feature_columns) + [ctx.target]
    return {name: {c: int(n) for c, n in df[cols].isna().sum().items() if n}
            for name, df in ctx.splits.items()}


def _featurized_nonfinite(ctx: RunContext) -> dict[str, int] | None:
    """Non-finite values per split after featurize, or None when the features cannot be built."""
    import numpy as np

    try:
        return {name: int((~np.isfinite(ctx.X(name))).sum()) for name in ctx.splits}
    except Exception:
        return None


@check("data.missing_values", title="Missing values")
def missing_values(ctx: RunContext):
    missing = _missing_table(ctx)
    rows = {name: len(df) for name, df in ctx.splits.items()}
    target_missing = {name: m.get(ctx.target, 0) for name, m in missing.items() if m.get(ctx.target)}
    evidence = {"missing_per_split": missing, "rows": rows}
    if target_missing:
        return fail(f"{sum(target_missing.values())} row(s) have no label",
                    detail=f"Missing target '{ctx.target}' per split: {target_missing}. Rows without a label "
                           f"are dropped or mis-encoded silently by most training loops.",
                    fix="Drop unlabelled rows at export, or label them.", evidence=evidence)
    per_col = {}
    for name, m in missing.items():
        for c, n in m.items():
            per_col[c] = max(per_col.get(c, 0.0), n / max(rows[name], 1))
    if not per_col:
        return passed("no missing values in features or target", evidence=evidence)
    # Without model code there is no feature matrix to poison; judge the raw columns only.
    nonfinite = _featurized_nonfinite(ctx) if ctx.has_model else None
    evidence["nonfinite_after_featurize"] = nonfinite
    worst = sorted(per_col.items(), key=lambda kv: -kv[1])
    listing = ", ".join(f"{c} ({f:.1%})" for c, f in worst[:8])
    plot = PlotSpec(kind="bar", title="missing share per column (worst split)", x_label="column",
                    y_label="fraction missing", series=[Series("missing", [c for c, _ in worst[:15]],
                                                               [f for _, f in worst[:15]])])
    if nonfinite and any(nonfinite.values()):
        return fail(f"missing values reach the model: {sum(nonfinite.values()):,} NaN/inf in the feature matrix",
                    detail=f"Columns with missing values: {listing}. After featurize, the matrices still hold "
                           f"non-finite values {nonfinite}; one NaN in a batch makes the loss NaN.",
                    fix="Impute in featurize (e.g. sklearn SimpleImputer fitted on fit_df, plus a missing-indicator "
                        "column), or drop the column.", evidence=evidence, plots=[plot])
    handled = nonfinite is not None and not any(nonfinite.values())
    if handled:
        return info(f"{len(per_col)} column(s) have missing values, handled by featurize",
                    detail=f"Columns: {listing}. The feature matrices are finite, so featurize fills them.",
                    evidence=evidence, plots=[plot])
    if worst[0][1] > MISSING_WARN_FRACTION:
        return warn(f"{len(per_col)} column(s) have missing values, up to {worst[0][1]:.0%}",
                    detail=f"Columns: {listing}. Above {MISSING_WARN_FRACTION:.0%} missing, how you fill a column "
                           f"changes what the model learns; check whether missingness itself predicts the target.",
                    fix="Impute deliberately (median/most-frequent fitted on train, plus an is-missing column) "
                        "or drop columns that are mostly empty.", evidence=evidence, plots=[plot])
    return info(f"{len(per_col)} column(s) have a few missing values", detail=f"Columns: {listing}.",
                evidence=evidence, plots=[plot])


_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize_text(series):
    """Lower-case, strip punctuation and collapse whitespace: near-identical texts compare equal."""
    return series.fillna("").astype(str).str.lower().str.replace(_NON_WORD, " ", regex=True).str.strip()


def row_hashes(ctx: RunContext, split: str):
    """One 64-bit hash per row of the feature columns; cached for every check comparing rows."""
    def compute():
        import pandas as pd

        return pd.util.hash_pandas_object(ctx.features_frame(split), index=False).to_numpy()

    return ctx.shared(f"row_hashes:{split}", compute)


def text_hashes(ctx: RunContext, split: str, column: str):
    def compute():
        import pandas as pd

        return pd.util.hash_pandas_object(normalize_text(ctx.splits[split][column]), index=False).to_numpy()

    return ctx.shared(f"text_hashes:{split}:{column}", compute)


@check("data.split_overlap", title="Rows shared between train and valid/test")
def split_overlap(ctx: RunContext):
    import numpy as np

    train_rows = row_hashes(ctx, "train")
    # When train rows are themselves mostly repeats (few, coarse features), equal rows across splits
    # are expected by chance and do not mean a leak.
    train_unique_share = len(np.unique(train_rows)) / max(len(train_rows), 1)
    overlaps, examples = {}, {}
    for split in [s for s in ("valid", "test") if s in ctx.splits]:
        rows = row_hashes(ctx, split)
        shared = np.isin(rows, train_rows)
        by_text = np.zeros(len(rows), dtype=bool)
        for column in ctx.text_columns:
            by_text |= np.isin(text_hashes(ctx, split, column), text_hashes(ctx, "train", column))
        hit = shared | by_text
        overlaps[split] = {"rows": int(hit.sum()), "of": int(len(rows)), "exact_rows": int(shared.sum()),
                           "same_text": int(by_text.sum()), "fraction": float(hit.mean()) if len(rows) else 0.0}
        idx = np.flatnonzero(hit)[:5]
        cols = (ctx.text_columns or ctx.feature_columns)[:4] + [ctx.target]
        examples[split] = ctx.splits[split].iloc[idx][cols].astype(str).to_dict("records")
    evidence = {"overlap": overlaps, "examples": examples, "train_unique_share": round(train_unique_share, 3)}
    if not overlaps:
        raise SkipCheck("only one split")
    worst_split = max(overlaps, key=lambda s: overlaps[s]["fraction"])
    worst = overlaps[worst_split]
    if worst["rows"] == 0:
        return passed("no rows shared between train and the other splits", evidence=evidence)
    text_note = " (including texts that match after lower-casing and dropping punctuation)" if ctx.text_columns else ""
    detail = (f"{worst['rows']} of {worst['of']} {worst_split} rows ({worst['fraction']:.1%}) also appear in "
              f"train{text_note}. The model has seen them, so {worst_split} scores overstate how it does on new data.")
    fix = ("Deduplicate before splitting, then split by a group key (user, product, document) so near-copies "
           "land on one side; drop the shared rows from the evaluation splits now.")
    if (worst["fraction"] >= OVERLAP_FAIL_FRACTION and worst["rows"] >= OVERLAP_FAIL_MIN_ROWS
            and train_unique_share > 0.5):
        return fail(f"{worst['rows']} {worst_split} rows also appear in train", detail=detail, fix=fix,
                    evidence=evidence)
    if train_unique_share <= 0.5:
        return info(f"{worst['rows']} {worst_split} rows equal a train row, expected with such coarse features",
                    detail=detail + f" Only {train_unique_share:.0%} of train rows are distinct, so matches "
                                    f"happen by chance.", evidence=evidence)
    return warn(f"{worst['rows']} {worst_split} rows also appear in train", detail=detail, fix=fix, evidence=evidence)
