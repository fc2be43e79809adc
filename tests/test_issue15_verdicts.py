"""Issue 15: verdicts a CI can trust. Planted measurements and their clean twins for metrics.confusion
(collapse), errors.weak_slices (nothing tested), training.lr_range (advice only where it holds), the
project's predict output, contradictory rows reported once, featurize leakage, confident mistakes."""

from __future__ import annotations

import math

import pytest

from helpers import context_for, run_check, write_project


# --- metrics.confusion: a collapsed model is a fail ----------------------------------------------
def _confusion(matrix):
    from mltriage.checks.steps.metrics.classes import ConfusionMeasure, confusion_verdict

    return confusion_verdict(ConfusionMeasure([str(i) for i in range(len(matrix))], matrix))


def test_confusion_fails_when_every_row_is_one_class():
    collapsed = [[30, 0, 0], [25, 0, 0], [28, 0, 0]]
    found = _confusion(collapsed)
    assert found.status == "fail" and "'0' for 100% of the valid rows" in found.title
    assert found.evidence["predicted_classes"] == ["0"]
    # a stray output or two of another class is still a collapse
    stray = _confusion([[30, 0, 0], [24, 0, 1], [28, 0, 0]])
    assert stray.status == "fail" and stray.evidence["predicted_classes"] == ["0"]


def test_confusion_fails_when_fewer_than_half_of_the_classes_are_predicted():
    import numpy as np

    m = np.zeros((10, 10), int)
    for i in range(10):
        m[i, i % 4] = 20  # ten classes of 20 rows, only four ever predicted
    found = _confusion(m.tolist())
    assert found.status == "fail" and "only 4 of 10 classes" in found.title


def test_confusion_clean_twin_and_rare_classes_pass():
    clean = [[25, 3, 2], [4, 20, 1], [2, 2, 26]]
    assert _confusion(clean).status == "pass"
    # the unpredicted classes have too few rows for never predicting them to mean anything
    rare = [[60, 0, 0], [3, 0, 0], [2, 0, 0]]
    assert _confusion(rare).status == "pass"


# --- errors.weak_slices: nothing tested is not a pass --------------------------------------------
def test_weak_slices_with_no_segment_tested_is_skipped():
    from mltriage.checks.steps.errors.segments import WeakSlicesMeasure, weak_slices_verdict

    none = weak_slices_verdict(WeakSlicesMeasure(True, 45, 0.2, 12, 0, []))
    assert none.status == "skipped" and "45 rows" in none.title
    some = weak_slices_verdict(WeakSlicesMeasure(True, 400, 0.2, 30, 25, []))
    assert some.status == "pass" and "25 tested" in some.title


# --- the project's predict output ----------------------------------------------------------------
def test_predict_shape_problem_is_pure_and_exact():
    from mltriage.checks.analyses.predictions import expected_score_shapes, predict_shape_problem

    assert predict_shape_problem((50, 3), 50, True, 3) == ""
    assert "class ids" in predict_shape_problem((50,), 50, True, 3)
    assert predict_shape_problem((50,), 50, True, 2) == ""           # one binary score per row
    assert predict_shape_problem((50, 1), 50, False, 0) == ""
    assert "rows" in predict_shape_problem((49, 3), 50, True, 3)
    assert predict_shape_problem((50, 4), 50, True, 3) != ""
    assert expected_score_shapes(True, 3, 50) == "(50, 3)"


ARGMAX_PREDICT = '''
import torch
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, n_outputs))


def predict(model, X):
    model.eval()
    with torch.no_grad():
        return model(X).argmax(dim=1)      # class ids, not scores
'''


def _three_class_frames(n=300, seed=0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0.5).astype(int) + (X[:, 1] > 0).astype(int)]
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    df["label"] = y
    return df.iloc[:200].reset_index(drop=True), df.iloc[200:].reset_index(drop=True)


def test_predict_returning_class_ids_errors_once_then_skips(tmp_path):
    train, valid = _three_class_frames()
    toml = '[model]\ncode = "model.py"\nbuild = "build_model"\npredict = "predict"\nepochs = 2\n[budget]\nseconds = 10\n'
    root = write_project(tmp_path, train, valid, model_code=ARGMAX_PREDICT, toml_extra=toml)
    ctx = context_for(root, budget=10)
    ids = ("metrics.summary", "metrics.vs_baseline", "metrics.per_class", "metrics.confusion",
           "errors.confident_mistakes", "errors.weak_slices")
    found = {cid: run_check(ctx, cid) for cid in ids}
    first = found["metrics.summary"]
    assert first.status == "error", (first.title, first.detail)
    assert '[model] predict = "predict"' in first.detail and "(8, 3)" in first.detail
    for cid in ids[1:]:
        assert found[cid].status == "skipped", (cid, found[cid].status, found[cid].title, found[cid].detail)
        assert "predict returned shape (8,)" in found[cid].title
    assert not any("IndexError" in f.detail for f in found.values())


# --- one finding per problem: contradictory rows -------------------------------------------------
def _reviews(n, seed=0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    good = ["great value and works well", "love it, works perfectly", "excellent build quality overall"]
    bad = ["broke after two days of use", "terrible, would not buy again", "poor quality and slow delivery"]
    label = rng.choice(["pos", "neg"], n)
    text = [f"{rng.choice(good if lab == 'pos' else bad)} item {i}" for i, lab in enumerate(label)]
    return pd.DataFrame({"text": text, "label": label})


def test_exact_contradictions_are_reported_by_duplicates_and_referred_to_by_text_quality(tmp_path):
    import numpy as np
    import pandas as pd

    df = _reviews(400)
    train, valid = df.iloc[:300].reset_index(drop=True), df.iloc[300:].reset_index(drop=True)
    copy = train.iloc[:10].copy()
    copy["label"] = np.where(copy["label"] == "pos", "neg", "pos")
    train = pd.concat([train, copy], ignore_index=True)
    ctx = context_for(write_project(tmp_path, train, valid, text=["text"]))
    dups, text = run_check(ctx, "data.duplicates"), run_check(ctx, "data.text_quality")
    assert dups.status == "fail" and dups.evidence["per_split"]["train"]["conflict_rows"] == 20
    assert text.status == "pass", (text.title, text.detail)
    assert text.evidence["reported_by"] == "data.duplicates" and "data.duplicates" in text.title
    assert text.evidence["duplicate_texts_different_labels"] == {}


def test_sentiment_buggy_reports_each_contradictory_group_once():
    from pathlib import Path

    root = Path(__file__).parent.parent / "sample_projects" / "sentiment" / "buggy"
    if not root.exists():
        pytest.skip("sentiment sample project not present")
    ctx = context_for(root)
    dups, text = run_check(ctx, "data.duplicates"), run_check(ctx, "data.text_quality")
    exact = dups.evidence["per_split"]["train"]["conflict_rows"]
    near = dups.evidence["near_duplicates"]["per_split"]["train"]["conflict_rows"]
    # the contradictory group (reordered copies of one review with two labels) is data.duplicates' finding
    assert dups.status != "pass" and exact + near > 0 and "another label" in dups.title
    # ... and text_quality does not report it a second time
    assert text.status == "pass", (text.title, text.detail)
    assert text.evidence["duplicate_texts_different_labels"] == {}
    assert "label" not in text.title or text.evidence.get("reported_by") == "data.duplicates"


# --- leakage through featurize -------------------------------------------------------------------
OWN_STATS_FEATURIZE = '''
import numpy as np


def featurize(fit_df, df):
    X = df.to_numpy(dtype=float)
    return (X - X.mean(axis=0)) / X.std(axis=0)       # df's own statistics: a leak
'''

FIT_DF_FEATURIZE = '''
import numpy as np


def featurize(fit_df, df):
    F = fit_df.to_numpy(dtype=float)
    return (df.to_numpy(dtype=float) - F.mean(axis=0)) / F.std(axis=0)
'''


def _featurize_project(root, code):
    train, valid = _three_class_frames()
    toml = '[model]\ncode = "model.py"\nbuild = "build_model"\nfeaturize = "featurize"\n'
    model = code + "\n\ndef build_model(n_inputs, n_outputs):\n    import torch.nn as nn\n" \
                   "    return nn.Linear(n_inputs, n_outputs)\n"
    return write_project(root, train, valid, model_code=model, toml_extra=toml)


def test_featurize_with_df_statistics_warns_naming_the_columns(tmp_path):
    found = run_check(_featurize_project(tmp_path / "leak", OWN_STATS_FEATURIZE), "data.target_leakage")
    assert found.status == "warn", (found.title, found.detail)
    moved = found.evidence["featurize_row_independence"]
    assert moved["moved"] == 4 and "feature 0" in moved["moved_columns"]
    assert "featurize" in found.title and "fit_df" in found.fix
    clean = run_check(_featurize_project(tmp_path / "clean", FIT_DF_FEATURIZE), "data.target_leakage")
    assert clean.status == "pass", (clean.title, clean.detail)
    assert clean.evidence["featurize_row_independence"]["moved"] == 0


def test_moved_columns_is_pure():
    import numpy as np

    from mltriage.checks.steps.data.leakage import moved_columns

    full = np.arange(20.0).reshape(10, 2)
    part = full[[3, 1, 7]].copy()
    assert moved_columns(full, part, [3, 1, 7]) == ([], 0.0)
    part[:, 1] += 0.5
    cols, top = moved_columns(full, part, [3, 1, 7])
    assert cols == [1] and top > 1e-3


# --- training.lr_range: advice only where it holds -----------------------------------------------
def _sweep(lowest_at=-2.0, rise_per_decade=5.0, diverge=True):
    """Smoothed loss flat at 1.0 up to lr 1e-4, falling to 0.2 at lr 10**lowest_at, then rising (until it
    passes 4x its minimum, when `diverge`)."""
    from mltriage.checks.analyses.lr_test import LR_DIVERGE_FACTOR, LR_END, LR_START, LR_TEST_STEPS, LRTest

    sweep = LRTest(stopped="end", seconds=1.0, optimizer="Adam")
    for k in range(LR_TEST_STEPS):
        lr = LR_START * (LR_END / LR_START) ** (k / (LR_TEST_STEPS - 1))
        x = math.log10(lr)
        loss = (1.0 if x < -4 else 1.0 - 0.8 * (x + 4) / (lowest_at + 4) if x < lowest_at
                else 0.2 + rise_per_decade * (x - lowest_at))
        sweep.lrs.append(lr)
        sweep.losses.append(loss)
        sweep.smoothed.append(loss)
        if diverge and k > 8 and loss > LR_DIVERGE_FACTOR * min(sweep.smoothed):
            sweep.stopped = "diverged"
            break
    return sweep


def _lr(configured, sweep=None, optimizer="adam", memorised=True, note=""):
    from mltriage.checks.analyses.lr_test import lr_range_summary
    from mltriage.checks.steps.training.lr import LRMeasure, lr_verdict

    sweep = sweep or _sweep()
    if optimizer == "sgd":
        sweep.optimizer = "SGD"
    return lr_verdict(LRMeasure(sweep, lr_range_summary(sweep), configured, optimizer, memorised, note))


def test_lr_advice_is_a_range_one_decade_below_the_minimum():
    found = _lr(0.1)                                  # beyond the blow-up; lowest loss near lr 1e-2
    assert found.status == "fail"
    lo, hi = found.evidence["advice"]["range"]
    assert lo < 1e-3 < hi and hi / lo == pytest.approx(10, rel=0.01)
    assert "Try lr in [" in found.fix and "Smith 2017" in found.fix
    assert found.evidence["suggested_lr"] == pytest.approx(1e-3, rel=0.3)


def test_lr_advice_withheld_when_the_model_cannot_memorise():
    note = "sanity.overfit_small_batch did not pass: the model could not memorise 32 examples"
    found = _lr(0.1, memorised=False, note=note)
    assert found.status == "fail"                      # the verdict on the configured lr stands
    assert found.evidence["advice"]["range"] is None and "suggested_lr" not in found.evidence
    assert "No lr is advised" in found.fix and "could not memorise" in found.fix
    assert "Try lr" not in found.fix
    unknown = _lr(1e-3, memorised=None, note="the result of sanity.overfit_small_batch is not available")
    assert unknown.status == "pass" and "No lr is advised" in unknown.detail


def test_lr_advice_withheld_when_the_loss_barely_fell():
    sweep = _sweep()
    sweep.smoothed = [1.0 - 0.1 * (lr > 1e-3) for lr in sweep.lrs]  # a 10% fall: "fell", but not clearly
    found = _lr(1e-3, sweep)
    assert found.evidence["advice"]["range"] is None
    assert "did not fall clearly" in found.evidence["advice"]["why_not"]


def test_adam_advice_is_capped_when_the_sweep_never_blew_up_but_sgd_is_not():
    capped = _lr(5.0, _sweep(lowest_at=0.5, rise_per_decade=0.01, diverge=False))
    lo, hi = capped.evidence["advice"]["range"]
    assert hi <= 1e-2 and capped.evidence["advice"]["capped"]
    assert "outside the usual 1e-5 to 0.01" in capped.fix
    sgd = _lr(5.0, _sweep(lowest_at=-1.0, rise_per_decade=0.01, diverge=False), optimizer="sgd")
    lo, hi = sgd.evidence["advice"]["range"]
    assert lo < 1e-2 < hi and not sgd.evidence["advice"]["capped"]


def test_optimizer_family():
    from mltriage.checks.analyses.lr_test import optimizer_family

    assert [optimizer_family(n) for n in ("Adam", "AdamW", "SGD", "RMSprop", "")] == \
        ["adam", "adam", "sgd", "other", "other"]


SOFTMAX_HEAD = '''
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs), nn.Softmax(dim=1))
'''

HEALTHY_HEAD = '''
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))
'''


@pytest.fixture
def memorising_analysis(monkeypatch):
    """sanity.overfit_small_batch's measurement registered as the analysis training.lr_range reads (what
    the sanity step provides once its measurement is an @analysis)."""
    from mltriage.checks.engine.analysis import ANALYSES
    from mltriage.checks.steps.sanity import fitting
    from mltriage.checks.steps.training.lr import MEMORISING_ANALYSIS

    if MEMORISING_ANALYSIS not in ANALYSES:
        monkeypatch.setitem(ANALYSES, MEMORISING_ANALYSIS,
                            lambda ctx: ctx.shared(("memorising",), lambda: fitting._measure_memorising(ctx)))


@pytest.mark.parametrize("code,advised", [(HEALTHY_HEAD, True), (SOFTMAX_HEAD, False)], ids=("healthy", "softmax"))
def test_lr_advice_follows_overfit_small_batch(tmp_path, memorising_analysis, code, advised):
    import torch

    torch.set_num_threads(1)
    train, valid = _three_class_frames(n=480)
    toml = '[model]\ncode = "model.py"\nbuild = "build_model"\nlr = 0.003\n[budget]\nseconds = 30\n'
    ctx = context_for(write_project(tmp_path, train, valid, model_code=code, toml_extra=toml), budget=30)
    found = run_check(ctx, "training.lr_range")
    advice = found.evidence["advice"]
    assert (advice["range"] is not None) is advised, (found.status, found.title, advice)
    text = found.detail + " " + found.fix
    if advised:
        lo, hi = advice["range"]
        assert 1e-5 <= lo < hi <= 1e-2 and "Try lr in [" in text   # Adam's upper bound holds
    else:
        assert "overfit_small_batch" in advice["why_not"] and "No lr is advised" in text


# --- confident mistakes show the row's id and text -------------------------------------------------
def test_mistake_examples_name_the_id_column_and_the_text(tmp_path):
    import pandas as pd

    from mltriage.checks.steps.errors.mistakes import _describe_example, id_column, row_identity

    df = _reviews(120)
    df.insert(0, "review_id", [f"R{1000 + i}" for i in range(len(df))])
    df.loc[5, "text"] = "a very long review " * 10
    train, valid = df.iloc[:80].reset_index(drop=True), df.iloc[80:].reset_index(drop=True)
    valid.loc[3, "text"] = "word " * 40
    ctx = context_for(write_project(tmp_path, train, valid, text=["text"], ignore=["review_id"]))
    col = id_column(ctx, ctx.valid)
    assert col == "review_id"
    ident = row_identity(ctx, ctx.valid, 3, col)
    assert ident["id"] == {"review_id": "R1083"}
    assert len(ident["text"]) <= 80 and ident["text"].endswith("...")
    line = _describe_example(dict(row=3, label="pos", predicted="neg", confidence=0.97, **ident))
    assert line.startswith("row 3 (review_id R1083): label 'pos'") and '"word word' in line
    # no unique ignore column: no id, and the example still reads
    assert id_column(ctx, pd.DataFrame({"text": ["a", "b"]})) is None


SUBSET_HOSTILE_FEATURIZE = '''
import numpy as np


def featurize(fit_df, df):
    if len(df) < 60:
        raise ValueError("needs the whole split")
    F = fit_df.to_numpy(dtype=float)
    return (df.to_numpy(dtype=float) - F.mean(axis=0)) / F.std(axis=0)
'''


def test_featurize_that_cannot_take_a_subset_is_said_not_a_crash(tmp_path):
    found = run_check(_featurize_project(tmp_path, SUBSET_HOSTILE_FEATURIZE), "data.target_leakage")
    assert found.status == "pass", (found.status, found.title, found.detail)   # the raw-feature verdict stands
    assert "needs the whole split" in found.evidence["featurize_row_independence"]["untested"]
    assert "not tested" in found.detail


# --- issue 15 item 4: a feature near-perfect alone and far ahead of every other is a fail ----------------------
def test_a_single_feature_far_ahead_of_the_others_is_a_leak():
    from mltriage.checks.steps.data.leakage import _leak_candidates

    alone = [{"feature": "code", "strength": 0.95}, {"feature": "area", "strength": 0.82},
             {"feature": "radius", "strength": 0.80}]
    shared = [{"feature": "area", "strength": 0.93}, {"feature": "radius", "strength": 0.91},
              {"feature": "perimeter", "strength": 0.90}]
    leaks, _ = _leak_candidates(alone)
    assert [r["feature"] for r in leaks] == ["code"]
    leaks, suspects = _leak_candidates(shared)  # strong but shared signal: a warn at most
    assert leaks == [] and [r["feature"] for r in suspects] == ["area", "radius", "perimeter"]
