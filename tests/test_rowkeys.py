"""Row and value keys shared across splits (checks/analyses/rowkeys.py): equal exactly when pandas says equal."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mltriage.checks.analyses.rowkeys import (MISSING_KEY, array_keys, first_occurrence_mask, joint_column_keys,
                                              keys_with_several_labels, mix_into)


def _keys(*parts):
    return joint_column_keys([pd.Series(p) for p in parts])


def test_numbers_compare_by_value_across_dtypes():
    keys = _keys([3, 4], [3.0, np.nan], [-0.0, 0.0])
    assert keys[0] == keys[2]          # int 3 in train equals float 3.0 in valid
    assert keys[1] != keys[0]
    assert keys[3] == MISSING_KEY
    assert keys[4] == keys[5]          # -0.0 == 0.0


def test_large_integers_stay_distinct():
    big = 2 ** 53
    keys = _keys([big, big + 1])
    assert keys[0] != keys[1]          # would collide through float64


def test_strings_are_encoded_jointly():
    train = pd.Series(["a", "b", None], dtype="string[pyarrow]")
    valid = pd.Series(["b", "c", None], dtype="string[pyarrow]")
    keys = joint_column_keys([train, valid])
    assert keys[1] == keys[3] and keys[0] != keys[3] and keys[4] != keys[3]
    assert keys[2] == keys[5] == MISSING_KEY


def test_mixed_kinds_fall_back_to_text():
    keys = _keys(["x", "3"], pd.Series(["3", "x"], dtype=object))
    assert keys[1] == keys[2] and keys[0] == keys[3]


def test_array_keys_treat_nan_as_missing():
    keys = array_keys(np.array([1.5, np.nan, -0.0, 0.0]))
    assert keys[1] == MISSING_KEY and keys[2] == keys[3] and keys[0] != keys[2]


def _row_hashes(df: pd.DataFrame) -> np.ndarray:
    hashes = np.zeros(len(df), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j, c in enumerate(df.columns):
            mix_into(hashes, joint_column_keys([df[c]]), j)
    return hashes



@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["a", "b", None]), st.sampled_from([0.5, 1.5, np.nan])),
                min_size=1, max_size=40))
def test_row_duplicates_match_pandas(rows):
    df = pd.DataFrame(rows, columns=["i", "s", "f"]).astype({"s": "string[pyarrow]"})
    ours = ~first_occurrence_mask(_row_hashes(df))
    assert ours.tolist() == df.duplicated().tolist()


def test_column_order_matters():
    a = pd.DataFrame({"x": [1, 2], "y": [2, 1]})
    h = _row_hashes(a)
    assert h[0] != h[1]


def test_keys_with_several_labels():
    keys = np.array([1, 1, 2, 2, 3, 3], dtype=np.uint64)
    labels = np.array([0, 1, 0, 0, 1, -1])
    bad, mask = keys_with_several_labels(keys, labels)
    assert bad.tolist() == [1]
    assert mask.tolist() == [True, True, False, False, False, False]
