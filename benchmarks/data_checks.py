"""Benchmark the problem and data steps on a synthetic 1,000,000-row table with planted defects.

Writes train/valid CSVs (30 mixed columns: numeric, categorical, one text column) into a temporary
folder, then alternates, --rounds times, a fresh process that only reads the files with pandas
(engine="pyarrow", timed around read_csv), one that only reads them with pyarrow's CSV reader, and the
whole `mltriage check --steps problem,data --format json` command. Prints rows, the median seconds and
the median CPU seconds (user + system of each whole process) of each and their ratios (issue 17's target:
the check at most 3x the CPU of a plain read), the check's peak RSS against the in-memory size of the
data, and whether each planted defect was flagged.

    python benchmarks/data_checks.py [--rows 1000000] [--rounds 3] [--keep DIR]
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

import numpy as np
import pandas as pd

N_NUMERIC = 20
N_CATEGORICAL = 8
WORDS = ("fast cheap broken great slow shiny heavy light quiet loud sturdy flimsy warm cold soft hard "
         "clean dirty new old").split()


def make_table(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    data = {}
    for j in range(N_NUMERIC):
        data[f"num{j:02d}"] = rng.normal(50 * j, 1 + j, rows).astype(np.float64)
    for j in range(N_CATEGORICAL):
        data[f"cat{j}"] = pd.Categorical.from_codes(rng.integers(0, 5 + j, rows),
                                                     [f"c{j}_{k}" for k in range(5 + j)]).astype(str)
    logit = (data["num01"] - 50) / 2 + (data["num02"] - 100) / 3 + (data["cat0"] == "c0_1") * 1.5
    label = (logit + rng.logistic(size=rows) > 0).astype(np.int64)
    words = np.array(WORDS)
    text_idx = rng.integers(0, len(WORDS), (rows, 6))
    data["review"] = [" ".join(w) for w in words[text_idx]]
    df = pd.DataFrame(data)
    df["leak_score"] = label * 10 + rng.normal(0, 0.5, rows)          # planted: leaked feature
    df["label"] = label
    df.loc[rng.random(rows) < 0.15, "num05"] = np.nan                    # planted: missing values
    cut = int(rows * 0.8)
    train, valid = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    dup = train.sample(n=int(0.02 * cut), random_state=seed)              # planted: 2% duplicates in train
    train = pd.concat([train, dup], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    copies = train.sample(n=int(0.01 * len(valid)), random_state=seed + 1)  # planted: 1% of valid copied from train
    valid = pd.concat([valid, copies], ignore_index=True)
    valid["num07"] = valid["num07"] + 0.5 * 8                             # planted: drift (half an SD)
    return train, valid


# check id -> (what was planted, how to see it was found in the finding's evidence)
PLANTED = {
    "data.missing_values": ("15% missing in num05", lambda f: "num05" in json.dumps(f["evidence"])),
    "data.duplicates": ("2% duplicate rows in train", lambda f: f["evidence"]["per_split"]["train"]["duplicate_rows"] > 0),
    "data.split_overlap": ("1% of valid copied from train", lambda f: f["evidence"]["overlap"]["valid"]["rows"] > 0),
    "data.target_leakage": ("leak_score = 10*label + noise", lambda f: "leak_score" in f["title"]),
    "data.drift": ("num07 shifted by half an SD in valid",
                   lambda f: any(d["feature"] == "num07" for d in f["evidence"]["shifted"].get("valid", []))),
}


# The plain read of the target, in a process of its own as the check runs in one: pyarrow's CSV
# reader into Arrow tables (its import included), nothing else.
ARROW_READ_SCRIPT = """
import sys
import pyarrow.csv as csv
tables = [csv.read_csv(f) for f in sys.argv[1:]]
"""


READ_SCRIPT = """
import sys, time
import pandas as pd
t = time.perf_counter()
frames = [pd.read_csv(f, engine="pyarrow") for f in sys.argv[1:]]
seconds = time.perf_counter() - t
print(seconds, sum(f.memory_usage(deep=True).sum() for f in frames), sum(len(f) for f in frames))
"""


def run_child(cmd: list[str]) -> tuple[float, float, int, str, str, float]:
    """(wall seconds, peak RSS in MiB of the child and its descendants, exit code, stdout, stderr, CPU seconds
    (user + system) of the child and the descendants it waited for)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child tree alone
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return (seconds, usage.ru_maxrss / 1024, proc.returncode, out.read().decode(), err.read().decode(),
                usage.ru_utime + usage.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating read/check rounds; medians are reported")
    parser.add_argument("--keep", help="write the project here and keep it")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mltriage-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        (root / "data").mkdir(exist_ok=True)
        if not (args.keep and (root / "data/valid.csv").exists()):  # --keep DIR reuses a generated table
            train, valid = make_table(args.rows)
            train.to_csv(root / "data/train.csv", index=False)
            valid.to_csv(root / "data/valid.csv", index=False)
            del train, valid
        (root / "mltriage.toml").write_text('[project]\nname = "bench"\nmetric = "f1_macro"\n\n[data]\n'
                                            'train = "data/train.csv"\nvalid = "data/valid.csv"\n'
                                            'target = "label"\ntext = ["review"]\n')
        print(f"table ready in {time.perf_counter() - t:.1f} s "
              f"({sum(p.stat().st_size for p in (root / 'data').iterdir()) / 1e6:.0f} MB on disk)")

        files = [str(root / "data" / f) for f in ("train.csv", "valid.csv")]
        cmd = [sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--steps", "problem,data",
               "--format", "json"]
        if shutil.which("mltriage"):
            cmd = ["mltriage", "check", str(root), "--steps", "problem,data", "--format", "json"]
        # Both sides are timed the same way, in fresh processes, alternating so that machine noise (the
        # first read in a process pays for page faults; neighbours on a shared VM) hits both alike.
        # The read is timed inside its process, from before read_csv to after: "just to read".
        reads, checks, peaks, report = [], [], [], None
        cpu = {"arrow": [], "pandas": [], "check": []}
        for _ in range(args.rounds):
            _, _, code, out, err, read_cpu = run_child([sys.executable, "-c", READ_SCRIPT, *files])
            if code != 0:
                print(err[-2000:])
                return 2
            read_s, in_memory_bytes, rows = out.split()
            reads.append(float(read_s))
            cpu["pandas"].append(read_cpu)
            cpu["arrow"].append(run_child([sys.executable, "-c", ARROW_READ_SCRIPT, *files])[5])
            seconds, peak_mb, code, out, err, check_cpu = run_child(cmd)
            cpu["check"].append(check_cpu)
            if code not in (0, 1):
                print(out[-2000:], err[-4000:])
                return 2
            checks.append(seconds)
            peaks.append(peak_mb)
            report = json.loads(out)
        in_memory_mb = int(in_memory_bytes) / 2 ** 20
        read_s, check_s, peak_mb = statistics.median(reads), statistics.median(checks), max(peaks)
        by_id = {f["check"]: f for f in report["findings"]}

        print(f"rows: {int(rows):,}")
        print(f"pandas read (pyarrow), fresh process: median {read_s:.2f} s of {_fmt(reads)}; "
              f"in-memory size {in_memory_mb:.0f} MiB")
        print(f"mltriage check --steps problem,data (whole command): median {check_s:.2f} s of {_fmt(checks)}")
        print(f"time ratio: {check_s / read_s:.2f}x the read (wall time, the check's whole command against the read "
              f"alone)")
        med = {k: statistics.median(v) for k, v in cpu.items()}
        # The issue's target is CPU: on 2 cores the read's threads and the checks' thread pool would make a
        # wall-time ratio depend on how many cores each side could use.
        print(f"CPU (user + system, whole processes, medians): check {med['check']:.2f} s of {_fmt(cpu['check'])}; "
              f"pyarrow read into Arrow {med['arrow']:.2f} s of {_fmt(cpu['arrow'])}; pandas read_csv(engine=pyarrow) "
              f"{med['pandas']:.2f} s of {_fmt(cpu['pandas'])}")
        print(f"CPU ratio: {med['check'] / med['arrow']:.2f}x the pyarrow read, {med['check'] / med['pandas']:.2f}x "
              f"the pandas read (target <= 3x)")
        print(f"peak RSS of the check process tree: {peak_mb:.0f} MiB, worst of {args.rounds} "
              f"({peak_mb / in_memory_mb:.2f}x the data; target <= 4x)")
        print("per check (last round; checks overlap on a thread pool, so these add up to more than the wall time):")
        for f in report["findings"]:
            print(f"  {f['status']:7s} {f['check']:24s} {f['seconds']:6.2f} s  {f['title'][:90]}")
        found_all = True
        print("planted defects:")
        for cid, (what, seen) in PLANTED.items():
            f = by_id.get(cid)
            ok = bool(f and f["status"] in ("warn", "fail") and seen(f))
            found_all &= ok
            print(f"  {'FOUND ' if ok else 'MISSED'} {cid:22s} {what} -> {f['status'] if f else 'absent'}")
        print(f"every planted defect found: {found_all}")
        return 0 if found_all else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    sys.exit(main())
