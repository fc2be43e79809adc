"""Sanity checks on small models: each fires on a planted defect and stays quiet on a correct twin."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from helpers import GOOD_TORCH_MODEL, context_for, run_check, write_project

MODEL_TOML = """
[model]
code = "model.py"
build = "build_model"
loss = "{loss}"
lr = 0.01
batch_size = 32
epochs = 5
{extra}
"""


def classification_frames(n_train=240, n_valid=120, n_features=6, classes=3, seed=0, shuffle_labels=False):
    """Linearly separable-ish classes from Gaussian features."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(n_features, classes))

    def frame(n):
        X = rng.normal(size=(n, n_features))
        y = (X @ weights).argmax(axis=1)
        if shuffle_labels:
            y = rng.permutation(y)
        df = pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)])
        df["label"] = y
        return df

    return frame(n_train), frame(n_valid)


def regression_frames(n_train=200, n_valid=80, seed=1):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=4)

    def frame(n):
        X = rng.normal(size=(n, 4))
        df = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
        df["label"] = X @ w + 0.1 * rng.normal(size=n)
        return df

    return frame(n_train), frame(n_valid)


def project(tmp_path, model_code, loss="cross_entropy", extra='train_step = "train_step"\npredict = "predict"',
            frames=None, task=None):
    train, valid = frames if frames is not None else classification_frames()
    toml = MODEL_TOML.format(loss=loss, extra=extra)
    if task:
        toml = f'[project]\ntask = "{task}"\n' + toml
    return write_project(tmp_path, train, valid, toml_extra=toml, model_code=model_code)


def model_with(build_body: str, header: str = "") -> str:
    """GOOD_TORCH_MODEL with build_model replaced."""
    good = GOOD_TORCH_MODEL.replace(
        "def build_model(n_inputs, n_outputs):\n"
        "    return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))\n",
        "def build_model(n_inputs, n_outputs):\n" + textwrap.indent(textwrap.dedent(build_body).strip(), "    ") + "\n")
    assert good != GOOD_TORCH_MODEL
    return textwrap.dedent(header) + good


SKLEARN_MODEL = '''
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def build_model(n_inputs, n_outputs):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
'''


# ---- model_builds / forward_pass ------------------------------------------------------------------

def test_model_builds_counts_parameters(tmp_path):
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL), "sanity.model_builds")
    assert f.status == "pass"
    assert f.evidence["parameters"] == 6 * 32 + 32 + 32 * 3 + 3


def test_model_builds_fails_on_a_tuple(tmp_path):
    code = model_with("model = nn.Linear(n_inputs, n_outputs)\nreturn model, torch.optim.Adam(model.parameters())")
    f = run_check(project(tmp_path, code), "sanity.model_builds")
    assert f.status == "fail" and "tuple" in f.title


def test_forward_pass_good_and_wrong_width(tmp_path):
    assert run_check(project(tmp_path / "a", GOOD_TORCH_MODEL), "sanity.forward_pass").status == "pass"
    code = model_with("return nn.Sequential(nn.Linear(n_inputs, 8), nn.ReLU(), nn.Linear(8, 5))")
    f = run_check(project(tmp_path / "b", code), "sanity.forward_pass")
    assert f.status == "fail" and f.evidence["output_shape"][1] == 5


def test_forward_pass_nonfinite(tmp_path):
    code = model_with("return nn.Sequential(nn.Linear(n_inputs, n_outputs), Log())", header='''
        import torch
        import torch.nn as nn


        class Log(nn.Module):
            def forward(self, x):
                return torch.log(x)   # NaN for negative scores
    ''')
    f = run_check(project(tmp_path, code), "sanity.forward_pass")
    assert f.status == "fail" and f.evidence["nonfinite_values"] > 0


# ---- loss_at_init ---------------------------------------------------------------------------------

def test_loss_at_init_matches_ln_c_on_a_good_model(tmp_path):
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL), "sanity.loss_at_init")
    assert f.status == "pass"
    assert f.evidence["theory"] == pytest.approx(np.log(3), rel=1e-4)


def test_loss_at_init_fails_on_huge_initial_weights(tmp_path):
    code = model_with("""
        model = nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))
        with torch.no_grad():
            model[2].weight.mul_(1000.0)
        return model
    """)
    f = run_check(project(tmp_path, code), "sanity.loss_at_init")
    assert f.status == "fail" and f.evidence["ratio"] >= 10


def test_loss_at_init_regression_uses_target_variance(tmp_path):
    root = project(tmp_path, model_with("return nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, 1))"),
                   loss="mse", extra="", frames=regression_frames(), task="regression")
    ctx = context_for(root)
    f = run_check(ctx, "sanity.loss_at_init")
    assert f.status == "pass"
    assert f.evidence["theory"] == pytest.approx(float(np.var(ctx.y("train")[:512])), rel=0.05)


def test_loss_at_init_skips_sklearn_with_why(tmp_path):
    f = run_check(project(tmp_path, SKLEARN_MODEL, extra=""), "sanity.loss_at_init")
    assert f.status == "skipped" and "scikit-learn" in f.title


# ---- loss_shapes ----------------------------------------------------------------------------------

REGRESSION_STEP = '''
import torch
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    return nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, n_outputs))


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb){squeeze}, yb)
    loss.backward()
    optimizer.step()
    return loss.item()
'''


def test_loss_shapes_catches_n1_vs_n_broadcast(tmp_path):
    root = project(tmp_path, REGRESSION_STEP.format(squeeze=""), loss="mse", extra='train_step = "train_step"',
                   frames=regression_frames(), task="regression")
    f = run_check(root, "sanity.loss_shapes")
    assert f.status == "fail"
    assert f.evidence["broadcast_shape"] == [64, 64]


def test_loss_shapes_quiet_when_squeezed(tmp_path):
    root = project(tmp_path, REGRESSION_STEP.format(squeeze=".squeeze(1)"), loss="mse",
                   extra='train_step = "train_step"', frames=regression_frames(), task="regression")
    assert run_check(root, "sanity.loss_shapes").status == "pass"


# ---- overfit_small_batch / gradient_flow / input_independent ------------------------------------

def test_overfit_small_batch_good_model_memorises(tmp_path):
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL), "sanity.overfit_small_batch")
    assert f.status == "pass", f.title
    assert f.plots and f.plots[0].kind == "line"


def test_overfit_small_batch_fails_with_softmax_before_cross_entropy(tmp_path):
    code = model_with("return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs), "
                      "nn.Softmax(dim=1))")
    f = run_check(project(tmp_path, code), "sanity.overfit_small_batch")
    assert f.status == "fail", f.title
    assert f.evidence["attempts"]["four_rows"]["min_loss"] > 0.3


DETACHED = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n_inputs, n_outputs):
        super().__init__()
        self.body = nn.Linear(n_inputs, 16)
        self.head = nn.Linear(16, n_outputs)
        self.spare = nn.Linear(16, 16)

    def forward(self, x):
        h = torch.relu(self.body(x)){cut}
        return self.head(h)


def build_model(n_inputs, n_outputs):
    return Net(n_inputs, n_outputs)
'''


def test_gradient_flow_detached_layer_fails(tmp_path):
    f = run_check(project(tmp_path, DETACHED.format(cut=".detach()"), extra=""), "sanity.gradient_flow")
    assert f.status == "fail"
    assert set(f.evidence["no_gradient_used"]) == {"body.weight", "body.bias"}


def test_gradient_flow_unused_module_warns(tmp_path):
    f = run_check(project(tmp_path, DETACHED.format(cut=""), extra=""), "sanity.gradient_flow")
    assert f.status == "warn"
    assert set(f.evidence["no_gradient_unused"]) == {"spare.weight", "spare.bias"}


def test_gradient_flow_good_model_passes(tmp_path):
    assert run_check(project(tmp_path, GOOD_TORCH_MODEL), "sanity.gradient_flow").status == "pass"


def test_input_independent_real_inputs_win(tmp_path):
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL), "sanity.input_independent")
    assert f.status == "pass", f.title
    assert f.evidence["relative_gain"] > 0.2


def test_input_independent_fails_on_scrambled_labels(tmp_path):
    frames = classification_frames(shuffle_labels=True)
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL, frames=frames), "sanity.input_independent")
    assert f.status in ("fail", "warn"), f.title
    assert f.evidence["relative_gain"] < 0.03


# ---- train_step -----------------------------------------------------------------------------------

def step_model(step_body: str, predict_body: str = "model.eval()\nwith torch.no_grad():\n    return model(X)") -> str:
    return textwrap.dedent('''
        import torch
        import torch.nn as nn


        def build_model(n_inputs, n_outputs):
            return nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, n_outputs))


        def train_step(model, optimizer, loss_fn, xb, yb):
        {step}


        def predict(model, X):
        {predict}
    ''').format(step=textwrap.indent(textwrap.dedent(step_body).strip(), "    "),
                predict=textwrap.indent(textwrap.dedent(predict_body).strip(), "    "))


GOOD_STEP = """
model.train()
optimizer.zero_grad()
loss = loss_fn(model(xb), yb)
loss.backward()
optimizer.step()
return loss.item()
"""


def test_train_step_good(tmp_path):
    f = run_check(project(tmp_path, step_model(GOOD_STEP)), "sanity.train_step")
    assert f.status == "pass", f.title
    assert f.evidence["gradient_check"]["verdict"] == "fresh"


def test_train_step_without_zero_grad(tmp_path):
    f = run_check(project(tmp_path, step_model(GOOD_STEP.replace("optimizer.zero_grad()\n", ""))), "sanity.train_step")
    assert f.status == "fail" and "zero_grad" in f.title
    assert f.evidence["gradient_check"]["verdict"] == "accumulated"


def test_train_step_left_in_eval_mode_after_predict(tmp_path):
    f = run_check(project(tmp_path, step_model(GOOD_STEP.replace("model.train()\n", ""))), "sanity.train_step")
    assert f.status == "fail" and "eval mode" in f.title


def test_train_step_without_optimizer_step(tmp_path):
    f = run_check(project(tmp_path, step_model(GOOD_STEP.replace("optimizer.step()\n", ""))), "sanity.train_step")
    assert f.status == "fail" and "no weight changed" in f.title


def test_train_step_returning_graph_tensor_warns(tmp_path):
    f = run_check(project(tmp_path, step_model(GOOD_STEP.replace("return loss.item()", "return loss"))),
                  "sanity.train_step")
    assert f.status == "warn" and "graph" in f.title


def test_train_step_skips_without_train_step(tmp_path):
    f = run_check(project(tmp_path, GOOD_TORCH_MODEL, extra=""), "sanity.train_step")
    assert f.status == "skipped"


# ---- eval_determinism -----------------------------------------------------------------------------

def test_eval_determinism_good(tmp_path):
    assert run_check(project(tmp_path, step_model(GOOD_STEP)), "sanity.eval_determinism").status == "pass"


def test_eval_determinism_dropout_left_on(tmp_path):
    code = step_model(GOOD_STEP, predict_body="with torch.no_grad():\n    return model(X)")
    f = run_check(project(tmp_path, code), "sanity.eval_determinism")
    assert f.status == "fail" and f.evidence["max_abs_diff_same_input"] > 0


def test_eval_determinism_batchnorm_in_train_mode(tmp_path):
    code = step_model(GOOD_STEP, predict_body="with torch.no_grad():\n    return model(X)").replace(
        "nn.Dropout(0.3)", "nn.BatchNorm1d(32)")
    f = run_check(project(tmp_path, code), "sanity.eval_determinism")
    assert f.status == "fail" and "batch" in f.title


# ---- scikit-learn -----------------------------------------------------------------------------------

def test_sklearn_pipeline_builds_runs_and_skips_the_rest_with_why(tmp_path):
    ctx = context_for(project(tmp_path, SKLEARN_MODEL, extra=""))
    assert run_check(ctx, "sanity.model_builds").status == "pass"
    assert run_check(ctx, "sanity.forward_pass").status == "pass"
    for cid in ("sanity.loss_at_init", "sanity.loss_shapes", "sanity.overfit_small_batch", "sanity.gradient_flow",
                "sanity.input_independent"):
        f = run_check(ctx, cid)
        assert f.status == "skipped", (cid, f.status, f.title)
        assert "scikit-learn" in f.title and ":" in f.title


def test_custom_loss_overfit_uses_the_fresh_models_loss(tmp_path):
    # A custom loss gets float targets (the contract's index targets are for cross_entropy/nll only).
    code = REGRESSION_STEP.format(squeeze=".squeeze(1)") + "\n\ndef my_loss():\n    return nn.SmoothL1Loss()\n"
    ctx = context_for(project(tmp_path, code, loss="my_loss", extra="", frames=regression_frames(), task="regression"))
    assert run_check(ctx, "sanity.loss_at_init").status == "skipped"
    f = run_check(ctx, "sanity.overfit_small_batch")
    assert f.status == "pass", f.title


def test_overfit_small_batch_is_not_a_fail_for_a_small_slow_model(tmp_path):
    """A tiny correct network on random labels memorises slowly; that is no bug (no false alarm)."""
    import numpy as np
    import pandas as pd

    from helpers import run_check, write_project

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": rng.integers(0, 2, 60)})
    code = ("import torch.nn as nn\n\ndef build_model(n_inputs, n_outputs):\n"
            "    return nn.Sequential(nn.Linear(n_inputs, 8), nn.ReLU(), nn.Linear(8, n_outputs))\n")
    write_project(tmp_path, df, valid_df=df, model_code=code,
                  toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'")
    assert run_check(tmp_path, "sanity.overfit_small_batch").status in ("pass", "info")
