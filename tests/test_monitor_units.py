"""architecture.dead_units and architecture.saturation read the user's monitored run (issue 16): the level a
layer settles at over the run, not one batch of a fresh model. A planted pathology in a real monitored loop
fires, its clean twin stays quiet; the thresholds are unit-tested on the verdicts alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from helpers import GOOD_TORCH_MODEL, context_for, run_check, write_project
from mltriage.checks.steps.architecture.units import (MonitoredUnits, _monitored_dead_verdict,
                                                      _monitored_saturation_verdict)
from mltriage.monitor import Monitor


def _layer(name, values, output=None):
    from mltriage.checks.analyses.monitored import UnitSeries

    return UnitSeries(name, [10 * (i + 1) for i in range(len(values))], list(values), output).summary()


def _units(*layers):
    return MonitoredUnits("from the monitored run (100 steps)", "the monitored run run.jsonl", list(layers), {})


# --- verdicts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("values,status", [
    ([0.05] * 3 + [0.5, 0.9, 0.95, 0.97, 0.96, 0.98, 0.97], "fail"),   # climbs to ~all units and stays
    ([0.3] * 10, "warn"),
    ([0.02, 0.9, 0.95, 0.1, 0.05, 0.04, 0.03, 0.02, 0.03, 0.02], "pass"),  # a spike that recovered
    ([0.0, 0.1, 0.02, 0.05, 0.8, 0.03, 0.04, 0.02, 0.9, 0.02], "pass"),    # single noisy batches
])
def test_dead_units_verdict_judges_the_level_held_at_the_end(values, status):
    f = _monitored_dead_verdict(_units(_layer("0", [0.0] * 10), _layer("2", values)))
    assert f.status == status, f.title
    assert f.evidence["source"] == "from the monitored run (100 steps)"
    if status == "fail":
        assert "up from 5% at step 10" in f.title and "last 3 records" in f.title


def test_saturation_verdict_leaves_the_output_activation_alone():
    confident = _layer("4", [0.2, 0.6, 0.95, 0.97, 0.99], output=True)  # a sigmoid output of a confident model
    assert _monitored_saturation_verdict(_units(confident)).status == "pass"
    assert _monitored_saturation_verdict(_units(_layer("1", [0.1] * 5, False), confident)).status == "pass"
    hidden = _layer("1", [0.95] * 5, output=False)
    f = _monitored_saturation_verdict(_units(hidden, confident))
    assert f.status == "fail" and f.evidence["not_judged_output_layers"] == ["4"]
    unknown = _layer("act", [0.95] * 5, output=None)          # where it sits cannot be told: at most a warn
    assert _monitored_saturation_verdict(_units(unknown)).status == "warn"
    assert _monitored_saturation_verdict(_units(_layer("1", [0.6] * 5, False))).status == "warn"


# --- real monitored runs -------------------------------------------------------------------------
def _monitored_loop(path, lr=0.05, activation=nn.ReLU, input_scale=1.0, steps=150):
    """A real loop with the monitor in it: an MLP on a learnable 3-class problem."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), activation(), nn.Linear(32, 32), activation(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X = torch.randn(512, 8)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    with Monitor(model, opt, every=10, path=path) as mon:
        for _ in range(steps):
            idx = torch.randint(0, 512, (32,))
            loss = nn.functional.cross_entropy(model(X[idx] * input_scale), y[idx])
            opt.zero_grad()
            loss.backward()
            mon.step(loss)
            opt.step()


def _project(root, model_code=None, **loop):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "label": rng.integers(0, 3, 60)})
    extra = '[model]\ncode = "model.py"\nbuild = "build_model"\n' if model_code else ""
    write_project(root, df, df.iloc[:20], model_code=model_code, toml_extra=extra)
    _monitored_loop(root / ".mltriage" / "monitor" / "run.jsonl", **loop)
    return context_for(root)


def test_units_killed_by_a_high_learning_rate_fail_and_the_twin_passes(tmp_path):
    """SGD at lr 3 knocks most units of the second ReLU layer dead within the first records, and they stay."""
    bad = run_check(_project(tmp_path / "bad", lr=3.0), "architecture.dead_units")
    good = run_check(_project(tmp_path / "good", lr=0.05), "architecture.dead_units")
    assert bad.status == "fail", bad.title
    assert "the monitored run (150 steps)" in bad.title and bad.plots[0].x_label == "step"
    assert good.status == "pass", good.title
    assert good.evidence["source"] == "from the monitored run (150 steps)"


def test_saturated_tanh_layers_in_the_run_fail_and_the_twin_passes(tmp_path):
    bad = run_check(_project(tmp_path / "bad", activation=nn.Tanh, input_scale=300.0), "architecture.saturation")
    good = run_check(_project(tmp_path / "good", activation=nn.Tanh), "architecture.saturation")
    assert bad.status == "fail", bad.title
    assert good.status == "pass", good.title
    assert "monitored run" in good.evidence["source"]


def test_without_relu_records_the_probe_judges_the_project_model_and_says_so(tmp_path):
    """The monitored run has tanh only; the project's model has ReLU modules: the probe judges them."""
    f = run_check(_project(tmp_path, model_code=GOOD_TORCH_MODEL, activation=nn.Tanh), "architecture.dead_units")
    assert f.status != "skipped", f.title
    assert f.evidence["source"].startswith("from mltriage's probe")
    assert "the probe judged instead" in f.evidence["monitored_run"]
