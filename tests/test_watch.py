"""`mltriage watch` follows a run written by another process and raises the alarm while it trains; the
alarm rules fire on planted pathologies and stay quiet on clean twins."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mltriage.checks.analyses.alarms import RunWatcher

WATCH_TIMEOUT = 120  # generous: a loaded 2-core box imports torch slowly; the tests do not time anything


def watch(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "mltriage.tui.cli", "watch", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def writer(path, records, delay=0.01, end=True):
    """A process appending monitor-format records (no torch: fast to start), then the closing line."""
    code = textwrap.dedent(f"""
        import json, sys, time
        with open({str(path)!r}, "a", buffering=1) as f:
            f.write(json.dumps({{"monitor": 1, "model": "M", "layers": ["fc"], "every": 10}}) + "\\n")
            for rec in json.loads(sys.stdin.read()):
                f.write(json.dumps(rec) + "\\n")
                time.sleep({delay})
            if {end}:
                f.write(json.dumps({{"step": 0, "end": True}}) + "\\n")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(records))
    proc.stdin.close()
    return proc


def records(losses, grad=1.0, evals=None):
    out = []
    for i, loss in enumerate(losses, 1):
        out.append({"step": 10 * i, "time": 0, "loss": loss, "lr": 0.1, "layers": {"fc": {"grad_norm": grad}}})
        if evals and i in evals:
            out.append({"step": 10 * i, "time": 0, "eval": {"val_loss": evals[i]}})
    return out


def falling(n=60, seed=0):
    import random

    rng = random.Random(seed)
    return [2.0 * math.exp(-i / 20) + 0.3 + 0.15 * rng.random() for i in range(n)]


def test_divergence_written_by_another_process_stops_the_watch_with_exit_1(tmp_path):
    path = tmp_path / "run.jsonl"
    losses = falling(30) + [0.6 * 1.15 ** k for k in range(30)]
    w = writer(path, records(losses))
    proc = watch("--log", str(path), "--until-alarm", "--format", "jsonl")
    out, err = proc.communicate(timeout=WATCH_TIMEOUT)
    w.wait(timeout=WATCH_TIMEOUT)
    assert proc.returncode == 1, err
    alarms = [json.loads(line)["alarm"] for line in out.splitlines() if '"alarm"' in line]
    assert alarms and alarms[-1]["kind"] == "divergence" and alarms[-1]["status"] == "fail"


def test_clean_run_ends_with_exit_0_and_no_alarm(tmp_path):
    path = tmp_path / "run.jsonl"
    w = writer(path, records(falling(60), evals={20: 0.9, 40: 0.7, 60: 0.65}))
    proc = watch("--log", str(path), "--until-alarm")
    out, err = proc.communicate(timeout=WATCH_TIMEOUT)
    w.wait(timeout=WATCH_TIMEOUT)
    assert proc.returncode == 0, err
    assert "FAIL" not in out and "WARN" not in out and "the run ended" in out
    # 80 columns, except where one word (a file's path) is longer: paths are never cut, so they copy whole
    assert all(len(line) <= 80 or max(len(w) for w in line.split()) > 80 - 16 for line in out.splitlines())


def test_a_real_training_script_with_the_monitor(tmp_path):
    """The monitor in a real loop whose lr schedule keeps rising; watch waits for the project's monitor
    file to appear and raises the alarm while the script still trains."""
    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "train.csv"\ntarget = "y"\n')
    (tmp_path / "train.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n")
    proc = watch(str(tmp_path), "--until-alarm", "--format", "jsonl")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import time, torch, torch.nn as nn
        from mltriage.monitor import Monitor
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        mon = Monitor(model, opt, every=5)
        X = torch.randn(512, 8); y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
        for step in range(1, 3000):
            idx = torch.randint(0, 512, (32,))
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(); loss.backward(); mon.step(loss); opt.step()
            for g in opt.param_groups:
                g["lr"] *= 1.03
            time.sleep(0.002)
        mon.close()
    """))
    trainer = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=WATCH_TIMEOUT)
        still_training = trainer.poll() is None
    finally:
        trainer.kill()
        trainer.wait()
    assert proc.returncode == 1, err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["event"] == "found" for e in events)
    assert events[-1]["event"] == "alarm" and events[-1]["alarm"]["status"] == "fail"
    assert still_training, "the alarm came only after the run had finished"


def test_sighup_ends_the_watch_cleanly(tmp_path):
    path = tmp_path / "run.jsonl"
    w = writer(path, records(falling(5)), end=False)
    w.wait(timeout=WATCH_TIMEOUT)
    proc = watch("--log", str(path))
    deadline = time.monotonic() + WATCH_TIMEOUT
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.1)
    time.sleep(3)  # let it start following
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err and "stopped" in out


def test_a_folder_as_log_is_a_clear_message(tmp_path):
    proc = watch("--log", str(tmp_path))
    out, err = proc.communicate(timeout=WATCH_TIMEOUT)
    assert proc.returncode == 2 and err.startswith("mltriage: ") and "not a file" in err


def test_a_growing_csv_log_is_followed(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n")
    proc = watch("--log", str(path), "--until-alarm", "--idle", "60")
    losses = falling(30) + [0.6 * 1.15 ** k for k in range(30)]
    for i, loss in enumerate(losses, 1):
        with open(path, "a") as handle:
            handle.write(f"{i},{loss}\n")
        time.sleep(0.02)
    out, err = proc.communicate(timeout=WATCH_TIMEOUT)
    assert proc.returncode == 1, (out, err)
    assert "diverging" in out


# --- the rules ---------------------------------------------------------------------------------------
def feed(watcher, losses, grads=None, evals=()):
    alarms = []
    for i, loss in enumerate(losses):
        layers = {"fc": {"grad_norm": grads[i]}} if grads else None
        alarms += watcher.step(i, loss, layers)
    for step, value in evals:
        alarms += watcher.eval(step, value)
    return alarms


def test_noisy_but_falling_loss_raises_nothing():
    assert feed(RunWatcher(), falling(300, seed=3), grads=[1.0] * 300) == []


def test_divergence_fires_once():
    alarms = feed(RunWatcher(), falling(30) + [0.6 * 1.2 ** k for k in range(30)])
    assert [a.kind for a in alarms] == ["divergence"]


def test_a_single_spike_is_not_divergence():
    losses = falling(60)
    losses[40] = 50.0
    assert feed(RunWatcher(), losses) == []


def test_nan_loss_fires():
    alarms = feed(RunWatcher(), [1.0, 0.9, float("nan"), float("nan")])
    assert [(a.kind, a.status, a.step) for a in alarms] == [("nonfinite_loss", "fail", 2)]


@pytest.mark.parametrize("grad, kind", [(1e5, "exploding_gradients"), (300.0, "large_gradients"),
                                        (0.0, "vanishing_gradients")])
def test_gradient_alarms_and_their_clean_twin(grad, kind):
    alarms = feed(RunWatcher(), falling(20), grads=[grad] * 20)
    assert [a.kind for a in alarms] == [kind] and alarms[0].layer == "fc"
    assert feed(RunWatcher(), falling(20), grads=[1.0] * 20) == []


def test_validation_loss_turning_up_and_its_twin():
    up = feed(RunWatcher(), [], evals=[(1, 1.0), (2, 0.8), (3, 0.95), (4, 1.0)])
    assert [a.kind for a in up] == ["valid_rising"]
    down = feed(RunWatcher(), [], evals=[(1, 1.0), (2, 0.8), (3, 0.85), (4, 0.75)])
    assert down == []
