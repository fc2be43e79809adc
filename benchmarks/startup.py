"""How fast the app appears and how fast it answers a key while checks run, measured as a user sees it.

The app is started in a pseudo-terminal (80x24) as `mltriage PROJECT`. Start-up is the time from
launch until the first full frame of the main screen has been written (its footer and the project's
step list are on screen and the frame's synchronized update, if any, is closed). The keypress time
is measured while "run all steps" is working on a copy of a sample project: a digit key is written
to the terminal and the clock stops when the step title it selects appears in the output.

With --compare (issue 17 targets), alternating paired rounds instead: the app's first frame against the
bare Textual app of benchmarks/bare_app.py (a list, a plotext plot, the footer) in the same pty measure
(target: at most 1.2x), and `mltriage --help` against `python -c pass` (target: at most 2x); medians.

With --instructions, the same two sides under valgrind's callgrind, each exiting at its first frame
(benchmarks/first_frame_exit.py): the instructions executed up to the first frame, a ratio that machine load
does not move (needs valgrind; about a minute).

Python writes bytecode caches for both sides as it does by default (PYTHONDONTWRITEBYTECODE is dropped from the
children's environment) and one unmeasured round warms them: a user's second start reads cached bytecode.

    python benchmarks/startup.py [--runs 7] [--project sample_projects/sentiment/buggy]
    python benchmarks/startup.py --compare [--runs 15]
    python benchmarks/startup.py --instructions
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNC_END = b"\x1b[?2026l"


def spawn(project: Path, cols: int = 80, rows: int = 24, command: list[str] | None = None
          ) -> tuple[subprocess.Popen, int]:
    import pty

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = child_env()
    command = command or [sys.executable, "-m", "mltriage.tui.cli", str(project)]
    proc = subprocess.Popen(command, stdin=slave, stdout=slave,
                            stderr=slave, env=env, start_new_session=True, cwd=project)
    os.close(slave)
    return proc, master


def child_env() -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as Python runs by default: bytecode cached after the first start
    return env


def read_until(master: int, predicate, timeout: float, buffer: bytearray) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(buffer):
            return True
        ready, _, _ = select.select([master], [], [], 0.005)
        if ready:
            try:
                buffer += os.read(master, 1 << 16)
            except OSError:
                return predicate(buffer)
    return predicate(buffer)


def first_frame(buffer: bytearray) -> bool:
    """The main screen is drawn: the step list and the footer are out, and any synchronized update is closed."""
    at = buffer.find(b"palette")
    if at < 0 or b"Problem definition" not in buffer:
        return False
    opened = buffer.rfind(b"\x1b[?2026h")
    return opened < 0 or buffer.rfind(SYNC_END) > opened


def stop(proc: subprocess.Popen, master: int) -> None:
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    os.close(master)


def child_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_startup(project: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall time to the first frame, and CPU seconds of the process (start, first frame, exit):
    the CPU figure does not grow when other jobs load the machine, the wall time does."""
    times, cpu = [], []
    for _ in range(runs):
        cpu0 = child_cpu()
        times.append(first_frame_seconds(project))
        cpu.append(child_cpu() - cpu0)
    return times, cpu


def first_frame_seconds(project: Path, command: list[str] | None = None) -> float:
    t0 = time.perf_counter()
    proc, master = spawn(project, command=command)
    buffer = bytearray()
    ok = read_until(master, first_frame, 20, buffer)
    elapsed = time.perf_counter() - t0
    stop(proc, master)
    if not ok:
        raise SystemExit("the first frame did not appear within 20 s:\n" + buffer[-2000:].decode(errors="replace"))
    return elapsed


def command_seconds(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=child_env())
    return time.perf_counter() - t0


def compare(project: Path, runs: int) -> None:
    """Paired, alternating rounds (the order flips each round), so a change in the machine's load hits
    both sides alike; the ratio of the medians is the figure."""
    bare = [sys.executable, str(REPO / "benchmarks" / "bare_app.py")]
    pairs = {"app": [], "bare": [], "help": [], "pass": []}
    mltriage_help = [sys.executable, "-m", "mltriage.tui.cli", "--help"]
    script = shutil.which("mltriage")
    if script:
        mltriage_help = [script, "--help"]  # as the user types it: the installed entry point
    first_frame_seconds(project), first_frame_seconds(project, bare)  # warm-up: bytecode caches, disk cache
    command_seconds(mltriage_help)
    for i in range(runs):
        order = ("app", "bare") if i % 2 == 0 else ("bare", "app")
        for side in order:
            pairs[side].append(first_frame_seconds(project, None if side == "app" else bare))
        order = ("help", "pass") if i % 2 == 0 else ("pass", "help")
        for side in order:
            pairs[side].append(command_seconds(mltriage_help if side == "help" else [sys.executable, "-c", "pass"]))
    med = {k: statistics.median(v) for k, v in pairs.items()}
    print(f"first full frame: app {med['app'] * 1000:.0f} ms, bare Textual app {med['bare'] * 1000:.0f} ms: "
          f"{med['app'] / med['bare']:.2f}x (target <= 1.2x; medians of {runs} alternating rounds, 80x24 pty)")
    print(f"`mltriage --help` {med['help'] * 1000:.0f} ms, `python -c pass` {med['pass'] * 1000:.0f} ms: "
          f"{med['help'] / med['pass']:.2f}x (target <= 2x)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def instructions_to_first_frame(project: Path, side: str) -> int:
    """Instructions (callgrind's "Collected") one side executes from launch to its first frame."""
    import re

    runner = [sys.executable, str(REPO / "benchmarks" / "first_frame_exit.py"), side, str(project)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "callgrind.log"
        proc, master = spawn(project, command=["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                               f"--log-file={log}", *runner])
        read_until(master, lambda _: proc.poll() is not None, 600, bytearray())
        stop(proc, master)
        found = re.search(r"Collected : (\d+)", log.read_text())
    if not found:
        raise SystemExit(f"valgrind gave no instruction count for the {side} side")
    return int(found.group(1))


def compare_instructions(project: Path) -> None:
    if not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    first_frame_seconds(project), first_frame_seconds(project, [sys.executable, str(REPO / "benchmarks" / "bare_app.py")])
    app, bare = instructions_to_first_frame(project, "app"), instructions_to_first_frame(project, "bare")
    print(f"instructions to the first frame: app {app / 1e6:.0f} M, bare Textual app {bare / 1e6:.0f} M: "
          f"{app / bare:.3f}x (target <= 1.2x; callgrind, 80x24 pty)")


def measure_keys_while_running(project: Path, presses: int) -> tuple[list[float], bool]:
    proc, master = spawn(project)
    buffer = bytearray()
    try:
        if not read_until(master, first_frame, 20, buffer):
            raise SystemExit("the app did not start")
        os.write(master, b"a")  # run all steps
        read_until(master, lambda b: b"running" in b, 10, buffer)
        time.sleep(0.5)
        latencies = []
        for i in range(presses):
            step = 2 + i % 6  # alternate between steps 2..7
            del buffer[:]
            t0 = time.perf_counter()
            os.write(master, str(step).encode())
            if read_until(master, lambda b, s=step: f"Step {s}/7".encode() in b, 5, buffer):
                latencies.append(time.perf_counter() - t0)
            time.sleep(0.05)
        still_running = b"running" in buffer or b"esc cancels" in buffer
        return latencies, still_running
    finally:
        os.write(master, b"\x1b")  # cancel the run before leaving
        time.sleep(0.3)
        stop(proc, master)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--presses", type=int, default=12)
    parser.add_argument("--project", default=str(REPO / "sample_projects" / "sentiment" / "buggy"))
    parser.add_argument("--compare", action="store_true", help="paired rounds against a bare Textual app and "
                                                                "`python -c pass`")
    parser.add_argument("--instructions", action="store_true", help="instructions to the first frame under "
                                                                     "valgrind, against the bare Textual app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mltriage-bench-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(args.project, project, ignore=shutil.ignore_patterns(".mltriage"))
        if args.compare:
            compare(project, max(args.runs, 10))
            return 0
        if args.instructions:
            compare_instructions(project)
            return 0
        startup, cpu = measure_startup(project, args.runs)
        print(f"startup to first full frame: median {statistics.median(startup) * 1000:.0f} ms "
              f"(min {min(startup) * 1000:.0f}, max {max(startup) * 1000:.0f}, {len(startup)} runs, 80x24 pty; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"CPU time of one app process (start, first frame, quit): median {statistics.median(cpu) * 1000:.0f} ms")
        latencies, running = measure_keys_while_running(project, args.presses)
        if latencies:
            print(f"keypress while checks run: median {statistics.median(latencies) * 1000:.0f} ms "
                  f"(max {max(latencies) * 1000:.0f}, {len(latencies)}/{args.presses} keys answered"
                  f"{', run still in progress at the end' if running else ''})")
        else:
            print("keypress while checks run: no key was answered within 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
