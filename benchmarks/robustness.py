"""Run the bad-input corpus through `mltriage check` and print how each case was handled.

Three classes of cases: the project corpus (tests/robustness_corpus.py CASES: bad project files, data,
project code that raises, hangs, exits or segfaults, bad featurize output, [checks] mistakes, hostile
slice expressions), bad command lines (CLI_CASES: NaN/inf/negative seconds, devices, outputs, --checks),
and signals (SIGTERM/SIGHUP/SIGINT of a running `mltriage check`).

Prints per case: exit code, seconds, ok/BAD and the first line of the message; then the totals: cases,
held, internal errors leaked, hangs, data lost, code execution, processes left running (the last five
must be 0) and the slowest case.
Usage: python benchmarks/robustness.py [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from robustness_corpus import CANARY, CASES, CLI_CASES  # noqa: E402

HANG_SECONDS = 120
MARKER_VAR = "MLTRIAGE_TEST_MARKER"
SLEEPY_BUILD = '''
import subprocess, sys, time
from pathlib import Path

def build_model(n_inputs, n_outputs):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(__file__).with_name("started").write_text("yes")
    time.sleep(600)
'''


class Tally:
    def __init__(self):
        self.cases = self.held = self.leaked = self.hangs = self.lost = self.executed = self.left = 0
        self.slowest = (0.0, "")

    def record(self, name: str, ok: bool, seconds: float, code, note: str, *, leaked=False, hang=False,
               lost=False, executed=False, left=0) -> None:
        self.cases += 1
        ok = ok and not (leaked or hang or lost or executed or left)
        self.held += ok
        self.leaked += leaked
        self.hangs += hang
        self.lost += lost
        self.executed += executed
        self.left += left
        self.slowest = max(self.slowest, (seconds, name))
        flags = " ".join(f for f, on in (("LEAK", leaked), ("HANG", hang), ("LOST", lost), ("EXEC", executed),
                                          (f"LEFT{left}", left)) if on)
        print(f"{name:34s} exit {str(code):>4}  {seconds:6.1f} s  {'ok ' if ok else 'BAD'}  {flags} {note[:60]}",
              flush=True)


def _mtimes(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if ".mltriage" not in p.parts and p.name != CANARY
            and p.is_file()}


def _leaked(stderr: str) -> bool:
    """A Python traceback or an internal error on the terminal (one inside a finding's detail is by design)."""
    return "most recent call last" in stderr or "internal error" in stderr


def run_case(tally: Tally, name: str, root: Path, args: list[str], allowed: set[int], cwd: Path) -> None:
    before = _mtimes(root) if root.exists() else {}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--format", "json", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_SECONDS, cwd=cwd)
    except subprocess.TimeoutExpired:
        tally.record(name, False, time.perf_counter() - t0, "-", f"no exit within {HANG_SECONDS} s", hang=True)
        return
    seconds = time.perf_counter() - t0
    after = _mtimes(root) if root.exists() else {}
    lost = {p: m for p, m in before.items()} != after
    executed = (root / CANARY).exists() or (cwd / CANARY).exists()
    note = (r.stderr.strip().splitlines() or [""])[0] if r.returncode == 2 else "findings"
    tally.record(name, r.returncode in allowed, seconds, r.returncode, note, leaked=_leaked(r.stderr), lost=lost,
                 executed=executed)


def _with_marker(marker: str) -> list[int]:
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes() and \
                        (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def run_signal_case(tally: Tally, signum: signal.Signals, folder: Path) -> None:
    from helpers import write_project
    import pandas as pd

    name = f"signal_{signum.name}"
    df = pd.DataFrame({"a": [float(i) for i in range(40)], "label": [0, 1] * 20})
    root = write_project(folder / name, df, valid_df=df, model_code=SLEEPY_BUILD,
                         toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'")
    marker = uuid.uuid4().hex
    t0 = time.perf_counter()
    cli = subprocess.Popen([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--checks",
                            "sanity.model_builds"], env={**os.environ, MARKER_VAR: marker},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG_SECONDS
    while not (root / "started").exists() and time.monotonic() < deadline and cli.poll() is None:
        time.sleep(0.1)
    time.sleep(0.3)
    t_signal = time.perf_counter()
    cli.send_signal(signum)
    try:
        _, err = cli.communicate(timeout=30)
        hang = False
    except subprocess.TimeoutExpired:
        cli.kill()
        _, err = cli.communicate()
        hang = True
    deadline = time.monotonic() + 5
    while _with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _with_marker(marker)
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stopped = time.perf_counter() - t_signal
    tally.record(name, cli.returncode == 128 + signum, time.perf_counter() - t0, cli.returncode,
                 f"exited {stopped:.1f} s after the signal", leaked=_leaked(err), hang=hang, left=len(survivors))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    only = parser.parse_args().only
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, make in CASES.items():
            if only in name:
                root, allowed = make(tmp / name)
                run_case(tally, name, root, ["--check-timeout", "5", "--budget", "5"], allowed, cwd=tmp)
        for name, (make, args, allowed) in CLI_CASES.items():
            if only in f"cli_{name}":
                root = make(tmp / f"cli_{name}")
                run_case(tally, f"cli_{name}", root, args, allowed, cwd=tmp)
        if sys.platform.startswith("linux"):
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                if only in f"signal_{signum.name}":
                    run_signal_case(tally, signum, tmp)
    t = tally
    print(f"\ncases: {t.cases}  held: {t.held}  internal errors leaked: {t.leaked}  hangs: {t.hangs}  "
          f"data lost: {t.lost}  code execution: {t.executed}  processes left running: {t.left}  "
          f"slowest: {t.slowest[0]:.1f} s ({t.slowest[1]})")
    return 0 if t.held == t.cases else 1


if __name__ == "__main__":
    sys.exit(main())
