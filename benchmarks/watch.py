"""`mltriage watch` on a run written by another process (issue 16): alarm latency, CPU use, cost per update.

Cases (each: a writer process appends at --rate lines/s for --seconds, plants a NaN loss at 85% of the
time, then keeps writing healthy lines; `mltriage watch --format jsonl` follows it as a user would run it):
  csv          a Lightning-style metrics.csv (step rows with train_loss_step, a val_loss row every 50 steps)
  text         a plain-text log of lines like "step=100 loss=1.2 lr=0.001"
  tensorboard  a TensorBoard event file written by torch's SummaryWriter (flushed every 0.1 s)
  monitor      mltriage's own monitor file (what Monitor(...) writes)
Printed per case: the latency from the NaN being written (the writer's clock) to the alarm being printed
(the watcher's clock; same machine), target < 2 s; the watcher's CPU use while the run was followed
(from /proc, start-up excluded), target < 5% of one core.

Then the cost per update as the log grows: one LogFollower poll that reads --batch new lines, timed at
several sizes of the file up to --grow-lines (the issue asks that it stay flat up to 1M lines: pass
--grow-lines 1000000), next to what re-reading the whole log would cost at the smaller sizes.

Usage: python benchmarks/watch.py [--seconds 15] [--rate 200] [--cases csv,text,tensorboard,monitor]
                                  [--grow-lines 200000] [--batch 200]
The defaults run in about a minute and a half; --seconds 120 is the issue's two-minute run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

NAN_AT = 0.85                  # share of the run after which the NaN is written
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

WRITER = textwrap.dedent(r'''
    import json, math, sys, time
    case, path, rate, seconds, mark = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    n = int(rate * seconds)
    nan_line = int(n * %(nan_at)r)
    period = 1.0 / rate
    tb = None
    if case == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter
        tb = SummaryWriter(log_dir=path, flush_secs=3600)
        f = None
    else:
        f = open(path, "a", buffering=1)
        if case == "csv":
            f.write("epoch,step,train_loss_step,val_loss\n")
        elif case == "monitor":
            f.write(json.dumps({"monitor": 1, "model": "Bench", "layers": ["fc"], "every": 1}) + "\n")
    open(mark, "w").write(json.dumps({"ready": time.time()}) + "\n")
    import os
    while not os.path.exists(mark + ".go"):   # the watcher is following: go
        time.sleep(0.02)
    start = time.monotonic()
    last_flush = start
    for i in range(n):
        loss = 2.0 * math.exp(-i / (n / 4)) + 0.3 + 0.05 * math.sin(i * 1.7)
        planted = i == nan_line
        value = float("nan") if planted else loss
        if case == "csv":
            f.write(f"{i // 500},{i},{'nan' if planted else f'{value:.5f}'},\n")
            if i %% 50 == 49:
                f.write(f"{i // 500},{i},,{loss + 0.05:.5f}\n")
        elif case == "text":
            f.write(f"step={i} loss={'nan' if planted else f'{value:.5f}'} lr=0.001\n")
        elif case == "monitor":
            rec = {"step": i, "time": time.time(), "loss": None if planted else value, "lr": 0.001,
                   "layers": {"fc": {"grad_norm": 1.0}}}
            if planted:
                rec["nonfinite"] = ["loss"]
            f.write(json.dumps(rec) + "\n")
        else:
            tb.add_scalar("train/loss", value, i)
            now = time.monotonic()
            if planted or now - last_flush >= 0.1:
                tb.flush()
                last_flush = now
        if planted:
            open(mark, "a").write(json.dumps({"nan_written": time.time(), "line": i}) + "\n")
        delay = start + (i + 1) * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if tb is not None:
        tb.close()
    else:
        f.close()
''' % {"nan_at": NAN_AT})


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def run_case(case: str, rate: float, seconds: float, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    target = {"csv": folder / "metrics.csv", "text": folder / "train.out", "monitor": folder / "run.jsonl",
              "tensorboard": folder / "tb"}[case]
    if case == "tensorboard":
        target.mkdir()
    mark = folder / "mark.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, case, str(target), str(rate), str(seconds), str(mark)])
    while not mark.exists() or "ready" not in mark.read_text():   # the log exists, nothing written yet
        time.sleep(0.05)
        if writer.poll() is not None:
            return {"case": case, "error": "the writer failed"}
    watcher = subprocess.Popen([sys.executable, "-m", "mltriage.tui.cli", "watch", "--log", str(target),
                                "--format", "jsonl", "--idle", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    # let the watcher import and start following before the run begins (start-up is not what is measured)
    first = watcher.stdout.readline()
    if not first:
        writer.kill()
        Path(str(mark) + ".go").touch()
        return {"case": case, "error": watcher.stderr.read()[-2000:]}
    Path(str(mark) + ".go").touch()
    cpu0, wall0 = cpu_seconds(watcher.pid), time.monotonic()
    writer.wait()
    cpu1, wall1 = cpu_seconds(watcher.pid), time.monotonic()
    out, err = watcher.communicate(timeout=120)
    events = [json.loads(line) for line in (first + out).splitlines() if line.startswith("{")]
    marks = [json.loads(line) for line in mark.read_text().splitlines()]
    written = next((m["nan_written"] for m in marks if "nan_written" in m), None)
    alarm = next((e for e in events if e["event"] == "alarm" and e["alarm"]["kind"] == "nonfinite_loss"), None)
    result = {"case": case, "lines": int(rate * seconds), "seconds": wall1 - wall0}
    result["latency_s"] = alarm["time"] - written if alarm and written else None
    if cpu0 is not None and cpu1 is not None:
        result["cpu_share"] = (cpu1 - cpu0) / max(wall1 - wall0, 1e-9)
    if watcher.returncode not in (0, None):
        result["error"] = err[-2000:]
    return result


def growth(max_lines: int, batch: int, folder: Path) -> list[dict]:
    """Time one poll of `batch` new lines at several file sizes (flat = incremental)."""
    from mltriage.checks.io.log_follow import LogFollower
    from mltriage.checks.io.logs import read_training_log

    path = folder / "grow.csv"
    sizes = sorted({s for s in (1_000, 10_000, 100_000, 1_000_000, max_lines) if s <= max_lines})
    block = "".join(f"0,{i},{1.0 / (1 + i % 977):.5f}\n" for i in range(batch))
    with open(path, "w") as f:
        f.write("epoch,step,train_loss_step\n")
    follower = LogFollower(path)
    follower.poll()
    rows, written = [], 0
    for size in sizes:
        with open(path, "a") as f:
            while written + batch <= size - batch:
                f.write(block)
                written += batch
        follower.poll()                       # catch up to just below this size
        # keep memory flat in the benchmark: the watcher only needs the new points, not the history
        follower.steps.clear(), follower.losses.clear()
        times = []
        for _ in range(9):
            with open(path, "a") as f:
                f.write(block)
            written += batch
            t0 = time.perf_counter()
            points = follower.poll()
            times.append(time.perf_counter() - t0)
            assert len(points) == batch, len(points)
        row = {"lines": written, "poll_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times)}
        if written <= 20_000:
            t0 = time.perf_counter()
            read_training_log(path)
            row["full_reread_ms"] = 1000 * (time.perf_counter() - t0)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each run (the issue: 120)")
    parser.add_argument("--rate", type=float, default=200.0, help="lines per second the writer appends")
    parser.add_argument("--cases", default="csv,text,tensorboard,monitor")
    parser.add_argument("--grow-lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"watch benchmark: {args.rate:g} lines/s for {args.seconds:g} s per case, NaN planted at "
              f"{100 * NAN_AT:.0f}%; targets: latency < 2 s, CPU < 5% of a core")
        print(f"{'case':12s} {'lines':>7s} {'latency s':>10s} {'cpu %core':>10s}")
        for case in args.cases.split(","):
            r = run_case(case.strip(), args.rate, args.seconds, Path(tmp) / case.strip())
            if "error" in r and r.get("latency_s") is None:
                print(f"{case:12s} error: {r['error'].strip()[-300:]}")
                continue
            latency = f"{r['latency_s']:.3f}" if r.get("latency_s") is not None else "no alarm"
            cpu = f"{100 * r['cpu_share']:.2f}" if r.get("cpu_share") is not None else "n/a"
            print(f"{case:12s} {r['lines']:7d} {latency:>10s} {cpu:>10s}", flush=True)
        print(f"\ncost of one update ({args.batch} new lines) as the log grows:")
        print(f"{'lines':>9s} {'median ms':>10s} {'min ms':>8s} {'full re-read ms':>16s}")
        for row in growth(args.grow_lines, args.batch, Path(tmp)):
            full = f"{row['full_reread_ms']:.1f}" if "full_reread_ms" in row else "-"
            print(f"{row['lines']:9d} {row['poll_ms']:10.2f} {row['min_ms']:8.2f} {full:>16s}", flush=True)


if __name__ == "__main__":
    main()
