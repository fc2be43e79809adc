"""What input-independent and one-feature models score on valid, in the project's metric: the
baseline every model must beat (problem.baseline, metrics.vs_baseline, data.target_leakage), and
what a constant predictor scores on train (metrics.generalization_gap's underfitting reference)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..engine.analysis import analysis
from ..engine.context import RunContext
from .sampling import labelled_positions, sample_positions

# Single-feature models are fitted on at most this many training rows and scored on at most this
# many validation rows: a one-feature model's score is stable to about +-0.01 at these sizes.
BASELINE_TRAIN_SAMPLE = 30_000
BASELINE_VALID_SAMPLE = 20_000
# The one-feature model is a step function over this many quantile bins of the feature (plus one bin for
# missing values): a depth-6 tree's resolution, fitted in linear time with bin counts.
SINGLE_FEATURE_LEAVES = 64
# Past this many features, single-feature models are fitted on a seeded random subset of them.
MAX_SINGLE_FEATURES = 200


@dataclass(kw_only=True)
class Baseline:
    """The baseline scores on valid. Field order is the order of problem.baseline's evidence keys."""

    metric: str
    higher_is_better: bool
    majority: float | None = None          # score of a constant: the training majority class (regression: the
                                           # training mean, the median when judged by mae)
    best_single_feature: dict = field(default_factory=lambda: {"feature": None, "score": None})
    per_feature: list[dict] = field(default_factory=list)  # best first; `strength` is metric-free, 0..1
    train_rows_used: int
    valid_rows_used: int
    valid_rows_labelled: int
    sampled: bool
    majority_class: str | None = None       # classification: the class the constant predictor outputs
    constant_prediction: float | None = None  # regression: the value the constant predictor outputs

    def as_dict(self) -> dict:
        """The JSON form; the constant predictor's output is present only for the task it applies to."""
        optional = ("majority_class", "constant_prediction")
        return {k: v for k, v in asdict(self).items() if k not in optional or v is not None}

    def __getitem__(self, key: str):
        """Read by key like the dict this used to be (data.target_leakage and the contract test do)."""
        return getattr(self, key)


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


@analysis
def baseline_scores(ctx: RunContext) -> Baseline:
    """What input-independent and one-feature models score on valid, in the project's metric
    (computed once per run: problem.baseline, metrics.vs_baseline and data.target_leakage read it)."""
    from .scoring import higher_is_better

    metric = ctx.metric
    all_train = labelled_positions(ctx, "train")
    train_pos = sample_positions(all_train, BASELINE_TRAIN_SAMPLE, ctx.seed)
    valid_labelled = labelled_positions(ctx, "valid")
    valid_pos = sample_positions(valid_labelled, BASELINE_VALID_SAMPLE, ctx.seed + 1)
    result = Baseline(metric=metric, higher_is_better=higher_is_better(metric),
                      train_rows_used=int(len(train_pos)), valid_rows_used=int(len(valid_pos)),
                      valid_rows_labelled=int(len(valid_labelled)),
                      sampled=bool(len(valid_pos) < len(valid_labelled) or len(train_pos) < len(all_train)))
    if len(train_pos) == 0 or len(valid_pos) == 0:
        return result
    y_train, y_valid = ctx.y("train")[train_pos], ctx.y("valid")[valid_pos]
    _score_constant(ctx, result, y_train, y_valid)
    rows = _single_feature_rows(ctx, train_pos, valid_pos, y_train, y_valid)
    sign = 1 if result.higher_is_better else -1
    scored = sorted([r for r in rows if r["score"] is not None], key=lambda r: -sign * r["score"])
    result.per_feature = scored + [r for r in rows if r["score"] is None]
    if scored:
        result.best_single_feature = {"feature": scored[0]["feature"], "score": scored[0]["score"]}
    return result


def _score_constant(ctx: RunContext, result: Baseline, y_train, y_valid) -> None:
    """The input-independent predictor: the training majority class with the training priors as
    probabilities, or the training mean (median when judged by mae)."""
    import numpy as np

    from .scoring import score

    metric = result.metric
    if ctx.is_classification:
        n_classes = len(ctx.classes)
        prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
        proba = np.tile(prior, (len(y_valid), 1))
        result.majority = score(metric, y_valid, pred=np.full(len(y_valid), prior.argmax()), proba=proba,
                                n_classes=n_classes)
        result.majority_class = str(ctx.classes[int(prior.argmax())])
    else:
        constant = float(np.median(y_train)) if metric == "mae" else float(np.mean(y_train))
        result.majority = score(metric, y_valid, pred=np.full(len(y_valid), constant))
        result.constant_prediction = constant


def _single_feature_rows(ctx: RunContext, train_pos, valid_pos, y_train, y_valid) -> list[dict]:
    """One row per usable raw column: its one-feature model's score and strength on valid."""
    import numpy as np

    rows = []
    for column in single_feature_columns(ctx):
        valid_values = ctx.valid[column].iloc[valid_pos]
        x_train, (x_valid,) = encode_single_feature(ctx, column, train_pos, y_train, [valid_values])
        if np.all(np.isnan(x_train)) or np.nanmin(x_train) == np.nanmax(x_train):
            continue
        value, pred = _one_feature_model(ctx, x_train, x_valid, y_train, y_valid)
        row = {"feature": column, "score": value, "strength": _strength(ctx, y_valid, pred)}
        if not ctx.is_classification and column in ctx.numeric_columns:
            row["spearman"] = _spearman(x_valid, y_valid)
        rows.append(row)
    return rows


def _one_feature_model(ctx: RunContext, x_train, x_valid, y_train, y_valid):
    """(score on valid, predictions on valid) of a step function over the quantile bins of one feature."""
    import numpy as np

    from .scoring import score

    bins_train, bins_valid, n_bins = _quantile_bins(x_train, x_valid)
    if ctx.is_classification:
        n_classes = len(ctx.classes)
        # class frequencies per bin, Laplace-smoothed so that no probability is exactly 0
        counts = np.zeros((n_bins, n_classes))
        np.add.at(counts, (bins_train, y_train), 1.0)
        proba = ((counts + 1.0) / (counts.sum(axis=1, keepdims=True) + n_classes))[bins_valid]
        pred = proba.argmax(axis=1)
        return score(ctx.metric, y_valid, pred=pred, proba=proba, n_classes=n_classes), pred
    sums = np.bincount(bins_train, weights=y_train, minlength=n_bins)
    counts = np.bincount(bins_train, minlength=n_bins)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), float(np.mean(y_train)))
    pred = means[bins_valid]
    return score(ctx.metric, y_valid, pred=pred), pred


def _spearman(x, y) -> float | None:
    import numpy as np
    import pandas as pd

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return float(pd.Series(x[ok]).rank().corr(pd.Series(y[ok]).rank()))


# --- the baselines of metrics.vs_baseline -------------------------------------------------------
@dataclass
class BaselineRef:
    """The baselines the model is compared with on valid."""

    majority: float | None
    best_single_feature: dict | None      # {feature, score}, from problem.baseline only
    computed_by: str


def baseline_numbers(ctx: RunContext) -> BaselineRef:
    """The baselines metrics.vs_baseline compares with: baseline_scores (what problem.baseline reports),
    else, when that cannot be computed, a majority/mean baseline on all rows."""
    try:
        scores = baseline_scores(ctx)
    except Exception:  # problem.baseline reports its own failure (or skip); the majority baseline still applies
        scores = None
    if scores is not None and scores.metric == ctx.metric and scores.majority is not None:
        return BaselineRef(scores.majority, scores.best_single_feature, "problem.baseline")
    return BaselineRef(majority_baseline(ctx), None, "metrics (majority/mean only)")


def majority_baseline(ctx: RunContext) -> float | None:
    """The configured metric of an input-independent predictor fitted on train, scored on valid:
    the most frequent class with the train priors as probabilities, or the train mean (median for mae)."""
    import numpy as np

    from .scoring import score

    y_train, y_valid = ctx.y("train"), ctx.y("valid")
    if ctx.is_classification:
        y_train, y_valid = y_train[y_train >= 0], y_valid[y_valid >= 0]
        n = len(ctx.classes)
        if len(y_train) == 0 or len(y_valid) == 0:
            return None
        priors = np.bincount(y_train, minlength=n) / len(y_train)
        pred = np.full(len(y_valid), int(priors.argmax()))
        return score(ctx.metric, y_valid, pred=pred, proba=np.tile(priors, (len(y_valid), 1)), n_classes=n)
    y_train, y_valid = y_train[np.isfinite(y_train)], y_valid[np.isfinite(y_valid)]
    if len(y_train) == 0 or len(y_valid) == 0:
        return None
    centre = np.median(y_train) if ctx.metric == "mae" else y_train.mean()
    return score(ctx.metric, y_valid, pred=np.full(len(y_valid), centre))


# --- the train baseline of metrics.generalization_gap -------------------------------------------
def train_baseline(ctx: RunContext, metric: str) -> float | None:
    """The input-independent baseline on train for the gap metric (what a constant predictor scores)."""
    import numpy as np

    if not ctx.is_classification:
        return 0.0 if metric == "r2" else None
    y = ctx.y("train")
    y = y[y >= 0]
    if len(y) == 0:
        return None
    counts = np.bincount(y, minlength=len(ctx.classes))
    if metric == "accuracy":
        return float(counts.max() / counts.sum())
    if metric == "balanced_accuracy":
        return 1.0 / max(1, int((counts > 0).sum()))
    if metric == "roc_auc":
        return 0.5
    from .scoring import score

    return score(metric, y, pred=np.full(len(y), int(counts.argmax())), n_classes=len(ctx.classes))
