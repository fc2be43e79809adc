"""Out-of-fold class probabilities from a quick label model on every labelled training row, and
confident learning's verdict on each training label (cleanlab): read by data.label_issues and
errors.confident_mistakes.

Every row is scored out of fold, while memory and time stay flat in the number of rows: each fold's model
is fitted on a capped, seeded sample of the other folds (fit_cap) and scores its held-out fold in chunks
(SCORE_CHUNK); our own features (codes, TF-IDF) are built per chunk, never for the whole table at once.

At a million rows with a text column (issue 17) the cost was featurising, not fitting, so each row is
featurised once: the folds' fits share one stratified sample whose TF-IDF matrix is built once
(_out_of_fold), held-out chunks are scored block by block without stacking the sparse and dense blocks
into one matrix (_linear_proba), texts stay Arrow arrays from the table to the tokeniser (_text_source,
text_features), and the dense block is gathered column by column into a contiguous buffer
(_dense_columns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..engine.analysis import analysis
from ..engine.context import RunContext
from .sampling import labelled_positions, numeric_values, one_thread, sample_positions
from .scoring import score

if TYPE_CHECKING:
    import numpy as np


# --- label issues (confident learning) -----------------------------------------------------------
# Up to this many labelled rows the flexible model (gradient boosting on narrow tables) is fitted on every
# fold as it is: small data, small cost. Beyond it, a pilot on PILOT_ROWS rows picks between it and a
# logistic regression by held-out log loss (the data decide whether the boundary is linear).
LABEL_ISSUE_SAMPLE = 10_000


LABEL_ISSUE_SMALL_SAMPLE = 2_000  # rows scored when the run's training budget is already spent


CV_FOLDS = 5


# Fewer labelled rows than this (or classes with fewer than CV_FOLDS rows) cannot be cross-validated.
LABEL_ISSUE_MIN_TRAIN = 50


# Each fold's model is fitted on at most this many rows of the other folds (a seeded sample). A logistic
# regression with p coefficients has estimation error of order p/n: at 20,000 rows and <= 50 features that
# is 400 rows per coefficient, past which out-of-fold probabilities barely move (benchmarks/evidence.py
# --label-rows: the same recall and precision as fitting on all 80,000 rows of a fold, at a quarter of the
# cost). Gradient boosting gains a little more from more rows, at a cost linear in them.
FIT_ROWS = 20_000
# A linear model is fitted on a tenth of the rows, up to this many, when there are more: at 1,000,000 rows
# a 100,000-row fit comes within 0.0002 of the all-row fit's precision where a 20,000-row fit loses
# 0.0005-0.0008, at a cost still small against scoring. Gradient boosting stays at FIT_ROWS (~20x the cost
# per row).
LINEAR_FIT_ROWS = 100_000
SCORE_CHUNK = 50_000   # held-out rows featurised and scored at a time
PILOT_ROWS = 2_000     # rows fitted, and rows scored, by each candidate in the model pilot


# The precision-oriented set also takes flagged rows where the out-of-fold model gives the given label
# under this probability: a wrong label on a clear example (a shifted join) sits far below it, while
# inherently ambiguous rows (texts with mixed sentiment) whose label is plausible stay above.
CONFIDENT_P_GIVEN = 0.05


@dataclass
class _Design:
    """The label model's inputs, built for any rows on demand: rows(positions) -> matrix."""

    rows: Callable[[Any], Any]
    kind: str          # "dense" | "sparse" | "embedding"
    features: str      # what the model reads, in words
    width: int
    missing: bool = True  # whether rows may hold NaN (False only when known to hold none)
    # blocks(positions) -> the column blocks that rows() stacks side by side (sparse designs): a linear
    # model scores them block by block without building the stacked matrix (_linear_proba)
    blocks: Callable[[Any], list] | None = None


def _finite(X):
    import numpy as np

    return np.where(np.isfinite(X), X, np.nan)


def _all_finite(X) -> bool:
    """No NaN or infinity in X, read SCORE_CHUNK rows at a time (no full-size temporary)."""
    import numpy as np

    return all(np.isfinite(X[i:i + SCORE_CHUNK]).all() for i in range(0, len(X), SCORE_CHUNK))


def _numeric_source(series):
    """A numeric column as a float64 or integer numpy array to take rows from, and whether it may hold
    infinities: the column's own values when they are numpy numbers already (no copy), else
    numeric_values of the whole column, once (NaN for anything missing or not finite)."""
    import numpy as np

    values = series.to_numpy() if series.dtype.kind in "fiub" else None
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values, values.dtype.kind == "f" and bool(np.isinf(values).any())
    return numeric_values(series), False


def _dense_columns(ctx: RunContext):
    """rows(positions) -> numeric columns and category codes (codes computed once for the column), the
    values numeric_values gives (float64, NaN for missing and non-finite).

    A million rows of 29 columns are taken a column at a time into one contiguous row of a (columns, rows)
    buffer, then transposed into the C-ordered matrix the models read: gathering straight into the columns
    of a C-ordered matrix (np.column_stack) writes with a stride and cost 1.6x as much."""
    import numpy as np
    import pandas as pd

    train = ctx.train
    sources = [_numeric_source(train[c]) for c in ctx.numeric_columns]
    for c in ctx.categorical_columns:
        k, _ = pd.factorize(train[c].astype("string"), use_na_sentinel=True)
        sources.append((np.where(k < 0, np.nan, k).astype(float), False))

    def rows(pos):
        out = np.empty((len(sources), len(pos)))
        for j, (values, infinite) in enumerate(sources):
            if values.dtype == np.float64:
                np.take(values, pos, out=out[j])
            else:
                out[j] = values[pos]
            if infinite:
                out[j][np.isinf(out[j])] = np.nan
        return np.ascontiguousarray(out.T)
    return rows, len(sources)


def _text_source(ctx: RunContext):
    """texts(positions) -> the text columns joined by a space, missing read as "", as an Arrow array:
    the columns are turned into Arrow once, and a chunk's texts are taken from them (no Python strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pandas.api.types import is_string_dtype

    from .text_features import as_text_array

    train = ctx.train
    columns = [as_text_array(train[c] if is_string_dtype(train[c].dtype) else train[c].astype("string"))
               for c in ctx.text_columns]

    def texts(pos):
        index = pa.array(pos, type=pa.int64())
        parts = [column.take(index) for column in columns]
        return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " ")
    return texts


def _own_design(ctx: RunContext, usable, seed: int) -> _Design:
    """Inputs for the quick label model when the project has no featurize: numeric columns, categories as
    codes, and TF-IDF of text columns (sparse; vocabulary fitted on a seeded sample of FIT_ROWS rows, which
    reads no label)."""
    import numpy as np

    dense, width = _dense_columns(ctx)
    what = "numeric columns, category codes"
    if not ctx.text_columns:
        return _Design(dense, "dense", what, width)
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    from .text_features import ArrowTfidf

    texts = _text_source(ctx)
    fit = sample_positions(usable, FIT_ROWS, seed)
    tfidf = TfidfVectorizer(max_features=20_000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    try:
        tfidf.fit(texts(fit).to_pylist())
    except ValueError:  # empty vocabulary
        return _Design(dense, "dense", what, width)
    # the same matrix as tfidf.transform, tokenised by Arrow: a million texts in seconds, not in 13 s
    transform = ArrowTfidf(tfidf).transform if ArrowTfidf.supports(tfidf) else \
        (lambda part: tfidf.transform(part.to_pylist()))
    if width:
        d = dense(fit)
        mean, sd = np.nanmean(d, 0), np.nanstd(d, 0) + 1e-9

    def standardised(pos):  # (dense - mean) / sd with NaN as 0 (the mean), computed in place
        d = dense(pos)
        d -= mean
        d /= sd
        return np.nan_to_num(d, copy=False)

    def blocks(pos):
        T = transform(texts(pos))
        return [T, standardised(pos)] if width else [T]

    def rows(pos):
        parts = blocks(pos)
        return parts[0] if len(parts) == 1 else sparse.hstack([parts[0], sparse.csr_matrix(parts[1])]).tocsr()
    return _Design(rows, "sparse", what + " and TF-IDF of the text", len(tfidf.vocabulary_) + width,
                   blocks=blocks)


def _linear_model(missing: bool):
    """Standardised logistic regression; with `missing` values, mean-imputed first (after standardising a
    missing value reads as "average"; the imputer's masked arrays cost more than the fit, so only then)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [SimpleImputer(strategy="mean", keep_empty_features=True)] if missing else []
    return make_pipeline(*steps, StandardScaler(), LogisticRegression(max_iter=500, C=1.0)), "logistic regression"


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
    positions: np.ndarray            # training rows scored out of fold: every usable labelled row
    labelled: int                    # training rows with a usable label
    model: str | None = None         # what was fitted; None when nothing could be
    accuracy: float | None = None    # out-of-fold accuracy on `positions`
    features: str | None = None      # what the model read
    reason: str | None = None        # why no model was fitted
    present: np.ndarray | None = None  # class indices present among `positions` (columns of the fold outputs)
    fit_rows: int = 0                # rows each fold's model was fitted on (at most)
    choice: dict | None = None       # the pilot's held-out log loss per candidate, when one ran
    design: str | None = None        # the kind of inputs: "dense" | "sparse" (table columns) | "embedding"
    log_loss: float | None = None    # out-of-fold log loss on `positions`
    prior_log_loss: float | None = None  # log loss of the class frequencies on the same rows


@dataclass
class LabelIssues:
    """Confident learning's verdict on each training label: a recall-oriented set (cleanlab's default
    find_label_issues, prune_by_noise_rate) and a precision-oriented subset of it."""

    mask: np.ndarray                 # bool over ctx.train rows: True where the label is likely wrong
    oof: LabelModel
    self_confidence: np.ndarray | None = None  # p(given label) on oof.positions; None without a model
    confident: np.ndarray | None = None  # bool over ctx.train rows: the precision-oriented set (within mask)


def _label_design(ctx: RunContext, usable, seed: int) -> _Design:
    """The label model's inputs: the project's features when it has a featurize (or the table is all
    numeric), the penultimate features of the project's model for tensor projects (DESIGN §3b), else our
    own design of codes and TF-IDF."""
    from ..project.config import ProjectError

    if ctx.is_tensor:  # a model that can learn the modality: the project's own, trained by the probe
        from .features import probe_features

        feats, what = probe_features(ctx)
        return _Design(lambda pos: feats[pos], "embedding", what, int(feats.shape[1]))
    try:
        if ctx.config.featurize or not (ctx.categorical_columns or ctx.text_columns):
            X = ctx.X("train")
            what = "the project's featurize" if ctx.config.featurize else "numeric columns"
            return _Design(lambda pos: _finite(X[pos]), "dense", what, int(X.shape[1]),
                           missing=not _all_finite(X))
        raise ProjectError("no featurize")
    except ProjectError:
        return _own_design(ctx, usable, seed)


def _proba_in(model, X, k: int):
    """predict_proba as (rows, k) over the classes 0..k-1, whichever of them the model saw in its fit."""
    import numpy as np

    p = model.predict_proba(X)
    seen = np.asarray(model.classes_)
    if len(seen) == k:
        return p
    out = np.zeros((p.shape[0], k))
    out[:, seen] = p
    return out


def _fit_sample(idx, y, cap: int, rng):
    """At most `cap` of the rows `idx` (seeded), keeping every class: a class the random sample missed
    gets up to CV_FOLDS * 4 of its rows back."""
    import numpy as np

    if len(idx) <= cap:
        return idx
    chosen = rng.choice(idx, size=cap, replace=False)
    k = int(y[idx].max()) + 1
    missing = np.flatnonzero((np.bincount(y[idx], minlength=k) > 0) & (np.bincount(y[chosen], minlength=k) == 0))
    extra = [idx[y[idx] == c][:CV_FOLDS * 4] for c in missing]
    return np.sort(np.concatenate([chosen, *extra]))


def _choose_model(design: _Design, pos, y, k: int, folds, seed: int):
    """(estimator, name, pilot log losses or None). Narrow tables with more than LABEL_ISSUE_SAMPLE rows:
    gradient boosting and logistic regression are fitted on PILOT_ROWS rows of the first fold's training
    part and scored on PILOT_ROWS of its held-out part; the lower held-out log loss wins (ties: the linear
    model, the cheaper one). Otherwise the fixed rule of _label_model."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.metrics import log_loss

    model, name = _label_model(design.kind, design.width, seed)
    if design.kind != "dense" or design.width > 50 or len(pos) <= LABEL_ISSUE_SAMPLE:
        return model, name, None
    rng = np.random.default_rng(seed)
    fit_idx, held = next(folds.split(np.zeros(len(pos)), y))
    fit_idx = _fit_sample(fit_idx, y, PILOT_ROWS, rng)
    held = rng.choice(held, min(PILOT_ROWS, len(held)), replace=False)
    Xa, Xb = design.rows(pos[fit_idx]), design.rows(pos[held])
    losses, candidates = {}, {}
    # The boosting candidate is tried with 15 trees at 5x the learning rate on 32 bins: the same model
    # family at a tenth of the cost (on a few thousand rows a tree costs the same whatever the rows).
    quick = clone(model).set_params(max_iter=15, learning_rate=0.5, max_bins=32)
    linear, linear_name = _linear_model(design.missing)
    for estimator, tried, label in ((linear, linear, linear_name), (model, quick, name)):
        fitted = clone(tried).fit(Xa, y[fit_idx])
        p = np.clip(_proba_in(fitted, Xb, k), 1e-12, 1)
        losses[label] = round(float(log_loss(y[held], p / p.sum(1, keepdims=True), labels=np.arange(k))), 4)
        candidates[label] = estimator
    best = min(losses, key=lambda label: (losses[label], label != linear_name))
    return candidates[best], best, losses


def fit_cap(model, rows: int) -> int:
    """Rows each fold's model is fitted on at most: FIT_ROWS, or for a linear model a tenth of the rows up
    to LINEAR_FIT_ROWS."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if isinstance(model, HistGradientBoostingClassifier):
        return FIT_ROWS
    return int(min(max(FIT_ROWS, rows // 10), LINEAR_FIT_ROWS))


def _stratified_sample(idx, y, size: int, rng, least: int):
    """`size` of the rows `idx` (seeded, sorted), each class in its share of them (largest remainders),
    and every class at least `least` rows (or all it has)."""
    import numpy as np

    if len(idx) <= size:
        return idx
    counts = np.bincount(y[idx])
    share = counts * size / len(idx)
    quota = np.floor(share).astype(int)
    quota[np.argsort(quota - share)[:size - quota.sum()]] += 1
    quota = np.maximum(quota, np.minimum(counts, least))
    shuffled = rng.permutation(idx)
    rank = np.empty(len(idx), dtype=np.int64)  # a row's place among its class's shuffled rows
    order = np.argsort(y[shuffled], kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank[order] = np.arange(len(idx)) - np.repeat(starts, counts)
    return np.sort(shuffled[rank < quota[y[shuffled]]])


def _shared_fit_sample(splits, y, cap: int, rng):
    """The rows the folds' models are fitted from: from every fold, a stratified sample of cap / (CV_FOLDS
    - 1) of its rows, so that the other folds' samples give each fold's model about `cap` rows in the
    classes' shares, and every class at least CV_FOLDS * 4 rows (as _fit_sample guarantees) where it has
    them. Every row when the folds' training parts fit within the cap."""
    import numpy as np

    per_fold = -(-cap // (len(splits) - 1))
    least = -(-CV_FOLDS * 4 // (len(splits) - 1))
    return np.sort(np.concatenate([_stratified_sample(held, y, per_fold, rng, least) for _, held in splits]))


def _linear_proba(fitted, blocks, k: int):
    """_proba_in for a LogisticRegression over the column blocks its input stacks: the decision is
    sum(block @ coef_block.T) + intercept, turned into probabilities as predict_proba does (expit for two
    classes, softmax over the classes otherwise), without building the stacked matrix."""
    import numpy as np
    from scipy.special import expit, softmax

    coef, start = fitted.coef_, 0
    decision = np.broadcast_to(fitted.intercept_, (blocks[0].shape[0], coef.shape[0])).copy()
    for block in blocks:
        width = block.shape[1]
        decision += block @ coef[:, start:start + width].T
        start += width
    if coef.shape[0] == 1:
        positive = expit(decision[:, 0])
        p = np.column_stack([1 - positive, positive])
    else:
        p = softmax(decision, axis=1)
    seen = np.asarray(fitted.classes_)
    if len(seen) == k:
        return p
    out = np.zeros((p.shape[0], k))
    out[:, seen] = p
    return out


def _scorer(design: _Design, fitted, k: int):
    """proba(positions) for a fitted fold model: block by block for a bare logistic regression on a design
    that has blocks (the stacking costs more than the product), else predict_proba on design.rows."""
    from sklearn.linear_model import LogisticRegression

    if design.blocks is not None and type(fitted) is LogisticRegression:
        return lambda pos: _linear_proba(fitted, design.blocks(pos), k)
    return lambda pos: _proba_in(fitted, design.rows(pos), k)


def _independent_fits(design: _Design, pos, y, splits, cap: int, rng):
    """(fold's fit matrix, its labels) per fold: each fold's own seeded sample of at most `cap` rows of the
    other folds (_fit_sample), featurised for that fit. For designs whose rows are read from memory."""
    for fit_idx, _ in splits:
        fit_idx = _fit_sample(fit_idx, y, cap, rng)
        yield design.rows(pos[fit_idx]), y[fit_idx]


def _shared_fits(X_shared, shared, fold_of, y, folds: int, cap: int, rng):
    """(fold's fit matrix, its labels) per fold, read from the shared sample's matrix: its rows outside
    the fold, trimmed back to `cap` where the per-fold rounding or rare classes left a few more."""
    import numpy as np

    for fold in range(folds):
        fit = np.flatnonzero(fold_of[shared] != fold)
        if len(fit) > cap:
            fit = np.sort(rng.choice(fit, size=cap, replace=False))
        yield X_shared[fit], y[shared[fit]]


def _out_of_fold(design: _Design, model, pos, y, k: int, folds, seed: int):
    """(len(pos), k) out-of-fold probabilities: each fold's model, fitted on at most fit_cap rows of the
    other folds, scores its held-out rows SCORE_CHUNK at a time.

    Where rows cost something to build (the sparse TF-IDF design: tokenising), every row is featurised
    once: the folds' fits share one seeded stratified sample S of about fit_cap * CV_FOLDS / (CV_FOLDS - 1)
    rows (_shared_fit_sample), whose matrix is built once, and fold k's model is fitted on S minus fold k's
    rows (fit_cap of them; never a row of fold k, so scoring stays out of fold). At 1M rows, fitting each
    fold on its own sample had tokenised 5 x 81,600 rows on top of the million scored. Held-out rows are
    featurised when scored, or read from S's matrix when S is every row. Designs read from memory (dense,
    embeddings) keep an independent sample per fold: building their rows again costs nothing."""
    import numpy as np
    from sklearn.base import clone

    out = np.zeros((len(pos), k))
    rng = np.random.default_rng(seed)
    cap = fit_cap(model, len(pos))
    splits = list(folds.split(np.zeros(len(pos)), y))
    X_shared = everything = None
    if design.kind == "sparse":
        fold_of = np.empty(len(pos), dtype=np.int64)
        for fold, (_, held) in enumerate(splits):
            fold_of[held] = fold
        shared = _shared_fit_sample(splits, y, cap, rng)
        X_shared, everything = design.rows(pos[shared]), len(shared) == len(pos)
        fits = _shared_fits(X_shared, shared, fold_of, y, len(splits), cap, rng)
    else:
        fits = _independent_fits(design, pos, y, splits, cap, rng)
    for (_, held), (X_fit, y_fit) in zip(splits, fits):
        fitted = clone(model).fit(X_fit, y_fit)
        if everything:  # the shared sample is every row: held-out rows are rows of its matrix
            out[held] = _proba_in(fitted, X_shared[held], k)
            continue
        score = _scorer(design, fitted, k)
        for start in range(0, len(held), SCORE_CHUNK):
            chunk = held[start:start + SCORE_CHUNK]
            out[chunk] = score(pos[chunk])
    return out


@analysis
def label_model(ctx: RunContext) -> LabelModel:
    """Cross-validate the quick label model over every usable labelled training row (a small sample when
    the run's training budget is already spent)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    n_train, n_classes = len(ctx.train), len(ctx.classes)
    y_all = ctx.y("train")
    labelled = labelled_positions(ctx, "train")
    counts = np.bincount(y_all[labelled], minlength=n_classes)
    usable = labelled[counts[y_all[labelled]] >= CV_FOLDS]  # each class needs a row in every fold
    pos = usable if ctx.budget.remaining() > 0 else sample_positions(usable, LABEL_ISSUE_SMALL_SAMPLE, ctx.seed)
    result = LabelModel(proba=np.full((n_train, n_classes), np.nan), positions=pos, labelled=int(len(labelled)))
    y = y_all[pos]
    if len(pos) < LABEL_ISSUE_MIN_TRAIN or len(np.unique(y)) < 2:
        result.reason = "too few labelled training rows in classes with at least 5 rows"
        return result
    design = _label_design(ctx, pos, ctx.seed)
    result.features, result.design = design.features, design.kind
    if design.width == 0:
        result.reason = "no features to learn from"
        return result
    present = np.unique(y)
    compact = np.searchsorted(present, y)
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=ctx.seed)
    with ctx.budget.spend(), one_thread():
        model, result.model, result.choice = _choose_model(design, pos, compact, len(present), folds, ctx.seed)
        p = _out_of_fold(design, model, pos, compact, len(present), folds, ctx.seed)
    result.fit_rows = int(min(fit_cap(model, len(pos)), len(pos) - len(pos) // CV_FOLDS))
    result.proba[np.ix_(pos, present)] = p
    result.proba[pos] = np.nan_to_num(result.proba[pos])
    result.accuracy, result.present = float((p.argmax(1) == compact).mean()), present
    # ... and against the class frequencies (the input-independent predictor) on the same rows
    prior = np.tile(np.bincount(compact, minlength=len(present)) / len(compact), (len(compact), 1))
    result.log_loss, result.prior_log_loss = (score("log_loss", compact, proba=q, n_classes=len(present))
                                              for q in (p, prior))
    return result


def oof_probabilities(ctx: RunContext):
    """Out-of-fold class probabilities (n_train, C) from a quick model, rows aligned with ctx.train.

    Rows not used (label missing or outside `classes`, classes with fewer than 5 rows; every other row
    when the training budget was spent before the check, which then scores a small sample) are NaN.
    Cached for the run: errors.confident_mistakes reuses it."""
    return label_model(ctx).proba


def _off_diagonal(labels, p):
    """Rows counted off the diagonal of the confident joint (Northcutt, Jiang & Chuang 2021, eq. 1): some
    class reaches its per-class threshold (the mean p(k) of rows labelled k) and the likeliest such class
    is not the given label. cleanlab.count.compute_confident_joint's rule (and its 1e-6 tolerance), without
    the input checks and counting that find_label_issues then repeats."""
    import numpy as np
    from cleanlab.count import get_confident_thresholds

    confident = p >= np.asarray(get_confident_thresholds(labels, p)) - 1e-6
    count = confident.sum(axis=1)
    guess = np.where(count > 1, p.argmax(axis=1), confident.argmax(axis=1))
    return (count > 0) & (guess != labels)


def confident_learning_sets(labels, p):
    """(recall-oriented flags, precision-oriented flags, self-confidence) over the rows of `p`.

    Recall-oriented: cleanlab's find_label_issues default (prune_by_noise_rate: per class, the rows
    with the largest margin against their given label, as many as the confident joint estimates are
    mislabelled). Precision-oriented, a subset of it: rows every confident-learning rule agrees on
    (prune_by_noise_rate and prune_by_class, i.e. filter_by="both", and an off-diagonal entry of the
    confident joint, filter_by="confident_learning"; Northcutt, Jiang & Chuang 2021, section 3.2), or
    whose given label the model gives under CONFIDENT_P_GIVEN."""
    import numpy as np
    from cleanlab.filter import find_label_issues

    flags = find_label_issues(labels, p, n_jobs=1)
    # With two classes the margin against the other class falls as p(given) rises, so prune_by_class picks
    # the same rows as prune_by_noise_rate: "both" is the default set and need not be computed again.
    agreed = flags if p.shape[1] == 2 else find_label_issues(labels, p, filter_by="both", n_jobs=1)
    self_confidence = p[np.arange(len(labels)), labels]
    confident = flags & ((agreed & _off_diagonal(labels, p)) | (self_confidence < CONFIDENT_P_GIVEN))
    return flags, confident, self_confidence


@analysis
def label_issue_analysis(ctx: RunContext) -> LabelIssues:
    """Confident learning (cleanlab) over the label model's out-of-fold probabilities of every row."""
    import numpy as np

    oof = label_model(ctx)
    out = LabelIssues(mask=np.zeros(len(ctx.train), dtype=bool), oof=oof,
                      confident=np.zeros(len(ctx.train), dtype=bool))
    if oof.model is None:
        return out
    pos, present = oof.positions, oof.present
    p = oof.proba[np.ix_(pos, present)]
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    labels = np.searchsorted(present, ctx.y("train")[pos])
    flags, confident, out.self_confidence = confident_learning_sets(labels, p)
    out.mask[pos[flags]] = True
    out.confident[pos[confident]] = True
    return out


def label_issue_mask(ctx: RunContext):
    """Boolean over ctx.train rows: True where confident learning flags the label as likely wrong
    (False for rows that were not examined)."""
    return label_issue_analysis(ctx).mask
