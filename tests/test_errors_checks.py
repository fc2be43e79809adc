"""errors.* checks: planted weak slices, failing slice tests, regressions on one class; clean twins quiet."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from helpers import context_for, run_check, write_project
from mltriage.checks.analyses.slices import WARN_EXCESS, WARN_RATIO
from mltriage.checks.steps.errors.mistakes import (CONFIDENT, MIN_CONFIDENT_MISTAKES,
                                                   ConfidentMistakesMeasure, confident_mistakes_verdict)
from mltriage.checks.steps.errors.regressions import (REGRESSION_MIN_DROP, PredictionRegressions, RowComparison,
                                                      prediction_regressions_verdict)
from mltriage.checks.steps.errors.segments import WeakSlicesMeasure, weak_slices_verdict

CLASSES = ["a", "b", "c"]
REGIONS = ["north", "south", "east", "west"]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "region": rng.choice(REGIONS, n),
        "amount": rng.gamma(2.0, 50.0, n).round(2),
        "score": rng.normal(size=n),
        "note": [f"order {w} item" for w in rng.choice(["fast", "slow", "late", "gift", "bulk"], n)],
        "label": rng.choice(CLASSES, n),
    })


def predictions(df: pd.DataFrame, seed: int, error=0.12, weak: dict | None = None, confidence=0.8):
    """Predicted labels that are right except at the given error rate (higher in `weak` rows), with
    probabilities that put `confidence` on the predicted class."""
    rng = np.random.default_rng(seed)
    y = df["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    rate = np.full(len(df), error)
    for column, (value, weak_rate) in (weak or {}).items():
        rate[(df[column] == value).to_numpy()] = weak_rate
    wrong = rng.random(len(df)) < rate
    pred = np.where(wrong, (y + rng.integers(1, len(CLASSES), len(df))) % len(CLASSES), y)
    proba = np.full((len(df), len(CLASSES)), (1 - confidence) / (len(CLASSES) - 1))
    proba[np.arange(len(df)), pred] = confidence
    out = pd.DataFrame({"prediction": [CLASSES[i] for i in pred]})
    for j, c in enumerate(CLASSES):
        out[f"prob_{c}"] = proba[:, j]
    return out


def project(root, valid, preds, previous=None, slices="", train=None):
    extra = '[artifacts]\npredictions = "preds/valid.csv"\n'
    if previous is not None:
        extra += 'previous_predictions = "preds/previous.csv"\n'
    write_project(root, train if train is not None else frame(400, 1), valid, toml_extra=extra + slices)
    (root / "preds").mkdir(exist_ok=True)
    preds.to_csv(root / "preds" / "valid.csv", index=False)
    if previous is not None:
        previous.to_csv(root / "preds" / "previous.csv", index=False)
    return root


# --- errors.weak_slices -----------------------------------------------------------------------
def test_weak_categorical_slice_is_found_and_ranked_first(tmp_path):
    valid = frame(3000, 2)
    project(tmp_path, valid, predictions(valid, 3, weak={"region": ("east", 0.5)}))
    f = run_check(tmp_path, "errors.weak_slices")
    assert f.status == "warn", f.title
    top = f.evidence["slices"][0]
    assert top["description"] == "region == 'east'" and top["severe"] and top["q"] < 0.05
    assert 0.4 < top["error"] < 0.6
    assert f.plots[0].kind == "bar" and f.plots[0].series[0].x[1] == "region == 'east'"
    assert f.fix


def test_uniform_errors_report_no_slice(tmp_path):
    valid = frame(3000, 2)
    project(tmp_path, valid, predictions(valid, 3))
    f = run_check(tmp_path, "errors.weak_slices")
    assert f.status == "pass", f.detail
    assert f.evidence["tested"] > 20  # categories, ranges, keywords, text length and clusters were tried


def test_tiny_noisy_slice_is_not_reported(tmp_path):
    valid = frame(3000, 4)
    valid.loc[:9, "region"] = "island"  # 10 rows, all wrong: below the minimum slice size
    preds = predictions(valid, 5)
    preds.loc[:9, "prediction"] = [("b" if lab == "a" else "a") for lab in valid.loc[:9, "label"]]
    project(tmp_path, valid, preds)
    f = run_check(tmp_path, "errors.weak_slices")
    assert not any("island" in s["description"] for s in f.evidence["slices"])


def test_weak_numeric_range_on_regression(tmp_path):
    rng = np.random.default_rng(6)
    n = 2000
    valid = pd.DataFrame({"x": rng.uniform(0, 10, n), "y": rng.normal(size=n)})
    noise = rng.normal(scale=np.where(valid["x"] > 8, 3.0, 0.5))
    write_project(tmp_path, valid.iloc[:500], valid, target="y",
                  toml_extra='[project]\ntask = "regression"\n[artifacts]\npredictions = "preds/valid.csv"')
    (tmp_path / "preds").mkdir()
    pd.DataFrame({"prediction": valid["y"] + noise}).to_csv(tmp_path / "preds/valid.csv", index=False)
    f = run_check(tmp_path, "errors.weak_slices")
    assert f.status == "warn" and f.evidence["measure"] == "mean absolute error"
    assert f.evidence["slices"][0]["description"].startswith("x in [")


# --- errors.slice_tests -----------------------------------------------------------------------
SLICES = '''
[[slices]]
name = "east orders"
where = "region == 'east'"
metric = "accuracy"
min = 0.8

[[slices]]
name = "big orders"
where = "amount > 100"
metric = "error_rate"
max = 0.3
'''


def test_failing_slice_test_fails_and_passing_one_passes(tmp_path):
    valid = frame(2000, 7)
    project(tmp_path, valid, predictions(valid, 8, weak={"region": ("east", 0.5)}), slices=SLICES)
    f = run_check(tmp_path, "errors.slice_tests")
    assert f.status == "fail" and "east orders" in f.title
    by_name = {s["name"]: s for s in f.evidence["slices"]}
    assert by_name["east orders"]["status"] == "fail" and by_name["big orders"]["status"] == "pass"
    for s in f.evidence["slices"]:
        assert set(s) >= {"name", "status", "title", "detail", "size", "metric", "value", "min", "max"}
    assert by_name["east orders"]["size"] == int((valid["region"] == "east").sum())


def test_slice_tests_pass_on_a_good_model(tmp_path):
    valid = frame(2000, 7)
    project(tmp_path, valid, predictions(valid, 8), slices=SLICES)
    f = run_check(tmp_path, "errors.slice_tests")
    assert f.status == "pass", f.detail


@pytest.mark.parametrize("where, expected", [
    ("region == 'atlantis'", "empty"),
    ("no_such_column > 3", "could not be evaluated"),
    ("amount.to_csv('x.csv')", "forbidden"),
    ("amount", "not True/False"),
])
def test_bad_or_empty_slice_is_an_error_naming_it(tmp_path, where, expected):
    valid = frame(300, 9)
    slices = f'[[slices]]\nname = "broken one"\nwhere = "{where}"\nmetric = "accuracy"\nmin = 0.5\n'
    project(tmp_path, valid, predictions(valid, 10), slices=slices)
    f = run_check(tmp_path, "errors.slice_tests")
    assert f.status == "error" and "broken one" in f.title
    assert expected in f.evidence["slices"][0]["title"]
    assert not (tmp_path / "x.csv").exists()


def test_junit_has_one_testcase_per_slice(tmp_path):
    valid = frame(1000, 11)
    project(tmp_path, valid, predictions(valid, 12, weak={"region": ("east", 0.5)}), slices=SLICES)
    r = subprocess.run(["mltriage", "check", str(tmp_path), "--steps", "errors", "--format", "junit"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr  # a slice test fails
    root = ET.fromstring(r.stdout)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert {"slice: east orders", "slice: big orders"} <= set(cases)
    assert cases["slice: east orders"].find("failure") is not None
    assert cases["slice: big orders"].find("failure") is None


# --- errors.regressions -----------------------------------------------------------------------
def test_regression_on_one_class_fails(tmp_path):
    valid = frame(3000, 13)
    previous = predictions(valid, 14)
    current = previous.copy()
    rng = np.random.default_rng(15)
    is_c = (valid["label"] == "c").to_numpy() & (previous["prediction"] == "c").to_numpy()
    broken = is_c & (rng.random(len(valid)) < 0.35)  # a third of class c now predicted as a
    current.loc[broken, "prediction"] = "a"
    project(tmp_path, valid, current, previous=previous)
    f = run_check(tmp_path, "errors.regressions")
    assert f.status == "fail", f.title
    worse = [s["segment"] for s in f.evidence["worse_segments"]]
    assert "class 'c'" in worse and "class 'a'" not in worse and "class 'b'" not in worse
    assert f.evidence["flipped_examples"] and f.evidence["flipped_examples"][0]["label"] == "c"
    assert f.evidence["got_worse"] == int(broken.sum())


def test_retrained_model_with_same_quality_is_not_a_regression(tmp_path):
    valid = frame(3000, 13)
    project(tmp_path, valid, predictions(valid, 16), previous=predictions(valid, 17))
    f = run_check(tmp_path, "errors.regressions")
    assert f.status == "pass", f.detail
    assert f.evidence["got_worse"] > 100 and f.evidence["got_better"] > 100  # many flips, both ways


def test_regressions_fall_back_to_the_previous_saved_run(tmp_path):
    from mltriage.checks.io.state import save_run

    valid = frame(2000, 18)
    project(tmp_path, valid, predictions(valid, 19))
    assert run_check(tmp_path, "errors.regressions").status == "skipped"
    summary = run_check(tmp_path, "metrics.summary")
    save_run(tmp_path, {"findings": [summary.to_dict()], "summary": {}, "project": "t", "started": 1.0})
    assert run_check(tmp_path, "errors.regressions").status == "pass"
    # The saved run had a much better class 'b': now it looks like a regression.
    better = json.loads(json.dumps(summary.to_dict()))
    row = better["evidence"]["per_class"]["valid"]["b"]
    row["correct"] = row["support"]
    save_run(tmp_path, {"findings": [better], "summary": {}, "project": "t", "started": 2.0})
    f = run_check(tmp_path, "errors.regressions")
    assert f.status == "warn" and [c["class"] for c in f.evidence["worse_classes"]] == ["b"]


# --- errors.confident_mistakes ----------------------------------------------------------------
def test_confident_mistakes_list_rows_and_quiet_when_confidence_is_honest(tmp_path):
    valid = frame(1500, 20)
    project(tmp_path / "honest", valid, predictions(valid, 21, error=0.2, confidence=0.8))
    f = run_check(tmp_path / "honest", "errors.confident_mistakes")
    assert f.status == "pass" and len(f.evidence["examples"]) == 10
    assert set(f.evidence["examples"][0]["values"]) >= {"region", "amount"}
    project(tmp_path / "overconfident", valid, predictions(valid, 21, error=0.2, confidence=0.99))
    g = run_check(tmp_path / "overconfident", "errors.confident_mistakes")
    assert g.status == "warn" and g.evidence["confident_mistakes"] > 200


SKLEARN = '''
from sklearn.linear_model import LogisticRegression


def build_model(n_inputs, n_outputs):
    return LogisticRegression()
'''


def test_train_mistakes_are_marked_with_suspected_label_issues(tmp_path, monkeypatch):
    import mltriage.checks.analyses.labels as data

    rng = np.random.default_rng(22)
    n = 600
    x = rng.normal(size=(n, 2))
    label = np.where(x[:, 0] + x[:, 1] > 0, "a", "b")
    flipped = np.arange(0, 30)  # clear label errors far from the boundary
    label[flipped] = np.where(label[flipped] == "a", "b", "a")
    df = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": label})
    write_project(tmp_path, df.iloc[:400], df.iloc[400:], model_code=SKLEARN,
                  toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"')
    ctx = context_for(tmp_path)
    mask = np.zeros(400, dtype=bool)
    mask[flipped] = True
    monkeypatch.setattr(data, "label_issue_mask", lambda ctx: mask, raising=False)
    f = run_check(ctx, "errors.confident_mistakes")
    train = f.evidence["train_examples"]
    assert f.evidence["label_issue_analysis"] and train
    marked = [e["row"] for e in train if e["suspected_label_issue"]]
    assert marked and set(marked) <= set(flipped.tolist())
    assert "suspected as a label error" in f.detail


def test_regression_target_segment_that_got_worse_fails_and_twin_passes(tmp_path):
    rng = np.random.default_rng(23)
    n = 2000
    valid = pd.DataFrame({"store": rng.choice(["s1", "s2", "s3", "s4"], n), "x": rng.normal(size=n)})
    valid["y"] = 3 * valid["x"] + rng.normal(size=n)
    before = valid["y"] + rng.normal(scale=1.0, size=n)
    worse = before + np.where(valid["store"] == "s3", rng.normal(scale=2.0, size=n), 0.0)
    same = valid["y"] + rng.normal(scale=1.0, size=n)
    for name, current in (("worse", worse), ("same", same)):
        root = tmp_path / name
        write_project(root, valid.iloc[:300], valid, target="y",
                      toml_extra='[project]\ntask = "regression"\n[artifacts]\npredictions = "preds/valid.csv"\n'
                                 'previous_predictions = "preds/previous.csv"')
        (root / "preds").mkdir()
        pd.DataFrame({"prediction": current}).to_csv(root / "preds/valid.csv", index=False)
        pd.DataFrame({"prediction": before}).to_csv(root / "preds/previous.csv", index=False)
    f = run_check(tmp_path / "worse", "errors.regressions")
    assert f.status == "fail" and [s["segment"] for s in f.evidence["worse_segments"]] == ["store == 's3'"]
    assert run_check(tmp_path / "same", "errors.regressions").status == "pass"


# --- verdicts on planted measurements (no project needed) ------------------------------------------
def mistakes(n_confident=200, wrong_confident=0, confidence=0.99):
    """Valid rows: n_confident predicted with `confidence`, 100 predicted with 0.6 (a third of them wrong)."""
    conf = np.r_[np.full(n_confident, confidence), np.full(100, 0.6)]
    wrong = np.zeros(len(conf), dtype=bool)
    wrong[:wrong_confident] = True
    wrong[n_confident::3] = True
    examples = [{"row": i, "label": "a", "predicted": "b", "confidence": float(conf[i]), "probability_of_label": 0.01}
                for i in np.flatnonzero(wrong)[:10]]
    return ConfidentMistakesMeasure(conf, wrong, examples)


def test_confident_mistakes_verdict_fires_beyond_chance():
    # 200 rows at 0.99 allow ~2 mistakes: 2 is what the probabilities promise, 12 is far beyond them
    assert confident_mistakes_verdict(mistakes(wrong_confident=2)).status == "pass"
    f = confident_mistakes_verdict(mistakes(wrong_confident=12))
    assert f.status == "warn" and f.evidence["confident_mistakes"] == 12
    assert abs(f.evidence["expected_mistakes"] - 2.0) < 1e-9 and f.evidence["confident_threshold"] == CONFIDENT
    # too few confident mistakes to judge, however unlikely
    few = mistakes(n_confident=200, wrong_confident=MIN_CONFIDENT_MISTAKES - 1, confidence=0.9999)
    assert confident_mistakes_verdict(few).status == "pass"


def test_confident_mistakes_verdict_marks_suspected_label_errors():
    m = mistakes(wrong_confident=2)
    m.has_train_outputs = m.label_issue_analysis = True
    m.train_examples = [{"row": 7, "label": "a", "predicted": "b", "confidence": 0.99, "probability_of_label": 0.01,
                         "suspected_label_issue": True}]
    f = confident_mistakes_verdict(m)
    assert f.evidence["suspected_label_issue_rows"] == [7] and "fix those labels" in f.detail


def planted_slice(error, rest_error, binary=True):
    ratio = error / rest_error
    return {"description": "region == 'east'", "kind": "category", "column": "region", "rule": "east", "size": 200,
            "error": error, "rest_error": rest_error, "excess": error - 0.1, "ratio": ratio, "z": 5.0, "q": 1e-6,
            "excess_errors": 200 * (error - 0.1),
            "severe": bool(ratio >= WARN_RATIO and error - 0.1 >= (WARN_EXCESS if binary else 0.0))}


def test_weak_slices_verdict_warns_on_a_severe_slice_only():
    def measure(slices):
        return WeakSlicesMeasure(True, 2000, 0.1, 300, 250, slices, 0.5)

    assert weak_slices_verdict(measure([])).status == "pass"
    f = weak_slices_verdict(measure([planted_slice(0.3, 0.08)]))
    assert f.status == "warn" and "region == 'east'" in f.title and f.evidence["warn_excess"] == WARN_EXCESS
    assert weak_slices_verdict(measure([planted_slice(0.15, 0.09)])).status == "info"
    regression = weak_slices_verdict(WeakSlicesMeasure(False, 2000, 1.0, 300, 250, [], 0.5))
    assert regression.evidence["measure"] == "mean absolute error" and regression.evidence["warn_excess"] is None


def test_prediction_regressions_verdict_needs_significance_and_size():
    def compared(drop, q, overall_p=0.5):
        segment = {"segment": "class 'a'", "rows": 300, "previous": 0.9, "current": 0.9 - drop, "drop": drop,
                   "p": q, "q": q}
        comparison = RowComparison("McNemar", "accuracy", [segment], 20, 18, overall_p, 0.9, 0.89, 0.01)
        return PredictionRegressions(True, "preds/previous.csv", "accuracy", 0.89, 0.9, comparison)

    assert prediction_regressions_verdict(compared(REGRESSION_MIN_DROP - 0.01, q=1e-4)).status == "pass"  # too small
    assert prediction_regressions_verdict(compared(0.2, q=0.2)).status == "pass"                          # noise
    f = prediction_regressions_verdict(compared(0.2, q=1e-4))
    assert f.status == "fail" and [s["segment"] for s in f.evidence["worse_segments"]] == ["class 'a'"]
    assert prediction_regressions_verdict(compared(0.0, q=1.0, overall_p=0.01)).status == "fail"          # overall
