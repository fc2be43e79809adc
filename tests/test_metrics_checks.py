"""metrics.* checks and the predictions loader: planted defects fire, clean twins stay quiet.

Most tests give predictions files (no training); two use a tiny scikit-learn model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import context_for, run_check, write_project
from mltriage.checks.analyses.baselines import BaselineRef
from mltriage.checks.steps.metrics.classes import (ECE_WARN, MIN_SUPPORT_NEVER_PREDICTED, CalibrationMeasure,
                                                   ConfusionMeasure, PerClassMeasure, calibration_verdict,
                                                   confusion_verdict, per_class_verdict)
from mltriage.checks.steps.metrics.scores import (GAP_FAIL, GAP_WARN, GapMeasure, SplitConsistencyMeasure,
                                                  VsBaselineMeasure, generalization_gap_verdict,
                                                  split_consistency_verdict, vs_baseline_verdict)

CLASSES = ["a", "b", "c"]


def synthetic(n: int, seed: int, classes=CLASSES, weights=None, sharp: float = 2.0):
    """Rows with numeric features and labels drawn from known class probabilities (so the true
    probabilities are a perfectly calibrated model)."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    X = rng.normal(size=(n, 2))
    # class centres evenly around a circle (no class is harder), turned so both features matter
    angles = 2 * np.pi * np.arange(k) / k + np.pi / 4
    W = np.vstack([np.cos(angles), np.sin(angles)]) * sharp
    logits = X @ W + (np.log(weights) if weights is not None else 0.0)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    df = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "label": [classes[i] for i in y]})
    return df, p


def write_preds(root, proba, classes=CLASSES, pred=None, name="valid.csv", prob_columns=True):
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1) if pred is None else np.asarray(pred)
    out = pd.DataFrame({"prediction": [classes[i] for i in pred]})
    if prob_columns:
        for j, c in enumerate(classes):
            out[f"prob_{c}"] = proba[:, j]
    (root / "preds").mkdir(exist_ok=True)
    out.to_csv(root / "preds" / name, index=False)


def project_with_predictions(tmp_path, valid, proba, pred=None, train=None, extra="", **kw):
    train = train if train is not None else synthetic(600, 1)[0]
    write_project(tmp_path, train, valid, toml_extra='[artifacts]\npredictions = "preds/valid.csv"\n' + extra, **kw)
    write_preds(tmp_path, proba, pred=pred)
    return tmp_path


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    valid, p = synthetic(1500, 2)
    project_with_predictions(root, valid, p)
    return context_for(root)


def test_summary_reports_every_metric_with_numbers(clean):
    f = run_check(clean, "metrics.summary")
    assert f.status == "pass"
    valid = f.evidence["splits"]["valid"]["metrics"]
    assert list(valid)[0] == "accuracy"  # configured metric first (default accuracy)
    assert set(valid) >= {"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss"}
    assert 0.5 < valid["accuracy"] < 1.0
    assert set(f.evidence["per_class"]["valid"]) == set(CLASSES)
    assert "train" in f.evidence["missing"] and "checkpoint" in f.evidence["missing"]["train"]


def test_clean_predictions_stay_quiet(clean):
    for cid in ("metrics.vs_baseline", "metrics.per_class", "metrics.confusion", "metrics.calibration",
                "errors.confident_mistakes"):
        f = run_check(clean, cid)
        assert f.status == "pass", (cid, f.title, f.detail)
    # Errors of a good model still concentrate near class boundaries: at most an info, never a warning.
    assert run_check(clean, "errors.weak_slices").status in ("pass", "info")


def test_gap_without_train_predictions_says_what_to_add(clean):
    f = run_check(clean, "metrics.generalization_gap")
    assert f.status == "skipped" and "checkpoint" in f.title + f.detail


def test_worse_than_majority_baseline_fails(tmp_path):
    valid, _ = synthetic(800, 3, weights=[0.85, 0.1, 0.05])
    train, _ = synthetic(800, 4, weights=[0.85, 0.1, 0.05])
    rng = np.random.default_rng(0)
    noise = rng.dirichlet([1, 1, 1], size=len(valid))  # an input-independent, uninformed model
    project_with_predictions(tmp_path, valid, noise, train=train)
    f = run_check(tmp_path, "metrics.vs_baseline")
    assert f.status == "fail", f.title
    assert f.evidence["model"] < f.evidence["majority"]
    assert f.fix and f.plots


def test_class_never_predicted_fails_and_twin_passes(tmp_path):
    valid, p = synthetic(900, 5)
    never = p.copy()
    never[:, 2] = 0.0
    never /= never.sum(axis=1, keepdims=True)
    project_with_predictions(tmp_path, valid, never)
    f = run_check(tmp_path, "metrics.per_class")
    assert f.status == "fail" and f.evidence["never_predicted"] == ["c"]
    assert "c" in f.title


def test_over_confident_model_warns(tmp_path):
    valid, p = synthetic(1500, 6)
    sharp = p ** 8
    sharp /= sharp.sum(axis=1, keepdims=True)  # same argmax, much more confident than it should be
    project_with_predictions(tmp_path, valid, sharp)
    f = run_check(tmp_path, "metrics.calibration")
    assert f.status == "warn" and f.evidence["direction"] == "over-confident"
    assert f.evidence["ece"] > 0.1 and f.evidence["bins"] == 15
    assert f.plots[0].kind == "line"
    g = run_check(tmp_path, "errors.confident_mistakes")
    assert g.status == "warn" and g.evidence["examples"]


def test_swapped_classes_fail_confusion(tmp_path):
    valid, p = synthetic(1200, 7)
    swapped = p[:, [1, 0, 2]]  # the model's outputs for a and b exchanged
    project_with_predictions(tmp_path, valid, swapped)
    f = run_check(tmp_path, "metrics.confusion")
    assert f.status == "fail" and f.evidence["swapped"] == [["a", "b"]]
    assert f.plots[0].kind == "heatmap" and len(f.plots[0].matrix) == 3


@pytest.mark.parametrize("damage, expected", [
    ("rows", "rows"), ("label", "not classes"), ("sum", "sum to 1"), ("column", "prob_c"), ("nocol", "prediction"),
])
def test_bad_predictions_file_is_an_error_naming_it(tmp_path, damage, expected):
    valid, p = synthetic(200, 8)
    project_with_predictions(tmp_path, valid, p)
    path = tmp_path / "preds" / "valid.csv"
    df = pd.read_csv(path)
    if damage == "rows":
        df = df.iloc[:-3]
    elif damage == "label":
        df.loc[5, "prediction"] = "zebra"
    elif damage == "sum":
        df["prob_a"] = df["prob_a"] + 0.3
        df["prob_a"] = df["prob_a"].clip(upper=1)
    elif damage == "column":
        df = df.drop(columns=["prob_c"])
    else:
        df = df.drop(columns=["prediction"])
    df.to_csv(path, index=False)
    f = run_check(tmp_path, "metrics.summary")
    assert f.status == "error"
    assert "preds/valid.csv" in f.title + f.detail and expected in f.title + f.detail


def test_predictions_without_probabilities_skip_calibration(tmp_path):
    valid, p = synthetic(300, 9)
    write_project(tmp_path, synthetic(300, 1)[0], valid, toml_extra='[artifacts]\npredictions = "preds/valid.csv"')
    write_preds(tmp_path, p, prob_columns=False)
    assert run_check(tmp_path, "metrics.summary").status == "pass"
    f = run_check(tmp_path, "metrics.calibration")
    assert f.status == "skipped" and "prob_" in f.title


SKLEARN_MODEL = '''
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier


def build_model(n_inputs, n_outputs):
    return {estimator}
'''


def sklearn_project(tmp_path, estimator, label_noise=0.0, test_shift=False):
    rng = np.random.default_rng(11)
    frames = []
    for i, n in enumerate((600, 400, 400)):
        df, _ = synthetic(n, 20 + i, classes=["a", "b"], sharp=3.0)
        flip = rng.random(n) < label_noise
        df.loc[flip, "label"] = np.where(df.loc[flip, "label"] == "a", "b", "a")
        frames.append(df)
    if test_shift:  # test labels come from a different rule: the model trained on train does worse
        flip = rng.random(len(frames[2])) < 0.3
        frames[2].loc[flip, "label"] = np.where(frames[2].loc[flip, "label"] == "a", "b", "a")
    write_project(tmp_path, *frames, toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"',
                  model_code=SKLEARN_MODEL.format(estimator=estimator))
    return context_for(tmp_path)


def test_overfitting_tree_is_flagged_and_logistic_twin_is_quiet(tmp_path):
    tree = sklearn_project(tmp_path / "tree", "DecisionTreeClassifier(random_state=0)", label_noise=0.25)
    f = run_check(tree, "metrics.generalization_gap")
    assert f.status in ("warn", "fail") and f.evidence["gap"] >= 0.15, f.title
    assert "overfitting" in f.title and f.fix
    logistic = sklearn_project(tmp_path / "logistic", "LogisticRegression()")
    for cid in ("metrics.generalization_gap", "metrics.vs_baseline", "metrics.split_consistency",
                "metrics.calibration", "metrics.per_class"):
        g = run_check(logistic, cid)
        assert g.status == "pass", (cid, g.title, g.detail)
    assert set(run_check(logistic, "metrics.summary").evidence["splits"]) == {"train", "valid", "test"}


def test_test_split_worse_than_valid_is_flagged(tmp_path):
    ctx = sklearn_project(tmp_path, "LogisticRegression()", test_shift=True)
    f = run_check(ctx, "metrics.split_consistency")
    assert f.status in ("warn", "fail") and f.evidence["drop"] > 0.05, f.title


def torch_project(tmp_path, checkpoint_bytes=None):
    import torch

    from helpers import GOOD_TORCH_MODEL

    train, _ = synthetic(400, 30)
    valid, _ = synthetic(300, 31)
    write_project(tmp_path, train, valid, model_code=GOOD_TORCH_MODEL,
                  toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"\npredict = "predict"\n'
                             'checkpoint = "model.pt"')
    (tmp_path / "model.pt").write_bytes(checkpoint_bytes or b"placeholder until the weights are saved")
    if checkpoint_bytes is not None:
        return tmp_path
    ctx = context_for(tmp_path)
    model = ctx.build_model()
    X, y = torch.tensor(ctx.X("train")), torch.tensor(ctx.y("train"))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):  # full-batch: a few hundred milliseconds
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    return tmp_path


def test_checkpoint_gives_train_and_valid_predictions(tmp_path):
    root = torch_project(tmp_path)
    f = run_check(root, "metrics.summary")
    assert f.status == "pass" and "model.pt" in f.evidence["source"]
    assert set(f.evidence["splits"]) == {"train", "valid"} and f.evidence["splits"]["valid"]["metrics"]["accuracy"] > 0.6
    assert run_check(root, "metrics.generalization_gap").status == "pass"
    # A predictions file next to the checkpoint: valid from the file, train from the checkpoint.
    valid = pd.read_csv(root / "data" / "valid.csv")
    write_preds(root, synthetic(300, 31)[1])
    text = (root / "mltriage.toml").read_text() + '\n[artifacts]\npredictions = "preds/valid.csv"\n'
    (root / "mltriage.toml").write_text(text)
    g = run_check(root, "metrics.summary")
    assert "preds/valid.csv" in g.evidence["source"] and set(g.evidence["splits"]) == {"train", "valid"}
    assert len(valid) == g.evidence["splits"]["valid"]["rows"]


def test_damaged_checkpoint_is_an_error_naming_it(tmp_path):
    root = torch_project(tmp_path, checkpoint_bytes=b"not a checkpoint")
    f = run_check(root, "metrics.summary")
    assert f.status == "error" and "model.pt" in f.title + f.detail


# --- verdicts on planted measurements (no project needed) ------------------------------------------
def test_vs_baseline_verdict_noise_margin():
    def measure(model, majority=0.6, single=None, se=0.01):
        ref = BaselineRef(majority, {"feature": "f0", "score": single} if single is not None else None, "test")
        return VsBaselineMeasure("accuracy", model, se, ref, "planted")

    # the margin is 1.645 x 0.01: beating the majority by 0.02 is enough, by 0.015 is not
    assert vs_baseline_verdict(measure(0.62)).status == "pass"
    assert vs_baseline_verdict(measure(0.615)).status == "fail"
    assert vs_baseline_verdict(measure(0.80, single=0.85)).status == "fail"      # behind a one-feature rule
    assert vs_baseline_verdict(measure(0.80, single=0.79)).status == "info"      # within noise of it
    assert vs_baseline_verdict(measure(0.80, single=0.75)).status == "pass"
    rmse = VsBaselineMeasure("rmse", 1.0, 0.01, BaselineRef(2.0, None, "test"), "planted")  # lower is better
    assert vs_baseline_verdict(rmse).status == "pass"
    rmse.model = 2.1
    assert vs_baseline_verdict(rmse).status == "fail"


def test_generalization_gap_verdict_thresholds():
    def gap(train, valid, baseline=0.5, sklearn=False):
        return GapMeasure("accuracy", train, valid, 0.01, baseline, "planted", sklearn)

    assert generalization_gap_verdict(gap(0.90, 0.90 - GAP_WARN + 0.01)).status == "pass"
    assert generalization_gap_verdict(gap(0.95, 0.95 - GAP_WARN - 1e-9)).status == "warn"
    assert generalization_gap_verdict(gap(1.0, 1.0 - GAP_FAIL - 1e-9)).status == "fail"
    assert generalization_gap_verdict(gap(1.0, 1.0 - GAP_FAIL - 1e-9, sklearn=True)).status == "warn"
    under = generalization_gap_verdict(gap(0.55, 0.54))   # covers 10% of the way from 0.5 to 1.0
    assert under.status == "warn" and "underfitting" in under.title and abs(under.evidence["train_skill"] - 0.1) < 1e-9


def test_per_class_verdict_never_predicted_and_weak_recall():
    def row(support, predicted, correct):
        return {"support": support, "predicted": predicted, "correct": correct, "precision": None,
                "recall": correct / support if support else None, "f1": None}

    clean = {"a": row(100, 100, 90), "b": row(100, 100, 88), "c": row(100, 100, 87)}
    assert per_class_verdict(PerClassMeasure(clean)).status == "pass"
    never = dict(clean, c=row(MIN_SUPPORT_NEVER_PREDICTED, 0, 0))
    f = per_class_verdict(PerClassMeasure(never))
    assert f.status == "fail" and f.evidence["never_predicted"] == ["c"]
    rare = dict(clean, c=row(MIN_SUPPORT_NEVER_PREDICTED - 1, 0, 0))
    assert per_class_verdict(PerClassMeasure(rare)).status == "info"
    weak = dict(clean, c=row(100, 60, 40))
    f = per_class_verdict(PerClassMeasure(weak))
    assert f.status == "warn" and f.evidence["weak_recall"] == ["c"]


def test_confusion_verdict_swapped_pair():
    f = confusion_verdict(ConfusionMeasure(["a", "b", "c"], np.array([[10, 40, 0], [45, 5, 0], [0, 0, 50]])))
    assert f.status == "fail" and f.evidence["swapped"] == [["a", "b"]]
    f = confusion_verdict(ConfusionMeasure(["a", "b", "c"], np.array([[40, 10, 0], [15, 35, 0], [0, 0, 50]])))
    assert f.status == "pass" and f.evidence["most_confused"][0] == {"true": "b", "predicted": "a", "count": 15,
                                                                      "share_of_true": 0.3}


def test_calibration_verdict_needs_both_threshold_and_null():
    def cal(ece, null95=0.05, mean_confidence=0.95, accuracy=0.80):
        return CalibrationMeasure(ece, null95, mean_confidence, accuracy, [0.95], [0.80], [100])

    f = calibration_verdict(cal(ECE_WARN + 0.05))
    assert f.status == "warn" and f.evidence["direction"] == "over-confident"
    assert calibration_verdict(cal(ECE_WARN)).status == "pass"
    assert calibration_verdict(cal(ECE_WARN + 0.05, null95=0.2)).status == "pass"   # within chance on few rows
    assert calibration_verdict(cal(0.2, mean_confidence=0.6, accuracy=0.8)).evidence["direction"] == "under-confident"


def test_split_consistency_verdict_thresholds():
    assert split_consistency_verdict(SplitConsistencyMeasure("accuracy", 0.90, 0.88, 0.01)).status == "pass"
    assert split_consistency_verdict(SplitConsistencyMeasure("accuracy", 0.90, 0.84, 0.01)).status == "warn"
    assert split_consistency_verdict(SplitConsistencyMeasure("accuracy", 0.90, 0.70, 0.01)).status == "fail"
    assert split_consistency_verdict(SplitConsistencyMeasure("accuracy", 0.90, 0.84, 0.05)).status == "pass"  # noise
    f = split_consistency_verdict(SplitConsistencyMeasure("rmse", 1.0, 1.2, 0.01))   # relative for error metrics
    assert f.status == "fail" and f.evidence["relative"] is True
