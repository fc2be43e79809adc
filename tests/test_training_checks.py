"""Training checks on real, short training runs: each pathology planted for real fires its check, and
healthy training of the same data stays quiet."""

from __future__ import annotations

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
