"""What to label next: rank a pool of unlabeled rows by how much they resemble the model's weak slices and
its confident mistakes (errors.similar_unlabeled; DESIGN §6, issue 18 item 6).

Everything is measured in one feature space: the project's own (its featurize, or the numeric columns
standardised), a TF-IDF / one-hot design fitted on train when the table needs encoding, or for tensor
projects the model's penultimate layer (analyses/features.py). Rows are L2-normalised, so similarity is
cosine similarity, the usual measure for TF-IDF and learnt embeddings.

Two scores, both probabilities estimated on the labelled valid rows, so that "resembles" means the same
thing for every slice and every project (0.5: more likely than not):
- a weak slice: similarity to the slice's centroid, mapped to P(row is in the slice) by a monotone
  (isotonic) fit of slice membership on that similarity over the valid rows, in bins of at least
  MIN_BIN_ROWS rows;
- the confident mistakes: among a pool row's KNN nearest valid rows, the share the model got wrong, when
  one of them is a confident mistake (the row it resembles).
A pool drawn like the valid rows outside the slices scores low on both: that is the clean twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..findings import SkipCheck
from ..project.config import ProjectError

# A pool row resembles a slice or the mistakes when the estimated probability is at least one half.
RESEMBLES = 0.5
# Each probability of the isotonic fit rests on at least 30 valid rows (the normal-approximation rule of
# thumb the slice z-tests use too, analyses/slices.MIN_SLICE_ROWS).
MIN_BIN_ROWS = 30
# Neighbours read per pool row for the mistakes score: k = 10, the usual default of k-NN error estimates.
KNN = 10
# Valid rows a pool row is compared with for its neighbours (all confident mistakes are always kept).
KNN_REFERENCE = 20_000
# Confident mistakes: wrong with probability >= 0.9 (errors.confident_mistakes' threshold).
CONFIDENT = 0.9
# Pool rows featurised and scored at a time: memory stays flat on a pool of millions.
POOL_CHUNK = 20_000


@dataclass
class Target:
    """One thing pool rows may resemble: a weak slice or the neighbourhood of the confident mistakes."""

    kind: str                    # "weak slice" | "confident mistake"
    name: str                    # the slice's description, or "mistake row 12 (review_id R1)"
    valid_rows: int = 0          # valid rows behind it
    resembling: int = 0          # pool rows that resemble it (score >= RESEMBLES)
    best: float = 0.0            # the highest score of a pool row
    separation_auc: float | None = None  # slices: how well similarity tells members from the rest (valid)
    threshold: float = RESEMBLES  # the score at which a pool row resembles it


@dataclass
class PoolRanking:
    pool_rows: int
    space: str                                 # what the similarity was measured on
    targets: list[Target] = field(default_factory=list)
    score: Any = None                          # per pool row: its best score
    target: Any = None                         # per pool row: index into targets of that best score (-1: none)
    mistake_row: Any = None                    # per pool row: valid position of the nearest confident mistake
    frame: Any = None                          # the pool table (None for a tensor pool)


# --- the feature space -------------------------------------------------------------------------
def _normalise(X):
    import numpy as np
    from sklearn.preprocessing import normalize

    if hasattr(X, "tocsr"):
        return normalize(X.tocsr())
    X = np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return normalize(X)


class TableSpace:
    """Turns table rows into normalised vectors: the project's features, or an encoding fitted on train."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        cfg = ctx.config
        self.own = not (cfg.featurize or not (ctx.categorical_columns or ctx.text_columns))
        if self.own:
            self._fit_own(ctx.features_frame("train"))
            self.description = "TF-IDF of the text, one-hot categories and standardised numbers, fitted on train"
        elif cfg.featurize:
            self.description = "the project's featurize (the features its model reads)"
        else:
            import numpy as np

            train = ctx.X("train")
            self.mean, self.sd = np.nanmean(train, 0), np.nanstd(train, 0)
            self.sd[~np.isfinite(self.sd) | (self.sd == 0)] = 1.0
            self.description = "the numeric feature columns, standardised on train"

    def _fit_own(self, train):
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import OneHotEncoder

        ctx = self.ctx
        self.text = None
        if ctx.text_columns:
            self.text = TfidfVectorizer(max_features=20_000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
            try:
                self.text.fit(self._joined(train))
            except ValueError:  # empty vocabulary: the text adds nothing
                self.text = None
        self.cats = None
        if ctx.categorical_columns:
            self.cats = OneHotEncoder(handle_unknown="ignore", max_categories=100)
            self.cats.fit(train[ctx.categorical_columns].astype("string").fillna("<missing>").to_numpy(dtype=object))
        nums = self._numbers(train)
        self.mean = self.sd = None
        if nums.shape[1]:
            self.mean, self.sd = np.nanmean(nums, 0), np.nanstd(nums, 0)
            self.sd[~np.isfinite(self.sd) | (self.sd == 0)] = 1.0

    def _joined(self, df):
        cols = self.ctx.text_columns
        return (df[cols].astype("string").fillna("").agg(" ".join, axis=1) if len(cols) > 1
                else df[cols[0]].astype("string").fillna("")).tolist()

    def _numbers(self, df):
        return _numeric_block(df, self.ctx.numeric_columns)

    def transform(self, df, split: str | None = None):
        """Normalised vectors of the rows of df (a split's frame, or a chunk of the pool)."""
        import numpy as np
        from scipy import sparse

        ctx = self.ctx
        if not self.own:
            if split is not None:
                X = ctx.X(split)
            elif ctx.config.featurize:
                X = _featurize_pool(ctx, df)
            else:
                X = _numeric_block(df, ctx.numeric_columns)
            if not ctx.config.featurize:
                X = (X - self.mean) / self.sd
            return _normalise(X)
        # One block per kind of column: the text's TF-IDF (unit length), one per category column, about one
        # per standardised number; no kind of column drowns the others out by the width of its encoding.
        blocks = []
        if self.text is not None:
            blocks.append(self.text.transform(self._joined(df)))
        if self.cats is not None:
            blocks.append(self.cats.transform(df[ctx.categorical_columns].astype("string").fillna("<missing>")
                                              .to_numpy(dtype=object)))
        if self.sd is not None:
            z = np.nan_to_num((self._numbers(df) - self.mean) / self.sd)
            blocks.append(sparse.csr_matrix(z))
        if not blocks:
            raise SkipCheck("no feature column to measure similarity on")
        return _normalise(sparse.hstack(blocks).tocsr())


def _numeric_block(df, columns):
    """The numeric columns as floats; a pool value that is not a number (a typo, "n/a") becomes missing."""
    import numpy as np
    import pandas as pd

    if not columns:
        return np.zeros((len(df), 0))
    return np.column_stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                            for c in columns])


def _featurize_pool(ctx: RunContext, df):
    """The project's featurize on pool rows, fitted on the train features (as for every split)."""
    from ..project.usercode import call_user

    fn = ctx.function("featurize")
    out = call_user(ctx.config, "featurize (on the [data] unlabeled pool)", fn, ctx.features_frame("train"),
                    df[ctx.feature_columns])
    X = ctx._featurized_array(out, "unlabeled", len(df))
    width = int(ctx.X("train").shape[1])
    if X.shape[1] != width:
        raise ProjectError(f"[model] featurize returned {X.shape[1]} columns for the [data] unlabeled pool but "
                           f"{width} for train: it must return the same columns for every frame it is given.")
    return X


def read_pool(ctx: RunContext):
    """The [data] unlabeled table, checked against the train feature columns."""
    from ..io.readers import read_table

    cfg = ctx.config
    pool = read_table(cfg.unlabeled, "[data] unlabeled")
    missing = [str(c) for c in ctx.feature_columns if c not in pool.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise ProjectError(f"{cfg.path}: [data] unlabeled = {cfg.unlabeled.name} lacks feature column(s) of "
                           f"train: {shown}. The pool needs every feature column the model reads "
                           f"({len(ctx.feature_columns)}), under the same names; the target and [data] ignore "
                           f"columns may be absent.")
    if len(pool) == 0:
        raise ProjectError(f"{cfg.path}: [data] unlabeled = {cfg.unlabeled.name} has no rows.")
    return pool.reset_index(drop=True)


# --- scores ------------------------------------------------------------------------------------
@dataclass
class SliceModel:
    """Similarity to one weak slice's centroid, and its map to P(row in the slice) fitted on valid rows."""

    centroid: Any                # (F,) unit vector
    centres: Any                 # per bin: the mean similarity of its rows (increasing)
    levels: Any                  # per bin: P(member), monotone in similarity
    threshold: float             # a pool row resembles the slice at or above this probability
    auc: float                   # similarity's AUC at telling members from the other valid rows

    def probability(self, sims):
        """Linear between bin centres (as sklearn's IsotonicRegression interpolates), flat beyond them."""
        import numpy as np

        return np.interp(sims, self.centres, self.levels)


def _dense_rows(X):
    import numpy as np

    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)


def _centroid(V, members):
    import numpy as np

    c = np.asarray(V[members].mean(axis=0)).ravel().astype(np.float32)
    norm = float(np.linalg.norm(c))
    return c / norm if norm > 0 else c


def fit_slice_model(V, member) -> SliceModel:
    """The centroid of the members (rows of V, normalised) and a binned isotonic fit of membership on the
    similarity to it over all rows of V (pool-adjacent violators on equal-count bins of >= MIN_BIN_ROWS)."""
    import numpy as np
    from scipy.stats import rankdata
    from sklearn.isotonic import IsotonicRegression

    member = np.asarray(member, dtype=bool)
    c = _centroid(V, np.flatnonzero(member))
    sims = np.asarray(V @ c).ravel()
    order = np.argsort(sims, kind="stable")
    s, m = sims[order], member[order].astype(float)
    k = max(1, len(s) // MIN_BIN_ROWS)
    bounds = np.linspace(0, len(s), k + 1).astype(int)
    means = np.array([m[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    centres = np.maximum.accumulate(np.array([s[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])]))
    weights = np.diff(bounds).astype(float)
    levels = IsotonicRegression(increasing=True).fit(np.arange(k), means, sample_weight=weights).predict(np.arange(k))
    n1, n0 = int(member.sum()), int((~member).sum())
    ranks = rankdata(sims)
    auc = float((ranks[member].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else 0.5
    # A slice holding a large share of the rows is "resembled" by ordinary rows; ask for twice its share
    # (a lift of 2, the ratio at which errors.weak_slices warns) as well as more likely than not.
    threshold = max(RESEMBLES, 2 * n1 / max(len(member), 1))
    return SliceModel(c, centres, levels, threshold, auc)


def knn_mistakes(P, R, wrong, confident):
    """For each row of P: the share of its KNN most similar rows of R the model got wrong, and the row of R
    (index) of the most similar confident mistake among them (-1 when none is)."""
    import numpy as np

    k = min(KNN, R.shape[0])
    share = np.zeros(P.shape[0])
    nearest = np.full(P.shape[0], -1, dtype=np.int64)
    step = max(1, 4_000_000 // max(R.shape[0], 1))  # a block of at most ~16 MB of similarities
    for a in range(0, P.shape[0], step):
        S = _dense_rows(P[a:a + step] @ R.T)
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(S, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_sims, axis=1, kind="stable"), axis=1)
        share[a:a + step] = wrong[top].mean(axis=1)
        conf = confident[top]
        first = np.argmax(conf, axis=1)
        has = conf.any(axis=1)
        nearest[a:a + step] = np.where(has, top[np.arange(len(top)), first], -1)
    return np.where(nearest >= 0, share, 0.0), nearest


# --- the ranking -------------------------------------------------------------------------------
NO_POOL = ("needs a pool of unlabeled rows: add [data] unlabeled = \"data/pool.csv\" (a table with the training "
           "feature columns; no target needed)")
NO_TENSOR_POOL = ("needs a pool of unlabeled items: make [model] dataset return a Dataset for the split "
                  "\"unlabeled\" (items (x, y) with any y, e.g. -1)")


@dataclass
class Reference:
    """The valid rows pool rows are compared with: their vectors and what the model did on them."""

    vectors: Any                 # normalised, rows = `positions`
    positions: Any               # valid-split positions (labelled rows)
    wrong: Any                   # per row: a mistake (classification) or an error beyond 2 s.d. (regression)
    confident: Any               # per row: a confident mistake

    @property
    def threshold(self) -> float:
        """The share of wrong neighbours at which a pool row resembles the mistakes: more than half, and
        twice the error rate of the valid rows (the same lift of 2 as for slices), so that a model wrong
        on most rows does not make every row "like its mistakes"."""
        import numpy as np

        return max(RESEMBLES, 2 * float(np.mean(self.wrong)) if len(self.wrong) else RESEMBLES)


def _mistakes(ctx: RunContext, so, keep):
    import numpy as np

    y, pred = so.y_true[keep], so.pred[keep]
    if ctx.is_classification:
        wrong = pred != y
        conf = so.confidence[keep] if so.proba is not None else np.zeros(len(y))
        return wrong, wrong & (conf >= CONFIDENT)
    resid = np.abs(pred - y.astype(float))
    big = resid > 2.0 * (float(np.std(y)) or 1.0)  # the largest residuals (errors.confident_mistakes' rows)
    return big, big


def _reference(ctx: RunContext, V, so, keep) -> Reference:
    import numpy as np

    positions = np.flatnonzero(keep)
    wrong, confident = _mistakes(ctx, so, keep)
    if len(positions) > KNN_REFERENCE:  # a seeded sample, every confident mistake kept
        rng = np.random.default_rng(ctx.seed)
        others = np.flatnonzero(~confident)
        take = np.sort(np.r_[np.flatnonzero(confident),
                             rng.choice(others, max(0, KNN_REFERENCE - int(confident.sum())), replace=False)])
        positions, wrong, confident = positions[take], wrong[take], confident[take]
    return Reference(V[positions], positions, wrong, confident)


def _slice_models(V, analysis_) -> list[tuple[dict, SliceModel]]:
    import numpy as np

    out = []
    rows = V[analysis_.positions]
    for found, mask in zip(analysis_.slices, analysis_.masks):
        if np.asarray(mask).any():
            out.append((found, fit_slice_model(rows, mask)))
    return out


def _vectors(ctx: RunContext):
    """(valid vectors, iterator of (start, pool vectors) chunks, pool rows, pool frame or None, space)."""
    if ctx.is_tensor:
        V, P, space = _tensor_vectors(ctx)
        return V, iter([(0, P)]), P.shape[0], None, space
    if ctx.config.unlabeled is None:
        raise SkipCheck(NO_POOL)
    pool = read_pool(ctx)
    space = TableSpace(ctx)
    V = space.transform(ctx.valid, "valid")
    chunks = ((a, space.transform(pool.iloc[a:a + POOL_CHUNK])) for a in range(0, len(pool), POOL_CHUNK))
    return V, chunks, len(pool), pool, space.description


def _tensor_vectors(ctx: RunContext):
    from ..engine.inputs import TensorRows, TensorSplit
    from .features import penultimate_features

    make = ctx.function("dataset")
    ds = ctx._call_make_dataset(make, "unlabeled") if make is not None else None
    if ds is None:
        raise SkipCheck(NO_TENSOR_POOL)
    if ctx.config.checkpoint is not None and ctx.has_model:
        from .predictions import _load_checkpoint

        model, trained = _load_checkpoint(ctx), "the checkpoint"
    else:
        from .probe import train_reference

        ref = train_reference(ctx)
        if ref.kind != "torch":
            raise SkipCheck("needs a PyTorch model to read penultimate features from")
        model, trained = ref.model, "the model mltriage trained"
    V, what = penultimate_features(ctx, model, ctx.tensor_rows("valid"))
    pool = TensorRows(TensorSplit("unlabeled", ds, ctx.function("collate"),
                                  f"[model] dataset = \"{ctx.config.dataset}\" (unlabeled)", ctx.config, ctx.seed))
    P, _ = penultimate_features(ctx, model, pool)
    return _normalise(V), _normalise(P), f"the model's penultimate layer ({what}, {trained})"


@analysis
def pool_ranking(ctx: RunContext) -> PoolRanking:
    """Score every pool row against the weak slices and the confident mistakes (see the module text)."""
    import numpy as np

    from .predictions import model_outputs
    from .slices import weak_slice_analysis

    V, chunks, n_pool, frame, space = _vectors(ctx)  # first: without a pool, nothing else is computed
    so = model_outputs(ctx).get("valid")
    try:
        slices = _slice_models(V, weak_slice_analysis(ctx))
    except SkipCheck:
        slices = []
    ref = _reference(ctx, V, so, so.labelled)
    ranking = PoolRanking(n_pool, space, [Target("weak slice", f["description"], int(f["size"]),
                                                 separation_auc=m.auc, threshold=m.threshold) for f, m in slices])
    ranking.score, ranking.target = np.zeros(n_pool), np.full(n_pool, -1, dtype=np.int64)
    ranking.mistake_row = np.full(n_pool, -1, dtype=np.int64)
    ranking.frame = frame
    mistake_target: dict[int, int] = {}
    for start, P in chunks:
        _score_chunk(ranking, slices, ref, mistake_target, start, P)
    return ranking


def _score_chunk(ranking: PoolRanking, slices, ref: Reference, mistake_target: dict, start: int, P) -> None:
    import numpy as np

    n = P.shape[0]
    scores, thresholds = [], []
    for t, (_, model) in enumerate(slices):
        prob = model.probability(np.asarray(P @ model.centroid).ravel())
        hit = prob >= model.threshold
        ranking.targets[t].resembling += int(hit.sum())
        ranking.targets[t].best = max(ranking.targets[t].best, float(prob.max(initial=0.0)))
        scores.append(prob)
        thresholds.append(model.threshold)
    share, nearest = (knn_mistakes(P, ref.vectors, ref.wrong, ref.confident) if ref.confident.any()
                      else (np.zeros(n), np.full(n, -1, dtype=np.int64)))
    nearest_pos = np.where(nearest >= 0, ref.positions[np.maximum(nearest, 0)], -1)
    for pos in np.unique(nearest_pos[(nearest_pos >= 0) & (share >= ref.threshold)]):
        if int(pos) not in mistake_target:
            mistake_target[int(pos)] = len(ranking.targets)
            ranking.targets.append(Target("confident mistake", f"mistake row {int(pos)}", 1,
                                          threshold=ref.threshold))
        t = ranking.targets[mistake_target[int(pos)]]
        sel = (nearest_pos == pos) & (share >= ref.threshold)
        t.resembling += int(sel.sum())
        t.best = max(t.best, float(share[sel].max()))
    S = np.column_stack(scores + [share]) if scores else share[:, None]
    thr = np.array(thresholds + [ref.threshold])
    ok = S >= thr
    best = np.where(ok.any(axis=1), np.argmax(np.where(ok, S, -1.0), axis=1), np.argmax(S, axis=1))
    rows = slice(start, start + n)
    ranking.score[rows] = S[np.arange(n), best]
    is_mistake = best == len(slices)
    ranking.mistake_row[rows] = np.where(is_mistake, nearest_pos, -1)
    target = np.where(is_mistake, -1, best)
    for i in np.flatnonzero(is_mistake & ok[np.arange(n), best]):
        target[i] = mistake_target.get(int(nearest_pos[i]), -1)
    target[~ok[np.arange(n), best]] = -1   # resembles nothing
    ranking.target[rows] = target
