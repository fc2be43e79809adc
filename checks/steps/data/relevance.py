"""data.feature_relevance: which raw features carry no signal about the target, and whether the features
together beat the input-independent baseline. Info or warn, never fail: an irrelevant column costs little,
and a weak feature set is a finding about the problem, not a bug in the code.

Each feature's signal is its mutual information with the target on the validation rows (features encoded as
problem.baseline encodes them, fitted on train; numbers in train-quantile bins), against a noise baseline: the
same measure on shuffled copies of the feature, which keep its distribution and lose any relation to the
target (a permutation test, as in Ojala & Garriga 2010, "Permutation tests for studying classifier
performance"). The features together are judged by a quick gradient-boosted model fitted on train and scored
on valid in the project's metric, with a paired bootstrap interval against the baseline's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.baselines import baseline_scores, encode_single_feature, single_feature_columns
from ...analyses.sampling import MODEL_SAMPLE, labelled_positions, one_thread, sample_positions
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, info, passed, warn

# Features are binned on at most this many train quantiles (plus one bin for missing values): enough to see
# a non-monotone relation at thousands of rows.
MI_BINS = 16
# Regression targets are binned into at most this many quantiles for the mutual information.
TARGET_BINS = 10
# On fewer rows the bins shrink so that the feature x target table expects at least this many rows per cell
# (Cochran's 1954 rule for the chi-square/G test, of which the plug-in MI is a scaled form): too many cells
# on few rows leaves a test with no power, the noise baseline as high as any real relation.
MIN_CELL_ROWS = 5
# Shuffled copies per feature for the noise baseline; the smallest attainable p-value is 1/(1+PERMUTATIONS).
PERMUTATIONS = 99
# A feature carries no detectable signal when its MI is not above the noise baseline at this level
# (p = share of shuffled copies scoring at least as high; the usual 5% level).
NO_SIGNAL_P = 0.05
# Relevance is measured on at most this many validation rows (the MI of a real feature is then resolved
# to about 1e-3 nats) and the quick model fitted on at most MODEL_SAMPLE train rows.
RELEVANCE_ROWS = 20_000
# Paired bootstrap of (model score - baseline score) on valid: the model beats the baseline when the
# lower end of the 95% interval is above 0 (Efron & Tibshirani 1993, percentile interval).
BOOTSTRAP = 200
# Fewer labelled rows than this: too few to tell signal from noise (a permutation test is exact at any size,
# but with a few dozen rows only strong relations clear the noise baseline).
MIN_ROWS = 50
# The quick model: small gradient-boosted trees, enough to find a signal any feature set worth training on
# has, cheap on MODEL_SAMPLE rows even with ten classes (one tree per class per iteration).
QUICK_MODEL = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False}


@dataclass
class RelevanceScores:
    """Per column of X: mutual information on the held-out rows, its noise baseline and p-value."""

    mi: object                      # (F,) nats
    null_q95: object                # (F,) the 95th percentile of the shuffled copies' MI
    p_value: object                 # (F,)
    no_signal: object               # (F,) bool: p > NO_SIGNAL_P


def bin_counts(n: int, n_classes: int | None) -> tuple[int, int]:
    """(feature bins, target bins) for n rows: at most MI_BINS / TARGET_BINS, at least 2, and few enough that
    every cell of the table expects MIN_CELL_ROWS rows."""
    import math

    if n_classes is not None:
        return max(2, min(MI_BINS, n // (MIN_CELL_ROWS * max(n_classes, 1)))), n_classes
    side = max(2, min(MI_BINS, math.isqrt(max(n // MIN_CELL_ROWS, 0))))
    return side, max(2, min(TARGET_BINS, side))


def _bins(x_fit, x, n_bins: int = MI_BINS):
    """Bin indices of x on the quantiles of x_fit; missing values get their own (last) bin."""
    import numpy as np

    finite = x_fit[np.isfinite(x_fit)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(finite) else np.array([])
    b = np.searchsorted(edges, x, side="right")
    b[~np.isfinite(x)] = len(edges) + 1
    return b, len(edges) + 2


def _mutual_information(bx, n_bx: int, Y, n_y: int):
    """Plug-in MI (nats) of bin indices bx with each row of Y (K, n) of class indices, vectorised over K."""
    import numpy as np

    k, n = Y.shape
    joint = np.bincount((np.arange(k)[:, None] * n_bx * n_y + bx[None, :] * n_y + Y).ravel(),
                        minlength=k * n_bx * n_y).reshape(k, n_bx, n_y) / n
    px = joint.sum(axis=2, keepdims=True)
    py = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (px * py)), 0.0)
    return terms.sum(axis=(1, 2))


def relevance_scores(X, y, classification: bool, seed: int = 0, X_fit=None) -> RelevanceScores:
    """Mutual information of each column of X (n, F) with y (n,) against shuffled copies of the column.

    Pure: X holds floats (NaN for missing); bins come from X_fit (default X). y: class indices, or numbers
    (binned into TARGET_BINS quantiles). Shuffling the column or the labels gives the same null distribution,
    so the labels are permuted once for all columns."""
    import numpy as np

    X = np.asarray(X, dtype=float)
    X_fit = X if X_fit is None else np.asarray(X_fit, dtype=float)
    y = np.asarray(y)
    if classification:
        yc = np.unique(y, return_inverse=True)[1]
        x_bins, _ = bin_counts(len(y), int(yc.max()) + 1 if len(yc) else 1)
    else:
        x_bins, y_bins = bin_counts(len(y), None)
        edges = np.unique(np.quantile(y, np.linspace(0, 1, y_bins + 1)[1:-1]))
        yc = np.searchsorted(edges, y, side="right")
    n_y = int(yc.max()) + 1 if len(yc) else 1
    rng = np.random.default_rng(seed)
    Y = np.vstack([yc] + [rng.permutation(yc) for _ in range(PERMUTATIONS)])
    F = X.shape[1]
    mi, q95, p = np.zeros(F), np.zeros(F), np.ones(F)
    for j in range(F):
        bx, n_bx = _bins(X_fit[:, j], X[:, j], x_bins)
        values = _mutual_information(bx, n_bx, Y, n_y)
        mi[j], null = values[0], values[1:]
        q95[j] = float(np.quantile(null, 0.95))
        p[j] = (1 + np.sum(null >= values[0] - 1e-12)) / (1 + len(null))
    return RelevanceScores(mi, q95, p, p > NO_SIGNAL_P)


@dataclass
class RelevanceMeasure:
    features: list[dict]                         # per feature: feature, mi, noise_q95, p_value, no_signal
    rows: int                                    # validation rows measured
    metric: str
    higher_is_better: bool
    model_score: float | None = None             # the quick model on valid, in the project's metric
    baseline_score: float | None = None          # the input-independent baseline (problem.baseline)
    best_single_feature: dict = field(default_factory=dict)
    difference_ci: list[float] | None = None     # 95% bootstrap interval of model - baseline (sign: better > 0)
    model: str = ""
    note: str = ""

    @property
    def empty(self) -> list[str]:
        return [f["feature"] for f in self.features if f["no_signal"]]

    @property
    def constant(self) -> list[str]:
        return [f["feature"] for f in self.features if f.get("constant")]

    @property
    def beats_baseline(self) -> bool | None:
        return None if self.difference_ci is None else self.difference_ci[0] > 0


def _encoded(ctx: RunContext, columns, train_pos, valid_pos, y_train):
    import numpy as np

    tr, va = [], []
    for c in columns:
        x_train, (x_valid,) = encode_single_feature(ctx, c, train_pos, y_train, [ctx.valid[c].iloc[valid_pos]])
        tr.append(x_train)
        va.append(x_valid)
    return np.column_stack(tr), np.column_stack(va)


def _quick_model(ctx: RunContext, X_train, y_train, X_valid, y_valid, baseline: float | None, seed: int):
    """(score, 95% CI of score - baseline with 'better' positive, model name) of a gradient-boosted model."""
    import numpy as np

    from ...analyses.scoring import higher_is_better, score

    with one_thread():
        if ctx.is_classification:
            from sklearn.ensemble import HistGradientBoostingClassifier as Model
        else:
            from sklearn.ensemble import HistGradientBoostingRegressor as Model
        model = Model(random_state=seed, **QUICK_MODEL).fit(X_train, y_train)
        n_classes = len(ctx.classes) if ctx.is_classification else None
        if ctx.is_classification:
            proba = np.zeros((len(X_valid), n_classes))
            proba[:, model.classes_.astype(int)] = model.predict_proba(X_valid)
            pred = proba.argmax(axis=1)
        else:
            proba, pred = None, model.predict(X_valid)
    value = score(ctx.metric, y_valid, pred=pred, proba=proba, n_classes=n_classes)
    if value is None or baseline is None:
        return value, None, type(model).__name__
    sign = 1.0 if higher_is_better(ctx.metric) else -1.0
    base_pred, base_proba = _baseline_predictions(ctx, y_train, len(y_valid))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y_valid), len(y_valid))
        a = score(ctx.metric, y_valid[i], pred=pred[i], proba=None if proba is None else proba[i], n_classes=n_classes)
        b = score(ctx.metric, y_valid[i], pred=base_pred[i], proba=None if base_proba is None else base_proba[i],
                  n_classes=n_classes)
        if a is not None and b is not None:
            diffs.append(sign * (a - b))
    ci = [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))] if len(diffs) >= 20 else None
    return value, ci, type(model).__name__


def _baseline_predictions(ctx: RunContext, y_train, n: int):
    """The input-independent predictor of analyses/baselines.py, as predictions for n rows."""
    import numpy as np

    if ctx.is_classification:
        prior = np.bincount(y_train, minlength=len(ctx.classes)) / len(y_train)
        return np.full(n, prior.argmax()), np.tile(prior, (n, 1))
    constant = float(np.median(y_train)) if ctx.metric == "mae" else float(np.mean(y_train))
    return np.full(n, constant), None


def _measure_relevance(ctx: RunContext) -> RelevanceMeasure:
    import numpy as np

    from ...analyses.scoring import higher_is_better

    cfg = ctx.config
    if any(getattr(cfg, key, None) for key in ("dataset", "datamodule", "lightning", "images")):
        raise SkipCheck("a tensor project: relevance of raw columns does not apply to images or token ids "
                        "(the model's own features decide there)")
    if ctx.text_columns:
        raise SkipCheck(f"free-text features ({', '.join(ctx.text_columns)}): their signal lives in the project's "
                        f"featurize, not in raw columns")
    columns = single_feature_columns(ctx)
    if not columns:
        raise SkipCheck("no raw feature column to measure")
    if "valid" not in ctx.splits:
        raise SkipCheck("no validation rows")
    train_pos = sample_positions(labelled_positions(ctx, "train"), MODEL_SAMPLE, ctx.seed)
    valid_pos = sample_positions(labelled_positions(ctx, "valid"), RELEVANCE_ROWS, ctx.seed + 1)
    if len(valid_pos) < MIN_ROWS or len(train_pos) < MIN_ROWS:
        raise SkipCheck(f"fewer than {MIN_ROWS} labelled train or validation rows: too few to tell signal from noise")
    y_train, y_valid = ctx.y("train")[train_pos], ctx.y("valid")[valid_pos]
    X_train, X_valid = _encoded(ctx, columns, train_pos, valid_pos, y_train)
    scores = relevance_scores(X_valid, y_valid, ctx.is_classification, seed=ctx.seed, X_fit=X_train)
    # Columns constant on the training rows are data.constant_features' finding; here they are listed apart.
    constant = [bool(np.nanmin(X_train[:, j]) == np.nanmax(X_train[:, j])) if np.isfinite(X_train[:, j]).any()
                else True for j in range(len(columns))]
    features = [{"feature": c, "mi": round(float(scores.mi[j]), 5), "noise_q95": round(float(scores.null_q95[j]), 5),
                 "p_value": round(float(scores.p_value[j]), 3), "no_signal": bool(scores.no_signal[j] and not constant[j]),
                 "constant": constant[j]} for j, c in enumerate(columns)]
    features.sort(key=lambda f: -f["mi"])
    base = baseline_scores(ctx)
    m = RelevanceMeasure(features, rows=int(len(valid_pos)), metric=ctx.metric,
                         higher_is_better=higher_is_better(ctx.metric), baseline_score=base.majority,
                         best_single_feature=dict(base.best_single_feature or {}))
    if len(columns) < len(ctx.feature_columns):
        m.note = f"{len(columns)} of {len(ctx.feature_columns)} feature columns measured (a seeded subset)"
    m.model_score, m.difference_ci, m.model = _quick_model(ctx, X_train, y_train, X_valid, y_valid,
                                                           base.majority, ctx.seed)
    return m


def _relevance_verdict(m: RelevanceMeasure) -> Finding:
    evidence = {"features": m.features, "rows": m.rows, "metric": m.metric, "model": m.model,
                "model_score": m.model_score, "baseline_score": m.baseline_score,
                "best_single_feature": m.best_single_feature, "difference_ci": m.difference_ci,
                "no_signal": m.empty, "constant": m.constant, "thresholds": {"p": NO_SIGNAL_P, "permutations": PERMUTATIONS,
                                                     "bootstrap": BOOTSTRAP}}
    if m.note:
        evidence["note"] = m.note
    shown = m.features[:30]
    plot = PlotSpec(kind="bar", title="mutual information with the target vs shuffled copies (valid)",
                    x_label="feature", y_label="nats", series=[
                        Series("feature", [f["feature"] for f in shown], [f["mi"] for f in shown]),
                        Series("noise (95% of shuffled)", [f["feature"] for f in shown],
                               [f["noise_q95"] for f in shown])])
    kw = {"evidence": evidence, "plots": [plot]}
    empty, n = m.empty, len(m.features) - len(m.constant)
    how = (f"Mutual information with the target on {m.rows:,} validation rows, against {PERMUTATIONS} shuffled "
           f"copies of each feature (no signal: p > {NO_SIGNAL_P:g}).")
    if m.constant:
        how += f" {len(m.constant)} constant columns are left to data.constant_features."
    together = ""
    if m.model_score is not None and m.baseline_score is not None:
        together = (f" A quick {m.model} on all of them scores {m.model_score:.4g} {m.metric} on valid against "
                    f"{m.baseline_score:.4g} for the input-independent baseline")
        together += (f" (difference {m.difference_ci[0]:+.3g} to {m.difference_ci[1]:+.3g}, 95% bootstrap)."
                     if m.difference_ci else ".")
    if m.beats_baseline is False:
        return warn("the features together do not beat the input-independent baseline",
                    detail=how + together + " Whatever decides the label is not in these columns, or the labels "
                                            "are noise.",
                    fix="Check that the target column is the one you mean and is aligned with the features; then "
                        "look for the information the label depends on (a missing join, a feature computed too "
                        "late or dropped by the pipeline).", **kw)
    if n and len(empty) == n:
        return warn("no feature carries detectable signal about the target", detail=how + together,
                    fix="Check the target and the joins that bring in the features.", **kw)
    if empty:
        names = ", ".join(empty[:8]) + (f" and {len(empty) - 8} more" if len(empty) > 8 else "")
        return info(f"{len(empty)} of {n} features carry no detectable signal: {names}", detail=how + together
                    + " Columns without signal add noise and cost; a column expected to matter that shows none "
                      "may be broken upstream (constant after a join, shifted, mis-parsed).",
                    fix="Drop them, or find out why a column you expected to matter is empty of signal.", **kw)
    if not n:
        return info("every feature column is constant on the training rows", detail=how, **kw)
    return passed(f"every one of {n} features carries signal" + (", and together they beat the baseline"
                                                                 if m.beats_baseline else ""),
                  detail=how + together, **kw)


@check("data.feature_relevance", title="Features that carry no signal; whether the features beat the baseline")
def feature_relevance(ctx: RunContext):
    return _relevance_verdict(_measure_relevance(ctx))
