"""Each data check fires on a planted defect and stays quiet on a clean twin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import GOOD_TORCH_MODEL, context_for, run_check, write_project

FLAGGED = ("warn", "fail")


def clean_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A well-separated binary task: label = x1 + x2 > 0 with a margin, numeric and categorical columns."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    score = x1 + x2
    keep = np.abs(score) > 0.4  # a margin, so no label is ambiguous
    df = pd.DataFrame({"x1": x1, "x2": x2, "x3": rng.uniform(0, 10, n),
                       "amount": rng.lognormal(3, 1, n),
                       "colour": rng.choice(["red", "green", "blue"], n),
                       "label": np.where(score > 0, "yes", "no")})[keep]
    return df.reset_index(drop=True)


def splits(df: pd.DataFrame, valid_share: float = 0.25):
    cut = int(len(df) * (1 - valid_share))
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)


def project(tmp_path, train, valid=None, **kw):
    return context_for(write_project(tmp_path, train, valid, **kw))


@pytest.fixture
def clean_ctx(tmp_path):
    train, valid = splits(clean_frame())
    return project(tmp_path, train, valid)


CLEAN_QUIET = ["data.missing_values", "data.duplicates", "data.split_overlap", "data.constant_features",
               "data.id_columns", "data.target_leakage", "data.feature_scale", "data.outliers",
               "data.label_values", "data.label_issues", "data.drift", "data.label_order"]


@pytest.mark.parametrize("check_id", CLEAN_QUIET)
def test_clean_twin_is_quiet(clean_ctx, check_id):
    f = run_check(clean_ctx, check_id)
    # without a model, scale differences (the lognormal amount column) are only worth an info
    expected = ("pass", "info") if check_id == "data.feature_scale" else ("pass",)
    assert f.status in expected, (check_id, f.status, f.title, f.detail)


def test_missing_values(tmp_path):
    train, valid = splits(clean_frame())
    train.loc[train.sample(frac=0.2, random_state=0).index, "x3"] = np.nan
    f = run_check(project(tmp_path / "a", train, valid), "data.missing_values")
    assert f.status == "warn" and "x3" in f.detail
    train.loc[3, "label"] = np.nan
    f = run_check(project(tmp_path / "b", train, valid), "data.missing_values")
    assert f.status == "fail"


def test_duplicates_and_conflicting_labels(tmp_path):
    train, valid = splits(clean_frame())
    dup = pd.concat([train, train.iloc[:30]], ignore_index=True)
    f = run_check(project(tmp_path / "a", dup, valid), "data.duplicates")
    assert f.status == "warn" and f.evidence["per_split"]["train"]["duplicate_rows"] == 30
    flipped = train.iloc[:10].copy()
    flipped["label"] = np.where(flipped["label"] == "yes", "no", "yes")
    conflict = pd.concat([train, flipped], ignore_index=True)
    f = run_check(project(tmp_path / "b", conflict, valid), "data.duplicates")
    assert f.status == "fail" and f.evidence["per_split"]["train"]["conflict_rows"] == 20
    assert f.evidence["examples"]["train_conflicting_labels"]


def test_split_overlap(tmp_path):
    train, valid = splits(clean_frame())
    leaky = pd.concat([valid, train.iloc[:20]], ignore_index=True)
    f = run_check(project(tmp_path, train, leaky), "data.split_overlap")
    assert f.status == "fail" and f.evidence["overlap"]["valid"]["rows"] == 20


def test_constant_features(tmp_path):
    train, valid = splits(clean_frame())
    train["const"], valid["const"] = 1.0, 1.0
    f = run_check(project(tmp_path / "a", train, valid), "data.constant_features")
    assert f.status == "info" and f.evidence["constant"] == ["const"]
    valid["const"] = np.arange(len(valid))
    f = run_check(project(tmp_path / "b", train, valid), "data.constant_features")
    assert f.status == "warn" and "const" in f.evidence["varies_in_other_splits"]


def test_id_columns(tmp_path):
    train, valid = splits(clean_frame())
    train.insert(0, "row_id", np.arange(len(train)))
    valid.insert(0, "row_id", np.arange(len(train), len(train) + len(valid)))
    f = run_check(project(tmp_path, train, valid), "data.id_columns")
    assert f.status == "warn" and "row_id" in f.evidence["id_like"]
    # the same column ignored in the project file is fine
    f = run_check(project(tmp_path / "b", train, valid, ignore=["row_id"]), "data.id_columns")
    assert f.status == "pass"


def test_target_leakage_classification(tmp_path):
    df = clean_frame()
    rng = np.random.default_rng(1)
    df["status_code"] = np.where(df["label"] == "yes", 7, 3) + rng.normal(0, 0.1, len(df))
    train, valid = splits(df)
    f = run_check(project(tmp_path, train, valid), "data.target_leakage")
    assert f.status == "fail" and "status_code" in f.title


def test_target_leakage_regression(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, 0.5, -0.3] + rng.normal(0, 1.0, n)
    clean = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    train, valid = splits(clean)
    f = run_check(project(tmp_path / "clean", train, valid, target="y"), "data.target_leakage")
    assert f.status == "pass", f.title
    clean["log_y"] = np.log(clean["y"] - clean["y"].min() + 1)
    train, valid = splits(clean)
    f = run_check(project(tmp_path / "leak", train, valid, target="y"), "data.target_leakage")
    assert f.status == "fail" and "log_y" in f.title


TORCH_TOML = """
[model]
code = "model.py"
build = "build_model"
"""


def test_feature_scale_torch(tmp_path):
    df = clean_frame().drop(columns=["colour", "amount"])
    train, valid = splits(df)
    f = run_check(project(tmp_path / "ok", train, valid, toml_extra=TORCH_TOML, model_code=GOOD_TORCH_MODEL),
                  "data.feature_scale")
    assert f.status == "pass", f.title
    big = train.copy()
    big["x1"] = big["x1"] * 300 + 1000
    f = run_check(project(tmp_path / "big", big, valid, toml_extra=TORCH_TOML, model_code=GOOD_TORCH_MODEL),
                  "data.feature_scale")
    assert f.status == "fail" and f.evidence["largest"][0]["feature"] == "x1"


def test_feature_scale_without_model_is_info(tmp_path):
    train, valid = splits(clean_frame())
    train["pixels"] = np.random.default_rng(0).integers(0, 256, len(train))
    f = run_check(project(tmp_path, train, valid), "data.feature_scale")
    assert f.status == "info"


def test_outliers_sentinel(tmp_path):
    train, valid = splits(clean_frame())
    train.loc[train.sample(n=4, random_state=0).index, "x3"] = -999.0
    f = run_check(project(tmp_path, train, valid), "data.outliers")
    assert f.status == "warn" and "x3" in f.evidence["columns"]
    assert f.evidence["columns"]["x3"]["repeated_value"] == -999.0


def test_label_values_outside_classes_and_spellings(tmp_path):
    train, valid = splits(clean_frame())
    valid.loc[:4, "label"] = "maybe"
    f = run_check(project(tmp_path / "a", train, valid, classes=["no", "yes"]), "data.label_values")
    assert f.status == "fail" and f.evidence["splits"]["valid"]["outside_classes"] == 5
    train2 = train.copy()
    train2.loc[:9, "label"] = "Yes "
    f = run_check(project(tmp_path / "b", train2, valid.assign(label=splits(clean_frame())[1]["label"])),
                  "data.label_values")
    assert f.status == "fail" and "spelling_variants" in f.evidence


def test_label_values_vectors(tmp_path):
    train, valid = splits(clean_frame())
    for df in (train, valid):
        df["label"] = np.where(df["label"] == "yes", "[0, 1]", "[1, 0]")
    f = run_check(project(tmp_path, train, valid), "data.label_values")
    assert f.status == "fail" and "vector" in f.detail


def test_label_issues_flipped_labels(tmp_path):
    df = clean_frame(900)
    train, valid = splits(df)
    rng = np.random.default_rng(3)
    flip = rng.choice(len(train), size=int(0.15 * len(train)), replace=False)
    train.loc[flip, "label"] = np.where(train.loc[flip, "label"] == "yes", "no", "yes")
    ctx = project(tmp_path, train, valid)
    f = run_check(ctx, "data.label_issues")
    assert f.status in FLAGGED, (f.status, f.title)
    from mltriage.checks.analyses.labels import label_issue_mask, oof_probabilities

    mask = label_issue_mask(ctx)
    proba = oof_probabilities(ctx)
    assert mask.shape == (len(train),) and proba.shape == (len(train), 2)
    recall = mask[flip].mean()
    precision = np.isin(np.flatnonzero(mask), flip).mean()
    assert recall > 0.5 and precision > 0.8


def test_drift(tmp_path):
    train, valid = splits(clean_frame(1200))
    valid["x3"] = valid["x3"] + 4.0
    f = run_check(project(tmp_path, train, valid), "data.drift")
    assert f.status == "warn" and f.evidence["shifted"]["valid"][0]["feature"] == "x3"
    assert f.plots and f.plots[0].kind == "histogram"


def _reviews(n, seed=0):
    rng = np.random.default_rng(seed)
    good = ["great value and works well", "love it, works perfectly", "excellent build quality overall"]
    bad = ["broke after two days of use", "terrible, would not buy again", "poor quality and slow delivery"]
    label = rng.choice(["pos", "neg"], n)
    text = [f"{rng.choice(good if l == 'pos' else bad)} item {i}" for i, l in enumerate(label)]
    return pd.DataFrame({"text": text, "label": label})


def test_text_quality(tmp_path):
    train, valid = splits(_reviews(400))
    f = run_check(project(tmp_path / "ok", train, valid, text=["text"]), "data.text_quality")
    assert f.status == "pass", f.title
    bad = train.copy()
    bad.loc[:15, "text"] = bad.loc[:15, "text"].str.replace("item", "itÃ©m")
    f = run_check(project(tmp_path / "bad", bad, valid, text=["text"]), "data.text_quality")
    assert f.status == "fail" and "encoding" in f.title


def test_text_quality_conflicting_duplicates(tmp_path):
    train, valid = splits(_reviews(400))
    copy = train.iloc[:10].copy()
    copy["label"] = np.where(copy["label"] == "pos", "neg", "pos")
    train = pd.concat([train, copy], ignore_index=True)
    f = run_check(project(tmp_path, train, valid, text=["text"]), "data.text_quality")
    assert f.status == "fail" and f.evidence["duplicate_texts_different_labels"]["text"]["rows"] == 20


def test_label_order(tmp_path):
    train, valid = splits(clean_frame())
    ordered = train.sort_values("label").reset_index(drop=True)
    f = run_check(project(tmp_path, ordered, valid), "data.label_order")
    assert f.status == "warn" and f.evidence["sorted"]
