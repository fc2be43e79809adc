"""The monitor (DESIGN §9): what it records matches what torch says, planted pathologies show in the
records and clean twins do not, and it never hurts the training loop it sits in."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
import weakref

import pytest
import torch
import torch.nn as nn

from mltriage.monitor import Monitor, default_path


def records(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[0], [r for r in lines[1:] if "layers" in r], [r for r in lines[1:] if "eval" in r]


def train(model, mon, steps, opt=None, lr=0.05, loss_fn=None, seed=0):
    torch.manual_seed(seed)
    opt = opt or torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    for _ in range(steps):
        x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        mon.step(loss)
        opt.step()
    return opt


def mlp(activation=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), activation(), nn.Linear(16, 3))


def test_records_every_n_steps_with_the_contract_keys(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=10, path=tmp_path / "run.jsonl")
    train(model, mon, 35, opt=opt)
    mon.eval(val_loss=0.7, val_accuracy=0.6)
    mon.close()
    header, steps, evals = records(tmp_path / "run.jsonl")
    assert header["model"] == "Sequential" and header["every"] == 10 and header["layers"] == ["0", "2"]
    assert [r["step"] for r in steps] == [10, 20, 30]
    for r in steps:
        assert set(r) >= {"step", "time", "loss", "lr", "layers"} and r["lr"] == 0.05
        assert set(r["layers"]["0"]) == {"grad_norm", "weight_norm", "update_ratio"}
        assert "dead_fraction" in r["layers"]["1"]
    assert evals == [{"step": 35, "time": evals[0]["time"], "eval": {"val_loss": 0.7, "val_accuracy": 0.6}}]


def test_recorded_numbers_are_torch_numbers(tmp_path):
    """Grad norm, weight norm and update ratio of one recorded step, recomputed by hand."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, opt, every=1, path=tmp_path / "run.jsonl")
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    layer = model[0]
    grad = torch.cat([layer.weight.grad.reshape(-1), layer.bias.grad.reshape(-1)]).norm().item()
    before = torch.cat([layer.weight.reshape(-1), layer.bias.reshape(-1)]).detach().clone()
    mon.step(loss)
    opt.step()
    after = torch.cat([layer.weight.reshape(-1), layer.bias.reshape(-1)]).detach()
    mon.close()
    _, (r,), _ = records(tmp_path / "run.jsonl")
    got = r["layers"]["0"]
    assert got["grad_norm"] == pytest.approx(grad, rel=1e-5)
    assert got["weight_norm"] == pytest.approx(before.norm().item(), rel=1e-5)
    assert got["update_ratio"] == pytest.approx(((after - before).norm() / before.norm()).item(), rel=1e-4)
    assert r["loss"] == pytest.approx(loss.item())


def test_dead_relu_layer_shows_and_healthy_twin_does_not(tmp_path):
    dead = mlp()
    with torch.no_grad():
        dead[0].bias.fill_(-100.0)  # every pre-activation negative: all 16 units dead
    for name, model in (("dead", dead), ("healthy", mlp())):
        mon = Monitor(model, None, every=5, path=tmp_path / f"{name}.jsonl")
        train(model, mon, 10)
        mon.close()
    _, dead_steps, _ = records(tmp_path / "dead.jsonl")
    _, healthy_steps, _ = records(tmp_path / "healthy.jsonl")
    assert all(r["layers"]["1"]["dead_fraction"] == 1.0 for r in dead_steps)
    assert all(r["layers"]["1"]["dead_fraction"] < 0.5 for r in healthy_steps)


def test_saturated_sigmoid_shows_and_healthy_twin_does_not(tmp_path):
    saturated = mlp(nn.Sigmoid)
    with torch.no_grad():
        saturated[0].weight.mul_(100.0)
    for name, model in (("saturated", saturated), ("healthy", mlp(nn.Sigmoid))):
        mon = Monitor(model, None, every=5, path=tmp_path / f"{name}.jsonl")
        train(model, mon, 5, lr=0.0)
        mon.close()
    _, (hot,), _ = records(tmp_path / "saturated.jsonl")
    _, (calm,), _ = records(tmp_path / "healthy.jsonl")
    assert hot["layers"]["1"]["saturated_fraction"] > 0.8
    assert calm["layers"]["1"]["saturated_fraction"] < 0.05


def test_non_finite_loss_is_null_and_named(tmp_path):
    model = mlp()
    mon = Monitor(model, None, every=1, path=tmp_path / "run.jsonl")
    loss = model(torch.randn(4, 4)).sum() * float("nan")
    loss.backward()
    mon.step(loss)
    mon.close()
    _, (r,), _ = records(tmp_path / "run.jsonl")
    assert r["loss"] is None and r["nonfinite"][0] == "loss" and "0.grad_norm" in r["nonfinite"]


def test_unwritable_path_disables_it_with_one_warning_and_the_loop_runs_on(tmp_path):
    model = mlp()
    (tmp_path / "taken").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon = Monitor(model, None, every=1, path=tmp_path / "taken")
        train(model, mon, 5)
    assert not mon.enabled
    assert len([w for w in caught if "mltriage monitor disabled" in str(w.message)]) == 1


def test_a_failure_mid_run_disables_it_once(tmp_path):
    model = mlp()
    mon = Monitor(model, None, every=2, path=tmp_path / "run.jsonl")
    train(model, mon, 2)
    mon._file.close()  # the disk went away under it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(model, mon, 10)
    assert not mon.enabled and len(caught) == 1


def test_holds_no_reference_that_keeps_the_model_alive(tmp_path):
    model = mlp()
    opt = torch.optim.Adam(model.parameters())
    mon = Monitor(model, opt, every=3, path=tmp_path / "run.jsonl")
    train(model, mon, 7, opt=opt)
    ref = weakref.ref(model)
    del model, opt
    gc.collect()
    assert ref() is None
    mon.step(torch.tensor(1.0))  # the model is gone: the monitor stops quietly
    mon.close()


def test_steps_it_does_not_record_leave_nothing_behind(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, opt, every=50, path=tmp_path / "run.jsonl")
    train(model, mon, 51, opt=opt)
    assert mon._pending is None and mon._before is None and mon._probe is None
    mon.close()
    assert [r["step"] for r in records(tmp_path / "run.jsonl")[1]] == [50]


def test_a_killed_run_leaves_a_readable_file(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, torch, torch.nn as nn
        from mltriage.monitor import Monitor
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        mon = Monitor(model, opt, every=2, path={str(tmp_path / 'run.jsonl')!r})
        for step in range(1, 200):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad(); loss.backward(); mon.step(loss); opt.step()
            if step == 57:
                os.kill(os.getpid(), signal.SIGKILL)
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line whole
    assert [p["step"] for p in parsed[1:]][-1] >= 54


def test_default_path_is_next_to_the_project_file(tmp_path, monkeypatch):
    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "t.csv"\ntarget = "y"\n')
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    path = default_path("exp1")
    assert path == tmp_path.resolve() / ".mltriage" / "monitor" / "exp1.jsonl"
    assert os.path.basename(default_path()).startswith("run-")
