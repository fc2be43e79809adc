"""Dead ReLU units on tiny batches (the monitor and architecture.dead_units): a live unit firing on 30% of the
inputs is zero on all of one example 70% of the time, so a batch-1 record reads a healthy layer as mostly
"dead". The monitor records how many examples each fraction was measured on and pools small batches until
they hold MIN_DEAD_EXAMPLES; the verdict judges only that evidence, and an older file without the count can
at most warn."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from helpers import context_for, run_check, write_project
from mltriage.checks.analyses.monitored import (DEAD_ALPHA, DEAD_P_MIN, MIN_DEAD_EXAMPLES, UnitSeries,
                                                dead_unit_evidence)
from mltriage.checks.steps.architecture.units import MonitoredUnits, _monitored_dead_verdict
from mltriage.checks.monitor import DEAD_POOL_EXAMPLES, Monitor

NEW_KEYS = ("examples", "pooled_dead_fraction", "pooled_examples")


def test_the_minimum_is_the_theory_and_the_monitor_pools_to_the_same():
    assert MIN_DEAD_EXAMPLES == DEAD_POOL_EXAMPLES == 29
    assert (1 - DEAD_P_MIN) ** MIN_DEAD_EXAMPLES < DEAD_ALPHA <= (1 - DEAD_P_MIN) ** (MIN_DEAD_EXAMPLES - 1)


def _mlp(dead_bias=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    if dead_bias is not None:
        with torch.no_grad():
            model[2].bias.fill_(dead_bias)   # every pre-activation of the second ReLU layer negative
    return model


def _loop(path, batch, steps, every=1, dead_bias=None, lr=0.05, inputs=None):
    """A real loop on a learnable 3-class problem with the monitor in it; `inputs` fixes each step's batch."""
    model = _mlp(dead_bias)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X = torch.randn(512, 8)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    with Monitor(model, opt, every=every, path=path) as mon:
        for i in range(steps):
            idx = inputs[i] if inputs is not None else torch.randint(0, 512, (batch,))
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            mon.step(loss)
            opt.step()
    return model, X


def _steps(path):
    return [r for r in map(json.loads, path.read_text().splitlines()) if isinstance(r.get("layers"), dict)]


# --- what the monitor writes ---------------------------------------------------------------------
def test_small_batches_are_pooled_and_the_pooled_fraction_is_torchs(tmp_path):
    """lr 0 keeps the weights: the pooled fraction is recomputed by hand from the 29 examples it pooled."""
    torch.manual_seed(1)
    inputs = [torch.randint(0, 512, (1,)) for _ in range(60)]
    model, X = _loop(tmp_path / "run.jsonl", 1, 60, lr=0.0, inputs=inputs)
    steps = _steps(tmp_path / "run.jsonl")
    assert all(r["layers"]["3"]["examples"] == 1 for r in steps)
    closing = [r["step"] for r in steps if "pooled_examples" in r["layers"]["3"]]
    assert closing == [29, 58]
    with torch.no_grad():
        for first, record in ((0, steps[28]), (29, steps[57])):
            hidden = model[:4](X[torch.cat(inputs[first:first + 29])])
            expected = (hidden.amax(dim=0) <= 0).float().mean().item()
            assert record["layers"]["3"]["pooled_examples"] == 29
            assert record["layers"]["3"]["pooled_dead_fraction"] == pytest.approx(expected, abs=1e-7)
    # the batch-1 fractions themselves are far higher than the pooled one: the bias this fixes
    assert min(r["layers"]["3"]["dead_fraction"] for r in steps) > steps[28]["layers"]["3"]["pooled_dead_fraction"]


def test_a_batch_large_enough_alone_is_not_pooled(tmp_path):
    _loop(tmp_path / "run.jsonl", 64, 20, every=5)
    steps = _steps(tmp_path / "run.jsonl")
    assert [r["layers"]["1"]["examples"] for r in steps] == [64] * 4
    assert not any("pooled_examples" in layer for r in steps for layer in r["layers"].values())


# --- which records are evidence ------------------------------------------------------------------
def test_dead_unit_evidence_keeps_large_batches_and_closed_pools_only():
    nan = math.nan
    series = {"dead_fraction": [0.7, 0.1, 0.6, 0.5, 0.9],
              "examples": [1, 64, 1, 1, nan],
              "pooled_dead_fraction": [nan, nan, nan, 0.05, nan],
              "pooled_examples": [nan, nan, nan, 29, nan]}
    values, behind = dead_unit_evidence(series)
    assert [None if math.isnan(v) else v for v in values] == [None, 0.1, None, 0.05, 0.9]
    assert [None if math.isnan(e) else e for e in behind] == [1, 64, 1, 29, None]
    old_values, old_behind = dead_unit_evidence({"dead_fraction": [0.8, 0.9]})  # a file without the counts
    assert old_values == [0.8, 0.9] and all(math.isnan(e) for e in old_behind)


def _units(values, examples):
    series = UnitSeries("3", [10 * (i + 1) for i in range(len(values))], values, None, examples)
    return MonitoredUnits("from the monitored run (100 steps)", "the monitored run run.jsonl", [series.summary()], {})


def test_a_fail_needs_the_count_an_older_file_can_only_warn():
    known = _monitored_dead_verdict(_units([0.95] * 5, [64.0] * 5))
    unknown = _monitored_dead_verdict(_units([0.95] * 5, [math.nan] * 5))
    assert known.status == "fail" and known.evidence["layers"][0]["examples"] == 64
    assert unknown.status == "warn" and "older monitor" in unknown.detail
    assert unknown.evidence["layers"][0]["examples"] is None


# --- the check on real monitored runs ------------------------------------------------------------
def _project(root, batch, steps, every=1, dead_bias=None, old_format=False):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "label": rng.integers(0, 3, 60)})
    write_project(root, df, df.iloc[:20])
    path = root / ".mltriage" / "monitor" / "run.jsonl"
    path.parent.mkdir(parents=True)
    _loop(path, batch, steps, every, dead_bias)
    if old_format:  # as a monitor from before the counts wrote it
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for r in lines:
            for layer in (r["layers"].values() if isinstance(r.get("layers"), dict) else ()):
                for key in NEW_KEYS:
                    layer.pop(key, None)
        path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return context_for(root)


def test_healthy_relus_monitored_at_batch_size_one_pass(tmp_path):
    """Before the fix this run read ~40% dead at every final record: a warn on a correct run."""
    f = run_check(_project(tmp_path, batch=1, steps=100), "architecture.dead_units")
    assert f.status == "pass", f.title
    assert all(r["examples"] == MIN_DEAD_EXAMPLES for r in f.evidence["layers"])
    assert f.evidence["min_examples"] == MIN_DEAD_EXAMPLES


def test_the_same_run_read_without_the_counts_is_still_read(tmp_path):
    f = run_check(_project(tmp_path, batch=1, steps=100, old_format=True), "architecture.dead_units")
    assert f.status in ("pass", "warn") and f.evidence["layers"][0]["examples"] is None


@pytest.mark.parametrize("batch,steps,every", [(1, 100, 1), (32, 150, 10)])
def test_a_truly_dead_layer_fails_on_tiny_and_normal_batches(tmp_path, batch, steps, every):
    dead = run_check(_project(tmp_path / "dead", batch, steps, every, dead_bias=-100.0), "architecture.dead_units")
    healthy = run_check(_project(tmp_path / "healthy", batch, steps, every), "architecture.dead_units")
    assert dead.status == "fail" and "layer 3: 100%" in dead.title, dead.title
    assert healthy.status == "pass", healthy.title


def test_an_old_file_of_a_dead_layer_warns_and_its_clean_twin_passes(tmp_path):
    dead = run_check(_project(tmp_path / "dead", 32, 150, 10, dead_bias=-100.0, old_format=True),
                     "architecture.dead_units")
    healthy = run_check(_project(tmp_path / "healthy", 32, 150, 10, old_format=True), "architecture.dead_units")
    assert dead.status == "warn" and "older monitor" in dead.detail, dead.title
    assert healthy.status == "pass", healthy.title


def test_a_run_too_short_to_fill_a_pool_is_not_judged(tmp_path):
    f = run_check(_project(tmp_path, batch=1, steps=20), "architecture.dead_units")
    assert f.status == "skipped"
    assert f"fewer than {MIN_DEAD_EXAMPLES} examples" in f.detail + f.title
