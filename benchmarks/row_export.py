"""What exporting the rows behind findings adds to a run (issue 18 target: under 10%).

On the 1,000,000-row table of benchmarks/data_checks.py (planted missing values, duplicates, train/valid
overlap, a damaged text column), alternates --rounds times `mltriage check --steps problem,data --format
json` without and with `--export-rows DIR`, each in a fresh process, and prints the median CPU seconds
(user + system of the process tree, which a loaded machine does not inflate the way it does wall time), the
median wall seconds, the ratio, and the CSV files written with their rows and sizes.

    python benchmarks/row_export.py [--rows 1000000] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_checks import make_table  # noqa: E402  (the same synthetic table and planted defects)


def run_child(cmd: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds of the child tree, exit code, stdout)."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status), out.read().decode()


def write_project(root: Path, rows: int) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    if not (root / "data/valid.csv").exists():
        train, valid = make_table(rows)
        train.to_csv(root / "data/train.csv", index=False)
        valid.to_csv(root / "data/valid.csv", index=False)
    (root / "mltriage.toml").write_text('[project]\nname = "bench"\nmetric = "f1_macro"\n\n[data]\n'
                                        'train = "data/train.csv"\nvalid = "data/valid.csv"\n'
                                        'target = "label"\ntext = ["review"]\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="write the project here and keep it (reused when it exists)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mltriage-bench-"))
    exported = root / "rows-out"
    try:
        write_project(root, args.rows)
        base = [shutil.which("mltriage") or sys.executable, *([] if shutil.which("mltriage") else
                                                             ["-m", "mltriage.tui.cli"]),
                "check", str(root), "--steps", "problem,data", "--format", "json"]
        sides = {"plain": base, "export": base + ["--export-rows", str(exported)]}
        cpu, wall, run = {k: [] for k in sides}, {k: [] for k in sides}, None
        for i in range(args.rounds):
            for side in (("plain", "export") if i % 2 == 0 else ("export", "plain")):
                seconds, cpu_s, code, out = run_child(sides[side])
                if code not in (0, 1):
                    print(f"{side}: exit {code}")
                    return 2
                wall[side].append(seconds)
                cpu[side].append(cpu_s)
                if side == "export":
                    run = json.loads(out)
        med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in sides}
        print(f"{args.rows:,} rows, {args.rounds} alternating rounds (load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs)")
        for k in sides:
            print(f"  {k:7s} CPU median {med[k][0]:.2f} s, wall median {med[k][1]:.2f} s")
        print(f"  export adds {med['export'][0] / med['plain'][0] - 1:+.1%} CPU, "
              f"{med['export'][1] / med['plain'][1] - 1:+.1%} wall (target: under +10%)")
        for f in (run or {}).get("findings", []):
            if f.get("rows"):
                path = Path(f["rows"])
                lines = sum(1 for _ in path.open(encoding="utf-8")) - 1
                print(f"  {f['check']}: {lines:,} rows of {f.get('rows_total', lines):,} "
                      f"({path.stat().st_size / 1e6:.1f} MB)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
