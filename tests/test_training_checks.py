"""Training checks on real, short training runs: each pathology planted for real fires its check, and
healthy training of the same data stays quiet."""

from __future__ import annotations

import math
import time

import pytest

from helpers import context_for, run_check, write_project

TRAINING = ("training.lr_range", "training.divergence", "training.exploding_gradients",
            "training.vanishing_gradients", "training.oscillation", "training.plateau",
            "training.update_ratio", "training.overfitting", "training.underfitting",
            "training.early_stopping")


def _frames(n=480, d=8, seed=0, noise=0.3):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=(d, 3))
    logits = X @ w + noise * rng.normal(size=(n, 3))
    y = np.array(["a", "b", "c"])[logits.argmax(axis=1)]
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df["label"] = y
    cut = int(0.75 * n)
    return df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)


MODEL_HEADER = '''
import torch
import torch.nn as nn
'''

HEALTHY = MODEL_HEADER + '''
def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))
'''

DEEP_SIGMOID = MODEL_HEADER + '''
def build_model(n_inputs, n_outputs):
    layers, width = [], n_inputs
    for _ in range(10):
        layers += [nn.Linear(width, 32), nn.Sigmoid()]
        width = 32
    return nn.Sequential(*layers, nn.Linear(32, n_outputs))
'''

HUGE_INIT = MODEL_HEADER + '''
def build_model(n_inputs, n_outputs):
    model = nn.Sequential(nn.Linear(n_inputs, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, n_outputs))
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(30.0)   # a hand-rolled init, 30x too wide
    return model
'''

DEAD_RELU = MODEL_HEADER + '''
def build_model(n_inputs, n_outputs):
    first = nn.Linear(n_inputs, 32)
    with torch.no_grad():
        first.bias.fill_(-50.0)           # every pre-activation is far below zero
    return nn.Sequential(first, nn.ReLU(), nn.Linear(32, n_outputs))
'''


def _project(tmp_path, code=HEALTHY, lr=0.01, optimizer="adam", epochs=8, batch_size=32, budget=60):
    train, valid = _frames()
    toml = f'''
    [model]
    code = "model.py"
    build = "build_model"
    loss = "cross_entropy"
    optimizer = "{optimizer}"
    lr = {lr}
    batch_size = {batch_size}
    epochs = {epochs}

    [budget]
    seconds = {budget}
    '''
    return write_project(tmp_path, train, valid, toml_extra=toml, model_code=code)


def _run_all(root, ids=TRAINING, budget=None):
    ctx = context_for(root, budget=budget)
    return {cid: run_check(ctx, cid) for cid in ids}


FLAGGED = ("warn", "fail")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return _run_all(_project(tmp_path_factory.mktemp("healthy")))


def test_healthy_training_stays_quiet(healthy):
    for cid, finding in healthy.items():
        assert finding.status in ("pass", "info"), (cid, finding.title, finding.detail)
    assert healthy["training.lr_range"].status == "pass"
    # the probe really trained: the loss fell a lot and every epoch was scored
    assert healthy["training.plateau"].evidence["relative_drop"] > 0.5


def test_findings_carry_plots_and_evidence(healthy):
    lr = healthy["training.lr_range"]
    assert lr.plots[0].x_log and lr.evidence["useful_range"][0] < lr.evidence["useful_range"][1]
    grads = healthy["training.vanishing_gradients"]
    assert grads.plots[0].y_log and len(grads.plots[0].series) == 2  # one line per Linear layer
    assert any(p.title.startswith("Loss per epoch") for p in healthy["training.overfitting"].plots)


def test_sample_project_fixed_curves_stay_quiet():
    """A real mini-batch loss curve of a healthy sample project must not look like oscillation or divergence."""
    from pathlib import Path

    root = Path(__file__).parent.parent / "sample_projects" / "sentiment" / "fixed"
    if not root.exists():
        pytest.skip("sentiment sample project not present")
    found = _run_all(root, ids=("training.divergence", "training.oscillation", "training.plateau"), budget=60)
    for cid, finding in found.items():
        assert finding.status == "pass", (cid, finding.title, finding.detail)


def test_too_high_lr_diverges(tmp_path):
    found = _run_all(_project(tmp_path, lr=50.0, optimizer="sgd"),
                     ids=("training.lr_range", "training.divergence", "training.exploding_gradients",
                          "training.update_ratio"))
    assert found["training.lr_range"].status == "fail"
    assert found["training.lr_range"].evidence["lr_blowup"] < 50.0
    assert found["training.divergence"].status == "fail"
    assert found["training.exploding_gradients"].status == "fail"
    assert found["training.update_ratio"].status == "fail"


def test_high_lr_with_adam_oscillates(tmp_path):
    found = _run_all(_project(tmp_path, lr=0.3), ids=("training.oscillation", "training.lr_range"))
    assert found["training.oscillation"].status in FLAGGED
    assert "valid loss" in found["training.oscillation"].evidence["worst"]
    assert found["training.lr_range"].status in FLAGGED


def test_too_low_lr_is_flagged(tmp_path):
    found = _run_all(_project(tmp_path, lr=1e-7, epochs=4),
                     ids=("training.lr_range", "training.plateau", "training.update_ratio", "training.divergence"))
    assert found["training.lr_range"].status == "warn"
    assert found["training.lr_range"].evidence["decades_below_range"] >= 2
    assert found["training.plateau"].status == "fail"
    assert found["training.update_ratio"].status == "warn"
    assert found["training.divergence"].status == "pass"


def test_deep_sigmoid_stack_vanishes(tmp_path):
    found = _run_all(_project(tmp_path, code=DEEP_SIGMOID, epochs=3),
                     ids=("training.vanishing_gradients", "training.exploding_gradients"))
    assert found["training.vanishing_gradients"].status == "fail"
    assert found["training.vanishing_gradients"].evidence["first_to_last_ratio"] < 1e-3
    assert found["training.exploding_gradients"].status == "pass"


def test_huge_init_explodes(tmp_path):
    found = _run_all(_project(tmp_path, code=HUGE_INIT, epochs=3),
                     ids=("training.exploding_gradients", "training.vanishing_gradients"))
    assert found["training.exploding_gradients"].status in FLAGGED
    assert found["training.exploding_gradients"].evidence["median_norm"] >= 100
    assert found["training.vanishing_gradients"].status == "pass"


def test_dead_relus_plateau(tmp_path):
    found = _run_all(_project(tmp_path, code=DEAD_RELU, epochs=4),
                     ids=("training.plateau", "training.vanishing_gradients", "training.oscillation",
                          "training.underfitting"))
    assert found["training.plateau"].status == "fail"
    assert "ReLU outputs that are zero" in found["training.plateau"].detail
    assert found["training.vanishing_gradients"].status == "fail"
    assert found["training.underfitting"].status == "warn"
    assert found["training.oscillation"].status == "pass"  # flat is not oscillating


def test_small_budget_skips_with_a_reason(tmp_path):
    root = _project(tmp_path)
    start = time.perf_counter()
    found = _run_all(root, budget=0.5)
    assert time.perf_counter() - start < 15
    assert found["training.lr_range"].status == "skipped"
    assert "budget" in found["training.lr_range"].title


def test_budget_share_is_respected(tmp_path):
    ctx = context_for(_project(tmp_path, epochs=1000), budget=5)
    start = time.perf_counter()
    from mltriage.checks.engine.run import run_one
    from mltriage.checks.engine.registry import all_checks

    findings = [run_one(all_checks()[cid], ctx) for cid in TRAINING]
    assert time.perf_counter() - start < 5 + 3  # the budget plus evaluation/import overhead
    assert ctx.budget.used <= 5 + 1
    assert all(f.status != "error" for f in findings), [f.detail for f in findings if f.status == "error"]


def test_sklearn_project_without_log_is_skipped(tmp_path):
    train, valid = _frames()
    code = "from sklearn.linear_model import LogisticRegression\n\ndef build_model(n_inputs, n_outputs):\n" \
           "    return LogisticRegression(max_iter=200)\n"
    root = write_project(tmp_path, train, valid, model_code=code,
                         toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"\n')
    found = _run_all(root, ids=("training.lr_range", "training.overfitting"))
    assert found["training.lr_range"].status == "skipped"
    assert found["training.overfitting"].status == "skipped"
    assert "training_log" in found["training.overfitting"].detail


def test_zigzag_ignores_noise_within_band():
    from mltriage.checks.analyses.curves import zigzag

    noisy_fall = [1.0, 0.8, 0.82, 0.6, 0.61, 0.5, 0.505, 0.45]
    assert zigzag(noisy_fall, [0.02] * 8)["index"] < 0.1
    bouncing = [1.0, 0.6, 1.0, 0.5, 1.1, 0.55, 1.05]
    z = zigzag(bouncing)
    assert z["reversals"] >= 4 and z["index"] > 1


def test_patience_that_works():
    from mltriage.checks.analyses.curves import patience_that_works

    assert patience_that_works([1.0, 0.8, 0.7, 0.72, 0.69, 0.75, 0.8, 0.9]) == 2
    assert patience_that_works([1.0, 0.9, 0.8, 0.7]) == 1


# --- verdicts on planted measurements (no project, no training) -------------------------------------
# Each verdict gets a measurement in which its pathology is planted, and a clean twin that stays quiet.
def _sweep(lowest_at=-2.0, rise_per_decade=5.0):
    """A range test whose smoothed loss is flat at 1.0 up to lr 1e-4, falls to 0.2 at lr 10**lowest_at,
    then rises until it passes 4x its minimum (diverged)."""
    from mltriage.checks.analyses.lr_test import LR_DIVERGE_FACTOR, LR_END, LR_START, LR_TEST_STEPS, LRTest

    sweep = LRTest(stopped="end", seconds=1.0)
    for k in range(LR_TEST_STEPS):
        lr = LR_START * (LR_END / LR_START) ** (k / (LR_TEST_STEPS - 1))
        x = math.log10(lr)
        loss = (1.0 if x < -4 else 1.0 - 0.8 * (x + 4) / (lowest_at + 4) if x < lowest_at
                else 0.2 + rise_per_decade * (x - lowest_at))
        sweep.lrs.append(lr)
        sweep.losses.append(loss)
        sweep.smoothed.append(loss)
        if k > 8 and loss > LR_DIVERGE_FACTOR * min(sweep.smoothed):
            sweep.stopped = "diverged"
            break
    return sweep


def _lr_finding(configured, sweep=None):
    from mltriage.checks.analyses.lr_test import lr_range_summary
    from mltriage.checks.steps.training.lr import LRMeasure, lr_verdict

    sweep = sweep or _sweep()
    return lr_verdict(LRMeasure(sweep, lr_range_summary(sweep), configured, "adam"))


def test_lr_verdict_planted_and_clean():
    assert _lr_finding(0.1).status == "fail"            # beyond the blow-up (~1.3e-2)
    low = _lr_finding(1e-7)
    assert low.status == "warn" and "orders of magnitude below" in low.title
    clean = _lr_finding(1e-3)                           # inside the useful range
    assert clean.status == "pass"
    assert clean.evidence["configured_lr"] == 1e-3 and clean.evidence["fell"] is True
    assert 1e-4 < clean.evidence["useful_range"][0] < 1e-3 < clean.evidence["useful_range"][1]


def test_lr_verdict_flat_sweep_and_too_short_sweep():
    from mltriage.checks.analyses.lr_test import LRTest
    from mltriage.checks.findings import SkipCheck

    flat = _sweep()
    flat.smoothed = [1.0] * len(flat.smoothed)
    flat.stopped = "end"
    assert _lr_finding(1e-3, flat).status == "warn"     # no lr lowers the loss
    with pytest.raises(SkipCheck):
        _lr_finding(1e-3, LRTest(lrs=[1e-7, 1e-6], losses=[1.0, 1.0], smoothed=[1.0, 1.0], stopped="budget"))


def test_lr_verdict_cut_by_budget_reads_the_same_wherever_the_cut_falls():
    """A CPU-time budget cuts the sweep at a step that depends on the machine: the finding must not."""
    from mltriage.checks.analyses.lr_test import LRTest

    def cut_at(steps):
        full = _sweep(lowest_at=-1.0)
        return LRTest(lrs=full.lrs[:steps], losses=full.losses[:steps], smoothed=full.smoothed[:steps],
                      stopped="budget", seconds=1.0)

    early, later = _lr_finding(1e-3, cut_at(30)), _lr_finding(1e-3, cut_at(45))
    assert early.status == later.status == "info"
    assert early.title == later.title and "cut by the time budget" in early.title
    assert early.evidence["swept_to"] < later.evidence["swept_to"]       # the lr reached is still reported
    assert f"{early.evidence['swept_to']:.2g}" in early.detail


def test_lr_verdict_does_not_place_the_lr_on_a_faint_fall():
    """A sweep whose loss fell 10%: where it bottoms out is noise, so no warn or fail on its location (a
    word-level LSTM LM at lr 20 sweeps like this); the same shape with a clear fall still warns."""
    faint = _sweep()
    faint.smoothed = [1.0 - 0.1 * (1.0 - v) / 0.8 for v in faint.smoothed]
    faint.losses = list(faint.smoothed)
    faint.stopped = "end"
    f = _lr_finding(1.0, faint)
    assert f.status == "info" and "fell only 10%" in f.title
    assert _lr_finding(1.0).status in ("warn", "fail")


def _ends(start, end):
    from mltriage.checks.analyses.curves import LossEnds

    return LossEnds(start, end, "train loss per epoch")


def test_divergence_verdict_planted_and_clean():
    from mltriage.checks.findings import SkipCheck
    from mltriage.checks.steps.training.curves import DivergenceMeasure, divergence_verdict

    assert divergence_verdict(DivergenceMeasure("a log", 0, None, _ends(1.0, 1.8))).status == "fail"
    assert divergence_verdict(DivergenceMeasure("a log", 0, None, _ends(1.0, 1.2))).status == "warn"
    nan = divergence_verdict(DivergenceMeasure("a log", 2, 17, _ends(1.0, 0.5)))
    assert nan.status == "fail" and "at step 17" in nan.title
    clean = divergence_verdict(DivergenceMeasure("a log", 0, None, _ends(1.0, 0.5)))
    assert clean.status == "pass" and clean.evidence["relative_change"] == -0.5
    with pytest.raises(SkipCheck):
        divergence_verdict(DivergenceMeasure("a log", 0, None, None, "columns seen in log.csv: lr"))


def test_oscillation_verdict_planted_and_clean():
    from mltriage.checks.analyses.curves import zigzag
    from mltriage.checks.findings import SkipCheck
    from mltriage.checks.steps.training.curves import OscillationMeasure, oscillation_verdict

    bouncing = OscillationMeasure("a log", {"valid loss per epoch": zigzag([1.0, 0.6, 1.0, 0.5, 1.1, 0.55, 1.05])})
    found = oscillation_verdict(bouncing)
    assert found.status == "fail" and found.evidence["worst"] == "valid loss per epoch"
    wobbly = OscillationMeasure("a log", {"train loss per epoch": zigzag([1.0, 0.5, 0.8, 0.4, 0.6, 0.35])})
    assert oscillation_verdict(wobbly).status == "warn"
    smooth = OscillationMeasure("a log", {"train loss per epoch": zigzag([1.0, 0.8, 0.7, 0.6, 0.55, 0.5])})
    assert oscillation_verdict(smooth).status == "pass"
    assert oscillation_verdict(OscillationMeasure("a log", flat=["train loss per epoch"])).status == "pass"
    with pytest.raises(SkipCheck):
        oscillation_verdict(OscillationMeasure("a log"))


def test_plateau_verdict_planted_and_clean():
    from mltriage.checks.steps.training.curves import PlateauMeasure, plateau_verdict

    assert plateau_verdict(PlateauMeasure("a log", _ends(1.0, 0.99), None)).status == "fail"
    assert plateau_verdict(PlateauMeasure("a log", _ends(1.0, 0.97), None)).status == "warn"
    at_prior = plateau_verdict(PlateauMeasure("a log", _ends(2.0, 1.1), trivial=1.1))
    assert at_prior.status == "warn" and at_prior.evidence["at_trivial_level"] is True
    assert plateau_verdict(PlateauMeasure("a log", _ends(1.0, 1.5), None)).status == "info"  # a rise
    dead = plateau_verdict(PlateauMeasure("probe", _ends(1.1, 1.1), 1.1, probe_epochs=3,
                                          dead_relu_fraction={"0": 1.0}))
    assert dead.status == "fail" and "ReLU outputs that are zero" in dead.detail
    clean = plateau_verdict(PlateauMeasure("a log", _ends(2.0, 0.5), trivial=1.1))
    assert clean.status == "pass" and clean.evidence["relative_drop"] == 0.75


def _valid_curve(valid, from_probe=False):
    from mltriage.checks.analyses.curves import CurveSource, valid_rise
    from mltriage.checks.steps.training.generalisation import OVERFIT_RISE_WARN, ValidCurve

    best = min(range(len(valid)), key=valid.__getitem__)
    src = CurveSource(curves=None, label="a log")       # a log: the rise must be sustained, not one bad epoch
    return ValidCurve("a log", "epoch", [float(i) for i in range(1, len(valid) + 1)], list(valid),
                      valid_rise(src, best, valid, OVERFIT_RISE_WARN), from_probe)


TURNS_UP = [1.0, 0.7, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8]    # best at epoch 4, then +78%
KEEPS_FALLING = [1.0, 0.7, 0.5, 0.45, 0.42, 0.41, 0.405, 0.40]


def test_overfitting_verdict_planted_and_clean():
    from mltriage.checks.steps.training.generalisation import OverfitMeasure, overfitting_verdict

    found = overfitting_verdict(OverfitMeasure(_valid_curve(TURNS_UP), train_at_best=0.4, final_train=0.2))
    assert found.status == "fail" and found.evidence["best_epoch"] == 4.0
    mild = [1.0, 0.7, 0.5, 0.45, 0.47, 0.5, 0.52, 0.54]  # +20%: warn
    assert overfitting_verdict(OverfitMeasure(_valid_curve(mild), 0.4, 0.2)).status == "warn"
    # the same rise while the training loss rises too is not overfitting
    assert overfitting_verdict(OverfitMeasure(_valid_curve(TURNS_UP), 0.4, 0.6)).status == "pass"
    clean = overfitting_verdict(OverfitMeasure(_valid_curve(KEEPS_FALLING), 0.3, 0.3))
    assert clean.status == "pass"


def test_underfitting_verdict_planted_and_clean():
    from mltriage.checks.steps.training.generalisation import UnderfitMeasure, underfitting_verdict

    flat_high = UnderfitMeasure("a log", [1.1, 1.09, 1.08, 1.08, 1.08], final_valid=1.1, trivial=1.1)
    found = underfitting_verdict(flat_high)
    assert found.status == "warn" and found.evidence["reference_is_trivial"] is True
    falling_high = UnderfitMeasure("probe", [1.1, 1.05, 1.0, 0.9, 0.8], final_valid=0.9, trivial=1.1, from_probe=True)
    falling = underfitting_verdict(falling_high)
    assert falling.status == "info" and "The probe is short" in falling.detail
    clean = underfitting_verdict(UnderfitMeasure("a log", [1.1, 0.8, 0.5, 0.3, 0.2], None, trivial=None))
    assert clean.status == "pass" and clean.evidence["reference_loss"] == 1.1
    assert clean.evidence["valid_train_gap"] is None


def test_early_stopping_verdict_planted_and_clean():
    from mltriage.checks.steps.training.generalisation import early_stopping_verdict

    found = early_stopping_verdict(_valid_curve(TURNS_UP))
    assert found.status == "warn" and found.evidence["points_after_best"] == 4
    assert found.evidence["suggested_patience"] == 1
    still_falling = early_stopping_verdict(_valid_curve(KEEPS_FALLING[:6]))
    assert still_falling.status == "info" and "still falling" in still_falling.title
    clean = early_stopping_verdict(_valid_curve([1.0, 0.6, 0.5, 0.45, 0.44, 0.44]))
    assert clean.status == "pass"


def test_gradient_verdicts_planted_and_clean():
    from mltriage.checks.steps.training.gradients import (GradNormMeasure, LayerGradMeasure, UpdateRatioMeasure,
                                                          exploding_verdict, update_ratio_verdict, vanishing_verdict)

    layers = {"0 (Linear)": 1.0, "2 (Linear)": 1.0}
    assert exploding_verdict(GradNormMeasure("probe", [2e4] * 20, layers, 0)).status == "fail"
    assert exploding_verdict(GradNormMeasure("probe", [1.0] * 10 + [5e3] * 10, layers, 0)).status == "fail"  # growth
    assert exploding_verdict(GradNormMeasure("probe", [300.0] * 20, layers, 0)).status == "warn"
    assert exploding_verdict(GradNormMeasure("probe", [1.0] * 20, layers, 2)).status == "fail"  # non-finite steps
    assert exploding_verdict(GradNormMeasure("probe", [1.0] * 20, layers, 0)).status == "pass"

    assert vanishing_verdict(LayerGradMeasure("probe", {"0": 1e-5, "2": 1.0}, {})).status == "fail"
    assert vanishing_verdict(LayerGradMeasure("probe", {"0": 5e-3, "2": 1.0}, {})).status == "warn"
    dead = vanishing_verdict(LayerGradMeasure("probe", {"0": 0.0, "2": 1.0}, {"1": 1.0}))
    assert dead.status == "fail" and "no gradient reaches 1 of 2" in dead.title
    assert vanishing_verdict(LayerGradMeasure("probe", {"0": 0.5, "2": 1.0}, {})).status == "pass"

    assert update_ratio_verdict(UpdateRatioMeasure("probe", {"0": 2.0, "2": 1e-3}, 5.0, "sgd")).status == "fail"
    assert update_ratio_verdict(UpdateRatioMeasure("probe", {"0": 0.3, "2": 1e-3}, 0.5, "sgd")).status == "warn"
    assert update_ratio_verdict(UpdateRatioMeasure("probe", {"0": 1e-8, "2": 1e-7}, 1e-7, "adam")).status == "warn"
    assert update_ratio_verdict(UpdateRatioMeasure("probe", {"0": 0.0, "2": 0.0}, 1e-3, "adam")).status == "fail"
    assert update_ratio_verdict(UpdateRatioMeasure("probe", {"0": 2e-3, "2": 1e-3}, 1e-3, "adam")).status == "pass"


def test_divergence_measure_reads_a_log_with_inf():
    import pandas as pd

    from mltriage.checks.analyses.curves import CurveSource
    from mltriage.checks.io.logs import curves_from_frame
    from mltriage.checks.steps.training.curves import _measure_divergence

    # inf, not NaN: the log reader takes NaN for "not logged on this row" (see io/logs.py)
    losses = [2.0 - 0.01 * i for i in range(30)] + [float("inf")] * 3
    curves = curves_from_frame(pd.DataFrame({"step": range(1, 34), "loss": losses}), "log.csv", "csv")
    m = _measure_divergence(CurveSource(curves, "the training log log.csv", from_log=True))
    assert m.nonfinite_values >= 3 and m.first_nonfinite_step == 31
    clean = curves_from_frame(pd.DataFrame({"step": range(1, 31), "loss": losses[:30]}), "log.csv", "csv")
    m = _measure_divergence(CurveSource(clean, "the training log log.csv", from_log=True))
    assert m.nonfinite_values == 0 and m.ends is not None and m.ends.end < m.ends.start
