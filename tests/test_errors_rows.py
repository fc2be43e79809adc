"""The rows behind the errors step's findings (issue 18 item 1) and previous vs current on each slice (item 8)."""

from __future__ import annotations

import numpy as np

from helpers import context_for, run_check
from mltriage.checks.analyses.stats import mcnemar_two_sided_p, paired_bootstrap_interval
from test_errors_checks import frame, predictions, project

SLICE = """
[[slices]]
name = "east"
where = "region == 'east'"
metric = "accuracy"
min = 0.5
"""


def records(f):
    return [dict(zip(f.rows.columns, r)) for r in f.rows.records]


def test_weak_slice_and_mistake_rows_are_the_flagged_rows(tmp_path):
    valid = frame(1500, 2)
    preds = predictions(valid, 3, weak={"region": ("east", 0.5)}, confidence=0.95)
    ctx = context_for(project(tmp_path, valid, preds))
    f = run_check(ctx, "errors.weak_slices")
    assert f.status == "warn" and f.rows is not None
    first = [r for r in records(f) if r["slice"] == 1]
    assert len(first) == f.evidence["slices"][0]["size"] and {r["slice_description"] for r in first} == {"region == 'east'"}
    assert all(valid["region"].iloc[r["position"]] == "east" for r in first)
    error = 1 - np.mean([r["correct"] for r in first])
    assert abs(error - f.evidence["slices"][0]["error"]) < 1e-9 and "note" in f.rows.columns

    m = run_check(ctx, "errors.confident_mistakes")
    rows = records(m)
    wrong = (preds["prediction"] != valid["label"]).to_numpy()
    assert m.rows.total == int(wrong.sum()) and {r["position"] for r in rows} == set(np.flatnonzero(wrong))
    assert all(r["label"] != r["prediction"] and r["is_confident_mistake"] for r in rows)
    assert [r["confidence"] for r in rows] == sorted((r["confidence"] for r in rows), reverse=True)


def test_regression_rows_and_previous_vs_current_per_slice(tmp_path):
    valid = frame(1500, 13)
    previous = predictions(valid, 14, weak={"region": ("east", 0.5)})
    current = previous.copy()
    rng = np.random.default_rng(15)
    east_right = (valid["region"] == "east").to_numpy() & (previous["prediction"] == valid["label"]).to_numpy()
    broken = east_right & (rng.random(len(valid)) < 0.4)   # the east slice gets worse
    current.loc[broken, "prediction"] = [("b" if v == "a" else "a") for v in valid["label"][broken]]
    f = run_check(project(tmp_path, valid, current, previous=previous, slices=SLICE), "errors.regressions")
    assert f.status == "fail", f.title
    rows = records(f)
    assert {r["position"] for r in rows} == set(np.flatnonzero(broken)) and f.rows.total == int(broken.sum())
    assert all(r["label"] == valid["label"].iloc[r["position"]] != r["current"] for r in rows)
    by_name = {(s["kind"], s["slice"]): s for s in f.evidence["slice_comparison"]}
    test = by_name[("slice test", "east")]
    assert test["right_to_wrong"] == int(broken.sum()) and test["wrong_to_right"] == 0
    assert test["difference"] < -0.1 and test["p"] < 1e-6 and test["significant"]
    assert ("weak slice", "region == 'east'") in by_name
    plot = f.plots[-1]
    assert plot.kind == "bar" and [s.name for s in plot.series] == ["previous", "current"] and "east" in plot.series[0].x


def test_mcnemar_two_sided_and_the_bootstrap_interval():
    assert abs(float(mcnemar_two_sided_p(10, 0)) - 2 * 0.5 ** 10) < 1e-12
    assert float(mcnemar_two_sided_p(5, 5)) == 1.0 and float(mcnemar_two_sided_p(0, 0)) == 1.0
    assert abs(float(mcnemar_two_sided_p(3, 12)) - float(mcnemar_two_sided_p(12, 3))) < 1e-12
    rng = np.random.default_rng(0)
    low, high = paired_bootstrap_interval(rng.normal(0.5, 1.0, 400), seed=1)
    assert 0.3 < low < 0.5 < high < 0.7
    low, high = paired_bootstrap_interval(rng.normal(0.0, 1.0, 400), seed=1)
    assert low < 0 < high
