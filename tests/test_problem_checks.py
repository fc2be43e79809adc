"""Problem-step checks: fire on a planted defect, quiet on a clean twin; baseline_scores contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import context_for, run_check, write_project
from mltriage.checks.analyses.baselines import Baseline
from mltriage.checks.steps.problem import (IMBALANCE_WARN_RATIO, MIN_EXAMPLES_PER_CLASS, ClassBalanceMeasure,
                                           MetricChoiceMeasure, TaskTypeMeasure, baseline_verdict,
                                           class_balance_verdict, metric_choice_verdict, task_type_verdict)


def frame(n=400, minority=0.5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    label = np.where(rng.random(n) < minority, "b", "a")
    x[label == "b", 0] += 2.0
    return pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "label": label})


def ctx_for(tmp_path, df, toml_extra="", **kw):
    cut = int(len(df) * 0.75)
    return context_for(write_project(tmp_path, df.iloc[:cut], df.iloc[cut:], toml_extra=toml_extra, **kw))


def test_task_type_regression_loss_on_labels(tmp_path):
    ctx = ctx_for(tmp_path / "a", frame(), '[project]\nmetric = "accuracy"')
    assert run_check(ctx, "problem.task_type").status == "pass"
    df = frame()
    df["label"] = (df["label"] == "b").astype(int)
    bad = ctx_for(tmp_path / "b", df, '[project]\ntask = "classification"\n[model]\nloss = "mse"')
    assert run_check(bad, "problem.task_type").status in ("warn", "fail")


def test_class_balance(tmp_path):
    assert run_check(ctx_for(tmp_path / "a", frame()), "problem.class_balance").status == "pass"
    f = run_check(ctx_for(tmp_path / "b", frame(2000, minority=0.02)), "problem.class_balance")
    assert f.status == "warn"


def test_baseline_scores_contract(tmp_path):
    df = frame(800, minority=0.3)
    ctx = ctx_for(tmp_path, df, '[project]\nmetric = "accuracy"')
    from mltriage.checks.analyses.baselines import baseline_scores

    b = baseline_scores(ctx)
    assert b["metric"] == "accuracy" and b["higher_is_better"] is True
    valid = df.iloc[600:]
    assert abs(b["majority"] - (valid["label"] == "a").mean()) < 1e-9
    assert b["best_single_feature"]["feature"] == "f0"
    assert b["best_single_feature"]["score"] > b["majority"]
    assert baseline_scores(ctx) is b  # cached for the run
    f = run_check(ctx, "problem.baseline")
    assert f.status == "pass" and f.plots


def test_baseline_regression_uses_mean(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    df["y"] = 3 * df["a"] + rng.normal(size=300)
    ctx = ctx_for(tmp_path, df, '[project]\nmetric = "rmse"', target="y")
    from mltriage.checks.analyses.baselines import baseline_scores

    b = baseline_scores(ctx)
    assert b["higher_is_better"] is False
    assert b["best_single_feature"]["feature"] == "a" and b["best_single_feature"]["score"] < b["majority"]


def test_metric_choice_accuracy_under_imbalance(tmp_path):
    df = frame(2000, minority=0.04)
    f = run_check(ctx_for(tmp_path / "a", df, '[project]\nmetric = "accuracy"'), "problem.metric_choice")
    assert f.status == "warn" and "balanced_accuracy" in f.fix
    f = run_check(ctx_for(tmp_path / "b", df, '[project]\nmetric = "f1_macro"'), "problem.metric_choice")
    assert f.status == "pass"
    f = run_check(ctx_for(tmp_path / "c", frame(), '[project]\nmetric = "accuracy"'), "problem.metric_choice")
    assert f.status == "pass"


def test_metric_choice_r2_on_tiny_valid(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80)})
    df["y"] = df["a"] * 2 + rng.normal(size=80)
    f = run_check(ctx_for(tmp_path / "a", df, '[project]\nmetric = "r2"', target="y"), "problem.metric_choice")
    assert f.status == "warn" and "rmse" in f.fix
    big = pd.concat([df] * 5, ignore_index=True)
    f = run_check(ctx_for(tmp_path / "b", big, '[project]\nmetric = "r2"', target="y"), "problem.metric_choice")
    assert f.status == "pass"


def test_metric_choice_auc_with_tiny_classes(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    label = rng.choice(["a", "b", "c"], n, p=[0.49, 0.49, 0.02])
    df = pd.DataFrame({"x": rng.normal(size=n), "label": label})
    f = run_check(ctx_for(tmp_path, df, '[project]\nmetric = "roc_auc"'), "problem.metric_choice")
    assert f.status == "warn" and "c" in f.title


# --- verdicts on planted measurements (no project needed) ------------------------------------------
def task(loss="cross_entropy", task="classification", declared=None, profile=None):
    profile = profile or {"dtype": "int64", "distinct": 3, "numeric": True, "integral": True, "min": 0.0, "max": 2.0}
    return TaskTypeMeasure(target="y", declared=declared, inferred=task, task=task, loss=loss,
                           loss_name=loss or "cross_entropy", n_classes=3, classes_declared=False, profile=profile)


def test_task_type_verdict_regression_loss_on_class_indices():
    assert task_type_verdict(task("cross_entropy")).status == "pass"
    f = task_type_verdict(task("mse"))
    assert f.status == "fail" and "mse" in f.title and f.evidence["loss"] == "mse"
    # a numeric target declared as classification, not index-like: only a warning
    wide = {"dtype": "int64", "distinct": 30, "numeric": True, "integral": True, "min": 1.0, "max": 30.0}
    assert task_type_verdict(task("huber", profile=wide)).status == "warn"


def test_task_type_verdict_classification_loss_on_continuous_target():
    continuous = {"dtype": "float64", "distinct": 500, "numeric": True, "integral": False, "min": -3.0, "max": 4.0}
    assert task_type_verdict(task("mse", task="regression", profile=continuous)).status == "pass"
    assert task_type_verdict(task("bce_with_logits", task="regression", profile=continuous)).status == "fail"
    # a project's own loss function is not judged by name
    assert task_type_verdict(task("my_loss", task="regression", profile=continuous)).status == "pass"


def test_task_type_verdict_text_target_declared_regression():
    text = {"dtype": "object", "distinct": 2, "numeric": False}
    f = task_type_verdict(task("mse", task="regression", declared="regression", profile=text))
    assert f.status == "fail" and "text labels" in f.title


def test_class_balance_verdict_thresholds():
    def counts(a, b):
        return ClassBalanceMeasure(["a", "b"], {"train": {"a": a, "b": b}, "valid": {"a": a // 4, "b": max(b // 4, 1)}})

    assert class_balance_verdict(counts(500, 100)).status == "pass"
    f = class_balance_verdict(counts(int(IMBALANCE_WARN_RATIO * 100), 100))
    assert f.status == "warn" and f.evidence["imbalance_ratio"] == IMBALANCE_WARN_RATIO
    assert class_balance_verdict(counts(50, MIN_EXAMPLES_PER_CLASS - 1)).status == "warn"
    assert class_balance_verdict(counts(50, MIN_EXAMPLES_PER_CLASS)).status == "pass"
    absent = class_balance_verdict(counts(500, 0))
    assert absent.status == "warn" and absent.evidence["absent_in_train"] == ["b"]


def test_metric_choice_verdict_thresholds():
    def clf(metric, train, valid):
        return MetricChoiceMeasure(metric=metric, declared=metric, task="classification", classes=["a", "b", "c"],
                                   train_counts=train, valid_counts=valid)

    assert metric_choice_verdict(clf("accuracy", [89, 6, 5], [30, 30, 30])).status == "pass"
    f = metric_choice_verdict(clf("accuracy", [90, 5, 5], [30, 30, 30]))
    assert f.status == "warn" and "balanced_accuracy" in f.fix
    assert metric_choice_verdict(clf("roc_auc", [40, 30, 30], [30, 30, 10])).status == "pass"
    assert metric_choice_verdict(clf("roc_auc", [40, 30, 30], [30, 30, 9])).status == "warn"
    assert metric_choice_verdict(clf("f1_macro", [40, 30, 30], [30, 30, 0])).status == "info"
    r2 = MetricChoiceMeasure(metric="r2", declared="r2", task="regression", valid_rows=29)
    assert metric_choice_verdict(r2).status == "warn"
    r2.valid_rows = 30
    assert metric_choice_verdict(r2).status == "pass"
    r2.declared = None
    assert metric_choice_verdict(r2).status == "info"


def test_baseline_verdict_and_its_evidence():
    b = Baseline(metric="accuracy", higher_is_better=True, majority=0.6, train_rows_used=100, valid_rows_used=50,
                 valid_rows_labelled=50, sampled=False, majority_class="a",
                 best_single_feature={"feature": "f0", "score": 0.8},
                 per_feature=[{"feature": "f0", "score": 0.8, "strength": 0.5}])
    f = baseline_verdict(b, is_classification=True)
    assert f.status == "pass" and "f0" in f.title
    assert list(f.evidence) == ["metric", "higher_is_better", "majority", "best_single_feature", "train_rows_used",
                                "valid_rows_used", "valid_rows_labelled", "sampled", "majority_class",
                                "top_single_features"]
    b.majority = None
    assert baseline_verdict(b, is_classification=True).status == "info"
