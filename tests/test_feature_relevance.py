"""data.feature_relevance: planted noise columns and label noise against clean twins, and the verdict thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import context_for, run_check, write_project


def _frame(n=1200, seed=0, noise_columns=0, random_labels=False):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    score = df.a + df.b + (df.c == "x") * 1.0
    df["label"] = np.where(score + rng.normal(scale=0.5, size=n) > 0.3, "yes", "no")
    if random_labels:
        df["label"] = rng.choice(["yes", "no"], n)
    for i in range(noise_columns):
        df[f"noise{i}"] = rng.normal(size=n)
    return df.iloc[:900].reset_index(drop=True), df.iloc[900:].reset_index(drop=True)


def test_clean_features_all_carry_signal(tmp_path):
    train, valid = _frame()
    f = run_check(write_project(tmp_path, train, valid), "data.feature_relevance")
    assert f.status == "pass", f.title
    assert f.evidence["no_signal"] == [] and f.evidence["difference_ci"][0] > 0


def test_planted_noise_columns_are_named(tmp_path):
    train, valid = _frame(noise_columns=3)
    f = run_check(write_project(tmp_path, train, valid), "data.feature_relevance")
    assert f.status == "info"
    flagged = set(f.evidence["no_signal"])
    assert {"a", "b", "c"}.isdisjoint(flagged)
    assert len(flagged & {"noise0", "noise1", "noise2"}) >= 2  # at p > 0.05 a noise column passes 5% of the time


def test_features_that_do_not_beat_the_baseline_warn(tmp_path):
    train, valid = _frame(random_labels=True)
    f = run_check(write_project(tmp_path, train, valid), "data.feature_relevance")
    assert f.status == "warn" and "baseline" in f.title
    assert f.evidence["difference_ci"][0] <= 0


def test_regression_and_constant_columns(tmp_path):
    rng = np.random.default_rng(3)
    n = 600
    df = pd.DataFrame({"a": rng.normal(size=n), "noise": rng.normal(size=n), "const": 1.0})
    df["y"] = 3 * df.a + rng.normal(scale=0.5, size=n)
    f = run_check(write_project(tmp_path, df.iloc[:450], df.iloc[450:], target="y"), "data.feature_relevance")
    assert f.status == "info" and f.evidence["no_signal"] == ["noise"] and f.evidence["constant"] == ["const"]


def test_text_projects_are_skipped(tmp_path):
    train = pd.DataFrame({"text": [f"review number {i}" for i in range(200)], "label": ["pos", "neg"] * 100})
    f = run_check(write_project(tmp_path, train, train.copy(), text=["text"]), "data.feature_relevance")
    assert f.status == "skipped" and "text" in f.detail + f.title


def test_relevance_scores_pure():
    from mltriage.checks.steps.data.relevance import relevance_scores

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    X = np.column_stack([y + rng.normal(scale=0.8, size=3000), rng.normal(size=3000)])
    X[::50, 1] = np.nan  # missing values get their own bin
    s = relevance_scores(X, y, classification=True, seed=0)
    assert s.mi[0] > s.null_q95[0] and not s.no_signal[0]
    assert s.no_signal[1]
    again = relevance_scores(X, y, classification=True, seed=0)
    assert again.p_value.tolist() == s.p_value.tolist()


def test_bins_shrink_on_few_rows():
    from mltriage.checks.steps.data.relevance import MI_BINS, bin_counts

    assert bin_counts(100_000, 2) == (MI_BINS, 2)
    assert bin_counts(88, None) == (4, 4)       # 16 cells of 5.5 rows
    assert bin_counts(60, 10) == (2, 10)


def test_relevance_verdict():
    from mltriage.checks.steps.data.relevance import RelevanceMeasure, _relevance_verdict

    def verdict(no_signal=(), ci=(0.1, 0.3), constant=()):
        feats = [{"feature": f"f{i}", "mi": 0.1, "noise_q95": 0.01, "p_value": 0.5 if f"f{i}" in no_signal else 0.01,
                  "no_signal": f"f{i}" in no_signal, "constant": f"f{i}" in constant} for i in range(4)]
        return _relevance_verdict(RelevanceMeasure(feats, rows=500, metric="accuracy", higher_is_better=True,
                                                   model_score=0.8, baseline_score=0.6, model="HGB",
                                                   difference_ci=list(ci) if ci else None))

    assert verdict().status == "pass"
    assert verdict(no_signal=("f1",)).status == "info"
    assert verdict(no_signal=("f0", "f1", "f2", "f3")).status == "warn"
    assert verdict(ci=(-0.02, 0.05)).status == "warn"
    assert verdict(ci=None).status == "pass"
    assert verdict(constant=("f3",)).status == "pass"
    for f in (verdict(no_signal=("f0", "f1", "f2", "f3")), verdict(ci=(-0.02, 0.05))):
        assert f.status != "fail" and f.fix
