"""Architecture checks on small models: each fires on a planted defect and stays quiet on a correct twin,
including the negative controls (log_softmax before cross-entropy/NLL is not a bug)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from helpers import context_for, run_check

from mltriage.checks.analyses.model_trace import model_trace
from test_sanity_checks import SKLEARN_MODEL, classification_frames, project, regression_frames


def net(body: str, forward: str = "return self.body(x)", header: str = "") -> str:
    """A project module whose model is Net(body) with the given forward."""
    return textwrap.dedent(header) + textwrap.dedent('''
        import torch
        import torch.nn as nn
        import torch.nn.functional as F


        class Net(nn.Module):
            def __init__(self, n_inputs, n_outputs):
                super().__init__()
                self.body = {body}

            def forward(self, x):
                {forward}


        def build_model(n_inputs, n_outputs):
            return Net(n_inputs, n_outputs)
    ''').format(body=body, forward=forward)


MLP = "nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs){tail})"


def check(tmp_path, cid, code, loss="cross_entropy", frames=None, task=None):
    return run_check(project(tmp_path, code, loss=loss, extra="", frames=frames, task=task), cid)


# ---- output_layer -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tail,forward,loss,status,kind", [
    (", nn.Softmax(dim=1)", "return self.body(x)", "cross_entropy", "fail", "softmax"),        # module softmax
    ("", "return torch.softmax(self.body(x), dim=1)", "cross_entropy", "fail", "softmax"),   # functional softmax
    ("", "return F.sigmoid(self.body(x))", "cross_entropy", "fail", "sigmoid"),              # sigmoid, multi-class
    ("", "return self.body(x)", "cross_entropy", "pass", "none"),                            # raw logits
    (", nn.LogSoftmax(dim=1)", "return self.body(x)", "cross_entropy", "pass", "log_softmax"),  # negative control
    ("", "return F.log_softmax(self.body(x), dim=1)", "nll", "pass", "log_softmax"),        # negative control
    ("", "return self.body(x)", "nll", "fail", "none"),                                      # NLL on raw logits
    (", nn.Softmax(dim=1)", "return self.body(x)", "nll", "fail", "softmax"),                # NLL without log
])
def test_output_layer_classification(tmp_path, tail, forward, loss, status, kind):
    f = check(tmp_path, "architecture.output_layer", net(MLP.format(tail=tail), forward), loss=loss)
    assert (f.status, f.evidence["final_activation"]) == (status, kind), f.title


def test_output_layer_double_sigmoid_with_bce_with_logits(tmp_path):
    frames = classification_frames(classes=2)
    code = net("nn.Sequential(nn.Linear(n_inputs, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())")
    f = check(tmp_path / "a", "architecture.output_layer", code, loss="bce_with_logits", frames=frames)
    assert f.status == "fail" and f.evidence["final_activation"] == "sigmoid"
    f = check(tmp_path / "b", "architecture.output_layer", code, loss="bce", frames=frames)
    assert f.status == "pass"


def test_output_layer_regression_relu_cannot_go_negative(tmp_path):
    code = net("nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, 1), nn.ReLU())")
    f = check(tmp_path / "a", "architecture.output_layer", code, loss="mse", frames=regression_frames(),
              task="regression")
    assert f.status == "fail" and f.evidence["fraction_targets_out_of_range"] > 0.2
    plain = net("nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU(), nn.Linear(16, 1))")
    f = check(tmp_path / "b", "architecture.output_layer", plain, loss="mse", frames=regression_frames(),
              task="regression")
    assert f.status == "pass"


def test_output_layer_skips_sklearn_with_why(tmp_path):
    f = check(tmp_path, "architecture.output_layer", SKLEARN_MODEL)
    assert f.status == "skipped" and "scikit-learn" in f.title


# ---- output_size / capacity ---------------------------------------------------------------------------

def test_output_size(tmp_path):
    assert check(tmp_path / "a", "architecture.output_size", net(MLP.format(tail=""))).status == "pass"
    wide = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, 10))")
    assert check(tmp_path / "b", "architecture.output_size", wide).status == "warn"
    narrow = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, 2))")
    assert check(tmp_path / "c", "architecture.output_size", narrow).status == "fail"


def test_capacity_bottleneck_narrower_than_classes(tmp_path):
    frames = classification_frames(classes=5)
    narrow = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, 2), nn.ReLU(), "
                 "nn.Linear(2, n_outputs))")
    f = check(tmp_path / "a", "architecture.capacity", narrow, frames=frames)
    assert f.status == "warn" and f.evidence["bottlenecks"][0][1] == 2
    f = check(tmp_path / "b", "architecture.capacity", net(MLP.format(tail="")), frames=frames)
    assert f.status == "info" and f.evidence["bottlenecks"] == []


def test_capacity_first_conv_narrower_than_input_channels(tmp_path):
    # the 6 features read as 3 channels x 2 positions, squeezed into a single channel at once
    conv = net("nn.Conv1d(3, 1, kernel_size=1)", forward="return self.body(x.reshape(len(x), 3, 2)).flatten(1)")
    f = check(tmp_path, "architecture.capacity", conv)
    assert f.status == "warn" and f.evidence["first_conv"]["out_channels"] == 1


# ---- dead_units / saturation / init_scale ----------------------------------------------------------------

def test_dead_units_negative_bias_kills_the_layer(tmp_path):
    dead = net(MLP.format(tail="")).replace(
        "return Net(n_inputs, n_outputs)",
        "model = Net(n_inputs, n_outputs)\n    nn.init.constant_(model.body[0].bias, -50.0)\n    return model")
    f = check(tmp_path / "a", "architecture.dead_units", dead)
    assert f.status == "fail" and f.evidence["layers"][0]["dead_fraction"] == 1.0
    f = check(tmp_path / "b", "architecture.dead_units", net(MLP.format(tail="")))
    assert f.status == "pass"


def test_dead_units_sees_functional_relu(tmp_path):
    # relu written in forward(), not as a module: seen through the torch-function mode of model_trace
    code = net("nn.Linear(n_inputs, 32)", forward="return F.relu(self.body(x) - 100.0)[:, :3]")
    f = check(tmp_path, "architecture.dead_units", code)
    assert f.status == "fail"


def test_saturation_large_tanh_preactivations(tmp_path):
    big = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.Tanh(), nn.Linear(32, n_outputs))",
              forward="return self.body(x * 100.0)")
    f = check(tmp_path / "a", "architecture.saturation", big)
    assert f.status == "fail" and f.evidence["layers"][0]["saturated_fraction"] > 0.9
    ok = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.Tanh(), nn.Linear(32, n_outputs))")
    assert check(tmp_path / "b", "architecture.saturation", ok).status == "pass"


def test_init_scale_flags_oversized_and_uncentred_weights(tmp_path):
    code = net(MLP.format(tail="")).replace(
        "return Net(n_inputs, n_outputs)",
        "model = Net(n_inputs, n_outputs)\n    nn.init.normal_(model.body[0].weight, 0.0, 10.0)\n    return model")
    f = check(tmp_path / "a", "architecture.init_scale", code)
    assert f.status == "warn" and "He" in f.detail
    code = net(MLP.format(tail="")).replace(
        "return Net(n_inputs, n_outputs)",
        "model = Net(n_inputs, n_outputs)\n    nn.init.uniform_(model.body[0].weight, -0.2, 0.0)\n    return model")
    f = check(tmp_path / "b", "architecture.init_scale", code)
    assert f.status == "warn" and "centred" in f.title
    assert check(tmp_path / "c", "architecture.init_scale", net(MLP.format(tail=""))).status == "pass"


def test_init_scale_deep_default_mlp_is_not_flagged(tmp_path):
    layers = "nn.Linear(n_inputs, 64), nn.ReLU(), " + "nn.Linear(64, 64), nn.ReLU(), " * 4 + "nn.Linear(64, n_outputs)"
    f = check(tmp_path, "architecture.init_scale", net(f"nn.Sequential({layers})"))
    assert f.status == "pass", f.title


# ---- dropout / summary -----------------------------------------------------------------------------------

def test_dropout_rates_and_placement(tmp_path):
    good = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, n_outputs))")
    assert check(tmp_path / "a", "architecture.dropout", good).status == "pass"
    high = good.replace("nn.Dropout(0.3)", "nn.Dropout(0.9)")
    assert check(tmp_path / "b", "architecture.dropout", high).status == "fail"
    on_output = net("nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs), nn.Dropout(0.2))")
    f = check(tmp_path / "c", "architecture.dropout", on_output)
    assert f.status == "fail" and "output" in f.title


def test_summary_lists_layers_and_plots_parameters(tmp_path):
    f = check(tmp_path, "architecture.summary", net(MLP.format(tail="")))
    assert f.status == "info"
    assert [r["type"] for r in f.evidence["layers"]] == ["Linear", "ReLU", "Linear"]
    assert f.plots[0].series[0].y == [6 * 32 + 32, 32 * 3 + 3]


def test_sklearn_summary_and_skips(tmp_path):
    ctx = context_for(project(tmp_path, SKLEARN_MODEL, extra=""))
    f = run_check(ctx, "architecture.summary")
    assert f.status == "info" and "StandardScaler" in f.title
    for cid in ("architecture.output_size", "architecture.capacity", "architecture.dead_units",
                "architecture.saturation", "architecture.init_scale", "architecture.dropout"):
        f = run_check(ctx, cid)
        assert f.status == "skipped" and "scikit-learn" in f.title, (cid, f.title)


def test_trace_is_shared_between_checks(tmp_path):
    ctx = context_for(project(tmp_path, net(MLP.format(tail="")), extra=""))
    run_check(ctx, "architecture.summary")
    trace = ctx.shared((model_trace.analysis_name,), lambda: None)  # the cached analysis, not a new trace
    assert trace is not None and np.asarray(trace.output).shape == (240, 3)  # every one of 240 train rows


def test_output_layer_value_based_sigmoid_guess_only_warns(tmp_path):
    # 0.5 + small scores: all outputs in (0, 1) although no sigmoid was applied; read from values only.
    code = net("nn.Linear(n_inputs, 1)", forward="return 0.5 + 0.001 * self.body(x)")
    f = check(tmp_path, "architecture.output_layer", code, loss="mse", frames=regression_frames(), task="regression")
    assert f.evidence["found_by"] == "values" and f.status == "warn"


# ---- verdicts, without a project: a planted value fires, its clean twin stays quiet --------------

def _head(kind, loss="cross_entropy", how="module", module="body.2", targets=None):
    from mltriage.checks.analyses.model_trace import FinalActivation
    from mltriage.checks.steps.architecture.output_layer import OutputHead

    return OutputHead(activation=FinalActivation(kind, module, how), loss=loss, n_outputs=3, targets=targets)


@pytest.mark.parametrize("kind, loss, status", [
    ("softmax", "cross_entropy", "fail"), ("none", "cross_entropy", "pass"), ("log_softmax", "cross_entropy", "pass"),
    ("relu", "cross_entropy", "warn"), ("softmax", "nll", "fail"), ("log_softmax", "nll", "pass"),
    ("none", "nll", "fail"), ("sigmoid", "bce_with_logits", "fail"), ("none", "bce_with_logits", "pass"),
    ("sigmoid", "bce", "pass"), ("none", "bce", "fail"), ("softmax", "my_focal_loss", "info"),
])
def test_output_layer_verdicts(kind, loss, status):
    from mltriage.checks.steps.architecture.output_layer import _output_head_verdict

    f = _output_head_verdict(_head(kind, loss))
    assert f.status == status, f.title
    assert f.evidence["final_activation"] == kind and f.evidence["loss"] == loss


def test_output_layer_verdicts_from_values_and_regression():
    from mltriage.checks.steps.architecture.output_layer import TargetCoverage, _output_head_verdict

    guessed = _output_head_verdict(_head("sigmoid", "cross_entropy", how="values", module=None))
    assert guessed.status == "warn" and guessed.title.endswith("(inferred from the output values)")
    capped = _output_head_verdict(_head("relu", "mse", targets=TargetCoverage(-2.0, 3.0, outside=0.4)))
    assert capped.status == "fail" and capped.evidence["fraction_targets_out_of_range"] == 0.4
    covered = _output_head_verdict(_head("relu", "mse", targets=TargetCoverage(0.5, 3.0, outside=0.0)))
    assert covered.status == "pass" and covered.evidence["target_min"] == 0.5
    linear = _output_head_verdict(_head("none", "huber", targets=TargetCoverage(-2.0, 3.0)))
    assert linear.status == "pass" and "fraction_targets_out_of_range" not in linear.evidence


def _relu_layer(dead, units=32):
    return {"layer": "body.1", "units": units, "dead": dead, "dead_fraction": dead / units, "zero_fraction": 0.5}


@pytest.mark.parametrize("dead, status", [(24, "fail"), (10, "warn"), (1, "pass")])
def test_dead_units_verdict(dead, status):
    from mltriage.checks.steps.architecture.units import DeadUnits, _dead_units_verdict

    f = _dead_units_verdict(DeadUnits(layers=[_relu_layer(0), _relu_layer(dead)], rows=256))
    assert f.status == status and f.evidence["batch_rows"] == 256
    assert _dead_units_verdict(DeadUnits(layers=[], rows=256)).evidence == {"relu_layers": 0}


@pytest.mark.parametrize("share, status", [(0.95, "fail"), (0.6, "warn"), (0.1, "pass")])
def test_saturation_verdict(share, status):
    from mltriage.checks.steps.architecture.units import Saturation, _saturation_verdict

    layer = {"layer": "body.1", "kind": "tanh", "saturated_fraction": share, "pre_std": 4.0, "pre_abs_mean": 3.0}
    assert _saturation_verdict(Saturation([layer])).status == status
    assert _saturation_verdict(Saturation([])).status == "pass"


@pytest.mark.parametrize("p, after_output, status", [
    (0.9, [], "fail"), (0.6, [], "warn"), (0.25, [], "pass"), (0.25, ["body.3"], "fail"),
])
def test_dropout_verdict(p, after_output, status):
    from mltriage.checks.steps.architecture.units import DropoutLayers, _dropout_verdict

    rates = [{"layer": "body.2", "type": "Dropout", "p": p}]
    f = _dropout_verdict(DropoutLayers(rates=rates, after_output=after_output, called_order=["body.0", "body.2"]))
    assert f.status == status and f.evidence["after_last_layer"] == after_output
    assert _dropout_verdict(DropoutLayers(rates=[], after_output=[], called_order=[])).status == "pass"


def _linear_row(layer, weight_std, output_std, weight_mean=0.0, fan_in=32, last=False):
    import math

    return {"layer": layer, "type": "Linear", "fan_in": fan_in, "weight_std": weight_std, "weight_mean": weight_mean,
            "default_std": 1 / math.sqrt(3 * fan_in), "he_std": math.sqrt(2 / fan_in), "output_std": output_std,
            "last": last, "numel": 32 * fan_in}


def test_init_scale_verdict():
    from mltriage.checks.steps.architecture.units import _init_scale_verdict

    sound = [_linear_row("fc1", 0.1, 0.6), _linear_row("fc2", 0.1, 0.5), _linear_row("fc3", 0.1, 0.4, last=True)]
    assert _init_scale_verdict(sound).status == "pass"
    huge = _init_scale_verdict([_linear_row("fc1", 5.0, 0.6)] + sound[1:])
    assert huge.status == "warn" and huge.title.startswith("fc1 weights have std 5, over 10x the He scale")
    uncentred = _init_scale_verdict([_linear_row("fc1", 0.01, 0.6, weight_mean=-0.05)] + sound[1:])
    assert uncentred.status == "warn" and "not centred" in uncentred.detail
    exploding = [_linear_row("fc1", 0.1, 0.5), _linear_row("fc2", 0.1, 5.0), _linear_row("fc3", 0.1, 500.0)]
    f = _init_scale_verdict(exploding)
    assert f.status == "warn" and "grows 1000x" in f.title
    assert _init_scale_verdict([]).evidence == {}
