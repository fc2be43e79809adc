"""Problem-step checks: fire on a planted defect, quiet on a clean twin; baseline_scores contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import context_for, run_check, write_project


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
