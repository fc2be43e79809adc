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


# ---- verdicts, without a project: a planted value fires, its clean twin stays quiet --------------

def _init_loss(measured, theory=2.3, loss="cross_entropy", classification=True, **kw):
    from mltriage.checks.steps.sanity.model import InitLoss

    extra = {"label_entropy": 1.1} if classification else {"target_mean": 3.0}
    return InitLoss(loss=loss, is_classification=classification, rows=512, theory=theory, theory_is="theory",
                    measured=measured, **{**extra, **kw})


def test_loss_at_init_verdict_thresholds():
    from mltriage.checks.findings import SkipCheck
    from mltriage.checks.steps.sanity.model import _init_loss_verdict

    assert _init_loss_verdict(_init_loss(2.31)).status == "pass"
    huge = _init_loss_verdict(_init_loss(30.0))
    assert huge.status == "fail" and "13x theory" in huge.title and huge.evidence["ratio"] == pytest.approx(30 / 2.3)
    assert _init_loss_verdict(_init_loss(6.0)).status == "warn"
    assert "far below" in _init_loss_verdict(_init_loss(0.2)).title
    assert "negative" in _init_loss_verdict(_init_loss(-0.5, loss="nll")).title
    assert _init_loss_verdict(_init_loss(float("nan"))).title == "the loss of the fresh model is not finite"
    broken = _init_loss_verdict(_init_loss(float("nan"), error="RuntimeError: shape mismatch"))
    assert broken.status == "fail" and broken.evidence == {"loss": "cross_entropy"}
    regression = _init_loss_verdict(_init_loss(1.1, theory=1.0, loss="mse", classification=False))
    assert regression.status == "pass" and regression.evidence["target_mean"] == 3.0
    with pytest.raises(SkipCheck):
        _init_loss_verdict(_init_loss(0.0, theory=0.0, loss="mse", classification=False))


def _attempt(memorised, stopped=None, final=0.01, steps=50, curve=None, accuracy=1.0):
    stopped = stopped or ("memorised" if memorised else "steps")
    return {"memorised": memorised, "stopped": stopped, "goal": 0.05, "steps": steps, "seconds": 0.1,
            "curve": curve or [(1, 1.0), (steps, final)], "final_loss": final, "accuracy": accuracy,
            "min_loss": final}


def _memorising(**attempts):
    from mltriage.checks.steps.sanity.fitting import Memorising

    return Memorising(rows=32, setting="adam lr=0.01", cap_seconds=6.0, attempts=attempts)


def test_overfit_small_batch_verdicts():
    from mltriage.checks.steps.sanity.fitting import _memorising_verdict

    ok = _memorising_verdict(_memorising(configured=_attempt(True)))
    assert ok.status == "pass" and ok.evidence["attempts"]["configured"]["steps"] == 50
    assert "curve" not in ok.evidence["attempts"]["configured"]
    lr = _memorising_verdict(_memorising(configured=_attempt(False, final=0.9), reference=_attempt(True)))
    assert lr.status == "warn" and "Adam lr=0.001 can" in lr.title
    slow_cfg = _memorising_verdict(_memorising(configured=_attempt(False, "time"), reference=_attempt(True)))
    assert slow_cfg.status == "info"
    four = _memorising_verdict(_memorising(configured=_attempt(False), reference=_attempt(False),
                                           four_rows=_attempt(True)))
    assert four.status == "warn" and "only 4" in four.title
    cut = _memorising_verdict(_memorising(configured=_attempt(False), reference=_attempt(False, "time"),
                                          four_rows=_attempt(False)))
    assert cut.status == "info" and "inconclusive" in cut.title
    floor = [(s, 1.5) for s in range(1, 500, 10)]
    blocked = _memorising_verdict(_memorising(configured=_attempt(False, final=1.5), reference=_attempt(False, final=1.5),
                                              four_rows=_attempt(False, final=1.5, curve=floor, accuracy=0.5)))
    assert blocked.status == "fail" and "floors at 1.5" in blocked.title
    falling = [(s, 1.0 * 0.97 ** i) for i, s in enumerate(range(1, 500, 10))]
    slow = _memorising_verdict(_memorising(configured=_attempt(False), reference=_attempt(False),
                                           four_rows=_attempt(False, curve=falling, final=falling[-1][1])))
    assert slow.status == "info" and "still falling" in slow.title


def test_gradient_flow_verdicts():
    from mltriage.checks.steps.sanity.fitting import GradientFlow, _gradient_flow_verdict

    clean = GradientFlow(loss=1.1, grad_norms={"0.weight": 0.3, "0.bias": 0.1})
    assert _gradient_flow_verdict(clean).status == "pass"
    dead = GradientFlow(loss=1.1, zero_gradient=["0.weight"], grad_norms={"0.weight": 0.0, "0.bias": 0.1})
    f = _gradient_flow_verdict(dead)
    assert f.status == "fail" and f.title.startswith("1 of 2") and f.evidence["zero_gradient"] == ["0.weight"]
    unused = GradientFlow(loss=1.1, no_gradient_unused=["spare.weight"], grad_norms={"0.weight": 0.3})
    assert _gradient_flow_verdict(unused).status == "warn"
    detached = _gradient_flow_verdict(GradientFlow(loss=1.1, connected=False))
    assert detached.status == "fail" and detached.evidence == {"loss": 1.1}


def _inputs(real, zero, real_stopped="", zero_stopped=""):
    from mltriage.checks.steps.sanity.input_dependence import InputComparison

    return InputComparison(loss="cross_entropy", train_rows=240, valid_rows=120, real_curve=real, zero_curve=zero,
                           real_stopped=real_stopped, zero_stopped=zero_stopped)


def test_input_independent_verdicts():
    from mltriage.checks.steps.sanity.input_dependence import _input_dependence_verdict

    flat = [1.1, 1.0, 1.0, 1.0, 1.0]
    win = _input_dependence_verdict(_inputs([1.1, 0.6, 0.4, 0.3, 0.3], flat))
    assert win.status == "pass" and win.evidence["epochs_compared"] == 4
    assert win.evidence["relative_gain"] == pytest.approx(0.7)
    assert _input_dependence_verdict(_inputs(list(flat), flat)).status == "fail"
    # a gain of a few hundredths of a percent is float noise between machines, not a signal: still a fail
    assert _input_dependence_verdict(_inputs([1.1, 0.9997, 0.9997, 0.9997, 0.9997], flat)).status == "fail"
    assert _input_dependence_verdict(_inputs([1.1, 0.99, 0.99, 0.99, 0.99], flat)).status == "warn"  # 1%
    assert _input_dependence_verdict(_inputs([1.1, 0.998, 0.998, 0.998, 0.998], flat)).status == "warn"  # 0.2%
    short = _input_dependence_verdict(_inputs([1.1, 0.5], [1.1, 1.0], "budget", "budget"))
    assert short.status == "info" and "inconclusive" in short.title
    # A diverged run is compared over the longer curve, and never called inconclusive.
    diverged = _input_dependence_verdict(_inputs([1.1, float("nan")], flat, real_stopped="diverged"))
    assert diverged.status == "fail" and diverged.evidence["epochs_compared"] == 4


def test_input_independent_compares_cut_runs_at_a_rung_the_clock_does_not_choose():
    """Two machines cut the same fits at epoch 9 and at epoch 6: both compare at epoch 5, so they agree."""
    from mltriage.checks.steps.sanity.input_dependence import EPOCH_RUNGS, _input_dependence_verdict

    real = [2.30, 2.2, 2.1, 2.0, 1.95, 1.9, 1.6, 1.3, 1.1, 1.0, 0.9]     # learns late
    zero = [2.30] + [2.25] * 10
    idle = _input_dependence_verdict(_inputs(real[:10], zero, "budget", ""))
    busy = _input_dependence_verdict(_inputs(real[:7], zero[:8], "budget", "budget"))
    assert idle.evidence["epochs_compared"] == busy.evidence["epochs_compared"] == 5 and 5 in EPOCH_RUNGS
    assert (idle.status, idle.title) == (busy.status, busy.title)
    # runs that were not cut are compared over every epoch both completed, as before
    assert _input_dependence_verdict(_inputs(real[:10], zero)).evidence["epochs_compared"] == 9


def test_uninformed_prediction_and_labels_follow_vocab():
    import math
    from types import SimpleNamespace

    import torch

    from mltriage.checks.analyses.modeling import TORCH_LOSS_CLASSES, predicted_labels
    from mltriage.checks.steps.sanity.uninformed import theory_description, uninformed_prediction
    from mltriage.checks.findings import SkipCheck
    from mltriage.checks.vocab import LOSS_NAMES

    assert set(TORCH_LOSS_CLASSES) == set(LOSS_NAMES)
    y = torch.tensor([1.0, 2.0, 6.0])
    ctx = lambda loss: SimpleNamespace(loss_name=loss, n_outputs=4)  # noqa: E731
    assert torch.equal(uninformed_prediction(ctx("cross_entropy"), y), torch.zeros(3, 4))
    assert torch.allclose(uninformed_prediction(ctx("nll"), y), torch.full((3, 4), -math.log(4)))
    assert torch.equal(uninformed_prediction(ctx("bce_with_logits"), y), torch.zeros(3))
    assert torch.equal(uninformed_prediction(ctx("bce"), y), torch.full((3,), 0.5))
    assert torch.equal(uninformed_prediction(ctx("huber"), y), torch.full((3,), 3.0))
    assert torch.equal(uninformed_prediction(ctx("l1"), y), torch.full((3,), 2.0))
    with pytest.raises(SkipCheck):
        uninformed_prediction(ctx("focal"), y)
    assert theory_description(ctx("nll")).startswith("ln 4 = 1.386")
    assert theory_description(ctx("bce")).startswith("ln 2")
    assert theory_description(ctx("l1")) == "the l1 loss of predicting the target median"
    assert predicted_labels(ctx("bce"), torch.tensor([0.4, 0.6])).tolist() == [0, 1]
    assert predicted_labels(ctx("bce_with_logits"), torch.tensor([-0.1, 0.1])).tolist() == [0, 1]
    assert predicted_labels(ctx("cross_entropy"), torch.tensor([[0.0, 2.0], [3.0, 1.0]])).tolist() == [1, 0]


def _probe(**changes):
    from mltriage.checks.steps.sanity.steps import StepProbe

    train_mode = {"model": True, "mode_dependent_training": [True]}
    fields = {"n_mode_dependent": 1, "predict_ran": True, "returned_1": 1.1, "returned_2": 1.0,
              "mode_step_1": train_mode, "mode_step_2": train_mode, "changed": ["0.weight", "0.bias"],
              "unchanged": [], "loss_calls": [], "accumulation": {"verdict": "fresh"}}
    return StepProbe(**{**fields, **changes})


def test_train_step_verdicts():
    from mltriage.checks.steps.sanity.steps import _train_step_verdict

    good = _train_step_verdict(_probe())
    assert good.status == "pass" and good.title.startswith("train_step updates 2 parameter tensors")
    piled = _train_step_verdict(_probe(accumulation={"verdict": "accumulated", "relative_error_vs_fresh": 0.9,
                                                     "relative_error_vs_accumulated": 1e-7}))
    assert piled.status == "fail" and "zero_grad" in piled.title and "Measured: after step 2" in piled.detail
    frozen = _train_step_verdict(_probe(changed=[], unchanged=["0.weight"]))
    assert frozen.status == "fail" and frozen.title == "no weight changed after a train_step call"
    eval_mode = {"model": False, "mode_dependent_training": [False]}
    evald = _train_step_verdict(_probe(mode_step_2=eval_mode))
    assert evald.status == "fail" and "after predict() ran" in evald.title
    graph = _train_step_verdict(_probe(returned_1=torch_scalar_with_graph()))
    assert graph.status == "warn" and "graph attached" in graph.title
    two = _train_step_verdict(_probe(changed=[], returned_2=None))
    assert two.status == "fail" and two.title.endswith("(+1 more)")


def torch_scalar_with_graph():
    import torch

    w = torch.ones(1, requires_grad=True)
    return (w * 2).sum()


def test_gradient_accumulation_is_told_from_a_fresh_gradient():
    import torch

    from mltriage.checks.steps.sanity.steps import _compare_gradients

    g1, fresh = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.3, 0.1, -0.4])
    assert _compare_gradients(g1, fresh, fresh.clone())["verdict"] == "fresh"
    assert _compare_gradients(g1, fresh, fresh + g1)["verdict"] == "accumulated"
    assert _compare_gradients(g1, fresh, torch.zeros(3))["verdict"] == "cleared"
    assert _compare_gradients(g1, fresh, None)["verdict"] == "cleared"
    assert _compare_gradients(g1, fresh, 0.5 * fresh)["verdict"] == "unknown"


def test_eval_determinism_verdicts():
    from mltriage.checks.steps.sanity.determinism import Determinism, _determinism_verdict

    out = np.arange(12, dtype=np.float64).reshape(6, 2)
    same = Determinism(rows=6, first=out, second=out.copy(), alone=out[:3].copy(), model_training=False)
    assert _determinism_verdict(same).status == "pass"
    noisy = out.copy()
    noisy[1] += 0.01
    dropout = _determinism_verdict(Determinism(rows=6, first=out, second=noisy, alone=out[:3], model_training=True))
    assert dropout.status == "fail" and dropout.evidence["differing_rows"] == 1 and "train mode" in dropout.detail
    batch = _determinism_verdict(Determinism(rows=6, first=out, second=out, alone=out[:3] + 0.1, model_training=True))
    assert batch.status == "fail" and "other rows in the batch" in batch.title
    reshaped = _determinism_verdict(Determinism(rows=6, first=out, second=out.T, alone=out[:3], model_training=False))
    assert reshaped.status == "fail" and "differently shaped" in reshaped.title


def test_loss_shapes_verdicts():
    from mltriage.checks.steps.sanity.steps import LossCalls, _loss_shapes_verdict

    def calls(pred, target, loss="mse", own_step=True):
        shapes = [{"shapes": [pred, target], "dtypes": ["torch.float32", "torch.float32"]}]
        return _loss_shapes_verdict(LossCalls(loss, own_step, "the project's train_step", shapes))

    assert calls((32,), (32,)).status == "pass"
    broadcast = calls((32, 1), (32,))
    assert broadcast.status == "fail" and broadcast.evidence["broadcast_shape"] == [32, 32]
    assert calls((32, 1), (32,), own_step=False).status == "info"  # mltriage's own loop squeezes it
    assert calls((32, 3), (32,), loss="cross_entropy").status == "pass"
    assert calls((32, 3), (32, 3), loss="nll").status == "pass"
    assert calls((32,), (16,), loss="cross_entropy").status == "fail"
    assert calls((32, 2), (32, 3)).title == "mse gets predictions (32, 2) and targets (32, 3)"
    never = _loss_shapes_verdict(LossCalls("mse", True, "the project's train_step", []))
    assert never.status == "fail" and never.evidence == {"calls": 0}
