"""Keys that make equal values (and equal rows) comparable across splits, computed once per run.

Duplicates, split overlap and contradictory labels all ask "is this row (or text) equal to that one?"
on up to millions of rows. Hashing every cell of every column with pandas costs about a second per
million rows, most of it in string columns. Here each column is encoded once for all splits together
(strings factorised jointly through pyarrow's dictionary encoding, numbers taken by their bit
pattern), so equal values get equal 64-bit keys in every split; rows are then combined with a strong
integer mixer. Everything is vectorised and about 3x faster.
"""

from __future__ import annotations

import re

from ..engine.analysis import analysis
from ..engine.context import RunContext

# Keys for values that have no code of their own. Missing values compare equal to each other (as in
# pandas' duplicated()), and never equal to a real value's key (codes are small non-negative ints,
# floats and ints use their bit pattern, where these exact patterns are a NaN payload no reader makes).
MISSING_KEY = 0x7FF8_DEAD_BEEF_0001
_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: spreads column indices over the key space
_FNV_PRIME = 0x100000001B3


def _split_lengths(ctx: RunContext) -> dict[str, int]:
    return {s: len(df) for s, df in ctx.splits.items()}


def joint_column_keys(parts):
    """One uint64 key per value of the concatenated Series `parts`: equal values -> equal keys.

    Numbers compare by value (an int 3 in train equals a float 3.0 in valid; -0.0 equals 0.0), strings
    and other objects by factorising all parts together; missing values share MISSING_KEY."""
    import numpy as np
    import pandas as pd

    kinds = {_kind(p) for p in parts}
    if kinds == {"int"}:
        return np.concatenate([p.to_numpy(dtype=np.int64) for p in parts]).view(np.uint64)
    if kinds <= {"int", "float", "bool"}:
        values = np.concatenate([p.to_numpy(dtype=np.float64, na_value=np.nan) for p in parts])
        values += 0.0  # -0.0 -> 0.0
        keys = values.view(np.uint64).copy()
        keys[np.isnan(values)] = MISSING_KEY
        return keys
    joint = pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True)
    if kinds - {"string"}:  # mixed kinds across splits: compare their text forms, like a CSV would
        joint = joint.astype("string")
    codes, _ = pd.factorize(joint, use_na_sentinel=True)
    keys = codes.astype(np.int64).view(np.uint64)
    keys[codes < 0] = MISSING_KEY
    return keys


def array_keys(values):
    """uint64 keys of a numpy array of labels: integers as they are, floats by value (NaN -> MISSING_KEY)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64).view(np.uint64)
    floats = values.astype(np.float64) + 0.0
    keys = floats.view(np.uint64).copy()
    keys[np.isnan(floats)] = MISSING_KEY
    return keys


def _kind(series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int" if not series.hasnans else "float"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "string"
    return "object"


def mix_into(hashes, keys, column_index: int) -> None:
    """hashes <- hashes * FNV prime XOR splitmix64(keys + column offset), in place.

    splitmix64's finaliser (Steele et al., 2014) is a bijection on 64 bits with full avalanche, so
    rows that differ in any column collide with probability about 2^-64 per pair."""
    import numpy as np

    x = keys + np.uint64((_GOLDEN * (column_index + 1)) & 0xFFFF_FFFF_FFFF_FFFF)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    hashes *= np.uint64(_FNV_PRIME)
    hashes ^= x


def _by_split(ctx: RunContext, joint) -> dict:
    out, start = {}, 0
    for split, n in _split_lengths(ctx).items():
        out[split] = joint[start:start + n]
        start += n
    return out


# Cost rank of a column's keys: numbers are a bit-pattern view, strings a hash-table pass, other objects
# a conversion first. all_row_hashes mixes the cheap columns in first.
_KEY_COST = {"int": 0, "float": 0, "bool": 0, "string": 1, "object": 2}


def _hash_order(parts_by_column: dict) -> list:
    """Feature column indices, the cheapest keys first (numbers, then strings, then objects), stable."""
    cost = {j: max(_KEY_COST[_kind(p)] for p in parts) for j, parts in parts_by_column.items()}
    return sorted(cost, key=cost.get)


def shared_hash_rows(hashes, rows):
    """The subset of `rows` (positions into `hashes`) whose hash is shared with another row of the subset."""
    import numpy as np

    codes = codes_in_order(hashes[rows])
    return rows[(np.bincount(codes) > 1)[codes]] if len(rows) else rows


def _parts_at(parts: list, rows, starts: list) -> list:
    """Each split's Series restricted to the joint positions `rows` (ascending) that fall in it."""
    import numpy as np

    out = []
    for part, start in zip(parts, starts):
        lo, hi = np.searchsorted(rows, [start, start + len(part)])
        out.append(part.iloc[rows[lo:hi] - start])
    return out


@analysis
def all_row_hashes(ctx: RunContext) -> dict:
    """split -> one uint64 per row over the feature columns (the label is not part of it).

    Equal rows need equal hashes, and a row whose hash over some columns is already unique cannot equal
    any other row, whatever its other columns hold: its hash is final. So the cheap (numeric) columns are
    mixed into every row, then only the rows whose partial hash is still shared get the next columns (on
    the bench's million rows, 3.5% after the first number), and the costly string columns are hashed for
    those alone. A final hash still differs from every other row's unless the rows are equal (a partial
    hash that is unique stays apart from the ones mixed further, up to the 2^-64 chance of mix_into)."""
    import numpy as np

    lengths = list(_split_lengths(ctx).values())
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64).tolist() if lengths else []
    hashes = np.zeros(sum(lengths), dtype=np.uint64)
    by_column = {j: [df[c] for df in ctx.splits.values()] for j, c in enumerate(ctx.feature_columns)}
    open_rows = None          # None: every row is still open
    interval, since = 1, 0    # columns between narrowings; doubled while a narrowing frees < half the rows
    with np.errstate(over="ignore"):
        for j in _hash_order(by_column):
            if since >= interval:
                before = len(hashes) if open_rows is None else len(open_rows)
                open_rows = shared_hash_rows(hashes, np.arange(len(hashes)) if open_rows is None else open_rows)
                since, interval = 0, interval * 2 if len(open_rows) * 2 > before else interval
                if not len(open_rows):
                    break
            if open_rows is None:
                mix_into(hashes, joint_column_keys(by_column[j]), j)
            else:
                part = hashes[open_rows]
                mix_into(part, joint_column_keys(_parts_at(by_column[j], open_rows, starts)), j)
                hashes[open_rows] = part
            since += 1
    return _by_split(ctx, hashes)


@analysis
def all_text_codes(ctx: RunContext, column: str) -> dict:
    """split -> int64 code per row of a text column after normalize_text (equal codes = equal texts);
    -1 for texts that are missing or normalise to nothing, which match no other text."""
    import numpy as np
    import pandas as pd

    joint = pd.concat([df[column].reset_index(drop=True) for df in ctx.splits.values()], ignore_index=True)
    normal = normalize_text(joint, thorough_text(ctx))
    codes, _ = pd.factorize(normal.where(normal != ""), use_na_sentinel=True)
    return _by_split(ctx, codes.astype(np.int64))


def first_occurrence_mask(keys):
    """True where a key appears for the first time (pandas' duplicated(keep='first'), negated)."""
    return first_of_codes(codes_in_order(keys))


def codes_in_order(values):
    """A dense int64 code per value, equal codes for equal values, numbered in order of first appearance
    (pd.factorize): one hash pass from which first occurrences, repeats and groups follow in numpy."""
    import numpy as np
    import pandas as pd

    return pd.factorize(np.asarray(values))[0].astype(np.int64, copy=False)


def first_of_codes(codes):
    """True where a code of codes_in_order appears for the first time. Codes are numbered in order of
    first appearance, so a row holds a new code exactly when it exceeds every code before it."""
    import numpy as np

    first = np.ones(len(codes), dtype=bool)
    if len(codes) > 1:
        first[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return first


def pair_codes(key_codes, labels):
    """codes_in_order of the (key, label) pairs: equal exactly when both the key and the label are equal
    (labels compared by value as array_keys does: NaN equals NaN)."""
    label_codes = codes_in_order(array_keys(labels))
    n_labels = int(label_codes.max()) + 1 if len(label_codes) else 1
    return codes_in_order(key_codes * n_labels + label_codes)


def _several_labels(key_codes, first_pair, labelled):
    """Mask of the rows whose key code occurs (among `labelled` rows) with more than one label, and the
    number of such keys. `first_pair` is True where a row's (key, label) pair shows for the first time."""
    import numpy as np

    distinct = labelled & first_pair  # each key once per label it carries
    n_keys = int(key_codes.max()) + 1 if len(key_codes) else 0
    several = np.bincount(key_codes[distinct], minlength=n_keys) > 1
    return labelled & several[key_codes], int(several.sum())


def _dense_labels(labels, n_keys: int):
    """(labels as 0..L-1, L) when they are integers whose (key, label) table has at most
    _DENSE_PAIRS_PER_ROW cells a row, else None (then pairs are hashed: pair_codes)."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.dtype.kind not in "ib" and not (labels.dtype.kind == "u" and labels.dtype.itemsize < 8):
        return None
    if not len(labels):
        return None
    labels = labels.astype(np.int64)
    low = int(labels.min())
    n_labels = int(labels.max()) - low + 1
    if n_keys * n_labels > _DENSE_PAIRS_PER_ROW * len(labels):
        return None
    return labels - low, n_labels


def pair_firsts(key_codes, labels):
    """(first, repeated): per row, whether its (key, label) pair shows here for the first time and whether
    it occurs more than once; labels compared by value (as pair_codes). Few classes: the pair is the
    number key * L + label, its first row found with np.minimum.at (no hash pass); else pair_codes."""
    import numpy as np

    n = len(key_codes)
    dense = _dense_labels(labels, int(key_codes.max()) + 1 if n else 0)
    if dense is None:
        pairs = pair_codes(key_codes, labels)
        return first_of_codes(pairs), (np.bincount(pairs) > 1)[pairs] if n else np.zeros(0, bool)
    label_codes, n_labels = dense
    pairs = key_codes * n_labels + label_codes
    rows = np.arange(n)
    first_row = np.full(int(pairs.max()) + 1, n, dtype=np.int64)
    np.minimum.at(first_row, pairs, rows)
    return first_row[pairs] == rows, (np.bincount(pairs) > 1)[pairs]


def several_label_rows(key_codes, labels):
    """Mask of the rows whose key (non-negative int codes of the keys, equal codes for equal keys, e.g.
    codes_in_order computed once by the caller) occurs with more than one distinct label. `labels` are ints; rows with a negative label are ignored."""
    import numpy as np

    labels = np.asarray(labels)
    labelled = labels >= 0
    if labels.dtype.kind in "iu" and len(labels):
        n_keys, n_labels = int(key_codes.max()) + 1, int(labels.max()) + 1
        if n_keys * n_labels <= _DENSE_PAIRS_PER_ROW * len(labels):
            return labelled & _labels_per_key(key_codes[labelled], labels[labelled], n_keys, n_labels)[key_codes]
    return _several_labels(key_codes, pair_firsts(key_codes, labels)[0], labelled)[0]


# Few classes: which labels each key carries fits in a (keys x labels) boolean table of at most this many
# cells per row (8 bytes a row, the size of the codes themselves), filled in one scatter instead of two
# hash passes over the (key, label) pairs. Many classes fall back to pair_codes.
_DENSE_PAIRS_PER_ROW = 8


def _labels_per_key(keys, labels, n_keys: int, n_labels: int):
    """True for each key 0..n_keys-1 that occurs with more than one of the labels 0..n_labels-1."""
    import numpy as np

    seen = np.zeros((n_keys, n_labels), dtype=bool)
    seen[keys, labels] = True
    return np.count_nonzero(seen, axis=1) > 1


def keys_with_several_labels(keys, labels):
    """Keys (e.g. row hashes) that occur with more than one distinct label, and a mask of the rows
    holding them. `labels` are non-negative ints; rows with a negative label are ignored."""
    import numpy as np

    mask = several_label_rows(codes_in_order(keys), labels)
    return np.unique(np.asarray(keys)[mask]), mask


_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


# Up to this many rows in all splits together, texts are compared after a full normalisation (lower-case,
# every run of punctuation/whitespace -> one space; ~2 s per million texts). Beyond it, a vectorised
# light form (lower-case, punctuation and spaces trimmed at both ends) keeps the check within seconds.
THOROUGH_TEXT_ROWS = 300_000


_EDGE_CHARS = " \t\r\n.,;:!?\"'()[]{}-*~_"


def normalize_text(series, thorough: bool = True):
    """Texts in a form where near-identical ones compare equal (see THOROUGH_TEXT_ROWS)."""
    if thorough:
        return series.fillna("").astype(str).str.lower().str.replace(_NON_WORD, " ", regex=True).str.strip()
    try:
        import pyarrow.compute as pc

        arr = series.astype("string[pyarrow]").array._pa_array
        out = pc.utf8_trim(pc.utf8_lower(pc.fill_null(arr, "")), characters=_EDGE_CHARS)
        import pandas as pd

        return pd.Series(pd.arrays.ArrowStringArray(out), index=series.index)
    except Exception:
        return series.fillna("").astype(str).str.lower().str.strip(_EDGE_CHARS)


def thorough_text(ctx: RunContext) -> bool:
    return sum(len(df) for df in ctx.splits.values()) <= THOROUGH_TEXT_ROWS


def row_hashes(ctx: RunContext, split: str):
    """One 64-bit hash per row of the feature columns, equal across splits for equal rows (rowkeys.py)."""

    return all_row_hashes(ctx)[split]


def text_codes(ctx: RunContext, split: str, column: str):
    """A code per row of a text column after normalize_text: equal codes mean equal normalised texts,
    in every split; -1 for missing texts and texts that normalise to nothing."""

    return all_text_codes(ctx, column)[split]


def prefetch_row_keys(ctx: RunContext) -> None:
    """What duplicates, split_overlap and text_quality compare: row hashes and normalised-text codes
    for every split (pyarrow and numpy work, safe on the engine's prefetch thread)."""
    for split in ctx.splits:
        ctx.y(split)
    row_hashes(ctx, "train")
    for column in ctx.text_columns:
        text_codes(ctx, "train", column)


def duplicate_flags(keys, labels=None, classification: bool = True) -> dict:
    """Per row of one split: `group` (a number shared by rows of equal keys that repeat, -1 for a row
    whose key is unique), `is_duplicate` (repeats an earlier row's key and label exactly),
    `in_duplicate` (one of a group of rows equal in key and label, the first copy included) and
    `is_conflicting_label` (its key also occurs with another label; classification only). Also the
    counts the duplicates check reports: `distinct` keys and `conflict_groups` (keys with several labels).
    One hash pass over the keys (pair_firsts hashes the (key, label) pairs only for many classes); the
    rest is counting codes."""
    import numpy as np

    keys = np.asarray(keys)
    n = len(keys)
    codes = codes_in_order(keys)
    n_keys = int(codes.max()) + 1 if n else 0
    repeated_code = np.bincount(codes, minlength=n_keys) > 1
    # factorize numbers groups by first appearance, so repeated keys keep that order among themselves
    group_of_code = np.full(n_keys, -1, dtype=np.int64)
    group_of_code[repeated_code] = np.arange(int(repeated_code.sum()))
    if labels is not None:
        first_pair, repeated_pair = pair_firsts(codes, labels)
    else:
        first_pair, repeated_pair = first_of_codes(codes), repeated_code[codes]
    conflict, conflict_groups = np.zeros(n, dtype=bool), 0
    if labels is not None and classification:
        conflict, conflict_groups = _several_labels(codes, first_pair, np.asarray(labels) >= 0)
    return {"group": group_of_code[codes], "is_duplicate": ~first_pair, "in_duplicate": repeated_pair,
            "is_conflicting_label": conflict, "distinct": n_keys, "conflict_groups": conflict_groups}


@analysis
def split_duplicate_flags(ctx: RunContext, split: str) -> dict:
    """duplicate_flags of a split's row hashes and labels, once per run (the duplicates check counts
    them, its row table lists them, split_overlap reads train's distinct count)."""
    return duplicate_flags(row_hashes(ctx, split), ctx.y(split), ctx.is_classification)


def matching_positions(keys, other_keys, limit: int = 5) -> list:
    """For each of `keys`, the first `limit` positions in `other_keys` holding the same key ([] none)."""
    import numpy as np
    import pandas as pd

    keys, other_keys = np.asarray(keys), np.asarray(other_keys)
    hit = np.flatnonzero(pd.Index(pd.unique(keys)).get_indexer(other_keys) >= 0)
    order = np.argsort(other_keys[hit], kind="stable")         # grouped by key, positions ascending
    sorted_keys, positions = other_keys[hit][order], hit[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(hit) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(hit)]
    at = np.searchsorted(sorted_keys[starts], keys) if len(starts) else np.zeros(len(keys), np.int64)
    at = np.minimum(at, max(len(starts) - 1, 0))
    found = (sorted_keys[starts[at]] == keys) if len(starts) else np.zeros(len(keys), bool)
    return [positions[starts[g]:min(ends[g], starts[g] + limit)].tolist() if ok else []
            for g, ok in zip(at.tolist(), found.tolist())]


def item_duplicate_columns(hashes: list, labels: list | None) -> dict:
    """Row-table columns of the items (tensor projects: content hashes as bytes) that repeat another
    item's input: position, the hash, the label, a group per distinct input, whether the item repeats an
    earlier one, and whether its input also carries another label. Groups in order of first appearance."""
    groups: dict = {}
    for i, h in enumerate(hashes):
        groups.setdefault(h, []).append(i)
    out = {"position": [], "content_hash": [], "label": [], "duplicate_group": [], "is_duplicate": [],
           "is_conflicting_label": []}
    for g, members in enumerate(m for m in groups.values() if len(m) > 1):
        seen = {labels[i] for i in members if labels[i] is not None} if labels is not None else set()
        for k, i in enumerate(members):
            out["position"].append(i)
            out["content_hash"].append(hashes[i].hex()[:16])
            out["label"].append(labels[i] if labels is not None else None)
            out["duplicate_group"].append(g)
            out["is_duplicate"].append(k > 0)
            out["is_conflicting_label"].append(len(seen) > 1)
    return out


def item_overlap_columns(train_hashes: list, hashes: list, train_labels: list, labels: list, limit: int = 5) -> dict:
    """Row-table columns of the items of an evaluation split whose input is also a train item's: their
    position, the hash, their label, the first `limit` train positions holding it and the first one's label."""
    where: dict = {}
    for i, h in enumerate(train_hashes):
        found = where.setdefault(h, [])
        if len(found) < limit:
            found.append(i)
    out = {"position": [], "content_hash": [], "label": [], "train_positions": [], "train_label": []}
    for i, h in enumerate(hashes):
        if h in where:
            out["position"].append(i)
            out["content_hash"].append(h.hex()[:16])
            out["label"].append(labels[i])
            out["train_positions"].append(where[h])
            out["train_label"].append(train_labels[where[h][0]])
    return out
