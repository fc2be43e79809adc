"""Issue 17, second pass: the cheaper row hashes, label tables and row-table assembly must give exactly
what the plain definitions give.

- all_row_hashes mixes the string columns only into rows whose numeric columns are still shared: the
  partition of rows into equal-hash groups must equal the one of hashing every column into every row,
  within and across splits, on data where rows agree on the numbers and differ only in a string.
- several_label_rows' dense (keys x labels) table must equal the pair-code path.
- stack_rows(plain=True) must produce the same records as the converting path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import context_for, write_project
from mltriage.checks.analyses.rowkeys import (_several_labels, all_row_hashes, codes_in_order, first_of_codes,
                                              joint_column_keys, mix_into, pair_codes, pair_firsts,
                                              several_label_rows)


def _reference_hashes(ctx):
    """Every feature column mixed into every row, in column order (the definition)."""
    total = sum(len(df) for df in ctx.splits.values())
    hashes = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j, c in enumerate(ctx.feature_columns):
            mix_into(hashes, joint_column_keys([df[c] for df in ctx.splits.values()]), j)
    return hashes


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x": rng.integers(0, 4, n).astype(float),          # coarse: many rows share it
        "z": rng.normal(size=n).round(1),
        "cat": rng.choice(["a", "b", "c"], n),
        "text": [f"review {i % 37}" for i in range(n)],
        "label": rng.integers(0, 2, n),
    })
    df.loc[rng.choice(n, 5, replace=False), "z"] = np.nan
    return df


def _project(tmp_path, plant: bool):
    train, valid = _frame(400, 1), _frame(150, 2)
    if plant:
        # exact copies inside train and across splits, and rows equal in every number but the text
        train.iloc[300:320] = train.iloc[0:20].to_numpy()
        valid.iloc[0:10] = train.iloc[40:50].to_numpy()
        valid.iloc[10:20] = train.iloc[60:70].to_numpy()
        valid.loc[valid.index[10:20], "text"] = "a text train never has"
    return context_for(write_project(tmp_path, train, valid, text=["text"]))


def _partition(hashes):
    return codes_in_order(hashes).tolist()


def test_row_hash_groups_equal_hashing_every_column(tmp_path):
    for plant in (True, False):
        ctx = _project(tmp_path / str(plant), plant)
        ours = np.concatenate(list(all_row_hashes(ctx).values()))
        assert _partition(ours) == _partition(_reference_hashes(ctx))


def test_row_hashes_find_planted_copies_and_not_text_twins(tmp_path):
    ctx = _project(tmp_path / "planted", True)
    train, valid = all_row_hashes(ctx)["train"], all_row_hashes(ctx)["valid"]
    assert (train[300:320] == train[0:20]).all()
    assert (valid[0:10] == train[40:50]).all()
    assert not np.isin(valid[10:20], train).any()  # same numbers, another text: not the same row


def test_row_hashes_of_a_clean_frame_are_all_distinct(tmp_path):
    train = pd.DataFrame({"x": np.arange(300.0), "t": [f"t{i}" for i in range(300)], "label": np.arange(300) % 2})
    valid = pd.DataFrame({"x": np.arange(300.0, 400.0), "t": [f"v{i}" for i in range(100)],
                          "label": np.arange(100) % 2})
    ctx = context_for(write_project(tmp_path, train, valid))
    hashes = np.concatenate(list(all_row_hashes(ctx).values()))
    assert len(np.unique(hashes)) == 400


def test_dense_label_table_equals_pair_codes():
    rng = np.random.default_rng(0)
    for n, keys, labels in [(1000, 50, 2), (20000, 15000, 3), (500, 10, 40), (10, 3, 1), (50, 5, 300)]:
        k = rng.integers(0, keys, n)
        y = rng.integers(-1, labels, n)
        want = _several_labels(k, first_of_codes(pair_codes(k, y)), y >= 0)[0]
        assert several_label_rows(k, y).tolist() == want.tolist()
    k = np.array([0, 0, 1, 1, 2])
    assert several_label_rows(k, np.array([0, 1, 1, 1, -1])).tolist() == [True, True, False, False, False]
    assert not several_label_rows(k, np.array([-1, -1, -1, -1, -1])).any()


def test_plain_stack_rows_equals_the_converting_path():
    from mltriage.checks.steps.data._common import stack_rows, _cells

    col = {"position": [0, 1, 2], "split": ["train"] * 3,
           "v": _cells(np.array([1.5, np.nan, np.inf]), 3), "o": _cells(np.array([None, "x" * 600, 3], dtype=object), 3),
           "b": _cells(np.array([True, False, True]), 3)}
    plain, converted = stack_rows([col], plain=True), stack_rows([col])
    assert plain.records == converted.records and plain.columns == converted.columns
    assert plain.records[2][2] is None and plain.records[1][2] is None
    assert (plain.total, plain.key) == (converted.total, converted.key)


def test_wasserstein_equals_scipy():
    from scipy.stats import wasserstein_distance

    from mltriage.checks.steps.data.shift import wasserstein_1d

    rng = np.random.default_rng(5)
    for _ in range(50):
        a = rng.normal(size=int(rng.integers(5, 3000))).round(int(rng.integers(0, 3)))   # ties included
        b = (rng.normal(size=int(rng.integers(5, 3000))) + rng.normal()).round(int(rng.integers(0, 3)))
        assert abs(wasserstein_1d(a, b) - wasserstein_distance(a, b)) <= 1e-12 * max(wasserstein_distance(a, b), 1)
    assert wasserstein_1d(np.zeros(10), np.ones(10)) == 1.0
    assert wasserstein_1d(np.arange(10.0), np.arange(10.0)) == 0.0


def test_dense_pair_firsts_equal_hashed_pairs():
    """Few classes take the key * L + label path, many the hash path; both must mark the same rows."""
    rng = np.random.default_rng(7)
    for n, keys, low, high in [(2000, 300, -1, 2), (5000, 4000, 0, 5), (300, 20, -3, 400), (1, 1, 0, 1),
                               (800, 700, 10, 4000)]:
        k = codes_in_order(rng.integers(0, keys, n))
        y = rng.integers(low, high, n)
        pairs = pair_codes(k, y)
        first, repeated = pair_firsts(k, y)
        assert first.tolist() == first_of_codes(pairs).tolist()
        assert repeated.tolist() == (np.bincount(pairs) > 1)[pairs].tolist()
    k, y = np.array([0, 0, 1, 0, 1]), np.array([1, 1, 0, 2, 0])
    first, repeated = pair_firsts(k, y)
    assert first.tolist() == [True, False, True, True, False]
    assert repeated.tolist() == [True, True, True, False, True]
