"""Benchmark the problem and data steps on a wide table: many numeric columns, few rows.

Writes a train/valid CSV pair of --rows rows x --columns float columns (seeded normal values, a binary
label from the first column) into a temporary folder, runs `mltriage check --steps problem,data --format
json` --rounds times in a fresh process each, and prints the median CPU seconds (user + system) and wall
seconds of the whole command, its peak RSS, and the slowest checks of the last round. Issue 17's aim for a
run after every edit: seconds, not tens of seconds (a 50 x 10,000 table took 33 s of CPU before the data
checks measured columns in blocks).

    python benchmarks/wide_table.py [--rows 50] [--columns 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_project(root: Path, rows: int, columns: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, columns)).astype(np.float32), columns=[f"c{i}" for i in range(columns)])
    df["label"] = (df["c0"] + rng.logistic(size=rows) > 0).astype(int)
    cut = max(1, int(0.8 * rows))
    df.iloc[:cut].to_csv(root / "train.csv", index=False)
    df.iloc[cut:].to_csv(root / "valid.csv", index=False)
    (root / "mltriage.toml").write_text('[data]\ntrain = "train.csv"\nvalid = "valid.csv"\ntarget = "label"\n')
    return root


def run_once(root: Path) -> tuple[float, float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = ["mltriage"] if shutil.which("mltriage") else [sys.executable, "-m", "mltriage.tui.cli"]
    proc = subprocess.run(cmd + ["check", str(root), "--steps", "problem,data", "--format", "json"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        sys.exit(f"mltriage check exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, after.ru_maxrss / 1024, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--columns", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mltriage-wide-") as tmp:
        root = write_project(Path(tmp), args.rows, args.columns)
        runs = [run_once(root) for _ in range(args.rounds)]
    cpu, wall = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"table: {args.rows:,} rows x {args.columns:,} columns; {args.rounds} rounds")
    print(f"mltriage check --steps problem,data: median {cpu:.2f} s CPU, {wall:.2f} s wall; "
          f"peak RSS {max(r[2] for r in runs):.0f} MiB (largest child so far)")
    findings = runs[-1][3]["findings"]
    print("slowest checks (last round, seconds each, checks overlap on the worker's threads):")
    for f in sorted(findings, key=lambda f: -(f.get("seconds") or 0))[:6]:
        print(f"  {f['check']:<26} {f.get('seconds') or 0:6.2f}  {f['status']:<7} {f['title'][:60]}")


if __name__ == "__main__":
    main()
