"""Monitor files read back (whole and as they grow), and the training checks judging the user's monitored
run instead of mltriage's probe: a planted pathology in the real run fires, its clean twin stays quiet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from helpers import context_for, run_check, write_project
from mltriage.checks.io.monitor_file import MonitorFollower, read_monitor
from mltriage.monitor import Monitor


def monitored_training(path, lr=0.05, steps=300, every=10, scale=1.0, seed=0, eval_every=50, overfit=False,
                       lr_growth=1.0):
    """A real loop with the monitor in it: a small MLP on a learnable 3-class problem (lr_growth > 1: a
    schedule that keeps raising the lr, the classic way a run that started well diverges)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    mon = Monitor(model, opt, every=every, path=path)
    X = torch.randn(512, 8)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    Xv, yv = torch.randn(256, 8), None
    yv = (Xv[:, 0] > 0).long() + (Xv[:, 1] > 0.5).long()
    for step in range(1, steps + 1):
        idx = torch.randint(0, 64 if overfit else 512, (32,))
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        mon.step(loss)
        opt.step()
        for group in opt.param_groups:
            group["lr"] *= lr_growth
        if step % eval_every == 0:
            with torch.no_grad():
                mon.eval(val_loss=nn.functional.cross_entropy(model(Xv), yv).item())
    mon.close()


def project_with_monitor(root, **training):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "label": rng.integers(0, 3, 60)})
    write_project(root, df, df.iloc[:20])
    monitored_training(root / ".mltriage" / "monitor" / "run.jsonl", **training)
    return context_for(root)


# --- reading ---------------------------------------------------------------------------------------
def test_whole_file_is_read_with_layers_and_evals(tmp_path):
    monitored_training(tmp_path / "m.jsonl", steps=100, every=10, eval_every=50)
    run = read_monitor(tmp_path / "m.jsonl")
    assert run.model == "Sequential" and run.records == 10 and run.steps[:2] == [10, 20]
    assert run.matrix_layers == ["0", "2", "4"] and run.layer_types["0"] == "Linear"
    assert len(run.layers["0"]["grad_norm"]) == 10 and run.eval_steps == [50, 100]
    assert set(run.evals[0]) == {"val_loss"} and run.skipped_lines == 0


def test_follower_reads_only_what_was_appended_and_waits_for_a_whole_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"monitor": 1, "model": "M"}\n{"step": 1, "loss": 2.0, "layers": {}}\n')
    follower = MonitorFollower(path)
    assert follower.poll() == 2 and follower.run.loss == [2.0]
    with open(path, "a") as handle:
        handle.write('{"step": 2, "loss": 1.5, "lay')          # a writer caught mid-line
    assert follower.poll() == 0 and follower.run.records == 1
    with open(path, "a") as handle:
        handle.write('ers": {}}\nnot json\n[1, 2]\n')
    assert follower.poll() == 3
    assert follower.run.loss == [2.0, 1.5] and follower.run.skipped_lines == 2


def test_follower_starts_over_when_the_file_is_truncated_or_replaced(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": i, "loss": 1.0, "layers": {}}) + "\n" for i in range(1, 50)))
    follower = MonitorFollower(path)
    follower.poll()
    path.write_text(json.dumps({"step": 1, "loss": 9.0, "layers": {}}) + "\n")  # a new run, same name
    follower.poll()
    assert follower.run.loss == [9.0] and follower.restarted == 1


def test_a_missing_file_reads_as_nothing_new(tmp_path):
    assert MonitorFollower(tmp_path / "absent.jsonl").poll() == 0


# --- checks on the monitored run -------------------------------------------------------------------
def test_divergence_in_the_monitored_run_fails_and_twin_passes(tmp_path):
    bad = run_check(project_with_monitor(tmp_path / "bad", lr_growth=1.03), "training.divergence")
    good = run_check(project_with_monitor(tmp_path / "good", lr=0.05), "training.divergence")
    assert bad.status == "fail", bad.title
    assert good.status == "pass", good.title
    assert "monitored run" in json.dumps(good.evidence) + good.detail


def test_exploding_gradients_in_the_monitored_run_and_twin(tmp_path):
    bad = run_check(project_with_monitor(tmp_path / "bad", lr=1e-5, scale=30.0), "training.exploding_gradients")
    good = run_check(project_with_monitor(tmp_path / "good", lr=0.05), "training.exploding_gradients")
    assert bad.status in ("warn", "fail"), bad.title
    assert good.status == "pass", good.title
    assert "monitored run" in good.detail or "monitored run" in json.dumps(good.evidence)


def test_update_ratio_reads_the_monitor_without_a_model(tmp_path):
    """No [model] section: the gradient checks still run, on the monitored run alone."""
    good = run_check(project_with_monitor(tmp_path / "good", lr=0.05), "training.update_ratio")
    assert good.status in ("pass", "info", "warn") and good.status != "skipped", good.title
    slow = run_check(project_with_monitor(tmp_path / "slow", lr=1e-7), "training.update_ratio")
    assert slow.status in ("warn", "fail"), slow.title


def test_without_a_monitor_file_the_gradient_checks_say_what_to_add(tmp_path):
    df = pd.DataFrame({"x": range(30), "label": [0, 1, 2] * 10})
    write_project(tmp_path, df, df.iloc[:9])
    finding = run_check(context_for(tmp_path), "training.exploding_gradients")
    assert finding.status == "skipped"


@pytest.mark.parametrize("eval_every", [25])
def test_overfitting_reads_the_eval_lines(tmp_path, eval_every):
    ctx = project_with_monitor(tmp_path / "p", lr=0.5, steps=600, eval_every=eval_every, overfit=True)
    finding = run_check(ctx, "training.overfitting")
    assert finding.status != "skipped" and "monitored run" in (finding.detail + json.dumps(finding.evidence))


# --- a monitor file from a different model (issue 16) ---------------------------------------------------------
def test_a_monitor_file_from_another_model_is_said_in_the_evidence(tmp_path):
    from helpers import GOOD_TORCH_MODEL

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "label": rng.integers(0, 3, 60)})
    write_project(tmp_path, df, df.iloc[:20], model_code=GOOD_TORCH_MODEL,
                  toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"\n')
    monitored_training(tmp_path / ".mltriage" / "monitor" / "run.jsonl", steps=60)
    f = run_check(context_for(tmp_path), "training.exploding_gradients")
    said = f.title + f.detail + json.dumps(f.evidence)
    assert "may come from a different model" in said and "163 parameters" in said  # the project's model


def test_the_monitor_file_of_the_project_model_has_no_such_note(tmp_path):
    from mltriage.checks.analyses.monitored import _model_mismatch

    ctx = project_with_monitor(tmp_path, steps=60)
    assert _model_mismatch(ctx, read_monitor(tmp_path / ".mltriage" / "monitor" / "run.jsonl")) is None
