"""Step 3, data: missing values, duplicates, leakage, scale, label quality, drift, text hygiene."""

from __future__ import annotations

import re

from ..engine.context import RunContext
from ..findings import PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ..engine.registry import check
from ..analyses.labels import CV_FOLDS, label_issue_analysis
from ..analyses.rowkeys import prefetch_row_keys, row_hashes, text_codes, thorough_text
from ..analyses.sampling import MODEL_SAMPLE, STATS_SAMPLE, numeric_values, one_thread, sample_note, sample_range

# Share of missing values in one column above which a feature is "largely missing". Common practice
# (e.g. scikit-learn's SimpleImputer guidance, survey methodology) treats >5% as needing a deliberate strategy.
MISSING_WARN_FRACTION = 0.05
# Share of validation rows found in train beyond which scores are inflated enough to matter.
OVERLAP_FAIL_FRACTION = 0.01
OVERLAP_FAIL_MIN_ROWS = 5


def _missing_table(ctx: RunContext) -> dict[str, dict[str, int]]:
    cols = list(ctx.feature_columns) + [ctx.target]
    # column by column: df[cols] would copy the whole table first
    counts = {name: {c: int(df[c].isna().sum()) for c in cols} for name, df in ctx.splits.items()}
    return {name: {c: n for c, n in per.items() if n} for name, per in counts.items()}


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
    groups = _missing_by_group(ctx, [c for c, f in worst if f > MISSING_WARN_FRACTION][:5])
    evidence["concentrated_in"] = groups
    group_note = "".join(f" '{c}' is missing mostly where {g['column']} = {g['value']!r} ({g['missing_there']:.0%} "
                         f"missing there vs {g['missing_elsewhere']:.0%} elsewhere)." for c, g in groups.items())
    if handled and worst[0][1] <= MISSING_WARN_FRACTION:
        return info(f"{len(per_col)} column(s) have missing values, handled by featurize",
                    detail=f"Columns: {listing}. The feature matrices are finite, so featurize fills them.",
                    evidence=evidence, plots=[plot])
    if handled:
        return warn(f"'{worst[0][0]}' is {worst[0][1]:.0%} missing; featurize fills it in",
                    detail=f"Columns: {listing}. The feature matrices are finite, so featurize imputes them, but "
                           f"above {MISSING_WARN_FRACTION:.0%} the filled value stands in for many rows and hides "
                           f"whatever made them missing.{group_note}",
                    fix="Find out why the values are missing (an export or a source that lacks the column); add an "
                        "is-missing indicator column beside the imputed value, and check the model per group.",
                    evidence=evidence, plots=[plot])
    if worst[0][1] > MISSING_WARN_FRACTION:
        return warn(f"{len(per_col)} column(s) have missing values, up to {worst[0][1]:.0%}",
                    detail=f"Columns: {listing}. Above {MISSING_WARN_FRACTION:.0%} missing, how you fill a column "
                           f"changes what the model learns; check whether missingness itself predicts the target."
                           + group_note,
                    fix="Impute deliberately (median/most-frequent fitted on train, plus an is-missing column) "
                        "or drop columns that are mostly empty.", evidence=evidence, plots=[plot])
    return info(f"{len(per_col)} column(s) have a few missing values", detail=f"Columns: {listing}.",
                evidence=evidence, plots=[plot])


# Missingness counts as concentrated in a group when that group's missing share is at least this many
# times the rest's (and the group is not tiny): a source or site that never recorded the column.
MISSING_GROUP_RATIO = 3.0
MISSING_GROUP_MIN_ROWS = 10
MISSING_GROUP_MAX_LEVELS = 50


def _missing_by_group(ctx: RunContext, columns: list[str]) -> dict[str, dict]:
    """For each largely-missing column, the categorical value where it is missing most, if concentrated."""
    if not columns:
        return {}
    train = ctx.train
    pos = sample_range(len(train), STATS_SAMPLE, ctx.seed)
    found = {}
    for c in columns:
        miss = train[c].iloc[pos].isna().to_numpy()
        best = None
        for g in ctx.categorical_columns:
            if g == c:
                continue
            keys = train[g].iloc[pos].astype("string").fillna("<missing>")
            counts = keys.value_counts()
            if len(counts) > MISSING_GROUP_MAX_LEVELS:
                continue
            for value, n in counts.items():
                if n < MISSING_GROUP_MIN_ROWS or n == len(keys):
                    continue
                inside = (keys == value).to_numpy()
                there, elsewhere = miss[inside].mean(), miss[~inside].mean()
                if there >= 0.5 and there >= MISSING_GROUP_RATIO * max(elsewhere, 1e-9) and \
                        (best is None or there - elsewhere > best["missing_there"] - best["missing_elsewhere"]):
                    best = {"column": g, "value": str(value), "missing_there": round(float(there), 3),
                            "missing_elsewhere": round(float(elsewhere), 3), "rows": int(n)}
        if best:
            found[c] = best
    return found


@check("data.split_overlap", title="Rows shared between train and valid/test", prefetch=prefetch_row_keys)
def split_overlap(ctx: RunContext):
    import numpy as np

    import pandas as pd

    train_rows = row_hashes(ctx, "train")
    # When train rows are themselves mostly repeats (few, coarse features), equal rows across splits
    # are expected by chance and do not mean a leak.
    train_unique_share = len(pd.unique(train_rows)) / max(len(train_rows), 1)
    train_index = pd.Index(train_rows)
    overlaps, examples = {}, {}
    for split in [s for s in ("valid", "test") if s in ctx.splits]:
        rows = row_hashes(ctx, split)
        shared = pd.Index(rows).isin(train_index)
        by_text = np.zeros(len(rows), dtype=bool)
        for column in ctx.text_columns:  # blank texts (code -1) match nothing
            codes, train_codes = text_codes(ctx, split, column), text_codes(ctx, "train", column)
            by_text |= pd.Index(codes).isin(pd.Index(train_codes[train_codes >= 0]))
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
    text_note = ((" (including texts that match after lower-casing and dropping punctuation)" if thorough_text(ctx)
                  else " (including texts that match after lower-casing and trimming punctuation at both ends)")
                 if ctx.text_columns else "")
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


def _records(df, positions, columns, limit: int = 5) -> list[dict]:
    cols = [c for c in columns if c in df.columns]
    out = []
    for p in list(positions)[:limit]:
        row = {"row": int(p)}
        row.update({c: _short(df[c].iloc[int(p)]) for c in cols})
        out.append(row)
    return out


def _short(value, width: int = 80):
    from ..findings import jsonable

    value = jsonable(value)
    if isinstance(value, str) and len(value) > width:
        return value[:width - 1] + "…"
    return value


def _id_like_columns(ctx: RunContext) -> dict[str, str]:
    return ctx.shared("data:id_like", lambda: _find_id_like(ctx))


# --- duplicates ----------------------------------------------------------------------------------
# More than this share of exact duplicate rows in a split over-weights the repeated rows in training
# and inflates evaluation; deduplication practice (e.g. Lee et al. 2022, "Deduplicating training data
# makes language models better") treats a few percent as worth removing.
DUPLICATE_WARN_FRACTION = 0.01
# Inputs seen with two different labels: a handful can be honest ambiguity, beyond this share of rows
# (and this many rows) the labels contradict each other systematically.
CONFLICT_FAIL_FRACTION = 0.001
CONFLICT_FAIL_MIN_ROWS = 5
# When at most this share of rows are distinct, the features are coarse and repeats are expected.
COARSE_UNIQUE_SHARE = 0.5


def _duplicate_stats(ctx: RunContext, split: str) -> dict:
    import numpy as np

    from ..analyses.rowkeys import first_occurrence_mask, keyed_with_labels, keys_with_several_labels

    hashes = row_hashes(ctx, split)
    y = ctx.y(split)
    n = len(hashes)
    exact = ~first_occurrence_mask(keyed_with_labels(hashes, y))  # same features and same label
    stats = {"rows": n, "duplicate_rows": int(exact.sum()),
             "unique_share": float(first_occurrence_mask(hashes).sum() / n) if n else 1.0,
             "conflict_rows": 0, "conflict_groups": 0}
    stats["duplicate_fraction"] = stats["duplicate_rows"] / n if n else 0.0
    stats["_dup_positions"] = np.flatnonzero(exact)[:5]
    if ctx.is_classification:
        bad, in_conflict = keys_with_several_labels(hashes, np.asarray(y))
        stats["conflict_rows"], stats["conflict_groups"] = int(in_conflict.sum()), int(len(bad))
        stats["_conflict_positions"] = np.flatnonzero(in_conflict)
    return stats


@check("data.duplicates", title="Duplicate rows and contradictory labels", prefetch=prefetch_row_keys)
def duplicates(ctx: RunContext):
    per_split = {s: _duplicate_stats(ctx, s) for s in ctx.splits}
    show_cols = ctx.feature_columns[:5] + [ctx.target]
    examples = {}
    for s, st in per_split.items():
        if st.get("conflict_rows"):
            conflict = st["_conflict_positions"]
            hashes = row_hashes(ctx, s)[conflict]
            first = hashes[0]
            group = conflict[hashes == first][:4]  # one group with its labels side by side
            examples[f"{s}_conflicting_labels"] = _records(ctx.splits[s], group, show_cols)
        if st["duplicate_rows"]:
            examples[f"{s}_duplicates"] = _records(ctx.splits[s], st["_dup_positions"], show_cols, 3)
    evidence = {"per_split": {s: {k: v for k, v in st.items() if not k.startswith("_")}
                              for s, st in per_split.items()}, "examples": examples}
    plot = PlotSpec(kind="bar", title="duplicate and contradictory rows per split", x_label="split",
                    y_label="rows", series=[
                        Series("exact duplicates", list(per_split), [st["duplicate_rows"] for st in per_split.values()]),
                        Series("same input, different label", list(per_split),
                               [st["conflict_rows"] for st in per_split.values()])])
    coarse = per_split["train"]["unique_share"] <= COARSE_UNIQUE_SHARE
    conflicts = {s: st for s, st in per_split.items() if st["conflict_rows"]}
    dups = {s: st for s, st in per_split.items() if st["duplicate_rows"]}
    if conflicts and not coarse:
        s, st = max(conflicts.items(), key=lambda kv: kv[1]["conflict_rows"] / kv[1]["rows"])
        frac = st["conflict_rows"] / st["rows"]
        title = (f"{st['conflict_rows']} {s} rows share their exact inputs with a row of another label "
                 f"({st['conflict_groups']} groups)")
        detail = (f"{st['conflict_rows']} of {st['rows']} {s} rows ({frac:.2%}) have identical feature values "
                  f"but different labels. The model is asked to predict two answers for one input: either "
                  f"labels are wrong, or the features miss what decides the label. Threshold for fail: "
                  f"{CONFLICT_FAIL_FRACTION:.1%} of rows and at least {CONFLICT_FAIL_MIN_ROWS} rows.")
        fix = ("Look at the example groups: relabel or drop the contradicting copies, or add the feature that "
               "tells them apart.")
        bad = frac >= CONFLICT_FAIL_FRACTION and st["conflict_rows"] >= CONFLICT_FAIL_MIN_ROWS
        return (fail if bad else warn)(title, detail=detail, fix=fix, evidence=evidence, plots=[plot])
    if dups:
        s, st = max(dups.items(), key=lambda kv: kv[1]["duplicate_fraction"])
        detail = (f"{st['duplicate_rows']} of {st['rows']} {s} rows ({st['duplicate_fraction']:.2%}) repeat an "
                  f"earlier row exactly (features and label).")
        if coarse:
            return info(f"{st['duplicate_rows']} exact duplicate rows in {s}, expected with such coarse features",
                        detail=detail + f" Only {per_split['train']['unique_share']:.0%} of training inputs are "
                                        f"distinct, so repeats happen naturally.", evidence=evidence, plots=[plot])
        if conflicts:
            detail += " Some inputs repeat with different labels; with features this coarse that is expected noise."
        if st["duplicate_fraction"] >= DUPLICATE_WARN_FRACTION:
            return warn(f"{st['duplicate_fraction']:.1%} of {s} rows are exact duplicates",
                        detail=detail + f" Above {DUPLICATE_WARN_FRACTION:.0%}, repeated rows weigh more in "
                                        f"training and, in evaluation splits, count the same answer twice.",
                        fix="Drop exact duplicates (df.drop_duplicates()) before splitting, unless repeats are "
                            "real, independent events.", evidence=evidence, plots=[plot])
        return info(f"{st['duplicate_rows']} exact duplicate rows in {s}", detail=detail,
                    fix="Drop them unless they are real repeated events.", evidence=evidence, plots=[plot])
    if conflicts:
        s, st = next(iter(conflicts.items()))
        return info(f"{st['conflict_rows']} rows repeat an input with another label, expected with coarse features",
                    detail=f"Only {per_split['train']['unique_share']:.0%} of training inputs are distinct.",
                    evidence=evidence, plots=[plot])
    return passed("no duplicate rows in any split", evidence=evidence)


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
        values = sample.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
        n_missing = int(missing.sum())
        if n_missing == n:
            return 1.0, True
        present = values[~missing]
        median = np.partition(present, len(present) // 2)[len(present) // 2]
        at_median = int((present == median).sum())
        single = at_median == len(present) and n_missing == 0
        return max(at_median, n_missing) / n, single
    counts = sample.value_counts(dropna=False)
    return float(counts.iloc[0] / n), len(counts) <= 1


@check("data.constant_features", title="Features that never change")
def constant_features(ctx: RunContext):
    train = ctx.train
    pos = sample_range(len(train), STATS_SAMPLE, ctx.seed)
    constant, quasi, all_missing, varies_elsewhere = [], {}, [], {}
    for c in ctx.feature_columns:
        sample = train[c].iloc[pos]
        top_share, single = _top_value_share(sample)
        if single and train[c].nunique(dropna=False) <= 1:  # confirm on every row
            constant.append(c)
            if train[c].isna().all():
                all_missing.append(c)
            for s in ("valid", "test"):
                if s in ctx.splits and ctx.splits[s][c].nunique(dropna=False) > 1:
                    varies_elsewhere.setdefault(c, []).append(s)
        elif top_share >= QUASI_CONSTANT_SHARE:
            quasi[c] = round(float(top_share), 5)
    evidence = {"constant": constant, "all_missing": all_missing, "quasi_constant": quasi,
                "varies_in_other_splits": varies_elsewhere, "columns": len(ctx.feature_columns),
                "sample_rows": int(len(pos))}
    if ctx.has_model:
        try:
            import numpy as np

            X = ctx.X("train")
            evidence["constant_after_featurize"] = int((np.nanstd(X[sample_range(len(X), STATS_SAMPLE, ctx.seed)],
                                                                  axis=0) == 0).sum())
        except Exception:
            pass
    fix = "Drop constant columns (they only cost memory and time), and find out why a column is empty."
    if all_missing or varies_elsewhere:
        named = all_missing + [c for c in varies_elsewhere if c not in all_missing]
        return warn(f"{len(named)} feature(s) are empty or constant in train but not elsewhere: {', '.join(named[:6])}",
                    detail=(f"Entirely missing in train: {all_missing or 'none'}. Constant in train but varying in "
                            f"{varies_elsewhere or 'no other split'}: the model cannot learn from a column that "
                            f"never changes during training, yet will meet other values later; this usually means "
                            f"a broken join or export step."),
                    fix="Check how these columns are produced for the training file.", evidence=evidence)
    if constant:
        return info(f"{len(constant)} constant feature(s): {', '.join(map(str, constant[:6]))}",
                    detail=f"These columns hold a single value in every training row and carry no information."
                           + (f" {len(quasi)} more are at least {QUASI_CONSTANT_SHARE:.1%} one value." if quasi else ""),
                    fix=fix, evidence=evidence)
    if quasi:
        return info(f"{len(quasi)} feature(s) are nearly constant", detail=(
            f"Columns whose most common value covers at least {QUASI_CONSTANT_SHARE:.1%} of training rows"
            f"{sample_note(len(pos), len(train))}: {', '.join(list(map(str, quasi))[:8])}. Fine if the rare "
            f"values matter (rare events); otherwise they are noise."), evidence=evidence)
    return passed("every feature varies", evidence=evidence)


# --- id columns ----------------------------------------------------------------------------------
_ID_NAME = re.compile(r"(^|[_\W])(id|ids|uuid|guid|key|index|idx|row|rownum|record)$|^(id|index)[_\W]", re.I)
# A row identifier: distinct in (almost) every row. 0.99 allows a few repeated or missing ids.
ID_UNIQUE_SHARE = 0.99
# Monotonic columns shorter than this are too short to call a row counter.
ID_MIN_ROWS = 20
ID_PROBE_ROWS = 5_000


def _find_id_like(ctx: RunContext) -> dict[str, str]:
    """Feature columns that identify rows rather than describe them, with the reason."""
    import numpy as np
    import pandas as pd

    train = ctx.raw_splits["train"]  # file order: a held-out valid split shuffles ctx.train
    n = len(train)
    found = {}
    if n < ID_MIN_ROWS:
        return found
    text = set(ctx.text_columns)
    probe = sample_range(n, ID_PROBE_ROWS, ctx.seed)  # cheap look first; the full column only for candidates
    for c in ctx.feature_columns:
        if c in text:
            continue
        col = train[c]
        named = bool(_ID_NAME.search(str(c)))
        is_number = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if is_number:
            values = numeric_values(col)
            finite = values[np.isfinite(values)]
            if len(finite) < ID_MIN_ROWS:
                continue
            diffs = np.diff(finite)
            strictly = bool(np.all(diffs > 0) or np.all(diffs < 0))
            head = finite[probe[probe < len(finite)]]
            integral = bool(np.all(head == np.round(head))) and (strictly or bool(np.all(finite == np.round(finite))))
            if strictly:
                found[c] = ("a strictly increasing integer: a row counter" if integral
                            else "strictly monotonic over the file: an index or timestamp")
                continue
            if not integral or len(np.unique(head)) < ID_UNIQUE_SHARE * len(head):
                continue
            unique = len(np.unique(finite))
            if unique >= ID_UNIQUE_SHARE * n and (finite.max() - finite.min() + 1) <= 1.5 * n:
                found[c] = "a distinct integer per row covering a dense range: a row id"
            elif named and unique >= ID_UNIQUE_SHARE * len(finite):
                found[c] = "named like an id and distinct per row"
        else:
            head = col.iloc[probe]
            if head.nunique(dropna=True) < (ID_UNIQUE_SHARE if not named else 0.5) * len(head):
                continue
            distinct = col.nunique(dropna=True)
            if distinct >= ID_UNIQUE_SHARE * n:
                found[c] = "a distinct string per row: an identifier"
            elif named and distinct >= 0.5 * n:
                found[c] = "named like an id with mostly distinct values"
    return found


@check("data.id_columns", title="Row identifiers used as features")
def id_columns(ctx: RunContext):
    found = _id_like_columns(ctx)
    train = ctx.raw_splits["train"]
    evidence = {"id_like": found, "examples": {c: [_short(v) for v in train[c].head(5).tolist()] for c in found}}
    if not found:
        return passed("no feature looks like a row identifier", evidence=evidence)
    listing = "; ".join(f"'{c}' ({why})" for c, why in list(found.items())[:6])
    return warn(f"{len(found)} feature(s) look like row identifiers: {', '.join(map(str, list(found)[:5]))}",
                detail=f"{listing}. An id carries no information about new rows; the model can only memorise it, "
                       f"and when ids follow collection time or were assigned by class it becomes a leak.",
                fix="List these columns under [data] ignore (and drop them in featurize); keep them only to join "
                    "or trace rows.", evidence=evidence)


# --- target leakage ------------------------------------------------------------------------------
# One raw feature predicting the label this well on held-out rows means the label is (almost) a function
# of it: chance-corrected balanced accuracy / R^2 of a one-feature tree.
LEAK_FAIL_STRENGTH = 0.98
LEAK_WARN_STRENGTH = 0.9
# |Spearman| this close to 1 between a numeric feature and a numeric target: a monotone transform of it.
LEAK_SPEARMAN = 0.995
# Below this many labelled validation rows, a near-perfect single-feature score is too noisy to judge.
LEAK_MIN_VALID_ROWS = 30


@check("data.target_leakage", title="A single feature that gives the label away")
def target_leakage(ctx: RunContext):
    from ..analyses.baselines import SINGLE_FEATURE_LEAVES, baseline_scores

    b = baseline_scores(ctx)
    rows = b["per_feature"]
    if not rows:
        raise SkipCheck("no usable raw feature columns to test one at a time")
    strength_name = "balanced accuracy above chance" if ctx.is_classification else "R^2"
    ranked = sorted(rows, key=lambda r: -(r["strength"] or 0))
    evidence = {"measure": strength_name, "valid_rows_used": b["valid_rows_used"],
                "train_rows_used": b["train_rows_used"],
                "top_features": [{k: v for k, v in r.items()} for r in ranked[:10]],
                "fail_at": LEAK_FAIL_STRENGTH, "warn_at": LEAK_WARN_STRENGTH}
    plot = PlotSpec(kind="bar", title=f"one-feature model: {strength_name} on valid", x_label="feature",
                    y_label=strength_name, series=[Series("strength", [r["feature"] for r in ranked[:15]],
                                                          [r["strength"] or 0 for r in ranked[:15]])])
    def is_leak(r):
        return (r["strength"] or 0) >= LEAK_FAIL_STRENGTH or abs(r.get("spearman") or 0) >= LEAK_SPEARMAN

    leaks = [r for r in ranked if is_leak(r)]
    suspects = [r for r in ranked if not is_leak(r) and (r["strength"] or 0) >= LEAK_WARN_STRENGTH]
    note = sample_note(b["valid_rows_used"], b["valid_rows_labelled"])
    if leaks or suspects:
        top = (leaks or suspects)[0]
        col = top["feature"]
        pos = sample_range(len(ctx.valid), 5, ctx.seed)
        evidence["examples"] = _records(ctx.valid, pos, [col, ctx.target])
        detail = (f"A {SINGLE_FEATURE_LEAVES}-bin step function of '{col}' alone, fitted on train, reaches {strength_name} "
                  f"= {top['strength']:.3f}"
                  + (f" (Spearman {top['spearman']:+.4f} with the target)" if top.get("spearman") is not None else "")
                  + f" on {b['valid_rows_used']:,} validation rows{note}. Next best feature: "
                  + (f"'{ranked[1]['feature']}' at {ranked[1]['strength'] or 0:.3f}." if len(ranked) > 1 else "none.")
                  + " A feature this predictive is usually computed from the label, recorded after the outcome, "
                    "or a copy of it under another name.")
        fix = (f"Find out how '{col}' is produced. If it is known only after the label (or derived from it), drop "
               f"it (add it to [data] ignore); if it is a legitimate input, the task needs no model.")
        few = b["valid_rows_used"] < LEAK_MIN_VALID_ROWS
        if leaks and not few:
            names = ", ".join(f"'{r['feature']}'" for r in leaks[:5])
            return fail(f"{names} predict{'s' if len(leaks) == 1 else ''} the target almost perfectly on its own",
                        detail=detail, fix=fix, evidence=evidence, plots=[plot])
        return warn(f"'{col}' alone predicts the target unusually well ({top['strength']:.2f})",
                    detail=detail + (f" Only {b['valid_rows_used']} validation rows: too few to be sure." if few else ""),
                    fix=fix, evidence=evidence, plots=[plot])
    best = ranked[0]
    return passed(f"no single feature gives the label away (best: '{best['feature']}', {best['strength'] or 0:.2f})",
                  evidence=evidence, plots=[plot])


# --- feature scale -------------------------------------------------------------------------------
# Gradient-trained networks expect inputs of order one, roughly centred (LeCun et al. 1998, "Efficient
# BackProp", section 4.3). A column whose typical magnitude (99th percentile of |x|) exceeds 10 is an
# order of magnitude off; 100 and more (raw pixels 0-255, amounts in the thousands) breaks the default
# initialisation and learning rates outright.
SCALE_WARN = 10.0
SCALE_FAIL = 100.0
# Columns spanning three orders of magnitude of scale learn at very different speeds with one learning rate.
SCALE_RATIO_WARN = 1000.0


def _column_scales(matrix) -> "tuple":
    """Per column: magnitude (99th percentile of |x|, or max |x| for mostly-zero columns), std, mean."""
    import numpy as np

    A = np.abs(matrix)
    with np.errstate(all="ignore"):
        p99 = np.nanpercentile(A, 99, axis=0) if len(A) else np.zeros(matrix.shape[1])
        top = np.nanmax(A, axis=0) if len(A) else np.zeros(matrix.shape[1])
        scale = np.where(p99 > 0, p99, top)
        std = np.nanstd(matrix, axis=0)
        mean = np.nanmean(matrix, axis=0)
    return np.nan_to_num(scale), np.nan_to_num(std), np.nan_to_num(mean)


@check("data.feature_scale", title="Input scale for the model")
def feature_scale(ctx: RunContext):
    import warnings

    import numpy as np

    kind = ctx.model_kind if ctx.has_model else None
    if kind in ("torch", "sklearn", "unknown"):
        X = ctx.X("train")
        names = [f"feature {j}" for j in range(X.shape[1])]
        if X.shape[1] == len(ctx.numeric_columns) and not ctx.config.featurize:
            names = list(ctx.numeric_columns)
        source = "the featurized matrix (ctx.X)"
    else:
        cols = list(ctx.numeric_columns)
        if not cols:
            raise SkipCheck("no numeric feature columns to measure")
        X = None
        names = cols
        source = "the raw numeric columns"
    n = len(X) if X is not None else len(ctx.train)
    pos = sample_range(n, STATS_SAMPLE, ctx.seed)
    if X is not None:
        M = np.asarray(X[pos], dtype=float)
        M[~np.isfinite(M)] = np.nan
    else:
        M = np.column_stack([numeric_values(ctx.train[c].iloc[pos]) for c in names])
    if M.shape[1] == 0:
        raise SkipCheck("the feature matrix has no columns")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale, std, mean = _column_scales(M)
    varying = std > 0
    if not varying.any():
        raise SkipCheck("every feature is constant")
    big = [(names[j], float(scale[j])) for j in np.argsort(-scale) if varying[j] and scale[j] > SCALE_WARN]
    live = scale[varying & (scale > 0)]
    ratio = float(live.max() / live.min()) if len(live) else 1.0
    order = [j for j in np.argsort(-scale) if varying[j]]
    evidence = {"source": source, "model_kind": kind, "columns": int(M.shape[1]), "sample_rows": int(len(pos)),
                "max_scale": float(scale[varying].max()), "scale_ratio": round(ratio, 2),
                "above_warn": len(big), "largest": [{"feature": names[j], "p99_abs": float(scale[j]),
                                                     "mean": float(mean[j]), "std": float(std[j])}
                                                    for j in order[:8]],
                "thresholds": {"warn": SCALE_WARN, "fail": SCALE_FAIL, "ratio_warn": SCALE_RATIO_WARN}}
    shown = order[:20]
    plot = PlotSpec(kind="bar", title="typical magnitude per feature (99th percentile of |x|)", x_label="feature",
                    y_label="p99 |x|", y_log=True, series=[Series("p99 |x|", [names[j] for j in shown],
                                                                   [max(float(scale[j]), 1e-12) for j in shown])])
    problem = bool(big) or ratio >= SCALE_RATIO_WARN
    if not problem:
        return passed(f"features are of order one (largest typical magnitude {evidence['max_scale']:.3g})",
                      evidence=evidence, plots=[plot])
    listing = ", ".join(f"{c} (~{s:.3g})" for c, s in big[:6])
    detail = (f"Measured on {source}{sample_note(len(pos), n)}. "
              + (f"{len(big)} column(s) have typical magnitudes above {SCALE_WARN:g}: {listing}. " if big else "")
              + f"Largest/smallest column magnitude: {ratio:.3g}x.")
    fix = ("Standardise in featurize: fit sklearn StandardScaler (or divide by a known range, e.g. /255 for "
           "pixels) on fit_df and apply it to df.")
    if kind == "torch":
        status = fail if evidence["max_scale"] >= SCALE_FAIL else warn
        return status(f"inputs reach the network at scale {evidence['max_scale']:.3g} (expected about 1)",
                      detail=detail + " Default initialisations and learning rates assume inputs of order one; "
                                      "large inputs give huge first-layer activations and gradients.",
                      fix=fix, evidence=evidence, plots=[plot])
    if kind == "sklearn":
        return info("features are on very different scales (fine for trees, not for linear/kNN/SVM models)",
                    detail=detail + " Tree ensembles ignore scale; linear models, SVMs, kNN and MLPs do not.",
                    fix="If the estimator is not tree-based, put a StandardScaler in front of it.",
                    evidence=evidence, plots=[plot])
    return info("raw numeric columns are on very different scales",
                detail=detail + " No model is configured, so this only matters if you train a neural network, "
                                "a linear model, an SVM or kNN on them.", fix=fix, evidence=evidence, plots=[plot])


# --- outliers ------------------------------------------------------------------------------------
# Iglewicz & Hoaglin (1993) flag |modified z| > 3.5 as potential outliers; we report only gross ones,
# 10 robust standard deviations out (after a log for right-skewed columns), which ordinary tails rarely reach.
OUTLIER_Z = 10.0
# When more than this share of a column is that far out, it is a heavy tail, not a handful of errors.
OUTLIER_RARE_FRACTION = 0.01
OUTLIER_MIN_VALUES = 20
OUTLIER_FEW = 5  # a handful of such values is "rare" whatever the column length


def _robust_z(values):
    """Modified z-scores (|x - median| / (1.4826 MAD)); right-skewed non-negative columns on a log scale.
    Returns (z, how) with z NaN where a value cannot be judged, or (None, reason)."""
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) < OUTLIER_MIN_VALUES:
        return None, "too few values"
    lo, mid, hi = np.percentile(finite, [1, 50, 99])
    how = "raw"
    t = values
    if finite.min() >= 0 and (hi - mid) > 3 * (mid - lo):
        # log1p(x / median): a log scale whatever the units (log1p(x) is linear for values << 1)
        unit = mid if mid > 0 else (hi if hi > 0 else 1.0)
        t, how = np.log1p(values / unit), "log scale"
    tf = t[np.isfinite(t)]
    med = np.median(tf)
    mad = 1.4826 * np.median(np.abs(tf - med))
    judged = np.isfinite(t)
    if mad == 0:
        # One value covers half the column (zero-inflated counts, blank pixels): the other values are
        # the signal, not outliers, and a robust scale does not exist.
        return None, "one value covers at least half of the rows"
    z = np.full(len(values), np.nan)
    z[judged] = np.abs(t[judged] - med) / mad
    return z, how


@check("data.outliers", title="Extreme values")
def outliers(ctx: RunContext):
    import numpy as np

    cols = list(ctx.numeric_columns)
    if not cols:
        raise SkipCheck("no numeric feature columns")
    train = ctx.train
    pos = sample_range(len(train), STATS_SAMPLE, ctx.seed)
    per_col, worst = {}, None
    for c in cols:
        values = numeric_values(train[c].iloc[pos])
        z, how = _robust_z(values)
        if z is None:
            continue
        far = np.flatnonzero(np.nan_to_num(z) > OUTLIER_Z)
        if not len(far):
            continue
        frac = len(far) / np.isfinite(values).sum()
        far_values, counts = np.unique(values[far], return_counts=True)
        top = np.argsort(-np.nan_to_num(z[far]))[:5]
        per_col[c] = {"count": int(len(far)), "fraction": round(float(frac), 5), "scale": how,
                      "median": float(np.nanmedian(values)), "max_z": float(np.nanmax(z)),
                      "repeated_value": float(far_values[counts.argmax()]) if counts.max() >= 3 else None,
                      "examples": [{"row": int(pos[i]), "value": float(values[i]), "z": round(float(z[i]), 1)}
                                   for i in far[top]]}
        if worst is None or per_col[c]["max_z"] > per_col[worst]["max_z"]:
            worst = c
    evidence = {"columns_checked": len(cols), "sample_rows": int(len(pos)), "threshold_z": OUTLIER_Z,
                "columns": per_col}
    if not per_col:
        return passed(f"no value lies more than {OUTLIER_Z:g} robust standard deviations out", evidence=evidence)
    rare = {c: v for c, v in per_col.items()
            if v["fraction"] <= OUTLIER_RARE_FRACTION or v["count"] <= OUTLIER_FEW}
    values = numeric_values(train[worst].iloc[pos])
    plot = PlotSpec.histogram(f"{worst}: distribution in train", {"train": values}, x_label=worst)
    plot.y_log = True
    listing = ", ".join(f"{c} ({v['count']}, e.g. {v['examples'][0]['value']:.4g} vs median {v['median']:.4g})"
                        for c, v in sorted(per_col.items(), key=lambda kv: -kv[1]["max_z"])[:5])
    detail = (f"Values more than {OUTLIER_Z:g} robust standard deviations (median/MAD; log scale for skewed "
              f"columns) from the median{sample_note(len(pos), len(train))}: {listing}.")
    sentinels = {c: v["repeated_value"] for c, v in per_col.items() if v["repeated_value"] is not None}
    if sentinels:
        detail += f" Repeated extreme values look like placeholders for 'unknown': {sentinels}."
    if rare:
        return warn(f"{len(rare)} column(s) hold rare extreme values: {', '.join(map(str, list(rare)[:5]))}",
                    detail=detail + f" They are rare (at most {OUTLIER_RARE_FRACTION:.0%} of values), the pattern of "
                                    f"entry errors, unit mix-ups or sentinel codes such as -999.",
                    fix="Look at the example rows: fix unit errors at the source, turn sentinel codes into missing "
                        "values (plus an indicator), or clip/winsorise at plausible limits fitted on train.",
                    evidence=evidence, plots=[plot])
    return info(f"{len(per_col)} column(s) have heavy tails", detail=detail + " More than "
                f"{OUTLIER_RARE_FRACTION:.0%} of their values are that far out, which is a long-tailed distribution "
                f"rather than isolated errors.", fix="Consider a log or rank transform for these columns.",
                evidence=evidence, plots=[plot])


# --- label values --------------------------------------------------------------------------------
_VECTOR_LABEL = re.compile(r"^\s*[\[(]?\s*-?\d+(\.\d+)?\s*([,;\s]\s*-?\d+(\.\d+)?\s*){1,}[\])]?\s*$")


def _label_form(value) -> str:
    """A normal form under which spellings of one label compare equal: ' Pos' ~ 'pos', '1.0' ~ '1'."""
    text = str(value).strip().lower()
    try:
        number = float(text)
        if number == int(number):
            return str(int(number))
        return repr(number)
    except (ValueError, OverflowError):
        return text


def _regression_label_problems(ctx: RunContext) -> tuple[list[tuple[str, str, str]], dict]:
    import numpy as np
    import pandas as pd

    problems, evidence = [], {"splits": {}}
    for s in ctx.splits:
        raw = ctx.labels(s)
        numbers = pd.to_numeric(raw, errors="coerce")
        unparsable = raw.notna() & numbers.isna()
        inf = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
        evidence["splits"][s] = {"rows": len(raw), "not_numbers": int(unparsable.sum()), "infinite": int(inf.sum()),
                                 "examples": [_short(v) for v in raw[unparsable].head(5).tolist()]}
        if unparsable.any():
            problems.append(("fail", f"{int(unparsable.sum())} {s} target value(s) are not numbers",
                             "A regression target must be numeric; these rows are dropped or crash the loss."))
        if inf.any():
            problems.append(("fail", f"{int(inf.sum())} {s} target value(s) are infinite",
                             "An infinite target makes the loss infinite."))
    raw = ctx.labels("train")
    if not pd.api.types.is_numeric_dtype(raw) and not problems:
        problems.append(("info", "numeric targets are stored as text",
                         "Every value parses as a number, but the column is text; other tools may treat it as labels."))
    return problems, evidence


def _classification_label_problems(ctx: RunContext) -> tuple[list[tuple[str, str, str]], dict]:
    import pandas as pd

    problems = []
    classes = list(ctx.classes)
    declared = ctx.config.classes is not None
    evidence = {"classes": [str(c) for c in classes], "declared": declared, "loss": ctx.loss_name,
                "n_outputs": ctx.n_outputs, "splits": {}}
    seen_forms: dict[str, set] = {}
    for s in ctx.splits:
        raw = ctx.labels(s)
        y = ctx.y(s)
        labelled = raw.notna().to_numpy()
        outside = labelled & (y < 0)
        values = raw[outside].astype(str).value_counts().head(8)
        evidence["splits"][s] = {"rows": len(raw), "outside_classes": int(outside.sum()),
                                 "outside_values": {str(k): int(v) for k, v in values.items()}}
        if outside.any():
            if declared or s != "train":
                where = "[data] classes" if declared else "the labels seen in train"
                status = "fail" if declared else "warn"
                problems.append((status, f"{int(outside.sum())} {s} label(s) are not in {where}: "
                                         f"{', '.join(list(values.index.astype(str))[:5])}",
                                 f"These rows are encoded as 'no class' (-1): they are dropped from training or "
                                 f"scoring, or crash a loss that indexes by class."))
        for v in pd.unique(raw.dropna()):
            seen_forms.setdefault(_label_form(v), set()).add(str(v))
        sample = raw.dropna().astype(str).head(1000)
        if len(sample) and sample.str.match(_VECTOR_LABEL).mean() > 0.5:
            problems.append(("fail", f"{s} labels look like vectors (e.g. '{sample.iloc[0]}')",
                             "A one-hot or multi-value label stored as text becomes one class per distinct "
                             "vector; index targets (0..C-1) are what a cross-entropy loss expects."))
    clashes = {form: sorted(v) for form, v in seen_forms.items() if len(v) > 1}
    if clashes:
        evidence["spelling_variants"] = clashes
        shown = "; ".join(" / ".join(repr(x) for x in v) for v in list(clashes.values())[:4])
        problems.append(("fail", f"{len(clashes)} label(s) are spelled in more than one way: {shown}",
                         "Each spelling becomes its own class, so one real class is split in two."))
    raw_train = ctx.labels("train").dropna()
    if (pd.api.types.is_string_dtype(raw_train) or raw_train.dtype == object) and len(raw_train):
        parsed = pd.to_numeric(raw_train.astype(str), errors="coerce")
        if parsed.notna().all():
            problems.append(("info", "numeric class labels are stored as text",
                             "Sorting text puts '10' before '2', so class indices follow string order; declare "
                             "[data] classes to fix the order."))
    if ctx.loss_name in ("bce", "bce_with_logits") and len(classes) > 2:
        problems.append(("fail", f"{ctx.loss_name} with {len(classes)} classes",
                         f"A binary loss gives the model one output, which cannot represent {len(classes)} classes."))
    try:
        ints = sorted(int(c) for c in classes) if classes and all(
            float(str(c)) == int(float(str(c))) for c in classes) else None
    except (TypeError, ValueError):
        ints = None
    if ints is not None and not declared and ints != list(range(len(ints))):
        evidence["integer_labels"] = ints[:20]
        problems.append(("info", f"integer labels are {ints[0]}..{ints[-1]}, not 0..{len(ints) - 1}",
                         "mltriage maps them to output indices in sorted order; code that uses the raw values "
                         "as indices into the model's outputs would be off or out of range."))
    if declared:
        present = {_label_form(v) for v in pd.unique(pd.concat([ctx.labels(s) for s in ctx.splits]).dropna())}
        never = [str(c) for c in classes if _label_form(c) not in present]
        if never:
            evidence["declared_never_seen"] = never
            problems.append(("warn", f"declared class(es) never appear in any split: {', '.join(never[:5])}",
                             "[data] classes and the label column disagree; check spelling and order."))
    return problems, evidence


@check("data.label_values", title="Label values match the classes and the model")
def label_values(ctx: RunContext):
    if ctx.is_classification:
        problems, evidence = _classification_label_problems(ctx)
    else:
        problems, evidence = _regression_label_problems(ctx)
    plots = []
    counts = ctx.labels("train").astype(str).value_counts(dropna=False).head(20)
    if ctx.is_classification and len(counts):
        plots.append(PlotSpec(kind="bar", title="train label values", x_label="label", y_label="rows",
                              series=[Series("train", list(counts.index), counts.tolist())]))
    evidence["problems"] = [{"status": s, "title": t} for s, t, _ in problems]
    order = {"fail": 0, "warn": 1, "info": 2}
    problems.sort(key=lambda p: order[p[0]])
    if not problems:
        what = f"{len(ctx.classes)} classes" if ctx.is_classification else "numeric target"
        return passed(f"every label is valid ({what})", evidence=evidence, plots=plots)
    status, title, _ = problems[0]
    make = {"fail": fail, "warn": warn, "info": info}[status]
    return make(title + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                detail=" ".join(f"{t}: {d}" for _, t, d in problems),
                fix="Clean the label column at export: one spelling per class, values inside [data] classes, class "
                    "indices rather than one-hot vectors; set [data] classes to fix the output order.",
                evidence=evidence, plots=plots)


# Northcutt, Athalye & Mueller 2021 ("Pervasive label errors in test sets destabilize machine learning
# benchmarks") estimate 3.3% label errors on average across ten popular benchmarks (about 6% in ImageNet
# validation, ~10% at worst in QuickDraw). We warn from 5% and fail from 10% estimated noise.
LABEL_NOISE_WARN = 0.05
LABEL_NOISE_FAIL = 0.10
LABEL_NOISE_INFO = 0.01
LABEL_ISSUE_MIN_ROWS = 10
# The verdict counts only flags where the out-of-fold model gives the given label under this probability:
# on inherently ambiguous data (texts with mixed sentiment) confident learning also flags hard rows whose
# label is plausible; a wrong label on a clear example (a shifted join) sits far below it.
CONFIDENT_P_GIVEN = 0.05


@check("data.label_issues", title="Likely mislabelled training rows", needs=("classification",),
       imports=("sklearn.linear_model", "sklearn.model_selection", "sklearn.feature_extraction.text",
                "cleanlab.filter"))
def label_issues(ctx: RunContext):
    import numpy as np

    analysis = label_issue_analysis(ctx)
    oof = analysis["oof"]
    if oof["model"] is None:
        raise SkipCheck(f"cannot cross-validate a label model: {oof.get('reason', 'no usable rows')}")
    mask, pos = analysis["mask"], oof["positions"]
    y = ctx.y("train")
    n_used, n_flagged = len(pos), int(mask.sum())
    p_given_all = np.full(len(ctx.train), np.nan)
    p_given_all[pos] = analysis["self_confidence"]
    confident = mask & (np.nan_to_num(p_given_all, nan=1.0) < CONFIDENT_P_GIVEN)
    n_confident = int(confident.sum())
    fraction = n_confident / n_used
    classes = [str(c) for c in ctx.classes]
    per_class = {}
    for i, c in enumerate(classes):
        rows = int((y[pos] == i).sum())
        if rows:
            per_class[c] = {"rows": rows, "flagged": int(mask[pos][y[pos] == i].sum()),
                            "noise_rate": round(float(mask[pos][y[pos] == i].mean()), 4)}
    flagged = np.flatnonzero(mask)
    conf = np.full(len(ctx.train), np.nan)
    conf[pos] = analysis["self_confidence"]
    flagged = flagged[np.argsort(conf[flagged])][:10]
    proba = oof["proba"]
    ids = [c for c in ctx.config.ignore if c in ctx.train.columns][:2]
    shown = ids + [c for c in (ctx.text_columns or ctx.feature_columns)][:3]
    examples = []
    for r in flagged:
        row = {"row": int(r), "given": classes[int(y[r])], "predicted": classes[int(np.nanargmax(proba[r]))],
               "p_given": round(float(proba[r, y[r]]), 3), "p_predicted": round(float(np.nanmax(proba[r])), 3)}
        row.update({c: _short(ctx.train[c].iloc[int(r)]) for c in shown})
        examples.append(row)
    evidence = {"flagged": n_flagged, "flagged_confident": n_confident, "rows_examined": n_used,
                "train_rows": len(ctx.train), "flagged_share": round(n_flagged / n_used, 4),
                "estimated_noise_rate": round(fraction, 4), "confident_p_given": CONFIDENT_P_GIVEN, "per_class": per_class, "model": oof["model"],
                "features": oof.get("features"), "cv_folds": CV_FOLDS, "oof_accuracy": round(oof["accuracy"], 4),
                "examples": examples,
                "thresholds": {"info": LABEL_NOISE_INFO, "warn": LABEL_NOISE_WARN, "fail": LABEL_NOISE_FAIL}}
    plot = PlotSpec(kind="bar", title="share of rows flagged as likely mislabelled, per given class",
                    x_label="class", y_label="flagged share",
                    series=[Series("flagged", list(per_class), [v["noise_rate"] for v in per_class.values()])])
    how = (f"Out-of-fold probabilities from {oof['model']} ({CV_FOLDS}-fold, out-of-fold accuracy "
           f"{oof['accuracy']:.1%}) on {oof.get('features')}{sample_note(n_used, oof['labelled'])}; confident "
           f"learning (cleanlab find_label_issues) flags rows whose given label the model confidently rejects.")
    worst = max(per_class.items(), key=lambda kv: kv[1]["noise_rate"])
    detail = (f"{how} {n_flagged} of {n_used} rows flagged ({n_flagged / n_used:.1%}); in {n_confident} of them "
              f"({fraction:.1%}, the estimate judged here) the model gives the given label less than "
              f"{CONFIDENT_P_GIVEN:.0%}, the rest are ambiguous rows. Highest flagged share in class '{worst[0]}' "
              f"({worst[1]['noise_rate']:.1%}). For comparison, Northcutt et al. (2021) estimate about 3% label "
              f"errors in widely used benchmark test sets; thresholds: info {LABEL_NOISE_INFO:.0%}, warn "
              f"{LABEL_NOISE_WARN:.0%}, fail {LABEL_NOISE_FAIL:.0%}.")
    fix = ("Review the example rows (highest-confidence disagreements first); relabel or drop the wrong ones, "
           "and find the step that produced them (a shifted join, an augmentation script, an annotator).")
    if fraction >= LABEL_NOISE_FAIL and n_confident >= 2 * LABEL_ISSUE_MIN_ROWS:
        return fail(f"about {fraction:.0%} of training labels look wrong ({n_confident} rows)", detail=detail,
                    fix=fix, evidence=evidence, plots=[plot])
    if fraction >= LABEL_NOISE_WARN and n_confident >= LABEL_ISSUE_MIN_ROWS:
        return warn(f"{n_confident} training rows ({fraction:.1%}) look mislabelled", detail=detail, fix=fix,
                    evidence=evidence, plots=[plot])
    if (fraction >= LABEL_NOISE_INFO and n_confident >= LABEL_ISSUE_MIN_ROWS) or n_flagged / n_used >= LABEL_NOISE_WARN:
        return info(f"{n_confident} training rows ({fraction:.1%}) look mislabelled, {n_flagged} are doubtful",
                    detail=detail, fix=fix, evidence=evidence, plots=[plot])
    return passed(f"{n_flagged} of {n_used} training rows flagged as possibly mislabelled ({n_flagged / n_used:.1%})",
                  detail=detail, evidence=evidence, plots=[plot])


# --- drift ---------------------------------------------------------------------------------------
# Effect sizes, not p-values: with 100k rows a KS test rejects for shifts nobody cares about. A shift
# counts when the effect is large enough (KS D / Jensen-Shannon distance >= 0.1, the level drift monitors
# such as Evidently use by default for large samples) AND it is significant at p < 0.001, which guards
# small validation sets where D fluctuates by chance.
DRIFT_EFFECT = 0.1
DRIFT_P = 1e-3
DRIFT_SAMPLE = 10_000  # KS D is accurate to about 0.02 at this size, 5x below the effect threshold
# A classifier that tells train rows from valid rows with AUC >= 0.7 finds a systematic difference
# (0.5 = indistinguishable); 0.6 is a noticeable one.
DOMAIN_AUC_WARN = 0.7
DOMAIN_AUC_INFO = 0.6
MAX_CATEGORIES = 50


def _categorical_drift(a, b):
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    a = a.astype("string").fillna("<missing>")
    b = b.astype("string").fillna("<missing>")
    top = a.value_counts().index[:MAX_CATEGORIES]
    ca = a.where(a.isin(top), "<other>").value_counts()
    cb = b.where(b.isin(top), "<other>").value_counts()
    keys = sorted(set(ca.index) | set(cb.index))
    fa = np.array([ca.get(k, 0) for k in keys], dtype=float)
    fb = np.array([cb.get(k, 0) for k in keys], dtype=float)
    js = float(jensenshannon(fa / fa.sum(), fb / fb.sum(), base=2)) if fa.sum() and fb.sum() else 0.0
    table = np.vstack([fa, fb])
    table = table[:, table.sum(axis=0) > 0]
    p = float(chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0
    return {"kind": "categorical", "effect": round(js, 4), "measure": "Jensen-Shannon distance", "p_value": p}


def _numeric_drift(a, b):
    import numpy as np
    from scipy.stats import ks_2samp, wasserstein_distance

    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 5 or len(b) < 5:
        return None
    ks = ks_2samp(a, b, method="asymp")
    spread = np.subtract(*np.percentile(a, [75, 25])) or np.std(a) or 1.0
    return {"kind": "numeric", "effect": round(float(ks.statistic), 4), "measure": "KS D",
            "p_value": float(ks.pvalue), "wasserstein_over_iqr": round(float(wasserstein_distance(a, b) / spread), 4),
            "mean_train": float(np.mean(a)), "mean_other": float(np.mean(b))}


def _domain_auc(ctx: RunContext, other: str, columns: list[str]) -> float | None:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if not columns:
        return None
    cap = MODEL_SAMPLE // 2
    frames = []
    for i, s in enumerate(("train", other)):
        df = ctx.splits[s]
        frames.append(df.iloc[sample_range(len(df), cap, ctx.seed + i)][columns])
    if min(len(f) for f in frames) < 20:
        return None
    both = pd.concat(frames, ignore_index=True)
    blocks = []
    for c in columns:
        if c in ctx.numeric_columns:
            blocks.append(numeric_values(both[c]))
        else:
            codes, _ = pd.factorize(both[c].astype("string"))
            blocks.append(np.where(codes < 0, np.nan, codes).astype(float))
    X = np.column_stack(blocks)
    varies = [j for j in range(X.shape[1]) if len(np.unique(X[:, j])) > 1]  # NaNs count as distinct
    if not varies:  # every feature constant: nothing tells the splits apart (and the model cannot bin it)
        return None
    X = X[:, varies]
    target = np.r_[np.zeros(len(frames[0])), np.ones(len(frames[1]))]
    model = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, early_stopping=False,
                                           random_state=ctx.seed)
    # Two folds: every row still gets an out-of-fold score; on synthetic mean shifts of 0 to 0.5 SD the
    # AUC moved by at most 0.006 against three folds, at 60% of the cost.
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=ctx.seed)
    with one_thread():
        return float(np.mean(cross_val_score(model, X, target, cv=folds, scoring="roc_auc")))


@check("data.drift", title="Distribution shift between train and valid/test",
       imports=("scipy.stats", "sklearn.ensemble", "sklearn.model_selection"))
def drift(ctx: RunContext):
    others = [s for s in ("valid", "test") if s in ctx.splits]
    ids = _id_like_columns(ctx)
    texts = ctx.text_columns
    columns = [c for c in ctx.feature_columns if c not in ids and c not in texts]
    train = ctx.train
    tpos = sample_range(len(train), DRIFT_SAMPLE, ctx.seed)
    per_split, plots, domain = {}, [], {}
    for s in others:
        df = ctx.splits[s]
        opos = sample_range(len(df), DRIFT_SAMPLE, ctx.seed + 1)
        stats = {}
        for c in columns:
            a, b = train[c].iloc[tpos], df[c].iloc[opos]
            r = _numeric_drift(numeric_values(a), numeric_values(b)) if c in ctx.numeric_columns \
                else _categorical_drift(a, b)
            if r:
                stats[c] = r
        for c in texts:  # free text: compare lengths
            r = _numeric_drift(train[c].iloc[tpos].astype("string").str.len().to_numpy(dtype=float, na_value=0),
                               df[c].iloc[opos].astype("string").str.len().to_numpy(dtype=float, na_value=0))
            if r:
                stats[f"len({c})"] = r
        per_split[s] = stats
        domain[s] = _domain_auc(ctx, s, columns)
    # Bonferroni over the features tested: with 10,000 columns, p < 0.001 alone would flag ~10 by chance.
    p_limit = {s: DRIFT_P / max(1, len(st)) for s, st in per_split.items()}
    shifted = {s: sorted([(c, r) for c, r in st.items() if r["effect"] >= DRIFT_EFFECT and r["p_value"] < p_limit[s]],
                         key=lambda cr: -cr[1]["effect"]) for s, st in per_split.items()}
    evidence = {"compared": others, "sample_rows": {"train": int(len(tpos))}, "excluded_id_like": list(ids),
                "domain_classifier_auc": {s: (round(v, 4) if v is not None else None) for s, v in domain.items()},
                "shifted": {s: [{"feature": c, **r} for c, r in sh[:10]] for s, sh in shifted.items()},
                "largest_effects": {s: sorted(({"feature": c, "effect": r["effect"], "measure": r["measure"]}
                                               for c, r in st.items()), key=lambda d: -d["effect"])[:5]
                                    for s, st in per_split.items()},
                "thresholds": {"effect": DRIFT_EFFECT, "p_value": DRIFT_P, "p_value_bonferroni": p_limit,
                               "domain_auc_warn": DOMAIN_AUC_WARN}}
    if not columns and not texts:
        raise SkipCheck("no feature columns to compare")
    for s, sh in shifted.items():
        for c, r in sh[:3]:
            df = ctx.splits[s]
            opos = sample_range(len(df), DRIFT_SAMPLE, ctx.seed + 1)
            if r["kind"] == "numeric" and c in ctx.numeric_columns:
                plots.append(PlotSpec.histogram(f"{c}: train vs {s} (KS D = {r['effect']:.2f})",
                                                {"train": numeric_values(train[c].iloc[tpos]),
                                                 s: numeric_values(df[c].iloc[opos])}, x_label=c, y_label="rows"))
            elif r["kind"] == "categorical":
                a = train[c].iloc[tpos].astype("string").value_counts(normalize=True).head(12)
                b = df[c].iloc[opos].astype("string").value_counts(normalize=True)
                plots.append(PlotSpec(kind="bar", title=f"{c}: train vs {s} (JS = {r['effect']:.2f})",
                                      x_label=c, y_label="share", series=[
                                          Series("train", list(a.index), a.tolist()),
                                          Series(s, list(a.index), [float(b.get(k, 0.0)) for k in a.index])]))
    worst_auc = max((v for v in domain.values() if v is not None), default=None)
    n_shifted = sum(len(v) for v in shifted.values())
    note = sample_note(len(tpos), len(train))
    if not n_shifted and (worst_auc is None or worst_auc < DOMAIN_AUC_INFO):
        return passed("train and " + "/".join(others) + " look alike"
                      + (f" (domain classifier AUC {worst_auc:.2f})" if worst_auc is not None else ""),
                      evidence=evidence, plots=plots)
    lines = []
    for s, sh in shifted.items():
        if sh:
            lines.append(f"{s}: " + ", ".join(f"{c} ({r['measure']} {r['effect']:.2f})" for c, r in sh[:5])
                         + (f" and {len(sh) - 5} more" if len(sh) > 5 else ""))
    detail = (("Shifted features (effect >= " f"{DRIFT_EFFECT:g}, p < {DRIFT_P:g}){note}: " + "; ".join(lines) + ". "
               if lines else "")
              + (f"A classifier telling train rows from other-split rows reaches AUC {worst_auc:.2f} "
                 f"(0.5 = indistinguishable). " if worst_auc is not None else "")
              + ("Note: valid was held out at random from train, so a shift there is chance or an ordering effect."
                 if ctx.valid_is_holdout else "The model is judged on data that differs from what it learnt from."))
    fix = ("If the splits come from different periods or sources, that is the shift you will meet in production: "
           "keep it and track per-segment metrics. If they should be alike, re-split at random (or by group) and "
           "check the export for unit or encoding changes in the shifted columns.")
    if n_shifted or (worst_auc or 0) >= DOMAIN_AUC_WARN:
        title = (f"{n_shifted} feature shift(s) between train and {'/'.join(s for s in shifted if shifted[s]) or others[0]}"
                 if n_shifted else f"train and {others[0]} are distinguishable (AUC {worst_auc:.2f})")
        return warn(title, detail=detail, fix=fix, evidence=evidence, plots=plots)
    return info(f"a slight difference between train and {'/'.join(others)} (domain AUC {worst_auc:.2f})",
                detail=detail, fix=fix, evidence=evidence, plots=plots)


# --- text quality --------------------------------------------------------------------------------
_MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€|ï»¿")  # UTF-8 read as Latin-1/cp1252
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
# Encoding damage or contradictory duplicate texts in at least this share of rows is systematic: fail.
TEXT_DAMAGE_FAIL = 0.01
EMPTY_TEXT_WARN = 0.01
# Lengths more than this many robust SDs from the median (log scale) are truncation or concatenation
# accidents rather than long reviews.
LENGTH_Z = 5.0


def _text_stats(series) -> dict:
    import numpy as np

    s = series.astype("string")
    filled = s.fillna("")
    empty = (filled.str.strip() == "").to_numpy(dtype=bool)
    stats = {"rows": len(s), "empty": int(empty.sum()),
             "replacement_char": int(filled.str.contains("\ufffd", regex=False).sum()),
             "mojibake": int(filled.str.contains(_MOJIBAKE).sum()),
             "control_chars": int(filled.str.contains(_CONTROL).sum())}
    lengths = filled.str.len().to_numpy(dtype=float, na_value=0)
    loglen = np.log1p(lengths[~empty])
    if len(loglen) >= 20:
        med = np.median(loglen)
        mad = 1.4826 * np.median(np.abs(loglen - med))
        outlying = np.abs(loglen - med) > LENGTH_Z * max(mad, 1e-9) if mad > 0 else np.zeros(len(loglen), bool)
        stats["length_outliers"] = int(outlying.sum())
        stats["median_length"] = float(np.median(lengths[~empty]))
    stats["_damaged"] = filled[filled.str.contains("\ufffd", regex=False) | filled.str.contains(_MOJIBAKE)
                               | filled.str.contains(_CONTROL)].head(3).tolist()
    return stats


@check("data.text_quality", title="Text hygiene", prefetch=prefetch_row_keys)
def text_quality(ctx: RunContext):
    import numpy as np

    from ..analyses.rowkeys import keys_with_several_labels

    texts = ctx.text_columns
    if not texts:
        raise SkipCheck('no free-text column (set [data] text = ["..."] if there is one)')
    per, examples, worst_frac, empty_frac, control = {}, {}, 0.0, 0.0, 0
    note = ""
    for c in texts:
        for s, df in ctx.splits.items():
            pos = sample_range(len(df), STATS_SAMPLE, ctx.seed)
            note = note or sample_note(len(pos), len(df))
            st = _text_stats(df[c].iloc[pos])
            damaged = st.pop("_damaged")
            if damaged:
                examples[f"{s}:{c}"] = [_short(repr(t), 100) for t in damaged]
            per[f"{s}:{c}"] = st
            worst_frac = max(worst_frac, (st["replacement_char"] + st["mojibake"]) / max(st["rows"], 1))
            empty_frac = max(empty_frac, st["empty"] / max(st["rows"], 1))
            control += st["control_chars"]
    conflicts = {}
    if ctx.is_classification:
        y = ctx.y("train")
        for c in texts:
            codes = text_codes(ctx, "train", c)
            blank = codes < 0  # empty texts are counted as empty, not as contradictions
            usable = (y >= 0) & ~blank
            _, bad = keys_with_several_labels(codes.view(np.uint64), np.where(blank, -1, y))
            if bad.any():
                rows = np.flatnonzero(bad)
                conflicts[c] = {"rows": int(bad.sum()), "fraction": round(float(bad.sum() / max(usable.sum(), 1)), 4),
                                "examples": _records(ctx.train, rows[:4], [c, ctx.target], 4)}
    evidence = {"columns": texts, "per_split": per, "damaged_examples": examples,
                "duplicate_texts_different_labels": conflicts}
    conflict_frac = max((v["fraction"] for v in conflicts.values()), default=0.0)
    plot = PlotSpec(kind="bar", title="text problems per split and column", x_label="split:column", y_label="rows",
                    series=[Series(k, list(per), [v.get(k, 0) for v in per.values()])
                            for k in ("empty", "replacement_char", "mojibake", "control_chars", "length_outliers")])
    problems = []
    if worst_frac:
        problems.append(("fail" if worst_frac >= TEXT_DAMAGE_FAIL else "warn",
                         f"encoding damage in up to {worst_frac:.1%} of texts",
                         "Replacement characters (U+FFFD) or mojibake such as 'Ã©' mean the text was decoded with the "
                         "wrong codec somewhere; the tokenizer sees garbage words."))
    if conflicts:
        problems.append(("fail" if conflict_frac >= TEXT_DAMAGE_FAIL else "warn",
                         f"{sum(v['rows'] for v in conflicts.values())} training texts repeat with different labels",
                         "The same text (after lower-casing and dropping punctuation) carries two labels."))
    if empty_frac:
        problems.append(("warn" if empty_frac >= EMPTY_TEXT_WARN else "info",
                         f"up to {empty_frac:.1%} of texts are empty or whitespace", "Empty inputs carry no signal."))
    if control:
        problems.append(("warn", f"{control} texts contain control characters",
                         "Control characters usually come from binary junk or broken escaping in the export."))
    outliers = sum(v.get("length_outliers", 0) for v in per.values())
    if outliers:
        problems.append(("info", f"{outliers} texts have outlying lengths",
                         f"Lengths more than {LENGTH_Z:g} robust SDs from the median (log scale): often truncated "
                         f"or concatenated records."))
    if not problems:
        return passed(f"text in {', '.join(texts)} is clean{note}", evidence=evidence)
    order = {"fail": 0, "warn": 1, "info": 2}
    problems.sort(key=lambda p: order[p[0]])
    status, title, _ = problems[0]
    return {"fail": fail, "warn": warn, "info": info}[status](
        title + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
        detail=" ".join(f"{t}: {d}" for _, t, d in problems) + (f" Measured{note}." if note else ""),
        fix="Decode files as UTF-8 at the source (ftfy.fix_text repairs mojibake), drop empty texts, strip control "
            "characters, and resolve texts that carry two labels.", evidence=evidence, plots=[plot])


# --- label order ---------------------------------------------------------------------------------
# Excess same-label adjacency, kappa = (s - s0) / (1 - s0) where s is the share of neighbouring rows with
# the same label and s0 its expectation under a random order (a k-category Wald-Wolfowitz runs test).
# 0 = shuffled, 1 = fully blocked. Half-way to blocked, mini-batches hold mostly one class.
ORDER_KAPPA_WARN = 0.5
ORDER_KAPPA_INFO = 0.1
ORDER_Z = 5.0  # significance guard for small files
ORDER_MIN_ROWS = 20


@check("data.label_order", title="Training file ordered by label")
def label_order(ctx: RunContext):
    import math

    import numpy as np
    import pandas as pd

    raw = ctx.raw_splits["train"][ctx.target].dropna()  # file order
    n = len(raw)
    if n < ORDER_MIN_ROWS:
        raise SkipCheck(f"only {n} labelled training rows")
    if ctx.is_classification:
        codes, _ = pd.factorize(raw.astype("string"))
        counts = np.bincount(codes)
        same = int((codes[1:] == codes[:-1]).sum())
        s0 = float((counts * (counts - 1)).sum() / (n * (n - 1)))
        if s0 >= 1:
            raise SkipCheck("a single class: order does not matter")
        s = same / (n - 1)
        kappa = (s - s0) / (1 - s0)
        z = (same - (n - 1) * s0) / math.sqrt(max((n - 1) * s0 * (1 - s0), 1e-12))
        runs = int(n - same)
        expected_runs = float(n - (n - 1) * s0)
        evidence = {"rows": n, "runs": runs, "expected_runs": round(expected_runs, 1), "kappa": round(kappa, 4),
                    "z": round(z, 2), "sorted": bool(runs == len(counts[counts > 0]))}
        measure = f"{runs} label runs where a shuffled file would have about {expected_runs:.0f} (kappa {kappa:.2f})"
        blocks = max(1, n // 50)
        idx = np.arange(0, n, blocks)
        share = [Series(str(k), idx.tolist(), [float((codes[i:i + blocks] == j).mean()) for i in idx])
                 for j, k in enumerate(_[:6])]
        plot = PlotSpec(kind="line", title="label share along the training file", x_label="row",
                        y_label="share in block", series=share)
    else:
        y = pd.to_numeric(raw, errors="coerce").dropna().to_numpy(dtype=float)
        if len(y) < ORDER_MIN_ROWS or np.ptp(y) == 0:
            raise SkipCheck("too few numeric targets")
        r = pd.Series(y).rank().to_numpy()
        kappa = float(np.corrcoef(r[1:], r[:-1])[0, 1])
        z = kappa * math.sqrt(len(y))
        evidence = {"rows": len(y), "lag1_rank_autocorrelation": round(kappa, 4), "z": round(z, 2),
                    "sorted": bool(np.all(np.diff(y) >= 0) or np.all(np.diff(y) <= 0))}
        measure = f"lag-1 rank autocorrelation of the target {kappa:.2f}"
        step = max(1, len(y) // 500)
        plot = PlotSpec(kind="scatter", title="target along the training file", x_label="row", y_label=ctx.target,
                        series=[Series("target", list(range(0, len(y), step)), y[::step].tolist())])
    evidence["thresholds"] = {"warn": ORDER_KAPPA_WARN, "info": ORDER_KAPPA_INFO, "z": ORDER_Z}
    if kappa >= ORDER_KAPPA_WARN and z > ORDER_Z:
        title = "the training file is sorted by label" if evidence["sorted"] else "the training file is blocked by label"
        detail = (f"{measure}. A loader that reads the file in order (shuffle=False, streaming, or an sklearn "
                  f"SGD/MLP with shuffle off) feeds batches of one class at a time: the model chases each block "
                  f"and forgets the last.")
        fix = "Shuffle the training rows every epoch (DataLoader(shuffle=True)) or once when writing the file."
        if ctx.has_model and ctx.model_kind == "sklearn":
            return info(title + " (most estimators see all rows at once)", detail=detail, fix=fix,
                        evidence=evidence, plots=[plot])
        return warn(title, detail=detail, fix=fix, evidence=evidence, plots=[plot])
    if kappa >= ORDER_KAPPA_INFO and z > ORDER_Z:
        return info("labels cluster somewhat along the training file", detail=f"{measure}; mild, typical of "
                    f"data written in time or source order.", fix="Shuffle when loading.", evidence=evidence,
                    plots=[plot])
    return passed("the training file is not ordered by label", detail=measure, evidence=evidence)
