"""Keypress latency in the app while the Training step's live view re-reads a large training log (issue 16:
keys stay under 50 ms; the live view reads and builds its curves in a thread, off the event loop).

A tiny project names a Lightning-style metrics.csv of --lines lines (default 1M) as its training log. The app
runs headless (Textual's Pilot) on the Training step, the live view following the log. Two phases, the same
keys in each: `idle` (the log is not changing) and `load` (a writer thread appends --rate lines/s and, every
--rotate seconds, replaces the whole log with a fresh copy, as a logger that rewrites its file does, so the
view reads all --lines lines again). A key press is timed from the moment the key event is handed to the app
to the moment its effect (the highlight moving in the focused list) is visible on the event loop; keys
alternate down/up, --interval apart. Printed: median, p95 and max per phase, and how much the view read
meanwhile (full re-reads, points). Target: p95 < 50 ms.

Usage: python benchmarks/app_latency.py [--lines 1000000] [--presses 150] [--interval 0.03]
                                        [--rate 200] [--rotate 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TOML = """[project]
name = "latency"
task = "classification"

[data]
train = "data/train.csv"
valid = "data/valid.csv"
target = "label"

[artifacts]
training_log = "logs/metrics.csv"
"""


def write_project(root: Path, lines: int) -> Path:
    """The project, its tiny data, and a training log of `lines` step rows; returns the log's path."""
    (root / "data").mkdir(parents=True)
    for name, n in (("train", 60), ("valid", 20)):
        rows = ["a,b,label"] + [f"{(i * 7) % 11 / 10:.2f},{(i * 5) % 13 / 10:.2f},{'yes' if i % 3 else 'no'}"
                                for i in range(n)]
        (root / "data" / f"{name}.csv").write_text("\n".join(rows) + "\n")
    (root / "mltriage.toml").write_text(TOML)
    (root / "logs").mkdir()
    template = root / "logs" / "template.csv"
    with open(template, "w") as f:
        f.write("epoch,step,train_loss_step\n")
        chunk = 100_000
        for start in range(0, lines, chunk):
            f.write("".join(f"{i // 1000},{i},{1.0 / (1 + i / 5000) + 0.01 * ((i * 7919) % 13):.5f}\n"
                            for i in range(start, min(lines, start + chunk))))
    shutil.copy(template, root / "logs" / "metrics.csv")
    return root / "logs" / "metrics.csv"


class Writer(threading.Thread):
    """Appends step rows at `rate` lines/s and every `rotate` s replaces the log with the full template."""

    def __init__(self, log: Path, lines: int, rate: float, rotate: float):
        super().__init__(daemon=True)
        self.log, self.template = log, log.with_name("template.csv")
        self.step, self.rate, self.rotate = lines, rate, rotate
        self.go, self.stop = threading.Event(), threading.Event()
        self.rotations = 0

    def run(self) -> None:
        self.go.wait()
        last_rotation = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - last_rotation >= self.rotate:
                fresh = self.log.with_name("metrics.csv.new")
                shutil.copy(self.template, fresh)
                os.replace(fresh, self.log)          # a new file: the view reads it all again
                self.rotations += 1
                last_rotation = time.monotonic()
            with open(self.log, "a") as f:
                batch = max(1, int(self.rate / 10))
                f.write("".join(f"{i // 1000},{i},0.5\n" for i in range(self.step, self.step + batch)))
                self.step += batch
            self.stop.wait(0.1)


async def press_and_time(app, widget, key: str) -> float:
    """Seconds from handing the key to the app to its effect (the highlight moved) on the event loop."""
    from textual import events

    before = widget.highlighted
    event = events.Key(key, None)
    event.set_sender(app)
    t0 = time.perf_counter()
    app._driver.send_message(event)
    while widget.highlighted == before:
        await asyncio.sleep(0)
        if time.perf_counter() - t0 > 10:
            raise RuntimeError(f"key {key!r} had no effect in 10 s")
    return time.perf_counter() - t0


async def phase(app, widget, presses: int, interval: float) -> list[float]:
    times = []
    for i in range(presses):
        times.append(await press_and_time(app, widget, "down" if i % 2 == 0 else "up"))
        await asyncio.sleep(interval)
    return times


def summary(name: str, times: list[float], extra: str = "") -> str:
    ms = sorted(1000 * t for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return (f"{name:5s} {len(ms):5d} presses: median {statistics.median(ms):6.2f} ms, p95 {p95:6.2f} ms, "
            f"max {ms[-1]:7.2f} ms  (target p95 < 50 ms){extra}")


async def measure(root: Path, writer: Writer, args) -> None:
    from mltriage.checks.engine.registry import STEPS
    from mltriage.tui.app import MltriageApp
    from mltriage.tui.widgets.check_list import CheckList
    from mltriage.tui.widgets.live_training import LiveTraining

    app = MltriageApp(root, cursor_blink=False, check_titles=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        screen.action_goto(STEPS.index("training") + 1)
        t0 = time.monotonic()
        while not screen.query(LiveTraining):
            await pilot.pause(0.05)
        view = screen.query_one(LiveTraining)
        checks = screen.query_one("#checks", CheckList)
        checks.focus()
        if checks.highlighted is None:
            checks.highlighted = 0
        while not view.query("SpecPlot"):                 # the first full read of the log is drawn
            await pilot.pause(0.05)
        print(f"first read and draw of the {args.lines:,}-line log: {time.monotonic() - t0:.1f} s")
        idle = await phase(app, checks, args.presses, args.interval)
        follower = view.source.follower
        restarts = follower.restarted
        writer.go.set()
        loaded = await phase(app, checks, args.presses, args.interval)
        writer.stop.set()
        reread = follower.restarted - restarts
        print(summary("idle", idle))
        print(summary("load", loaded, f"\n      meanwhile: {writer.rotations} log replacements, {reread} full "
                                      f"re-reads of {args.lines:,} lines by the view, {writer.step:,} rows written"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--presses", type=int, default=150, help="key presses per phase")
    parser.add_argument("--interval", type=float, default=0.03, help="seconds between presses")
    parser.add_argument("--rate", type=float, default=200.0, help="lines/s appended during the load phase")
    parser.add_argument("--rotate", type=float, default=3.0, help="seconds between full replacements of the log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLTRIAGE_HOME"] = str(Path(tmp) / "home")
        root = Path(tmp) / "project"
        t0 = time.monotonic()
        log = write_project(root, args.lines)
        print(f"wrote a {log.stat().st_size / 1e6:.0f} MB log of {args.lines:,} lines in "
              f"{time.monotonic() - t0:.1f} s; python {sys.version.split()[0]}, {os.cpu_count()} cpus")
        writer = Writer(log, args.lines, args.rate, args.rotate)
        writer.start()
        try:
            asyncio.run(measure(root, writer, args))
        finally:
            writer.stop.set()
            writer.go.set()
            writer.join(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
