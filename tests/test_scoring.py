"""The numpy metrics of checks/scoring.py agree with scikit-learn's on random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mltriage.checks.analyses.scoring import score


@st.composite
def classification_case(draw):
    k = draw(st.integers(2, 4))
    n = draw(st.integers(2, 60))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    raw = np.array(draw(st.lists(st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 3.0]), min_size=k, max_size=k),
                                 min_size=n, max_size=n))) + 1e-3  # coarse values: many ties
    proba = raw / raw.sum(axis=1, keepdims=True)
    return y, proba, k


@settings(max_examples=150, deadline=None)
@given(classification_case())
def test_classification_metrics_match_scikit_learn(case):
    y, proba, k = case
    pred = proba.argmax(axis=1)
    present = sorted(set(y.tolist()) | set(pred.tolist()))
    for metric, average in (("f1_macro", "macro"), ("f1_weighted", "weighted")):
        expected = skm.f1_score(y, pred, labels=present, average=average, zero_division=0)
        assert score(metric, y, pred=pred, n_classes=k) == pytest.approx(expected, abs=1e-12)
    clipped = np.clip(proba, 1e-15, 1.0)
    expected = skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=list(range(k)))
    assert score("log_loss", y, proba=proba, n_classes=k) == pytest.approx(expected, rel=1e-9)
    if len(set(y.tolist())) < 2:
        assert score("roc_auc", y, proba=proba, n_classes=k) is None
    elif k == 2:
        expected = skm.roc_auc_score(y, proba[:, 1])
        assert score("roc_auc", y, proba=proba, n_classes=k) == pytest.approx(expected, abs=1e-12)
    elif len(set(y.tolist())) == k:
        expected = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k)))
        assert score("roc_auc", y, proba=proba, n_classes=k) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=50))
def test_regression_metrics_match_scikit_learn(pairs):
    y, p = np.array(pairs).T
    assert score("rmse", y, pred=p) == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=1e-9, abs=1e-9)
    assert score("mae", y, pred=p) == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-9, abs=1e-9)
    assert score("r2", y, pred=p) == pytest.approx(skm.r2_score(y, p), rel=1e-9, abs=1e-9)


def test_constant_target_r2_follows_scikit_learn():
    y = np.ones(5)
    assert score("r2", y, pred=y) == skm.r2_score(y, y) == 1.0
    assert score("r2", y, pred=y + 1) == skm.r2_score(y, y + 1) == 0.0


def test_auc_rejects_broken_scores():
    with pytest.raises(ValueError):
        score("roc_auc", np.array([0, 1, 0]), proba=np.array([[0.5, np.nan], [0.2, 0.8], [0.9, 0.1]]), n_classes=2)
