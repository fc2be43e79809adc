"""Run the bad-input corpus through `mltriage check` and print how each case was handled.

Prints: cases, clean messages, tracebacks leaked (must be 0), hangs (must be 0), max seconds for any case.
Usage: python benchmarks/robustness.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from robustness_corpus import CASES  # noqa: E402

HANG_SECONDS = 120


def main() -> int:
    leaked, hangs, clean, worst = 0, 0, 0, (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in CASES.items():
            root, allowed = make(Path(tmp) / name)
            t0 = time.perf_counter()
            try:
                r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--format", "json",
                                    "--check-timeout", "5", "--budget", "5"],
                                   capture_output=True, text=True, timeout=HANG_SECONDS)
            except subprocess.TimeoutExpired:
                hangs += 1
                print(f"{name:28s} HANG (> {HANG_SECONDS} s)")
                continue
            seconds = time.perf_counter() - t0
            worst = max(worst, (seconds, name))
            # A traceback inside an `error` finding's detail is by design (the JSON on stdout); a leak is one
            # printed to the terminal as a crash.
            traceback_leaked = "most recent call last" in r.stderr
            leaked += traceback_leaked
            ok = r.returncode in allowed and not traceback_leaked
            clean += ok
            first = (r.stderr.strip().splitlines() or [""])[0][:70] if r.returncode == 2 else "findings"
            print(f"{name:28s} exit {r.returncode}  {seconds:5.1f} s  {'ok ' if ok else 'BAD'}  {first}")
    print(f"\ncases: {len(CASES)}  clean messages: {clean}  tracebacks leaked: {leaked}  hangs: {hangs}  "
          f"max seconds: {worst[0]:.1f} ({worst[1]})")
    return 0 if leaked == 0 and hangs == 0 and clean == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
