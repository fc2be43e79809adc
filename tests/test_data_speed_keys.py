"""Issue 17: the faster row-key and near-duplicate code must give exactly what the plain definitions give.

Each test compares the vectorised code with a direct (slow, obvious) definition on data built to hit the
cases that differ: repeats, labels that conflict, blank/negative labels, documents of ragged lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mltriage.checks.analyses import neardup
from mltriage.checks.analyses.rowkeys import (codes_in_order, duplicate_flags, first_of_codes,
                                              keys_with_several_labels, several_label_rows)


def _naive_flags(keys, labels):
    """duplicate_flags by definition, with Python dicts."""
    n = len(keys)
    seen_pair, pair_count, key_count, key_labels, group_of = set(), {}, {}, {}, {}
    for k, y in zip(keys.tolist(), labels.tolist()):
        pair_count[(k, y)] = pair_count.get((k, y), 0) + 1
        key_count[k] = key_count.get(k, 0) + 1
        if y >= 0:
            key_labels.setdefault(k, set()).add(y)
    is_dup, group = [], []
    for k, y in zip(keys.tolist(), labels.tolist()):
        is_dup.append((k, y) in seen_pair)
        seen_pair.add((k, y))
        if key_count[k] > 1:
            group_of.setdefault(k, len(group_of))
        group.append(group_of.get(k, -1))
    return {"group": group, "is_duplicate": is_dup,
            "in_duplicate": [pair_count[(k, y)] > 1 for k, y in zip(keys.tolist(), labels.tolist())],
            "is_conflicting_label": [y >= 0 and len(key_labels.get(k, ())) > 1
                                     for k, y in zip(keys.tolist(), labels.tolist())],
            "distinct": len(key_count), "conflict_groups": sum(len(v) > 1 for v in key_labels.values()), "n": n}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-1, 2)), min_size=1, max_size=60))
def test_duplicate_flags_equal_their_definition(rows):
    keys = np.array([k * 0x9E3779B97F4A7C15 % 2 ** 64 for k, _ in rows], dtype=np.uint64)
    labels = np.array([y for _, y in rows])
    ours, want = duplicate_flags(keys, labels), _naive_flags(keys, labels)
    for name in ("group", "is_duplicate", "in_duplicate", "is_conflicting_label"):
        assert ours[name].tolist() == want[name], name
    assert (ours["distinct"], ours["conflict_groups"]) == (want["distinct"], want["conflict_groups"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 2)), min_size=1, max_size=50))
def test_several_labels_match_pandas(rows):
    keys = np.array([k for k, _ in rows], dtype=np.uint64)
    labels = np.array([y for _, y in rows])
    frame = pd.DataFrame({"k": keys, "y": labels})
    labelled = frame[frame.y >= 0]
    several = labelled.groupby("k").y.nunique()
    bad = np.sort(several[several > 1].index.to_numpy(dtype=np.uint64))
    got_bad, mask = keys_with_several_labels(keys, labels)
    assert got_bad.tolist() == bad.tolist()
    assert mask.tolist() == ((frame.y >= 0) & frame.k.isin(bad)).tolist()
    assert several_label_rows(codes_in_order(keys), labels).tolist() == mask.tolist()


def test_first_of_codes_is_pandas_first_occurrence():
    keys = np.array([9, 3, 9, 9, 1, 3, 7], dtype=np.uint64)
    assert first_of_codes(codes_in_order(keys)).tolist() == (~pd.Series(keys).duplicated()).tolist()
    assert first_of_codes(codes_in_order(np.empty(0, np.uint64))).tolist() == []


def _texts(seed: int, n: int, vocab: int, longest: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    return [" ".join(rng.choice(words, rng.integers(1, longest))) + (". same end" if i % 3 else "")
            for i in range(n)]


def _signatures_by_reduceat(doc, hashes, n_docs, seed):
    """The plain definition: per hash function, the minimum over each document's segment."""
    k = neardup.BANDS * neardup.BAND_ROWS
    rng = np.random.default_rng(seed)
    salts = rng.integers(0, 2 ** 63 - 1, size=k, dtype=np.int64).view(np.uint64)
    odds = rng.integers(0, 2 ** 62, size=k, dtype=np.int64).view(np.uint64) * np.uint64(2) + np.uint64(1)
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    out = np.empty((n_docs, k), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            out[:, j] = np.minimum.reduceat((hashes ^ salts[j]) * odds[j], starts)
    return out


def test_padded_signatures_equal_segment_minima():
    texts = _texts(2, 800, 300, 150)   # 1 to ~150 shingles: many length groups
    doc, hashes = neardup.shingle_hashes(texts)
    ours = neardup._signatures(doc, hashes, len(texts), 5)
    assert np.array_equal(ours, _signatures_by_reduceat(doc, hashes, len(texts), 5))


def _candidates_by_definition(sig):
    """Every pair agreeing on all rows of a band when buckets are small; star pairs (to the bucket's first,
    lowest row) in buckets above MAX_BUCKET, as the search documents."""
    pairs = set()
    for b in range(neardup.BANDS):
        buckets: dict = {}
        for i, row in enumerate(map(tuple, sig[:, b * neardup.BAND_ROWS:(b + 1) * neardup.BAND_ROWS].tolist())):
            buckets.setdefault(row, []).append(i)
        for members in buckets.values():
            pairs.update((members[0], j) for j in members[1:])
            if 2 < len(members) <= neardup.MAX_BUCKET:
                pairs.update((a, c) for x, a in enumerate(members) for c in members[x + 1:])
    return sorted(pairs)


def test_candidates_equal_their_definition():
    texts = _texts(1, 1500, 12, 6)   # few words: big and small buckets both
    doc, hashes = neardup.shingle_hashes(texts)
    sig = neardup._signatures(doc, hashes, len(texts), 0)
    ours = neardup._candidates(sig)
    assert len(ours) > 1000
    assert [tuple(p) for p in ours.tolist()] == _candidates_by_definition(sig)


def test_all_pairs_of_buckets():
    got = neardup._all_pairs(np.array([4, 1, 4, 1, 4, 1, 1]), np.array([0, 1, 2, 3, 5, 6, 9]))
    assert sorted(map(tuple, got.tolist())) == [(0, 2), (0, 5), (1, 3), (1, 6), (1, 9), (2, 5),
                                                (3, 6), (3, 9), (6, 9)]


def test_shingles_of_an_arrow_column_equal_those_of_its_strings():
    texts = ["Ça va. Très BIEN!", None, "one two three four", "", "x;y:z", "Ça va. très bien"]
    for dtype in ("str", "string[pyarrow]"):
        column = pd.Series(texts, dtype=dtype).iloc[[5, 0, 1, 2, 3, 4]]
        listed = [texts[i] for i in (5, 0, 1, 2, 3, 4)]
        got, want = neardup.shingle_hashes(column), neardup.shingle_hashes(listed)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
