"""checks/io/logs.LogFollower: a training log followed while it grows - only the new lines are parsed;
half-written lines wait; truncation starts over; Lightning's rewrite with a new header is not a new run;
a NaN the log writes is seen; TensorBoard event files are read incrementally. And `mltriage watch` on a
Keras `training.log` stops a run whose loss became NaN (clean twin: it ends quietly)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from mltriage.checks.io.log_follow import LogFollower

WATCH_TIMEOUT = 120


def test_csv_appended_lines_only_and_half_written_last_line(tmp_path):
    path = tmp_path / "training.log"
    path.write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n2,0.7")   # the last line is half written
    f = LogFollower(path)
    assert f.poll() == [("step", 0.0, 1.0), ("eval", 0.0, 1.1), ("step", 1.0, 0.8), ("eval", 1.0, 0.9)]
    assert f.kind == "csv"
    with open(path, "a") as h:
        h.write(",0.75\n3,nan,0.8\n")
    points = f.poll()
    assert points[:2] == [("step", 2.0, 0.7), ("eval", 2.0, 0.75)]
    assert points[2][0] == "step" and math.isinf(points[2][2])              # the NaN is seen
    assert f.poll() == []


def test_truncated_file_starts_over(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n" + "".join(f"{s},{1.0 / (s + 1)}\n" for s in range(50)))
    f = LogFollower(path)
    assert len(f.poll()) == 50
    path.write_text("step,loss\n0,2.0\n")
    assert f.poll() == [("step", 0.0, 2.0)] and f.restarted == 1 and f.steps == [0.0]


def test_lightning_rewrite_with_new_column_is_not_a_new_run(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss_step\n0,0,1.0\n0,1,0.9\n")
    f = LogFollower(path)
    assert len(f.poll()) == 2
    # Lightning rewrites the file when a metric appears: same rows, a wider header, new rows after
    path.write_text("epoch,step,train_loss_epoch,train_loss_step,val_loss\n0,0,,1.0,\n0,1,,0.9,\n0,1,,,0.95\n"
                    "0,1,0.95,,\n1,2,,0.8,\n")
    assert f.poll() == [("eval", 1.0, 0.95), ("step", 2.0, 0.8)]   # the epoch mean is not a step
    assert f.restarted == 0


def test_text_and_jsonl_logs(tmp_path):
    text = tmp_path / "train.out"
    text.write_text("loading data\n" + "".join(f"step={s} loss={2.0 - s / 100:.3f} lr=0.1\n" for s in range(5)))
    f = LogFollower(text)
    assert [p[1] for p in f.poll()] == [0.0, 1.0, 2.0, 3.0, 4.0] and f.kind == "text"
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n" + '{"step": 2, "loss": NaN}\n')
    points = LogFollower(jsonl).poll()
    assert points[0] == ("step", 1.0, 0.5) and math.isinf(points[1][2])


def test_tensorboard_events_incrementally(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    for s in range(20):
        writer.add_scalar("train/loss", 1.0 / (s + 1), s)
    writer.flush()
    f = LogFollower(tmp_path)
    first = f.poll()
    assert len(first) == 20 and first[0] == ("step", 0.0, 1.0)
    writer.add_scalar("train/loss", float("nan"), 20)
    writer.add_scalar("val/loss", 0.5, 20)
    writer.flush()
    later = f.poll()
    assert [p[0] for p in later] == ["step", "eval"] and math.isinf(later[0][2])
    writer.close()


def _keras_log(path, nan_at=None):
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    for e in range(15):
        loss = "nan" if e == nan_at else f"{1.0 * 0.9 ** e:.4f}"
        lines.append(f"{e},{0.5 + e / 40:.3f},{loss},{0.5 + e / 50:.3f},{1.05 * 0.92 ** e:.4f}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("planted", [True, False])
def test_watch_keras_training_log(tmp_path, planted):
    path = tmp_path / "training.log"
    _keras_log(path, nan_at=9 if planted else None)
    proc = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "watch", "--log", str(path), "--until-alarm",
                           "--idle", "2", "--format", "jsonl"], capture_output=True, text=True,
                          timeout=WATCH_TIMEOUT)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    alarms = [e for e in events if e["event"] == "alarm"]
    if planted:
        assert proc.returncode == 1, proc.stderr
        assert alarms[0]["alarm"]["kind"] == "nonfinite_loss" and alarms[0]["alarm"]["step"] == 9
    else:
        assert proc.returncode == 0, proc.stderr
        assert not alarms
    assert "Traceback" not in proc.stderr
