"""Near-duplicate texts: word-shingle MinHash with LSH banding, written with numpy and seeded.

Exact repeats (equal after normalisation) are rowkeys.py's job; this finds texts that are *almost* equal:
the same sentences in another order, one word changed, a sentence added. Texts are compared by the
resemblance (Jaccard similarity) of their sets of word shingles (Broder 1997, "On the resemblance and
containment of documents"), estimated with MinHash and searched with locality-sensitive hashing bands
(Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", ch. 3), then confirmed exactly on the shingle sets.

Work is done once per distinct normalised text (rowkeys.text_codes), jointly over all splits, so exact
copies never blow up the candidate lists; results are mapped back to rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..engine.analysis import analysis
from ..engine.context import RunContext
from .rowkeys import first_of_codes, mix_into, text_codes

# Two texts are near duplicates at a shingle Jaccard similarity of at least 0.8: the threshold of the
# deduplication literature (Broder 1997; Lee et al. 2022, "Deduplicating Training Data Makes Language
# Models Better", NearDup: MinHash, Jaccard >= 0.8).
NEAR_JACCARD = 0.8
# Word 3-grams as shingles (Lee et al. use 5-grams on web documents; reviews and prompts are a few short
# sentences, where 5-grams would leave most texts with one or two shingles). Shingles do not cross sentence
# boundaries, so the same sentences in another order have the same shingle set (Jaccard 1.0); a sentence
# shorter than SHINGLE_WORDS words is one shingle.
SHINGLE_WORDS = 3
# 20 bands of 6 MinHash rows (120 hashes): a pair at Jaccard 0.8 becomes a candidate with probability
# 1-(1-0.8^6)^20 = 0.998, a pair at 0.5 with 0.27, at 0.3 with 0.015 (the LSH S-curve, MMDS §3.4.2).
BANDS, BAND_ROWS = 20, 6
# A band bucket holding more distinct texts than this (templated boilerplate) pairs each member with the
# bucket's first member only, so the pair count stays linear; members that are near each other are still
# close to the first one or meet in another band.
MAX_BUCKET = 32
# All-pairs inside small buckets stop adding candidates beyond this many (star pairs always count), so
# heavily templated text cannot blow up memory.
MAX_CANDIDATES = 4_000_000
# In a run, at most this many distinct texts are searched (a seeded sample beyond it, and the evidence says
# so): about 4 s and 0.5 GB here, inside the data step's budget at a million rows. find_near_pairs itself has
# no cap (benchmarks/evidence.py times it on 200,000 texts).
SEARCH_TEXTS = 100_000
# At most this many near pairs are kept (the most similar first) for evidence and row flags.
MAX_PAIRS = 200_000

_SENTENCE = re.compile(r"[.!?;:\n\r]+")
_WORD = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1


def shingle_sets(texts) -> list[list[str]]:
    """The word shingles of each text as strings (for reading and tests; the search hashes them in bulk):
    lower-cased words, n-grams within each sentence (see SHINGLE_WORDS)."""
    n = SHINGLE_WORDS
    out = []
    for text in texts:
        shingles = set()
        for sentence in _SENTENCE.split(str(text).lower()):
            words = _WORD.findall(sentence)
            if not words:
                continue
            if len(words) <= n:
                shingles.add(" ".join(words))
            else:
                shingles.update(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        out.append(sorted(shingles))
    return out


# Python's \w as RE2 (pyarrow) spells it: RE2's own \w is ASCII only.
_NON_WORD_RE2 = r"[^\p{L}\p{N}\p{M}_]+"
_SENTINEL = 0x5EED_0000_0000_0001  # stands for "no word here" in a window shorter than SHINGLE_WORDS


def _as_text(value) -> str:
    """A cell as text: missing values (None, NaN, pd.NA, NaT) are empty, anything else its str()."""
    if isinstance(value, str):
        return value
    import pandas as pd

    try:
        if pd.isna(value) is True:
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _arrow_texts(texts):
    """The texts as one pyarrow large_string array, missing ones empty. A pandas string column backed by
    pyarrow is taken as it is (no round trip through Python strings); anything else cell by cell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    backing = getattr(getattr(texts, "array", None), "_pa_array", None)
    if backing is not None and (pa.types.is_string(backing.type) or pa.types.is_large_string(backing.type)):
        return pc.fill_null(backing.combine_chunks().cast(pa.large_string()), "")
    return pa.array([_as_text(t) for t in texts], type=pa.large_string())


def _words_arrow(texts):
    """(doc, sentence, word key) per word, with pyarrow's vectorised string kernels; None without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow ships with the project's pandas
        return None
    import numpy as np

    arr = pc.utf8_lower(_arrow_texts(texts))
    sentences = pc.split_pattern_regex(arr, _SENTENCE.pattern)
    doc = pc.list_parent_indices(sentences).to_numpy()
    flat = pc.utf8_trim(pc.replace_substring_regex(pc.list_flatten(sentences), _NON_WORD_RE2, " "), " ")
    words = pc.split_pattern(flat, " ")
    sentence = pc.list_parent_indices(words).to_numpy()
    tokens = pc.list_flatten(words)
    nonempty = pc.greater(pc.utf8_length(tokens), 0).to_numpy(zero_copy_only=False)
    codes = pc.dictionary_encode(tokens).indices.to_numpy(zero_copy_only=False).astype(np.uint64)
    sentence = sentence[nonempty]
    return doc[sentence], sentence, codes[nonempty]


def _words_python(texts):
    import numpy as np
    import pandas as pd

    doc, sentence, tokens, k = [], [], [], 0
    for i, text in enumerate(texts):
        for part in _SENTENCE.split(_as_text(text).lower()):
            words = _WORD.findall(part)
            if words:
                doc += [i] * len(words)
                sentence += [k] * len(words)
                tokens += words
                k += 1
    if not tokens:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint64)
    codes, _ = pd.factorize(np.asarray(tokens, dtype=object))
    return np.asarray(doc, np.int64), np.asarray(sentence, np.int64), codes.astype(np.uint64)


def shingle_hashes(texts):
    """(doc, hash): one uint64 per distinct shingle of each text (the shingles of shingle_sets, hashed),
    sorted by doc then hash. Vectorised: pyarrow string kernels split sentences and words, numpy the rest.
    Word keys are codes in order of first appearance, so hashes compare within one call (one search)."""
    import numpy as np

    n = SHINGLE_WORDS
    words = _words_arrow(texts)
    doc, sentence, codes = words if words is not None else _words_python(texts)
    if not len(codes):
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    start = np.r_[True, sentence[1:] != sentence[:-1]]
    sent_start = np.flatnonzero(start)
    sent_len = np.diff(np.r_[sent_start, len(codes)])
    group = np.cumsum(start) - 1
    offset = np.arange(len(codes)) - sent_start[group]
    length = sent_len[group]
    idx = np.flatnonzero(offset <= np.maximum(length - n, 0))   # window start positions of each sentence
    h = np.zeros(len(idx), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            inside = offset[idx] + k < length[idx]
            key = np.full(len(idx), _SENTINEL, dtype=np.uint64)
            key[inside] = codes[idx[inside] + k]
            mix_into(h, key, k)
    d = doc[idx].astype(np.int64)
    order = np.lexsort((h, d))
    d, h = d[order], h[order]
    keep = np.r_[True, (d[1:] != d[:-1]) | (h[1:] != h[:-1])]
    return d[keep], h[keep]


def _padded_by_length(doc, hashes):
    """[(docs, matrix)]: documents grouped by their shingle count rounded up to a power of two, each group's
    shingle hashes as a (width, len(docs)) matrix, short documents padded with repeats of their own first
    shingle (a repeat never changes a minimum). Minima then run down contiguous rows instead of reduceat
    over ragged segments, at most twice the elements."""
    import numpy as np

    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    counts = np.diff(np.r_[starts, len(hashes)])
    width = np.left_shift(1, np.ceil(np.log2(counts)).astype(np.int64))
    width = np.where(width < counts, width * 2, width)   # guard against log2 rounding down
    groups = []
    for w in np.unique(width).tolist():
        docs = np.flatnonzero(width == w)
        slot = np.arange(w)[:, None]
        take = np.where(slot < counts[docs][None, :], slot, 0)   # past a document's end: its first shingle
        groups.append((docs, hashes[starts[docs][None, :] + take]))
    return groups


def _signatures(doc, hashes, n_docs: int, seed: int):
    """MinHash signatures (n_docs, BANDS*BAND_ROWS) uint64 from shingle hashes `hashes` of documents `doc`
    (sorted by doc, every doc 0..n_docs-1 present). Hash function j is x -> (x XOR salt_j) * odd_j mod 2^64,
    a bijection whose high bits (which decide the minimum) depend on every bit of the well-mixed shingle hash."""
    import numpy as np

    k = BANDS * BAND_ROWS
    rng = np.random.default_rng(seed)
    salts = rng.integers(0, 2 ** 63 - 1, size=k, dtype=np.int64).view(np.uint64)
    odds = rng.integers(0, 2 ** 62, size=k, dtype=np.int64).view(np.uint64) * np.uint64(2) + np.uint64(1)
    # column-major: each hash function's minima (a column) are written, and read by band, contiguously
    sig = np.empty((n_docs, k), dtype=np.uint64, order="F")
    with np.errstate(over="ignore"):
        for docs, matrix in _padded_by_length(doc, hashes):
            buf = np.empty_like(matrix)
            for j in range(k):
                np.bitwise_xor(matrix, salts[j], out=buf)
                np.multiply(buf, odds[j], out=buf)
                sig[docs, j] = np.minimum.reduce(buf, axis=0)
    return sig


def _band_keys(sig, band: int):
    """One uint64 per row of `sig`: its signature rows of `band` mixed together (equal rows, equal keys)."""
    import numpy as np

    key = np.zeros(sig.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(BAND_ROWS):
            mix_into(key, np.ascontiguousarray(sig[:, band * BAND_ROWS + r]), r)
    return key


def _bucket_pairs(key):
    """(star pairs, pairs inside small buckets) of rows with equal `key`: every member paired with the
    first (lowest) row of its bucket, and for buckets of 3..MAX_BUCKET members all pairs of them."""
    import numpy as np

    from .rowkeys import codes_in_order, first_of_codes

    bucket = codes_in_order(key)           # buckets numbered by their first (lowest) row
    first_row = np.flatnonzero(first_of_codes(bucket))
    size = np.bincount(bucket)[bucket]
    rows = np.arange(len(key))
    star = first_row[bucket] != rows
    stars = np.stack([first_row[bucket][star], rows[star]], axis=1)
    small = (size > 2) & (size <= MAX_BUCKET)
    if not small.any():
        return stars, None
    return stars, _all_pairs(bucket[small], rows[small])


def _all_pairs(bucket, rows):
    """Every pair (i < j) of `rows` that share a bucket (rows ascending within a bucket)."""
    import numpy as np

    order = np.lexsort((rows, bucket))
    bucket, rows = bucket[order], rows[order]
    start = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    length = np.diff(np.r_[start, len(rows)])
    first = np.repeat(start, length)                  # where each member's bucket starts
    later = (first + np.repeat(length, length)) - np.arange(len(rows)) - 1   # members after each one
    left = np.repeat(np.arange(len(rows)), later)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(later) - later, later)
    return np.stack([rows[left], rows[left + 1 + offset]], axis=1)


def _candidates(sig):
    """Candidate pairs (i < j) of rows of `sig` that agree on all rows of at least one band, sorted."""
    import numpy as np

    n = sig.shape[0]
    pairs = []
    for b in range(BANDS):
        stars, small = _bucket_pairs(_band_keys(sig, b))
        pairs.append(stars)
        # all-pairs inside small buckets only while the candidates stay bounded (stars always count)
        if small is not None and sum(len(p) for p in pairs) < MAX_CANDIDATES:
            pairs.append(small)
    p = np.concatenate(pairs).astype(np.int64) if pairs else np.empty((0, 2), dtype=np.int64)
    if not len(p):
        return np.empty((0, 2), dtype=np.int64)
    # one int64 per pair (i * n + j orders as (i, j) does): a 1-d unique instead of a row-wise one
    lo, hi = p.min(axis=1), p.max(axis=1)
    flat = np.unique(lo * n + hi)
    return np.stack([flat // n, flat % n], axis=1)


@dataclass
class NearPairs:
    """Near-duplicate pairs of distinct normalised texts of one text column, over all splits."""

    column: str
    codes: dict                      # split -> text code per row (rowkeys.text_codes; -1 blank)
    pairs: object                    # (P, 2) int64 array of text codes, i < j
    jaccard: object                  # (P,) float: exact shingle Jaccard of each pair
    texts: int = 0                   # distinct texts searched
    skipped: str = ""                # why the search did not run ("" when it did)
    truncated: bool = False
    method: dict = field(default_factory=dict)


def _method() -> dict:
    return {"similarity": "Jaccard of word shingles", "shingle_words": SHINGLE_WORDS, "threshold": NEAR_JACCARD,
            "minhash": BANDS * BAND_ROWS, "bands": BANDS, "band_rows": BAND_ROWS,
            "reference": "Broder 1997; Lee et al. 2022 (NearDup, Jaccard >= 0.8)"}


def find_near_pairs(texts, seed: int = 0, threshold: float = NEAR_JACCARD):
    """(pairs (P, 2) of indices into `texts`, their exact Jaccard) for distinct texts at >= threshold.

    Pure: texts is a sequence of strings or a pandas string column (already distinct); the result is sorted by
    similarity, highest first."""
    import numpy as np

    doc_all, hashes_all = shingle_hashes(texts)
    lengths = np.bincount(doc_all, minlength=len(texts)) if len(doc_all) else np.zeros(len(texts), np.int64)
    usable = np.flatnonzero(lengths > 0)
    if len(usable) < 2:
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    remap = np.full(len(texts), -1, dtype=np.int64)
    remap[usable] = np.arange(len(usable))
    doc, hashes = remap[doc_all], hashes_all
    sig = _signatures(doc, hashes, len(usable), seed)
    cand = _candidates(sig)
    if not len(cand):
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    # Estimated similarity from the whole signature first (cheap, vectorised), with a margin of about
    # three standard errors of the estimate at the threshold, then the exact Jaccard on the survivors.
    est = np.empty(len(cand))
    for start in range(0, len(cand), 100_000):
        c = cand[start:start + 100_000]
        est[start:start + 100_000] = (sig[c[:, 0]] == sig[c[:, 1]]).mean(axis=1)
    margin = 3 * np.sqrt(threshold * (1 - threshold) / sig.shape[1])
    keep = est >= threshold - margin
    cand, est = cand[keep], est[keep]
    if len(cand) > MAX_PAIRS:  # confirm the most similar ones only
        top = np.argpartition(-est, MAX_PAIRS)[:MAX_PAIRS]
        cand = cand[np.sort(top)]
    hash_sets = {}
    bounds = np.r_[0, np.cumsum(lengths[usable])]

    def hset(i):
        s = hash_sets.get(i)
        if s is None:
            s = hash_sets[i] = set(hashes[bounds[i]:bounds[i + 1]].tolist())
        return s

    jac = np.empty(len(cand))
    for k, (i, j) in enumerate(cand.tolist()):
        a, b = hset(i), hset(j)
        inter = len(a & b)
        jac[k] = inter / (len(a) + len(b) - inter)
    keep = jac >= threshold - 1e-12
    pairs, jac = usable[cand[keep]], jac[keep]
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -jac))
    return pairs[order], jac[order]


@analysis
def near_duplicate_pairs(ctx: RunContext, column: str) -> NearPairs:
    """Near-duplicate pairs of the distinct normalised texts of `column` across every split (cached)."""
    import numpy as np
    import pandas as pd

    codes = {s: text_codes(ctx, s, column) for s in ctx.splits}
    joint = np.concatenate(list(codes.values()))
    texts = pd.concat([df[column].reset_index(drop=True) for df in ctx.splits.values()], ignore_index=True)
    valid = np.flatnonzero(joint >= 0)
    # codes are numbered in order of first appearance (pd.factorize), so each text's first row is where
    # its code first shows: first_of_codes, no hash pass
    first = first_of_codes(joint[valid])
    method = _method()
    positions = valid[first]
    distinct_codes = joint[valid][first]
    if len(distinct_codes) > SEARCH_TEXTS:
        keep = np.sort(np.random.default_rng(ctx.seed).choice(len(distinct_codes), SEARCH_TEXTS, replace=False))
        method["sampled"] = f"a seeded sample of {SEARCH_TEXTS:,} of {len(distinct_codes):,} distinct texts"
        positions, distinct_codes = positions[keep], distinct_codes[keep]
    pairs, jac = find_near_pairs(texts.iloc[positions], seed=ctx.seed)
    truncated = len(pairs) >= MAX_PAIRS
    pairs, jac = pairs[:MAX_PAIRS], jac[:MAX_PAIRS]
    if truncated:
        method["truncated"] = f"the {MAX_PAIRS:,} most similar pairs kept"
    return NearPairs(column, codes, np.sort(distinct_codes[pairs], axis=1) if len(pairs) else pairs, jac,
                     texts=len(distinct_codes), truncated=truncated, method=method)


def near_rows(near: NearPairs, split: str, other: str, labels=None, other_labels=None) -> dict:
    """Rows of `split` whose text is a near duplicate (not an exact copy) of a text in `other`.

    Returns {"near": bool mask, "conflict": bool mask (other label; only with labels), "partner": position in
    `other` of one partner (-1 none), "jaccard": similarity to it}. With split == other, a row's own text
    does not count."""
    import numpy as np
    import pandas as pd

    codes, other_codes = near.codes[split], near.codes[other]
    n = len(codes)
    out = {"near": np.zeros(n, bool), "conflict": np.zeros(n, bool), "partner": np.full(n, -1, np.int64),
           "jaccard": np.zeros(n)}
    if not len(near.pairs) or not n:
        return out
    p = pd.DataFrame({"a": np.r_[near.pairs[:, 0], near.pairs[:, 1]], "b": np.r_[near.pairs[:, 1], near.pairs[:, 0]],
                      "j": np.r_[near.jaccard, near.jaccard]})
    rows = pd.DataFrame({"a": codes, "pos": np.arange(n)})
    rows = rows[rows.a >= 0]
    if labels is not None:
        rows["label"] = np.asarray(labels)[rows.pos.to_numpy()]
    partners = pd.DataFrame({"b": other_codes, "opos": np.arange(len(other_codes))})
    partners = partners[partners.b >= 0]
    if other_labels is not None:
        partners["olabel"] = np.asarray(other_labels)[partners.opos.to_numpy()]
    # one partner row per (text, label) is enough: bound the join on heavily repeated texts
    partners = partners.drop_duplicates(["b", "olabel"] if other_labels is not None else ["b"])
    m = rows.merge(p, on="a").merge(partners, on="b")
    if m.empty:
        return out
    m = m.sort_values(["pos", "j"], ascending=[True, False], kind="stable")
    best = m.drop_duplicates("pos")
    out["near"][best.pos.to_numpy()] = True
    out["partner"][best.pos.to_numpy()] = best.opos.to_numpy()
    out["jaccard"][best.pos.to_numpy()] = best.j.to_numpy()
    if labels is not None and other_labels is not None:
        c = m[(m.label != m.olabel) & (m.label >= 0) & (m.olabel >= 0)].drop_duplicates("pos")
        out["conflict"][c.pos.to_numpy()] = True
        out["partner"][c.pos.to_numpy()] = c.opos.to_numpy()
        out["jaccard"][c.pos.to_numpy()] = c.j.to_numpy()
    return out


def prefetch_near_duplicates(ctx: RunContext) -> None:
    for column in ctx.text_columns:
        near_duplicate_pairs(ctx, column)
