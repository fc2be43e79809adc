"""TF-IDF rows at Arrow speed: the vocabulary and idf weights of a fitted scikit-learn TfidfVectorizer,
applied with Arrow's vectorised string kernels and numpy instead of a Python loop per text.

scikit-learn tokenises every text in Python (about 15 µs a text); scoring a million rows for label issues
spent 13 s there. The same words, unigrams and bigrams, sublinear tf, idf and l2 norm come out of a few
passes over all the texts at once. Tokens: lower-cased runs of letters, digits and "_" of two or more
characters, as scikit-learn's default token pattern `(?u)\\b\\w\\w+\\b` reads them; bigrams join
neighbouring tokens of a text (after the one-character tokens are dropped, as scikit-learn forms them).

Where the time goes, and what is done about it (1M six-word texts):
- splitting: a Unicode regex split costs ~1.5 s. For ASCII texts (most, and checked per text) the word
  characters are exactly [A-Za-z0-9_], so every other byte is turned into a space with one table lookup
  and Arrow's whitespace split does the rest (~0.5 s). Other texts keep the regex split.
- bigrams: joining every neighbouring pair into a string and hashing it costs ~0.7 s. Instead the words
  are dictionary-encoded once (the unigram look-up then runs on the few distinct words), and a pair is
  looked up as the integer (code of first word, code of second word) among the vocabulary's bigrams
  written in the same codes.
- counting: occurrences are summed into CSR by scipy's linear COO -> CSR conversion (no global sort), and
  the tf, idf and norm steps are scikit-learn's own (TfidfTransformer.transform's arithmetic, normalize),
  so the values are scikit-learn's to the last bit.
"""

from __future__ import annotations

from functools import cache

from .slices import SEPARATORS


@cache
def _ascii_spaced():
    """Each byte of an ASCII text mapped to itself when it is a word character (what `\\w` matches in
    ASCII: [A-Za-z0-9_]), else to a space: the text then splits into scikit-learn's words at whitespace."""
    import numpy as np

    word = np.zeros(256, dtype=bool)
    word[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] = True
    return np.where(word, np.arange(256), ord(" ")).astype(np.uint8)


def as_text_array(texts):
    """texts (a list, a numpy array, a pandas Series or an Arrow array; None or missing read as "") as a
    null-free Arrow large_string array, without a Python loop over them when they are Arrow already."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arr = texts
    else:
        try:
            arr = pa.array(texts, type=pa.large_string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # non-string values: their str(), as before
            arr = pa.array(["" if t is None else str(t) for t in texts], type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return pc.fill_null(arr, "") if arr.null_count else arr


def _ascii_words(texts):
    """(row per word, words) for ASCII texts: lower-cased words of two or more characters, in order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lower = pc.ascii_lower(texts)
    _, offsets, data = lower.buffers()
    spaced = _ascii_spaced()[np.frombuffer(data, dtype=np.uint8)] if data is not None else np.zeros(0, np.uint8)
    split = pc.ascii_split_whitespace(
        pa.LargeStringArray.from_buffers(len(lower), offsets, pa.py_buffer(spaced), offset=lower.offset))
    return _long_words(split)


def _regex_words(texts):
    """(row per word, words) for any texts: Unicode lower-casing and a split at non-word characters."""
    import pyarrow.compute as pc

    return _long_words(pc.split_pattern_regex(pc.utf8_lower(texts), SEPARATORS))


def _long_words(split):
    """(row per word, words) of a list array of words, keeping the words of two or more characters."""
    import numpy as np
    import pyarrow.compute as pc

    words, rows = pc.list_flatten(split), pc.list_parent_indices(split)
    keep = pc.greater_equal(pc.utf8_length(words), 2)
    return np.asarray(pc.filter(rows, keep).to_numpy(), dtype=np.int64), pc.filter(words, keep)


def words_of(texts):
    """(row per word, words) over a null-free Arrow array of texts: every text's words stay together and in
    order (so neighbours of the same row are its bigrams). ASCII texts take the cheap split."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ascii_ = np.asarray(pc.string_is_ascii(texts).to_numpy(zero_copy_only=False), dtype=bool)
    if ascii_.all():
        return _ascii_words(texts)
    if not ascii_.any():
        return _regex_words(texts)
    rows, words = [], []
    for part, split in ((np.flatnonzero(ascii_), _ascii_words), (np.flatnonzero(~ascii_), _regex_words)):
        r, w = split(texts.take(pa.array(part)))
        rows.append(part[r])
        words.append(w)
    return np.concatenate(rows), pa.concat_arrays(words)


def _found(ids):
    """index_in's answer as int64, -1 where not found."""
    import numpy as np
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(ids, -1).to_numpy(), dtype=np.int64)


class ArrowTfidf:
    """transform(texts) -> the CSR matrix `fitted.transform(texts)` gives, for a TfidfVectorizer fitted
    with the default analyzer (word), lowercase=True, an ngram_range within (1, 2) and norm "l2" or None."""

    def __init__(self, fitted):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        vocabulary = fitted.vocabulary_
        terms = [""] * len(vocabulary)
        for term, index in vocabulary.items():
            terms[index] = term
        self.terms = pa.array(terms, type=pa.large_string())
        self.fitted = fitted
        self.ngrams = tuple(fitted.ngram_range)
        self.width = len(terms)
        # the vocabulary's bigrams as (first word, second word, term id); a word never holds a space
        pairs = pc.split_pattern(self.terms, " ", max_splits=1)
        two = np.asarray(pc.equal(pc.list_value_length(pairs), 2).to_numpy(zero_copy_only=False), dtype=bool)
        bigrams = pairs.filter(pa.array(two))
        self.bigram_first = pc.list_element(bigrams, 0)
        self.bigram_second = pc.list_element(bigrams, 1)
        self.bigram_ids = np.flatnonzero(two)

    @staticmethod
    def supports(fitted) -> bool:
        return (fitted.analyzer == "word" and fitted.lowercase and fitted.tokenizer is None
                and fitted.preprocessor is None and fitted.stop_words is None and fitted.strip_accents is None
                and fitted.token_pattern == r"(?u)\b\w\w+\b" and fitted.ngram_range[0] >= 1
                and fitted.ngram_range[1] <= 2 and fitted.norm in ("l2", None) and not fitted.binary)

    def _bigram_ids(self, rows, codes, words):
        """(row, term id) per in-vocabulary bigram: neighbouring words of a row, looked up by their codes
        among the vocabulary's bigrams written in the same codes."""
        import numpy as np
        import pandas as pd
        import pyarrow.compute as pc

        same = np.flatnonzero(rows[1:] == rows[:-1])
        first, second = _found(pc.index_in(self.bigram_first, value_set=words)), \
            _found(pc.index_in(self.bigram_second, value_set=words))
        known = (first >= 0) & (second >= 0)
        if not len(same) or not known.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        n = len(words)
        table = pd.Index(first[known] * n + second[known])  # distinct: distinct bigrams, distinct codes
        hit = table.get_indexer(codes[same] * n + codes[same + 1])
        found = hit >= 0
        return rows[same][found], self.bigram_ids[known][hit[found]]

    def _term_ids(self, texts):
        """(row, term id) per in-vocabulary unigram and bigram occurrence."""
        import numpy as np
        import pyarrow.compute as pc

        rows, words = words_of(texts)
        if not len(words):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        encoded = pc.dictionary_encode(words)
        codes = np.asarray(encoded.indices.to_numpy(), dtype=np.int64)
        distinct = encoded.dictionary
        found_rows, found_ids = [], []
        if self.ngrams[0] <= 1:
            ids = _found(pc.index_in(distinct, value_set=self.terms))[codes]
            found_rows.append(rows[ids >= 0])
            found_ids.append(ids[ids >= 0])
        if self.ngrams[1] >= 2 and len(words) > 1:
            r, i = self._bigram_ids(rows, codes, distinct)
            found_rows.append(r)
            found_ids.append(i)
        return np.concatenate(found_rows), np.concatenate(found_ids)

    def counts(self, texts):
        """The document-term counts (CSR, float64) `fitted`'s CountVectorizer part gives."""
        import numpy as np
        from scipy import sparse

        texts = as_text_array(texts)
        rows, ids = self._term_ids(texts)
        # COO -> CSR sums the duplicate (row, term) entries in linear time, and sorts each row's columns
        counts = sparse.csr_matrix((np.ones(len(rows)), (rows, ids)), shape=(len(texts), self.width))
        counts.sum_duplicates()
        return counts

    def transform(self, texts):
        """TF-IDF rows of `texts`: counts, then scikit-learn's own sublinear tf, idf and norm arithmetic."""
        import numpy as np
        from sklearn.preprocessing import normalize

        X = self.counts(texts)
        fitted = self.fitted
        if fitted.sublinear_tf:  # TfidfTransformer.transform's steps, in its order
            np.log(X.data, X.data)
            X.data += 1.0
        if fitted.use_idf:
            X.data *= fitted.idf_[X.indices]
        if fitted.norm is not None:
            X = normalize(X, norm=fitted.norm, copy=False)
        return X
