"""The model's output as DESIGN §3b reads it: a tensor, the first element of a tuple, or `.logits`.
A model returning (logits, hidden) or an object with .logits is checked like one returning logits; one
returning something else gets one clear error naming forward(), never an internal crash."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import write_project

WRAPPED = '''
import torch.nn as nn


class Out:
    def __init__(self, logits):
        self.logits = logits


class Net(nn.Module):
    def __init__(self, n_inputs, n_outputs, style):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_inputs, 16), nn.ReLU())
        self.head = nn.Linear(16, n_outputs)
        self.style = style

    def forward(self, x):
        hidden = self.body(x)
        logits = self.head(hidden)
        if self.style == "tuple":
            return logits, hidden
        if self.style == "logits":
            return Out(logits)
        if self.style == "dict":
            return {"scores": logits}
        return logits


def build_model(n_inputs, n_outputs):
    return Net(n_inputs, n_outputs, STYLE)
'''
CHECKS = "sanity.forward_pass,sanity.loss_at_init,sanity.input_independent,metrics.summary"


def project(root, style):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    df = pd.DataFrame(X, columns=list("abcd"))
    df["label"] = (X[:, 0] + X[:, 1] > 0).astype(int)
    return write_project(root, df.iloc[:200], df.iloc[200:], model_code=f"STYLE = {style!r}\n" + WRAPPED,
                         toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'\nepochs = 3")


def run(root):
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--checks", CHECKS,
                        "--format", "json"], capture_output=True, text=True, timeout=600)
    return r, {f["check"]: f for f in json.loads(r.stdout)["findings"]} if r.stdout.strip() else {}


@pytest.mark.parametrize("style", ["tensor", "tuple", "logits"])
def test_tuple_and_logits_outputs_are_read_like_a_tensor(tmp_path, style):
    r, found = run(project(tmp_path / style, style))
    assert r.returncode in (0, 1), r.stderr
    assert {f["status"] for f in found.values()} <= {"pass", "info", "warn"}, \
        {c: (f["status"], f["title"]) for c, f in found.items()}


def test_an_output_without_a_tensor_is_one_clear_error(tmp_path):
    r, found = run(project(tmp_path / "dict", "dict"))
    assert "Traceback" not in r.stderr
    errors = [f for f in found.values() if f["status"] == "error"]
    assert errors and all("forward()" in f["title"] or "forward()" in f["detail"] for f in errors), \
        [(f["check"], f["title"]) for f in errors]


def test_an_absurd_learning_rate_is_a_clear_finding_not_a_crash(tmp_path):
    """lr = 1e30 turns the weights to NaN: training says it diverged, the metrics and errors steps say
    their outputs are not finite; no check breaks on the NaNs."""
    root = project(tmp_path / "lr", "tensor")
    toml = root / "mltriage.toml"
    toml.write_text(toml.read_text().replace("epochs = 3", "epochs = 3\nlr = 1e30"))
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--steps",
                        "training,metrics,errors", "--format", "json"], capture_output=True, text=True, timeout=900)
    found = {f["check"]: f for f in json.loads(r.stdout)["findings"]}
    assert not [c for c, f in found.items() if f["status"] == "error"], \
        {c: f["title"] for c, f in found.items() if f["status"] == "error"}
    assert found["training.divergence"]["status"] == "fail"
    assert found["metrics.summary"]["status"] == "skipped" and "not finite" in found["metrics.summary"]["title"]
    assert r.returncode == 1
