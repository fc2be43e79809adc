"""The Arrow TF-IDF (label issues on a million texts) gives scikit-learn's matrix on the same texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from mltriage.checks.analyses.text_features import ArrowTfidf, as_text_array, words_of

TEXTS = ["The screen is great, the battery is not.", "A b c", "", "Battery BATTERY battery died after 3 days!!",
         "great great great", "snake_case words_and 42 numbers 7", "Café crème brûlée — très bon", None,
         "the the the screen", "x", "Not great. Not terrible. The battery, though..."]

# Texts that take each path of the tokeniser and its edges: ASCII punctuation and digits, underscores,
# one-character tokens between words (bigrams must skip them, as scikit-learn's do), tabs and newlines,
# Unicode letters and digits (accents, Greek, CJK, full-width digits), a non-ASCII separator, empty texts.
EDGES = ["great a battery", "great, a; battery!", "a great b battery c", "__init__ x_y _ __",
         "tab\tseparated\nnew line\r\nend", "3.14 pi 2x 10,000 1e5", "l'été été ÉTÉ", "naïve café au lait",
         "ΑΒΓ αβγ δε", "東京 大阪 東京", "１２３ full width", "dash—between em–dash", "", "   ", "..!!",
         "mixed ascii then café then ascii", "I a x y z", "bb cc", "ALL CAPS TEXT all caps text",
         "don't stop-believing", "x" * 40 + " " + "y" * 2, "über Über ÜBER", "straße STRASSE"]

OPTIONS = [dict(ngram_range=(1, 2), min_df=1, sublinear_tf=True), dict(ngram_range=(1, 1), min_df=1),
           dict(ngram_range=(1, 2), norm=None), dict(ngram_range=(2, 2), min_df=1, sublinear_tf=True),
           dict(ngram_range=(1, 2), min_df=1, use_idf=False),
           dict(ngram_range=(1, 2), min_df=1, max_features=12)]


def _pair(options, fit):
    tfidf = TfidfVectorizer(**options).fit(fit)
    assert ArrowTfidf.supports(tfidf)
    return tfidf, ArrowTfidf(tfidf)


@pytest.mark.parametrize("options", OPTIONS)
def test_same_matrix_as_scikit_learn(options):
    tfidf, fast = _pair(options, [t for t in TEXTS if t])
    texts = ["" if t is None else t for t in TEXTS] + ["unseen words only", "battery great screen"]
    expected, got = tfidf.transform(texts), fast.transform(TEXTS + ["unseen words only", "battery great screen"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.toarray(), expected.toarray(), atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS)
def test_edges_give_exactly_scikit_learns_values(options):
    """Exact equality, not closeness: the same counts go through scikit-learn's own tf-idf arithmetic."""
    tfidf, fast = _pair(options, EDGES + [t for t in TEXTS if t])
    for texts in (EDGES, [t for t in EDGES if t.isascii()], [t for t in EDGES if not t.isascii()]):
        expected, got = tfidf.transform(texts).toarray(), fast.transform(texts).toarray()
        assert np.array_equal(got, expected), np.argwhere(got != expected)[:5]


def test_bigrams_skip_one_character_tokens():
    tfidf, fast = _pair(dict(ngram_range=(2, 2), min_df=1), ["great battery", "battery great"])
    got = fast.transform(["great a battery", "great, x; battery", "great battery"]).toarray()
    assert np.array_equal(got, tfidf.transform(["great a battery", "great, x; battery", "great battery"]).toarray())
    assert (got[:, tfidf.vocabulary_["great battery"]] > 0).all()


def test_arrow_and_pandas_inputs_with_missing_values():
    tfidf, fast = _pair(OPTIONS[0], [t for t in TEXTS if t])
    expected = tfidf.transform(["" if t is None else t for t in TEXTS]).toarray()
    for texts in (pa.array(TEXTS, type=pa.string()), pa.chunked_array([TEXTS[:4], TEXTS[4:]]),
                  pd.Series(TEXTS, dtype="str"), pd.Series(TEXTS, dtype=object), np.array(TEXTS, dtype=object),
                  pa.array(TEXTS, type=pa.large_string()).slice(0)):
        assert np.array_equal(fast.transform(texts).toarray(), expected)
    # a slice with an offset into its buffers
    sliced = pa.array(TEXTS, type=pa.large_string()).slice(3, 5)
    assert np.array_equal(fast.transform(sliced).toarray(), expected[3:8])


def test_words_keep_each_texts_order_when_ascii_and_unicode_mix():
    texts = as_text_array(["one two", "café noir", "three four five", "añejo x ron"])
    rows, words = words_of(texts)
    assert sorted(rows.tolist()) == [0, 0, 1, 1, 2, 2, 2, 3, 3]
    # a text's words are neighbours (its bigrams are read from neighbours), whichever path split it
    assert (np.diff(np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])) >= 1).all() and len(set(rows)) == \
        1 + int((rows[1:] != rows[:-1]).sum())
    by_row = {r: [w for rr, w in zip(rows, words.to_pylist()) if rr == r] for r in range(4)}
    assert by_row == {0: ["one", "two"], 1: ["café", "noir"], 2: ["three", "four", "five"], 3: ["añejo", "ron"]}


def test_no_words_at_all():
    tfidf, fast = _pair(OPTIONS[0], ["some words here"])
    got = fast.transform(["", None, "a b c", "!!"])
    assert got.shape == (4, len(tfidf.vocabulary_)) and got.nnz == 0


def test_random_corpus_matches_exactly():
    rng = np.random.default_rng(0)
    vocab = ["good", "bad", "ok", "a", "x", "café", "naïve", "It's", "B2B", "under_score", "42", "—", "!!", "z"]
    texts = [" ".join(rng.choice(vocab, rng.integers(0, 12))) for _ in range(3000)]
    tfidf, fast = _pair(dict(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=40), texts[:1000])
    assert np.array_equal(fast.transform(texts).toarray(), tfidf.transform(texts).toarray())


def test_a_custom_tokenizer_is_not_claimed():
    assert not ArrowTfidf.supports(TfidfVectorizer(token_pattern=r"\S+"))
    assert not ArrowTfidf.supports(TfidfVectorizer(analyzer="char"))
    assert not ArrowTfidf.supports(TfidfVectorizer(binary=True))
