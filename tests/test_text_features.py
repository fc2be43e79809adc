"""The Arrow TF-IDF (label issues on a million texts) gives scikit-learn's matrix on the same texts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from mltriage.checks.analyses.text_features import ArrowTfidf

TEXTS = ["The screen is great, the battery is not.", "A b c", "", "Battery BATTERY battery died after 3 days!!",
         "great great great", "snake_case words_and 42 numbers 7", "Café crème brûlée — très bon", None,
         "the the the screen", "x", "Not great. Not terrible. The battery, though..."]


@pytest.mark.parametrize("options", [dict(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                                     dict(ngram_range=(1, 1), min_df=1), dict(ngram_range=(1, 2), norm=None),
                                     dict(ngram_range=(2, 2), min_df=1, sublinear_tf=True)])
def test_same_matrix_as_scikit_learn(options):
    fit = [t for t in TEXTS if t]
    tfidf = TfidfVectorizer(**options).fit(fit)
    fast = ArrowTfidf(tfidf)
    assert ArrowTfidf.supports(tfidf)
    texts = ["" if t is None else t for t in TEXTS] + ["unseen words only", "battery great screen"]
    expected, got = tfidf.transform(texts).toarray(), fast.transform(texts).toarray()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_a_custom_tokenizer_is_not_claimed():
    assert not ArrowTfidf.supports(TfidfVectorizer(token_pattern=r"\S+"))
    assert not ArrowTfidf.supports(TfidfVectorizer(analyzer="char"))
