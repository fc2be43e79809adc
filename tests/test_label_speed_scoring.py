"""data.label_issues at a million rows (issue 17): the label model featurises each row once and scores
without stacking its column blocks, and stays strictly out of fold while doing so."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import mltriage.checks.analyses.labels as labels


@pytest.mark.parametrize("k", [2, 3])
def test_block_scoring_equals_predict_proba_on_the_stacked_matrix(k):
    rng = np.random.default_rng(k)
    n = 600
    T = sparse.random(n, 40, density=0.1, format="csr", random_state=k)
    D = rng.normal(size=(n, 5))
    y = rng.integers(0, k, n)
    fitted = LogisticRegression(max_iter=500).fit(sparse.hstack([T, sparse.csr_matrix(D)]).tocsr(), y)
    expected = fitted.predict_proba(sparse.hstack([T, sparse.csr_matrix(D)]).tocsr())
    np.testing.assert_allclose(labels._linear_proba(fitted, [T, D], k), expected, rtol=0, atol=1e-10)
    # a model that saw fewer classes than the task has: its columns land where _proba_in puts them
    more = rng.integers(0, k + 1, n)
    seen = more != 0
    partial = LogisticRegression(max_iter=500).fit(T[seen], more[seen])
    np.testing.assert_allclose(labels._linear_proba(partial, [T], k + 1), labels._proba_in(partial, T, k + 1),
                               rtol=0, atol=1e-10)


class _Recorder(ClassifierMixin, BaseEstimator):
    """Reads the row position from column 0: remembers the rows it was fitted on and refuses to score one."""

    def fit(self, X, y):
        self.rows_ = set(X[:, 0].astype(int).tolist())
        self.classes_ = np.unique(y)
        fits.append(self.rows_)
        return self

    def predict_proba(self, X):
        assert not self.rows_ & set(X[:, 0].astype(int).tolist()), "a fold's model scored a row it was fitted on"
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


fits: list[set] = []


def _recording_design(featurised: list, kind: str):
    def rows(pos):
        featurised.append(len(pos))
        return np.column_stack([pos.astype(float), np.zeros(len(pos))])
    return labels._Design(rows, kind, "positions", 2)


@pytest.mark.parametrize("kind", ["sparse", "dense"])  # a shared fit sample; a sample per fold
@pytest.mark.parametrize("n", [3000, 700, 450])  # beyond the fit cap, beyond it by less than a fold, within it
def test_every_fold_is_fitted_out_of_fold_on_at_most_the_cap(monkeypatch, n, kind):
    monkeypatch.setattr(labels, "FIT_ROWS", 400)
    monkeypatch.setattr(labels, "SCORE_CHUNK", 256)
    fits.clear()
    featurised: list[int] = []
    rng = np.random.default_rng(0)
    y = np.where(rng.random(n) < 0.1, 1, 0)
    pos = np.sort(rng.choice(10 * n, n, replace=False))  # positions are not 0..n-1
    folds = StratifiedKFold(n_splits=labels.CV_FOLDS, shuffle=True, random_state=0)
    out = labels._out_of_fold(_recording_design(featurised, kind), _Recorder(), pos, y, 2, folds, seed=0)
    assert out.shape == (n, 2) and np.allclose(out, 0.5)
    assert len(fits) == labels.CV_FOLDS
    cap = labels.fit_cap(_Recorder(), n)
    held_out = [set(pos[h].tolist()) for _, h in folds.split(np.zeros(n), y)]
    for fitted_on, held in zip(fits, held_out):
        assert not fitted_on & held and len(fitted_on) <= cap
        assert len(fitted_on) == min(cap, n - len(held))  # the cap is used, not wasted
    if kind == "sparse":  # each row featurised once: the shared sample, then the held-out rows (none again
        shared = min(n, -(-cap // (labels.CV_FOLDS - 1)) * labels.CV_FOLDS)  # when it is every row)
        assert sum(featurised) == (shared if shared == n else shared + n)
    else:
        assert sum(featurised) == sum(map(len, fits)) + n


def test_stratified_sample_keeps_class_shares_and_rare_classes():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(9000, int), np.ones(990, int), np.full(10, 2)]
    idx = np.arange(len(y))
    got = labels._stratified_sample(idx, y, 1000, rng, 10)
    assert np.all(np.diff(got) > 0) and len(np.unique(got)) == len(got)
    counts = np.bincount(y[got], minlength=3)
    assert counts[0] == 900 and counts[1] == 99 and counts[2] == 10  # shares, and all of a rare class
    again = labels._stratified_sample(idx, y, 1000, np.random.default_rng(1), 10)
    assert np.array_equal(got, again)
    assert np.array_equal(labels._stratified_sample(idx[:500], y[:500], 1000, rng, 10), idx[:500])
    assert np.bincount(y[labels._stratified_sample(idx, y, 1000, rng, 0)], minlength=3)[2] == 1  # its share


def test_dense_columns_are_numeric_values_and_codes_of_the_rows():
    """The gathered block equals the per-chunk pandas reading it replaced, value for value and in C order."""
    from types import SimpleNamespace

    import pandas as pd

    from mltriage.checks.analyses.sampling import numeric_values

    rng = np.random.default_rng(3)
    n = 500
    floats = rng.normal(size=n)
    floats[[3, 7]] = [np.inf, -np.inf]
    floats[11] = np.nan
    nullable = pd.array(rng.integers(0, 9, n), dtype="Int64")
    nullable[5] = pd.NA
    train = pd.DataFrame({"f": floats, "i": rng.integers(-5, 5, n), "b": rng.random(n) < 0.5, "n": nullable,
                          "o": pd.Series(rng.choice(["1.5", "x", None, "2"], n), dtype=object),
                          "c": rng.choice(["a", "b", None], n), "k": pd.Categorical(rng.choice(["u", "v"], n))})
    ctx = SimpleNamespace(train=train, numeric_columns=["f", "i", "b", "n", "o"], categorical_columns=["c", "k"])
    rows, width = labels._dense_columns(ctx)
    pos = np.sort(rng.choice(n, 200, replace=False))
    got = rows(pos)
    codes = [pd.factorize(train[c].astype("string"), use_na_sentinel=True)[0] for c in ("c", "k")]
    expected = np.column_stack([numeric_values(train[c].iloc[pos]) for c in ctx.numeric_columns]
                               + [np.where(k < 0, np.nan, k).astype(float)[pos] for k in codes])
    assert width == 7 and got.flags.c_contiguous and got.dtype == np.float64
    assert np.array_equal(got, expected, equal_nan=True)


def _old_out_of_fold(design, model, pos, y, k, folds, seed):
    """The loop before issue 17: every fold's own sample, featurised for its fit, chunks scored stacked."""
    from sklearn.base import clone

    out = np.zeros((len(pos), k))
    rng = np.random.default_rng(seed)
    cap = labels.fit_cap(model, len(pos))
    for fit_idx, held in folds.split(np.zeros(len(pos)), y):
        fit_idx = labels._fit_sample(fit_idx, y, cap, rng)
        fitted = clone(model).fit(design.rows(pos[fit_idx]), y[fit_idx])
        for start in range(0, len(held), labels.SCORE_CHUNK):
            chunk = held[start:start + labels.SCORE_CHUNK]
            out[chunk] = labels._proba_in(fitted, design.rows(pos[chunk]), k)
    return out


def _table(n, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = np.argmax(X[:, :k] + rng.normal(scale=0.8, size=(n, k)), axis=1)
    return X, y


@pytest.mark.parametrize("k", [2, 3])
def test_dense_designs_give_exactly_the_previous_probabilities(monkeypatch, k):
    monkeypatch.setattr(labels, "FIT_ROWS", 300)
    monkeypatch.setattr(labels, "SCORE_CHUNK", 200)
    X, y = _table(2000, k)
    design = labels._Design(lambda pos: X[pos], "dense", "x", X.shape[1])
    pos = np.arange(len(X))
    folds = StratifiedKFold(n_splits=labels.CV_FOLDS, shuffle=True, random_state=1)
    model, _ = labels._linear_model(False)
    assert np.array_equal(labels._out_of_fold(design, model, pos, y, k, folds, 1),
                          _old_out_of_fold(design, model, pos, y, k, folds, 1))


@pytest.mark.parametrize("k", [2, 3])
def test_sparse_blocks_score_as_the_stacked_rows(monkeypatch, k):
    monkeypatch.setattr(labels, "FIT_ROWS", 300)
    monkeypatch.setattr(labels, "SCORE_CHUNK", 200)
    X, y = _table(2000, k, seed=2)
    T = sparse.csr_matrix(np.where(X[:, :3] > 0.5, X[:, :3], 0))

    def blocks(pos):
        return [T[pos], X[pos, 3:]]

    def rows(pos):
        return sparse.hstack([T[pos], sparse.csr_matrix(X[pos, 3:])]).tocsr()
    with_blocks = labels._Design(rows, "sparse", "x", 6, blocks=blocks)
    stacked = labels._Design(rows, "sparse", "x", 6)
    pos = np.arange(len(X))
    folds = StratifiedKFold(n_splits=labels.CV_FOLDS, shuffle=True, random_state=1)
    model = LogisticRegression(max_iter=500)
    got = labels._out_of_fold(with_blocks, model, pos, y, k, folds, 1)
    np.testing.assert_allclose(got, labels._out_of_fold(stacked, model, pos, y, k, folds, 1), rtol=0, atol=1e-10)
    assert got.shape == (len(X), k) and np.allclose(got.sum(1), 1)
