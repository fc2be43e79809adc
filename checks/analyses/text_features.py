"""TF-IDF rows at Arrow speed: the vocabulary and idf weights of a fitted scikit-learn TfidfVectorizer,
applied with Arrow's vectorised string kernels instead of a Python loop per text.

scikit-learn tokenises every text in Python (about 15 µs a text); scoring a million rows for label issues
spent 13 s there. The same words, unigrams and bigrams, sublinear tf, idf and l2 norm come out of a few
Arrow passes over all the texts at once. Tokens: lower-cased runs of letters, digits and "_" of two or
more characters, as scikit-learn's default token pattern `(?u)\\b\\w\\w+\\b` reads them; bigrams join
neighbouring tokens of a text (after the one-character tokens are dropped, as scikit-learn forms them).
"""

from __future__ import annotations

from .slices import SEPARATORS


class ArrowTfidf:
    """transform(texts) -> the CSR matrix `fitted.transform(texts)` gives, for a TfidfVectorizer fitted
    with the default analyzer (word), lowercase=True, an ngram_range within (1, 2) and norm "l2" or None."""

    def __init__(self, fitted):
        import numpy as np
        import pyarrow as pa

        vocabulary = fitted.vocabulary_
        terms = [""] * len(vocabulary)
        for term, index in vocabulary.items():
            terms[index] = term
        self.terms = pa.array(terms, type=pa.large_string())
        self.idf = np.asarray(fitted.idf_, dtype=np.float64) if fitted.use_idf else None
        self.sublinear = bool(fitted.sublinear_tf)
        self.norm = fitted.norm
        self.ngrams = tuple(fitted.ngram_range)
        self.width = len(terms)

    @staticmethod
    def supports(fitted) -> bool:
        return (fitted.analyzer == "word" and fitted.lowercase and fitted.tokenizer is None
                and fitted.preprocessor is None and fitted.stop_words is None and fitted.strip_accents is None
                and fitted.token_pattern == r"(?u)\b\w\w+\b" and fitted.ngram_range[0] >= 1
                and fitted.ngram_range[1] <= 2 and fitted.norm in ("l2", None))

    def _term_ids(self, texts):
        """(row, term id) per in-vocabulary unigram and bigram occurrence."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        parts = pc.split_pattern_regex(pc.utf8_lower(pa.array(texts, type=pa.large_string())), SEPARATORS)
        words, rows = pc.list_flatten(parts), pc.list_parent_indices(parts)
        keep = pc.greater_equal(pc.utf8_length(words), 2)
        words, rows = pc.filter(words, keep), np.asarray(pc.filter(rows, keep).to_numpy(), dtype=np.int64)
        found_rows, found_ids = [], []
        if self.ngrams[0] <= 1:
            found_rows.append(rows)
            found_ids.append(pc.index_in(words, value_set=self.terms))
        if self.ngrams[1] >= 2 and len(words) > 1:
            same = rows[1:] == rows[:-1]
            pairs = pc.binary_join_element_wise(words.slice(0, len(words) - 1), words.slice(1),
                                                pa.scalar(" ", type=pa.large_string()))
            found_rows.append(rows[:-1][same])
            found_ids.append(pc.index_in(pc.filter(pairs, pa.array(same)), value_set=self.terms))
        if not found_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = np.concatenate(found_rows)
        ids = np.concatenate([np.asarray(i.to_numpy(zero_copy_only=False), dtype=np.float64) for i in found_ids])
        known = ~np.isnan(ids)
        return rows[known], ids[known].astype(np.int64)

    def transform(self, texts):
        import numpy as np
        from scipy import sparse

        n = len(texts)
        rows, ids = self._term_ids(["" if t is None else str(t) for t in texts])
        keys, counts = np.unique(rows * self.width + ids, return_counts=True)
        rows, ids = keys // self.width, keys % self.width
        values = counts.astype(np.float64)
        if self.sublinear:
            values = 1.0 + np.log(values)
        if self.idf is not None:
            values *= self.idf[ids]
        if self.norm == "l2" and len(values):
            lengths = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
            values /= lengths[rows]
        return sparse.csr_matrix((values, (rows, ids)), shape=(n, self.width))
