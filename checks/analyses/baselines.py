"""What input-independent and one-feature models score on valid, in the project's metric: the
baseline every model must beat (problem.baseline, metrics.vs_baseline, data.target_leakage)."""

from __future__ import annotations

from ..engine.context import RunContext
from .sampling import labelled_positions, sample_positions


# --- baselines -----------------------------------------------------------------------------------
# Single-feature models are fitted on at most this many training rows and scored on at most this
# many validation rows: a one-feature model's score is stable to about +-0.01 at these sizes.
BASELINE_TRAIN_SAMPLE = 30_000


BASELINE_VALID_SAMPLE = 20_000


# The one-feature model is a step function over this many quantile bins of the feature (plus one bin for
# missing values): a depth-6 tree's resolution, fitted in linear time with bin counts.
SINGLE_FEATURE_LEAVES = 64


# Past this many features, single-feature models are fitted on a seeded random subset of them.
MAX_SINGLE_FEATURES = 200


def encode_single_feature(ctx: RunContext, column: str, train_pos, y_train, other_values):
    """One raw column as a float vector for a one-feature model: numbers as they are (inf -> NaN),
    categories replaced by what the training rows say about them (majority class + its share for
    classification, the mean target for regression); unseen categories and missing values -> NaN.
    Returns (train_vector, [vector for each of other_values])."""
    import numpy as np
    import pandas as pd

    train_col = ctx.train[column].iloc[train_pos]
    if column in ctx.numeric_columns:
        def as_float(s):
            v = np.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
            v[~np.isfinite(v)] = np.nan
            return v
        return as_float(train_col), [as_float(s) for s in other_values]
    # Factorise train and the other splits together, then tabulate labels per category with bincount:
    # one vectorised pass instead of a groupby and a map per split.
    parts = [train_col] + list(other_values)
    joint = pd.concat([p.astype("string").reset_index(drop=True) for p in parts], ignore_index=True)
    codes, uniques = pd.factorize(joint, use_na_sentinel=True)
    k = len(uniques)
    train_codes = codes[:len(train_col)]
    known = train_codes >= 0
    if ctx.is_classification:
        n_classes = int(max(np.max(y_train, initial=0), len(ctx.classes) - 1)) + 1
        cells = train_codes[known].astype(np.int64) * n_classes + np.asarray(y_train)[known].astype(np.int64)
        counts = np.bincount(cells, minlength=k * n_classes).reshape(k, n_classes).astype(float)
        seen = counts.sum(axis=1)
        value = np.where(seen > 0, counts.argmax(axis=1) + 0.5 * counts.max(axis=1) / np.maximum(seen, 1), np.nan)
    else:
        seen = np.bincount(train_codes[known], minlength=k).astype(float)
        sums = np.bincount(train_codes[known], weights=np.asarray(y_train, dtype=float)[known], minlength=k)
        value = np.where(seen > 0, sums / np.maximum(seen, 1), np.nan)
    encoded = np.append(value, np.nan)[codes]  # code -1 (missing) picks the trailing NaN
    bounds = np.cumsum([0] + [len(p) for p in parts])
    pieces = [encoded[bounds[i]:bounds[i + 1]] for i in range(len(parts))]
    return pieces[0], pieces[1:]


def single_feature_columns(ctx: RunContext) -> list[str]:
    """Raw feature columns a one-feature model can use (free text is left to the project's featurize)."""
    import numpy as np

    text = set(ctx.text_columns)
    cols = [c for c in ctx.feature_columns if c not in text]
    if len(cols) > MAX_SINGLE_FEATURES:
        rng = np.random.default_rng(ctx.seed)
        cols = sorted(rng.choice(cols, size=MAX_SINGLE_FEATURES, replace=False).tolist(), key=cols.index)
    return cols


def _quantile_bins(x_train, x_valid):
    """Bin indices for train and valid on the train quantiles; NaN gets the last bin."""
    import numpy as np

    finite = x_train[~np.isnan(x_train)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, SINGLE_FEATURE_LEAVES + 1)[1:-1]))
    n_bins = len(edges) + 2

    def assign(x):
        b = np.searchsorted(edges, x, side="right")
        b[np.isnan(x)] = n_bins - 1
        return b

    return assign(x_train), assign(x_valid), n_bins


def _strength(ctx: RunContext, y_true, pred) -> float | None:
    """How well one feature predicts the label on a 0..1 scale independent of the metric: chance-
    corrected balanced accuracy for classification, R^2 for regression (clipped at 0)."""
    import numpy as np

    from .scoring import score

    if ctx.is_classification:
        present = np.unique(y_true)
        if len(present) < 2:
            return None
        bacc = score("balanced_accuracy", y_true, pred=pred)
        chance = 1.0 / len(present)
        return max(0.0, (bacc - chance) / (1.0 - chance))
    r2 = score("r2", y_true, pred=pred)
    return None if r2 is None else max(0.0, r2)


def baseline_scores(ctx: RunContext) -> dict:
    """What input-independent and one-feature models score on valid, in the project's metric.

    Cached for the run (metrics.vs_baseline reads it too). Keys: metric, higher_is_better, majority
    (the score of predicting the training majority class / mean), best_single_feature {feature, score},
    per_feature (best first, with a metric-free `strength` in 0..1), and the sample sizes used."""
    return ctx.shared("problem:baseline", lambda: _compute_baseline(ctx))


def _compute_baseline(ctx: RunContext) -> dict:
    import numpy as np
    from .scoring import higher_is_better, score

    metric = ctx.metric
    train_pos = sample_positions(labelled_positions(ctx, "train"), BASELINE_TRAIN_SAMPLE, ctx.seed)
    valid_labelled = labelled_positions(ctx, "valid")
    valid_pos = sample_positions(valid_labelled, BASELINE_VALID_SAMPLE, ctx.seed + 1)
    result = {"metric": metric, "higher_is_better": higher_is_better(metric), "majority": None,
              "best_single_feature": {"feature": None, "score": None}, "per_feature": [],
              "train_rows_used": int(len(train_pos)), "valid_rows_used": int(len(valid_pos)),
              "valid_rows_labelled": int(len(valid_labelled)),
              "sampled": bool(len(valid_pos) < len(valid_labelled)
                              or len(train_pos) < len(labelled_positions(ctx, "train")))}
    if len(train_pos) == 0 or len(valid_pos) == 0:
        return result
    y_train, y_valid = ctx.y("train")[train_pos], ctx.y("valid")[valid_pos]
    n_classes = len(ctx.classes) if ctx.is_classification else None

    if ctx.is_classification:
        prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
        proba = np.tile(prior, (len(y_valid), 1))
        result["majority"] = score(metric, y_valid, pred=np.full(len(y_valid), prior.argmax()), proba=proba,
                                   n_classes=n_classes)
        result["majority_class"] = str(ctx.classes[int(prior.argmax())])
    else:
        constant = float(np.median(y_train)) if metric == "mae" else float(np.mean(y_train))
        result["majority"] = score(metric, y_valid, pred=np.full(len(y_valid), constant))
        result["constant_prediction"] = constant

    valid_col = lambda c: ctx.valid[c].iloc[valid_pos]  # noqa: E731
    rows = []
    for column in single_feature_columns(ctx):
        x_train, (x_valid,) = encode_single_feature(ctx, column, train_pos, y_train, [valid_col(column)])
        if np.all(np.isnan(x_train)) or np.nanmin(x_train) == np.nanmax(x_train):
            continue
        bins_train, bins_valid, n_bins = _quantile_bins(x_train, x_valid)
        if ctx.is_classification:
            # class frequencies per bin, Laplace-smoothed so that no probability is exactly 0
            counts = np.zeros((n_bins, n_classes))
            np.add.at(counts, (bins_train, y_train), 1.0)
            proba = ((counts + 1.0) / (counts.sum(axis=1, keepdims=True) + n_classes))[bins_valid]
            pred = proba.argmax(axis=1)
            value = score(metric, y_valid, pred=pred, proba=proba, n_classes=n_classes)
        else:
            sums = np.bincount(bins_train, weights=y_train, minlength=n_bins)
            counts = np.bincount(bins_train, minlength=n_bins)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), float(np.mean(y_train)))
            pred = means[bins_valid]
            value = score(metric, y_valid, pred=pred)
        row = {"feature": column, "score": value, "strength": _strength(ctx, y_valid, pred)}
        if not ctx.is_classification and column in ctx.numeric_columns:
            row["spearman"] = _spearman(x_valid, y_valid)
        rows.append(row)
    sign = 1 if result["higher_is_better"] else -1
    scored = sorted([r for r in rows if r["score"] is not None], key=lambda r: -sign * r["score"])
    result["per_feature"] = scored + [r for r in rows if r["score"] is None]
    if scored:
        result["best_single_feature"] = {"feature": scored[0]["feature"], "score": scored[0]["score"]}
    return result


def _spearman(x, y) -> float | None:
    import numpy as np
    import pandas as pd

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return float(pd.Series(x[ok]).rank().corr(pd.Series(y[ok]).rank()))
