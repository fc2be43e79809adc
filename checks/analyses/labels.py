"""Out-of-fold class probabilities from a quick label model and confident learning's verdict on each
training label (cleanlab): read by data.label_issues and errors.confident_mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.analysis import analysis
from ..engine.context import RunContext
from .sampling import labelled_positions, numeric_values, one_thread, sample_positions

if TYPE_CHECKING:
    import numpy as np


# --- label issues (confident learning) -----------------------------------------------------------
# Out-of-fold probabilities come from at most this many training rows (sampled, seeded).
LABEL_ISSUE_SAMPLE = 10_000


LABEL_ISSUE_SMALL_SAMPLE = 2_000  # when the run's training budget is already spent


CV_FOLDS = 5


# Fewer labelled rows than this (or classes with fewer than CV_FOLDS rows) cannot be cross-validated.
LABEL_ISSUE_MIN_TRAIN = 50


def _own_design(ctx: RunContext, pos):
    """A feature matrix for the quick label model when the project has no featurize: numeric columns,
    categories as codes, and TF-IDF of text columns (sparse)."""
    import numpy as np
    import pandas as pd

    train = ctx.train.iloc[pos]
    blocks = [numeric_values(train[c]) for c in ctx.numeric_columns]
    for c in ctx.categorical_columns:
        codes, _ = pd.factorize(train[c].astype("string"), use_na_sentinel=True)
        blocks.append(np.where(codes < 0, np.nan, codes).astype(float))
    dense = np.column_stack(blocks) if blocks else np.zeros((len(pos), 0))
    texts = ctx.text_columns
    if not texts:
        return dense, "dense"
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    joined = train[texts].astype("string").fillna("").agg(" ".join, axis=1) if len(texts) > 1 else \
        train[texts[0]].astype("string").fillna("")
    tfidf = TfidfVectorizer(max_features=20_000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    try:
        T = tfidf.fit_transform(joined.tolist())
    except ValueError:  # empty vocabulary
        return dense, "dense"
    if dense.shape[1]:
        d = np.nan_to_num((dense - np.nanmean(dense, 0)) / (np.nanstd(dense, 0) + 1e-9))
        T = sparse.hstack([T, sparse.csr_matrix(d)]).tocsr()
    return T, "sparse"


def _label_model(kind: str, n_features: int, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler

    if kind == "sparse":
        return LogisticRegression(max_iter=500, C=1.0), "logistic regression on TF-IDF"
    if kind == "embedding":
        # a network's learnt features: a linear read-out is what its own head does (linear probing)
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0)), \
            "logistic regression on the model's penultimate features"
    if n_features > 50:
        # Wide inputs (pixels, bag of words, embeddings): a linear model is fast and reasonably calibrated.
        # MaxAbs scaling keeps sparse, non-negative columns as they are; standardising them blows rare
        # words up and makes the model over-confident, which confident learning reads as label errors.
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), MaxAbsScaler(),
                             LogisticRegression(max_iter=500, C=1.0)), "logistic regression"
    return HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, early_stopping=False,
                                          random_state=seed), "histogram gradient boosting"


@dataclass
class LabelModel:
    """Out-of-fold class probabilities from the quick label model, rows aligned with ctx.train."""

    proba: np.ndarray                # (n_train, C); NaN for rows the model did not score
    positions: np.ndarray            # training rows cross-validated (a seeded sample on large data)
    labelled: int                    # training rows with a usable label
    model: str | None = None         # what was fitted; None when nothing could be
    accuracy: float | None = None    # out-of-fold accuracy on `positions`
    features: str | None = None      # what the model read
    reason: str | None = None        # why no model was fitted
    present: np.ndarray | None = None  # class indices present in the sample (columns of the fold outputs)


@dataclass
class LabelIssues:
    """Confident learning's verdict on each training label."""

    mask: np.ndarray                 # bool over ctx.train rows: True where the label is likely wrong
    oof: LabelModel
    self_confidence: np.ndarray | None = None  # p(given label) on oof.positions; None without a model


def _label_features(ctx: RunContext, pos):
    """(matrix, kind, description) for the label model: the project's features when it has a featurize
    (or the table is all numeric), else our own design of codes and TF-IDF."""
    import numpy as np
    from ..project.config import ProjectError

    if ctx.is_tensor:  # a model that can learn the modality: the project's own, trained by the probe
        from .features import probe_features

        feats, what = probe_features(ctx)
        return feats[pos], "embedding", what
    try:
        if ctx.config.featurize or not (ctx.categorical_columns or ctx.text_columns):
            X = ctx.X("train")[pos]
            X = np.where(np.isfinite(X), X, np.nan)
            return X, "dense", "the project's featurize" if ctx.config.featurize else "numeric columns"
        raise ProjectError("no featurize")
    except ProjectError:
        X, kind = _own_design(ctx, pos)
        return X, kind, "numeric columns, category codes" + (" and TF-IDF of the text" if kind == "sparse" else "")


@analysis
def label_model(ctx: RunContext) -> LabelModel:
    """Cross-validate the quick label model on (a sample of) the labelled training rows."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n_train, n_classes = len(ctx.train), len(ctx.classes)
    y_all = ctx.y("train")
    labelled = labelled_positions(ctx, "train")
    counts = np.bincount(y_all[labelled], minlength=n_classes)
    usable = labelled[counts[y_all[labelled]] >= CV_FOLDS]  # each class needs a row in every fold
    cap = LABEL_ISSUE_SAMPLE if ctx.budget.remaining() > 0 else LABEL_ISSUE_SMALL_SAMPLE
    pos = sample_positions(usable, cap, ctx.seed)
    result = LabelModel(proba=np.full((n_train, n_classes), np.nan), positions=pos, labelled=int(len(labelled)))
    y = y_all[pos]
    if len(pos) < LABEL_ISSUE_MIN_TRAIN or len(np.unique(y)) < 2:
        result.reason = "too few labelled training rows in classes with at least 5 rows"
        return result
    X, kind, result.features = _label_features(ctx, pos)
    if X.shape[1] == 0:
        result.reason = "no features to learn from"
        return result
    model, name = _label_model(kind, X.shape[1], ctx.seed)
    present = np.unique(y)
    compact = np.searchsorted(present, y)
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=ctx.seed)
    with ctx.budget.spend(), one_thread():
        p = cross_val_predict(model, X, compact, cv=folds, method="predict_proba")
    result.proba[np.ix_(pos, present)] = p
    result.proba[pos] = np.nan_to_num(result.proba[pos])
    result.model, result.accuracy, result.present = name, float((p.argmax(1) == compact).mean()), present
    return result


def oof_probabilities(ctx: RunContext):
    """Out-of-fold class probabilities (n_train, C) from a quick model, rows aligned with ctx.train.

    Rows not used (label missing or outside `classes`, classes with fewer than 5 rows, or left out of the
    sample on large data) are NaN. Cached for the run: errors.confident_mistakes reuses it."""
    return label_model(ctx).proba


@analysis
def label_issue_analysis(ctx: RunContext) -> LabelIssues:
    """Confident learning (cleanlab find_label_issues) over the label model's out-of-fold probabilities."""
    import numpy as np
    from cleanlab.filter import find_label_issues

    oof = label_model(ctx)
    out = LabelIssues(mask=np.zeros(len(ctx.train), dtype=bool), oof=oof)
    if oof.model is None:
        return out
    pos, present = oof.positions, oof.present
    p = oof.proba[np.ix_(pos, present)]
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    labels = np.searchsorted(present, ctx.y("train")[pos])
    flags = find_label_issues(labels, p, n_jobs=1)
    out.mask[pos[flags]] = True
    out.self_confidence = p[np.arange(len(pos)), labels]
    return out


def label_issue_mask(ctx: RunContext):
    """Boolean over ctx.train rows: True where confident learning flags the label as likely wrong
    (False for rows that were not examined)."""
    return label_issue_analysis(ctx).mask
