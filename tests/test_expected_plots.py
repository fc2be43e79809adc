"""The plots people expect (issue 18 item 4): ROC / precision-recall / threshold sweep for binary classifiers,
predicted-vs-actual and residuals for regression, the reliability diagram with its bin counts, drift densities,
the architecture table in 80 columns, readable log ticks and integer epoch ticks in both drawings.

Unit tests build the plots from small arrays; one check-level test per plot runs the check on a tiny project
with a predictions file (no training) and on a twin where the plot does not apply.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd
import pytest

from helpers import GOOD_TORCH_MODEL, run_check, write_project
from mltriage.checks.analyses.metric_plots import (area, binary_curves, operating_threshold, pr_points,
                                                   regression_plots, roc_points, threshold_sweep)
from mltriage.checks.findings import PlotSpec, Series
from mltriage.checks.io.svg import integer_axis, linear_ticks, log_ticks, plot_to_svg
from mltriage.checks.steps.architecture.layers import SUMMARY_WIDTH, summary_table
from mltriage.checks.steps.data.shift import density_histogram


def _binary(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.6 * (2 * y - 1))))
    return y, score


# --- unit: curves ---------------------------------------------------------------------------------
def test_roc_and_pr_curves_match_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, score = _binary()
    fpr, tpr, _ = roc_points(y, score)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert area(fpr, tpr) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    recall, precision, _ = pr_points(y, score)
    assert recall[0] == 0.0 and recall[-1] == 1.0 and precision[-1] == pytest.approx(y.mean())
    ap = float(np.sum(np.diff(recall) * precision[1:]))
    assert ap == pytest.approx(average_precision_score(y, score), abs=1e-12)
    assert roc_points(np.zeros(10, bool), np.linspace(0, 1, 10)) is None  # one class: no curve


def test_operating_threshold_is_read_from_the_predictions():
    y, score = _binary()
    assert operating_threshold(score, score > 0.5) == 0.5
    t = operating_threshold(score, score >= 0.3)
    assert 0.25 < t <= 0.31 and t != 0.5
    assert operating_threshold(score, np.random.default_rng(1).random(len(score)) < 0.5) is None  # not a threshold


def test_binary_curves_mark_the_operating_point():
    y, score = _binary()
    pred = score > 0.5
    roc, pr = binary_curves(y, score, pred, "pos")
    point = next(s for s in roc.series if s.name == "threshold 0.5")
    assert roc.series_kind == {"threshold 0.5": "scatter"}
    assert point.x == [pytest.approx((pred & ~y).sum() / (~y).sum())]
    assert point.y == [pytest.approx((pred & y).sum() / y.sum())]
    pr_point = next(s for s in pr.series if s.name == "threshold 0.5")
    assert pr_point.y == [pytest.approx((pred & y).sum() / pred.sum())]
    assert len(roc.series[0].x) <= 400 and roc.series[0].x[0] == 0 and roc.series[0].x[-1] == 1


def test_threshold_sweep_spans_0_to_1_and_meets_the_marked_point():
    y, score = _binary()
    sweep = threshold_sweep(y, score, score > 0.5, "pos", "f1_macro")
    metric, precision, recall, point = sweep.series
    assert metric.name == "f1_macro" and metric.x[0] == 0 and metric.x[-1] == 1
    assert recall.y[0] == 1.0 and recall.y[-1] < 0.05  # everything positive at 0, almost nothing at 1
    assert point.name == "threshold 0.5" and point.y[0] == pytest.approx(metric.y[metric.x.index(0.5)], abs=1e-9)
    assert threshold_sweep(y, score, score > 0.5, "pos", "roc_auc").series[0].name == "accuracy"


# --- unit: regression -----------------------------------------------------------------------------
def test_regression_plots_draw_y_equals_x_and_residuals():
    actual = np.array([1.0, 2.0, 3.0, 10.0])
    predicted = np.array([1.5, 2.0, 2.0, 8.0])
    pva, rvp, rvf = regression_plots(actual, predicted, ("x1", np.array([0.1, 0.2, np.nan, 0.4]), "why"))
    line = pva.series[1]
    assert pva.kind == "scatter" and pva.series_kind == {"y = x": "line"}
    assert line.x == line.y == [1.0, 10.0]
    assert rvp.series[0].y == [-0.5, 0.0, 1.0, 2.0]  # actual - predicted
    assert rvf.x_label == "x1" and rvf.series[0].x == [0.1, 0.2, 0.4]  # missing feature values left out


# --- unit: drift densities ------------------------------------------------------------------------
def test_drift_histogram_densities_integrate_to_one_per_split():
    rng = np.random.default_rng(0)
    plot = density_histogram("x", {"train": rng.normal(size=5000), "valid": rng.normal(0.5, 1, size=120)})
    assert plot.kind == "histogram" and plot.y_label.startswith("density")
    for s in plot.series:
        width = s.x[1] - s.x[0]
        assert sum(s.y) * width == pytest.approx(1.0)
    assert [s.name for s in plot.series] == ["train (5,000 rows)", "valid (120 rows)"]


# --- unit: ticks ----------------------------------------------------------------------------------
def test_log_ticks_read_a_loss_floor_of_0_553():
    ticks = log_ticks(0.553, 2.3)
    assert any(0.5 < t < 1 for t in ticks) and 0.5 in ticks and 1 in ticks and 2 in ticks
    assert ticks != [1.0]  # not only powers of ten
    from mltriage.tui.widgets.plots import log_axis_ticks

    positions, labels = log_axis_ticks([np.log10(0.553), np.log10(2.3)])
    assert {"0.5", "0.6", "1", "2"} <= set(labels)
    assert positions == pytest.approx([np.log10(float(v)) for v in labels])


def _loss_curve(**kw) -> PlotSpec:
    loss = [2.3, 1.5, 1.0, 0.8, 0.7, 0.62, 0.58, 0.56, 0.555, 0.553]
    return PlotSpec(kind="line", title="loss", y_label="loss", y_log=True,
                    series=[Series("train", list(range(1, 11)), loss)], **kw)


def test_epoch_axes_get_integer_ticks_in_svg_and_terminal():
    assert all(float(t).is_integer() for t in linear_ticks(0, 7, integer=True))
    assert integer_axis("global_step", [0, 10.5]) and integer_axis("epochs", [1, 20])
    assert not integer_axis("growth_rate", [0.1, 0.3, 0.7]) and not integer_axis("arrow", [1.5, 9.5])
    svg = plot_to_svg(_loss_curve(x_label="epoch"))
    labels = re.findall(r"font-size='10' font-family='sans-serif'>([^<]+)</text>", svg)
    assert "0.6" in labels and all("." not in v for v in labels if float(v) > 2.3)  # x ticks whole numbers
    from mltriage.tui.widgets.plots import draw

    calls = _Recorder()
    draw(calls, _loss_curve(x_label="passes", x_integer=True))  # declared integer, whatever the label
    (positions, names), = [args for name, args in calls.log if name == "xticks"]
    assert all(float(p).is_integer() for p in positions) and all(n.isdigit() for n in names)
    (ypos, ylabels), = [args for name, args in calls.log if name == "yticks"]
    assert "0.6" in ylabels


class _Recorder:
    """Stands in for plotext: records every call draw() makes."""

    def __init__(self):
        self.log = []

    def __getattr__(self, name):
        return lambda *args, **kw: self.log.append((name, args))


def test_series_kind_draws_lines_in_scatters_and_points_on_curves():
    spec = PlotSpec(kind="scatter", title="p", series=[Series("rows", [1, 2, 3], [1, 3, 2]),
                                                       Series("y = x", [1, 3], [1, 3])], series_kind={"y = x": "line"})
    svg = plot_to_svg(spec)
    assert svg.count("<path") == 1 and svg.count("<circle") >= 3
    back = PlotSpec.from_dict(spec.to_dict())
    assert back.series_kind == {"y = x": "line"} and back.x_integer is False
    assert PlotSpec.from_dict({"kind": "line", "title": "old run"}).series_kind == {}  # older runs still read
    assert PlotSpec.from_dict(_loss_curve(x_integer=True).to_dict()).x_integer is True
    from mltriage.tui.widgets.plots import draw

    calls = _Recorder()
    draw(calls, spec)
    assert [name for name, _ in calls.log if name in ("scatter", "plot")] == ["scatter", "plot"]


# --- unit: architecture table ---------------------------------------------------------------------
def test_architecture_table_fits_80_columns_in_the_text_report():
    from mltriage.checks.io.report import to_text

    rows = [{"layer": f"encoder.layers.{i}.self_attention.out_projection", "type": "NonDynamicallyQuantizableLinear",
             "output_shape": [64, 512, 1024, 16], "parameters": 12_345_678_901} for i in range(3)]
    table = summary_table(rows, total=37_037_036_703, trainable=1000)
    lines = table.splitlines()
    assert SUMMARY_WIDTH <= 74 and max(len(line) for line in lines) <= SUMMARY_WIDTH
    assert lines[2].startswith("…") and "12.35B" in lines[2]
    run = {"mltriage": "0", "project": "p", "summary": {"info": 1},
           "findings": [{"check": "architecture.summary", "step": "architecture", "status": "info", "title": "t",
                         "detail": table}]}
    text = to_text(run, width=80, verbose=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert all("      " + line in text.splitlines() for line in lines)  # every table line kept whole


# --- check level ----------------------------------------------------------------------------------
def _classified(n, seed, classes):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    k = len(classes)
    logits = X @ rng.normal(size=(2, k)) * 2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "label": [classes[i] for i in y]}), p


def _predictions_project(root, train, valid, preds: pd.DataFrame, **kw):
    write_project(root, train, valid, toml_extra='[artifacts]\npredictions = "preds/valid.csv"\n', **kw)
    (root / "preds").mkdir()
    preds.to_csv(root / "preds" / "valid.csv", index=False)
    return root


def _class_preds(p, classes):
    out = pd.DataFrame({"prediction": [classes[i] for i in p.argmax(axis=1)]})
    for j, c in enumerate(classes):
        out[f"prob_{c}"] = p[:, j]
    return out


def _titles(f):
    return [p.title for p in f.plots]


def test_binary_summary_has_roc_pr_and_sweep_and_multiclass_has_none(tmp_path):
    classes = ["neg", "pos"]
    train, _ = _classified(300, 1, classes)
    valid, p = _classified(400, 2, classes)
    f = run_check(_predictions_project(tmp_path / "b", train, valid, _class_preds(p, classes)), "metrics.summary")
    kinds = {t.split(" (")[0]: t for t in _titles(f)}
    assert {"ROC curve", "precision-recall curve", "threshold sweep"} <= set(kinds)
    assert f.evidence["plots_from"]["operating_threshold"] == 0.5
    from sklearn.metrics import roc_auc_score

    assert f.evidence["plots_from"]["roc_auc"] == pytest.approx(roc_auc_score(valid.label == "pos", p[:, 1]))
    three = ["a", "b", "c"]
    train3, _ = _classified(300, 3, three)
    valid3, p3 = _classified(300, 4, three)
    f3 = run_check(_predictions_project(tmp_path / "m", train3, valid3, _class_preds(p3, three)), "metrics.summary")
    assert _titles(f3) == ["metrics per split"]


def test_calibration_shows_the_rows_in_each_bin(tmp_path):
    classes = ["a", "b", "c"]
    train, _ = _classified(300, 5, classes)
    valid, p = _classified(500, 6, classes)
    f = run_check(_predictions_project(tmp_path, train, valid, _class_preds(p, classes)), "metrics.calibration")
    diagram, counts = f.plots
    assert diagram.title.startswith("reliability diagram") and counts.kind == "bar"
    assert sum(counts.series[0].y) == 500 and counts.series[0].y == f.evidence["bin_counts"]
    assert all(re.fullmatch(r"\d\.\d\d-\d\.\d\d", label) for label in counts.series[0].x)


def _regression_frames(shift: float, seed=0):
    rng = np.random.default_rng(seed)

    def frame(n, offset):
        df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n) + offset, "x3": rng.normal(size=n)})
        df["y"] = 3 * df.x1 + 2 * df.x3 + rng.normal(0, 0.3, size=n)
        return df

    train, valid = frame(400, 0.0), frame(300, shift)
    preds = pd.DataFrame({"prediction": 3 * valid.x1})  # misses the x3 term: its residual follows x3
    return train, valid, preds


@pytest.mark.parametrize("shift,feature,chosen_by", [(1.0, "x2", "shift"), (0.0, "x3", "correlation")])
def test_regression_summary_plots_residuals_against_the_shifted_feature(tmp_path, shift, feature, chosen_by):
    train, valid, preds = _regression_frames(shift)
    f = run_check(_predictions_project(tmp_path, train, valid, preds, target="y"), "metrics.summary")
    titles = _titles(f)
    assert titles[1].startswith("predicted vs actual") and titles[2].startswith("residual vs prediction")
    assert titles[3].startswith(f"residual vs {feature} (")
    chosen = f.evidence["plots_from"]["residual_feature"]
    assert chosen["feature"] == feature and chosen["chosen_by"] == chosen_by
    assert not any(t.startswith(("ROC", "threshold")) for t in titles)


def test_drift_histograms_are_densities(tmp_path):
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x1": rng.normal(size=1500), "label": rng.choice(["a", "b"], 1500)})
    valid = pd.DataFrame({"x1": rng.normal(1.0, 1, size=200), "label": rng.choice(["a", "b"], 200)})
    write_project(tmp_path, train, valid)
    f = run_check(tmp_path, "data.drift")
    (hist,) = [p for p in f.plots if p.kind == "histogram"]
    for s in hist.series:
        assert sum(s.y) * (s.x[1] - s.x[0]) == pytest.approx(1.0)


def test_architecture_summary_table_on_a_torch_project(tmp_path):
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x1": rng.normal(size=120), "x2": rng.normal(size=120), "label": rng.choice(["a", "b"], 120)})
    toml = textwrap.dedent("""
        [model]
        code = "model.py"
        build = "build_model"
        loss = "cross_entropy"
    """)
    write_project(tmp_path, train, train.iloc[:40], toml_extra=toml, model_code=GOOD_TORCH_MODEL)
    f = run_check(tmp_path, "architecture.summary")
    lines = f.detail.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params"]
    assert max(len(line) for line in lines) <= SUMMARY_WIDTH and lines[-1].split()[-1] == f"{32 * 2 + 32 + 32 * 2 + 2:,}"


def test_every_new_plot_draws_in_the_terminal_and_as_svg():
    import plotext

    from mltriage.tui.widgets.plots import draw

    y, score = _binary()
    rng = np.random.default_rng(0)
    actual = rng.normal(size=50)
    plots = binary_curves(y, score, score > 0.5, "pos") + [threshold_sweep(y, score, score > 0.5, "pos", "accuracy")]
    plots += regression_plots(actual, actual + rng.normal(0, 0.1, 50), ("x", rng.normal(size=50), "why"))
    plots += [density_histogram("d", {"train": rng.normal(size=300), "valid": rng.normal(size=40)}, x_label="x")]
    for spec in plots:
        draw(plotext, PlotSpec.from_dict(spec.to_dict()))
        plotext.plotsize(80, 16)
        assert spec.title[:20] in plotext.build()
        svg = plot_to_svg(spec)
        assert "could not draw" not in svg and "no data" not in svg
