"""Out-of-fold class probabilities from a quick label model and confident learning's verdict on each
training label (cleanlab): read by data.label_issues and errors.confident_mistakes."""

from __future__ import annotations

from ..engine.context import RunContext
from .sampling import labelled_positions, numeric_values, one_thread, sample_positions


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
    if n_features > 50:
        # Wide inputs (pixels, bag of words, embeddings): a linear model is fast and reasonably calibrated.
        # MaxAbs scaling keeps sparse, non-negative columns as they are; standardising them blows rare
        # words up and makes the model over-confident, which confident learning reads as label errors.
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), MaxAbsScaler(),
                             LogisticRegression(max_iter=500, C=1.0)), "logistic regression"
    return HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, early_stopping=False,
                                          random_state=seed), "histogram gradient boosting"


def _compute_oof(ctx: RunContext) -> dict:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from ..project.config import ProjectError

    n_train, n_classes = len(ctx.train), len(ctx.classes)
    proba = np.full((n_train, n_classes), np.nan)
    y_all = ctx.y("train")
    labelled = labelled_positions(ctx, "train")
    counts = np.bincount(y_all[labelled], minlength=n_classes)
    usable = labelled[counts[y_all[labelled]] >= CV_FOLDS]  # each class needs a row in every fold
    cap = LABEL_ISSUE_SAMPLE if ctx.budget.remaining() > 0 else LABEL_ISSUE_SMALL_SAMPLE
    pos = sample_positions(usable, cap, ctx.seed)
    result = {"proba": proba, "positions": pos, "labelled": int(len(labelled)), "model": None, "accuracy": None}
    y = y_all[pos]
    if len(pos) < LABEL_ISSUE_MIN_TRAIN or len(np.unique(y)) < 2:
        result["reason"] = "too few labelled training rows in classes with at least 5 rows"
        return result
    try:
        if ctx.config.featurize or not (ctx.categorical_columns or ctx.text_columns):
            X, kind = ctx.X("train")[pos], "dense"
            X = np.where(np.isfinite(X), X, np.nan)
            result["features"] = "the project's featurize" if ctx.config.featurize else "numeric columns"
        else:
            raise ProjectError("no featurize")
    except ProjectError:
        X, kind = _own_design(ctx, pos)
        result["features"] = "numeric columns, category codes" + (" and TF-IDF of the text" if kind == "sparse" else "")
    if X.shape[1] == 0:
        result["reason"] = "no features to learn from"
        return result
    model, name = _label_model(kind, X.shape[1], ctx.seed)
    present = np.unique(y)
    compact = np.searchsorted(present, y)
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=ctx.seed)
    with ctx.budget.spend(), one_thread():
        p = cross_val_predict(model, X, compact, cv=folds, method="predict_proba")
    proba[np.ix_(pos, present)] = p
    proba[pos] = np.nan_to_num(proba[pos])
    result.update(model=name, accuracy=float((p.argmax(1) == compact).mean()), present=present)
    return result


def oof_probabilities(ctx: RunContext):
    """Out-of-fold class probabilities (n_train, C) from a quick model, rows aligned with ctx.train.

    Rows not used (label missing or outside `classes`, classes with fewer than 5 rows, or left out of the
    sample on large data) are NaN. Cached for the run: errors.confident_mistakes reuses it."""
    return ctx.shared("data:oof_proba", lambda: _compute_oof(ctx))["proba"]


def label_issue_analysis(ctx: RunContext) -> dict:
    def compute():
        import numpy as np
        from cleanlab.filter import find_label_issues

        oof = ctx.shared("data:oof_proba", lambda: _compute_oof(ctx))
        mask = np.zeros(len(ctx.train), dtype=bool)
        out = {"mask": mask, "oof": oof}
        if oof["model"] is None:
            return out
        pos, present = oof["positions"], oof["present"]
        p = oof["proba"][np.ix_(pos, present)]
        p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
        labels = np.searchsorted(present, ctx.y("train")[pos])
        flags = find_label_issues(labels, p, n_jobs=1)
        mask[pos[flags]] = True
        out["self_confidence"] = p[np.arange(len(pos)), labels]
        return out

    return ctx.shared("data:label_issues", compute)


def label_issue_mask(ctx: RunContext):
    """Boolean over ctx.train rows: True where confident learning flags the label as likely wrong
    (False for rows that were not examined)."""
    return label_issue_analysis(ctx)["mask"]
