"""sanity.data_loads: every split loads with the columns and column types of train."""

from __future__ import annotations

from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import fail, info, passed, warn
from ...wording import cut_list


def _dtype_family(dtype) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "text"


@check("sanity.data_loads", title="Every split loads with the same columns and types")
def data_loads(ctx: RunContext):
    train = ctx.train
    rows = {name: len(df) for name, df in ctx.splits.items()}
    evidence = {"rows": rows, "columns": len(train.columns)}
    missing, extra, retyped = {}, {}, {}
    for name, df in ctx.splits.items():
        if name == "train":
            continue
        lacking = [c for c in train.columns if c not in df.columns]
        added = [c for c in df.columns if c not in train.columns]
        if lacking:
            missing[name] = lacking
        if added:
            extra[name] = added
        # int vs float is the same kind of column (pandas turns ints with NaN into floats);
        # numbers vs strings is a real difference: the column parses differently in that split.
        changed = {c: f"{train[c].dtype} -> {df[c].dtype}" for c in train.columns
                   if c in df.columns and _dtype_family(train[c].dtype) != _dtype_family(df[c].dtype)}
        if changed:
            retyped[name] = changed
    holdout = (f" The validation split was held out from train ({int(100 * 0.2)}%, "
               f"{'stratified, ' if ctx.is_classification else ''}seed {ctx.seed}) because [data] valid "
               f"is not set.") if ctx.valid_is_holdout else ""
    evidence.update({"valid_held_out": ctx.valid_is_holdout, "missing_columns": missing,
                     "extra_columns": extra, "changed_types": retyped})
    needed = set(ctx.feature_columns) | {ctx.target}
    lacking_needed = {k: [c for c in v if c in needed] for k, v in missing.items()}
    lacking_needed = {k: v for k, v in lacking_needed.items() if v}
    if lacking_needed:
        split, cols = next(iter(lacking_needed.items()))
        return fail(f"the {split} split lacks {len(cols)} feature column(s) that train has",
                    detail=f"Columns missing from {split}: {cut_list(cols, 20)}.{holdout}",
                    fix="Export every split with the same columns, from the same code path.",
                    evidence=evidence)
    retyped_needed = {k: {c: t for c, t in v.items() if c in needed} for k, v in retyped.items()}
    retyped_needed = {k: v for k, v in retyped_needed.items() if v}
    if retyped_needed:
        split, cols = next(iter(retyped_needed.items()))
        listing = cut_list([f"{c}: {t}" for c, t in cols.items()], 10, "; ")
        return warn(f"{len(cols)} column(s) have a different type in {split} than in train",
                    detail=f"Type changes (train -> {split}): {listing}. A column that is numeric in one split "
                           f"and text in another usually holds stray strings ('n/a', '1,000') in one file.{holdout}",
                    fix="Find the values that do not parse (e.g. pd.to_numeric(col, errors='coerce').isna()) "
                        "and clean them at export.",
                    evidence=evidence)
    sizes = ", ".join(f"{k} {v:,}" for k, v in rows.items())
    sampled = {name: df.attrs["mltriage_sample"] for name, df in ctx.raw_splits.items()
               if "mltriage_sample" in df.attrs}
    if sampled:
        evidence["sampled"] = sampled
        listing = "; ".join(f"{k}: {v['rows_kept']:,} of {v['rows_in_file']:,} rows ({v['file_mb']:,} MB file)"
                            for k, v in sampled.items())
        return info(f"large file(s) sampled: {listing}",
                    detail=f"Files above the read limit are streamed and a seeded random sample of rows is kept "
                           f"so memory stays bounded. Every check in this run saw the sample.{holdout}",
                    fix="Raise MLTRIAGE_MAX_READ_MB to read more, or point the project at a smaller extract.",
                    evidence=evidence)
    if ctx.valid_is_holdout:
        return info(f"all splits load ({sizes}); valid was held out from train",
                    detail=holdout.strip(), evidence=evidence,
                    fix="Set [data] valid to your real validation file so results match your own numbers.")
    return passed(f"all splits load with the same columns ({sizes})", evidence=evidence)
