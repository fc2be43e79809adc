"""Exact counting checks beyond memory: mltriage's DuckDB engine against a hand-written DuckDB query.

Generates a Parquet dataset folder (--rows rows x 30 feature columns + a label, in files of 500,000
rows, with planted duplicates, overlap, missing values and constant columns) and a valid file, then
runs each measurement in a fresh process and reads its CPU seconds (user + system, all threads) and
peak RSS from wait4():

  engine   mltriage's DuckDB engine (checks/io/engines/duck.py): every exact count of the counting checks
  hand     one hand-written DuckDB script computing the same counts (the same memory limit and threads)
  read     (at --check-rows rows) a plain pyarrow read of the dataset
  check    (at --check-rows rows) `mltriage check --steps problem,data` on that dataset

Targets (issue 17): at 10M rows peak RSS <= 1.5 GB and CPU <= 1.5x the hand-written query; at 1M rows the
problem and data steps <= 3x the CPU of the plain read.

    python benchmarks/data_scale.py [--rows 10000000] [--check-rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FILE_ROWS = 500_000
N_FLOAT, N_INT, N_STR = 20, 6, 2
WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"])
PLANTED_DUPLICATES = 1_000
PLANTED_OVERLAP = 1_000
MEMORY_MB = 1024
FEATURES = ([f"x{i}" for i in range(N_FLOAT)] + [f"n{i}" for i in range(N_INT)] + [f"s{i}" for i in range(N_STR)]
            + ["const", "quasi"])


def _chunk(rng, rows: int, offset: int) -> pd.DataFrame:
    df = pd.DataFrame({f"x{i}": rng.normal(size=rows).round(4) for i in range(N_FLOAT)})
    for i in range(N_INT):
        df[f"n{i}"] = rng.integers(0, 100, rows)
    for i in range(N_STR):
        df[f"s{i}"] = WORDS[rng.integers(0, len(WORDS), rows)]
    df["const"] = 1.0
    df["quasi"] = np.where((np.arange(rows) + offset) % 5000 == 0, 1, 0)
    df["label"] = rng.integers(0, 2, rows)
    df.loc[rng.random(rows) < 0.01, "x0"] = np.nan
    return df


def make_dataset(root: Path, rows: int) -> tuple[Path, Path]:
    """train/ (files of FILE_ROWS rows) and valid.parquet; the last train file repeats rows of the first."""
    rng = np.random.default_rng(0)
    folder = root / "train"
    folder.mkdir(parents=True)
    first = None
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        df = _chunk(rng, min(FILE_ROWS, rows - start), start)
        if first is None:
            first = df.head(max(PLANTED_DUPLICATES, PLANTED_OVERLAP)).copy()
        if start + FILE_ROWS >= rows:  # the last file ends with copies of the first file's first rows
            df.iloc[-PLANTED_DUPLICATES:] = first.head(PLANTED_DUPLICATES).to_numpy()
        df.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
    valid = _chunk(rng, 100_000, 0)
    valid.iloc[:PLANTED_OVERLAP] = first.head(PLANTED_OVERLAP).to_numpy()
    valid.to_parquet(root / "valid.parquet", index=False)
    return folder, root / "valid.parquet"


HAND_QUERY = r"""
import json, sys, time, duckdb
marks = [time.process_time()]
mark = lambda: marks.append(time.process_time())
train, valid, mem = sys.argv[1], sys.argv[2], sys.argv[3]
features = json.loads(sys.argv[4])
con = duckdb.connect()
con.execute(f"SET memory_limit = '{mem}MB'"); con.execute("SET threads = 2")
con.execute("SET preserve_insertion_order = false"); con.execute("SET enable_progress_bar = false")
src = f"read_parquet('{train}/*.parquet')"
q = lambda c: '"' + c + '"'
clean = lambda c: f"(CASE WHEN isnan({q(c)}) THEN NULL ELSE {q(c)} END)" if c.startswith('x') or c in ('const',) else q(c)
cols = features + ['label']
# 1. rows, missing, min/max (constants), top-value candidates
parts = ['count(*)'] + [f"count_if({clean(c)} IS NULL)" for c in cols]
parts += [f"min({clean(c)}), max({clean(c)}), approx_top_k({clean(c)}, 3)" for c in features]
stats = con.execute(f"SELECT {', '.join(parts)} FROM {src}").fetchone()
mark()
# 2. exact share of each column's top value
tops = stats[1 + len(cols):][2::3]
parts, params = [], []
for c, cands in zip(features, tops):
    for v in cands or []:
        parts.append(f"count_if({clean(c)} = ?)"); params.append(v)
top = con.execute(f"SELECT {', '.join(parts)} FROM {src}", params).fetchone()
mark()
# 3. duplicates and conflicting labels: group by the row hash
h = 'hash(' + ', '.join(clean(c) for c in features) + ')'
dup = con.execute(f"SELECT count(*), sum(n), sum(nl), count_if(nl > 1) FROM (SELECT {h} AS h, count(*) n, "
                  f"count(DISTINCT label) nl FROM {src} GROUP BY h)").fetchone()
mark()
# 4. valid rows whose features occur in train
vsrc = f"read_parquet('{valid}')"
ov = con.execute(f"SELECT count(*) FROM (SELECT {h} AS h FROM {vsrc}) WHERE h IN (SELECT {h} FROM {src})").fetchone()
mark()
# 5. label counts, and the same per-split counts on valid
lab = con.execute(f"SELECT label, count(*) FROM {src} GROUP BY label").fetchall()
vparts = ['count(*)'] + [f"count_if({clean(c)} IS NULL)" for c in cols]
vparts += [f"min({clean(c)}), max({clean(c)})" for c in features]
vstats = con.execute(f"SELECT {', '.join(vparts)} FROM {vsrc}").fetchone()
vdup = con.execute(f"SELECT count(*), sum(n), sum(nl) FROM (SELECT {h} AS h, count(*) n, "
                   f"count(DISTINCT label) nl FROM {vsrc} GROUP BY h)").fetchone()
vlab = con.execute(f"SELECT label, count(*) FROM {vsrc} GROUP BY label").fetchall()
mark()
# 6. equal label neighbours in file order
con.execute("SET preserve_insertion_order = true")
same = con.execute(f"SELECT count_if(label = prev) FROM (SELECT label, lag(label) OVER (ORDER BY filename, "
                   f"file_row_number) AS prev FROM read_parquet('{train}/*.parquet', filename = true, "
                   f"file_row_number = true))").fetchone()
mark()
cpu = [round(b - a, 1) for a, b in zip(marks, marks[1:])]
print(json.dumps({"rows": stats[0], "duplicate_rows": dup[1] - dup[2], "overlap": ov[0], "same": same[0],
                  "cpu_by_part": dict(zip(["stats", "top", "duplicates", "overlap", "labels+valid", "order"], cpu))}))
"""

ENGINE_RUN = r"""
import json, sys
from pathlib import Path
from mltriage.checks.io.engines.counts import CountRequest
from mltriage.checks.io.engines.duck import count_duckdb
train, valid, features = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[4])
c = count_duckdb(CountRequest({"train": train, "valid": valid}, features, "label"), Path(sys.argv[5]))
print(json.dumps({"rows": c.rows["train"], "duplicate_rows": c.duplicate_rows["train"],
                  "overlap": c.overlap_rows["valid"], "same": c.label_same_adjacent,
                  "missing_x0": c.missing["train"].get("x0"), "constant": c.constant["train"],
                  "quasi": c.top_share["quasi"]}))
"""

READ_RUN = r"""
import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet").to_table()
print(t.num_rows)
"""


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """CPU seconds (user + system), wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    out_fd, err_fd = proc.stdout, proc.stderr
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = out_fd.read(), err_fd.read()
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])}...: exit {proc.returncode}\n{err[-2000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mb": usage.ru_maxrss / 1024, "out": out}


def _last_json(out: str) -> dict:
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"no result in the child's output:\n{out[-2000:]}")
    return json.loads(lines[-1])


def compare_engine(root: Path, rows: int) -> None:
    train, valid = make_dataset(root / f"r{rows}", rows)
    args = [str(train), str(valid), str(MEMORY_MB), json.dumps(FEATURES), str(root / "spill")]
    env = {"MLTRIAGE_DUCKDB_MEMORY_MB": str(MEMORY_MB), "MLTRIAGE_DUCKDB_THREADS": "2"}
    hand = measure([sys.executable, "-c", HAND_QUERY, *args], env)
    engine = measure([sys.executable, "-c", ENGINE_RUN, *args], env)
    mine, theirs = _last_json(engine["out"]), _last_json(hand["out"])
    agree = all(mine[k] == theirs[k] for k in ("rows", "duplicate_rows", "overlap", "same"))
    print(f"\n{rows:,} rows x {len(FEATURES)} columns, Parquet "
          f"({sum(f.stat().st_size for f in train.iterdir()) / 2**20:.0f} MB on disk), memory_limit {MEMORY_MB} MB")
    print(f"  hand-written DuckDB query  cpu {hand['cpu']:7.1f} s  wall {hand['wall']:6.1f} s  peak RSS {hand['rss_mb']:6.0f} MB")
    print(f"  mltriage DuckDB engine     cpu {engine['cpu']:7.1f} s  wall {engine['wall']:6.1f} s  peak RSS {engine['rss_mb']:6.0f} MB")
    print(f"  CPU ratio engine/hand {engine['cpu'] / hand['cpu']:.2f} (target <= 1.5); peak RSS "
          f"{engine['rss_mb'] / 1024:.2f} GB (target <= 1.5 at 10M); same counts: {agree}")
    print(f"  hand query CPU by part (process CPU s): {theirs.get('cpu_by_part')}")
    print(f"  counts: {mine}  (planted: {PLANTED_DUPLICATES} duplicates, {PLANTED_OVERLAP} overlapping)")


def compare_check(root: Path, rows: int) -> None:
    train, _ = make_dataset(root / f"c{rows}", rows)
    project = train.parent
    read = measure([sys.executable, "-c", READ_RUN, str(train)])
    print(f"\n{rows:,} rows: plain pyarrow read cpu {read['cpu']:.1f} s (peak {read['rss_mb']:.0f} MB)")
    for engine in ("auto", "duckdb"):  # auto: the data fits, so pandas alone; duckdb: the exact counts on top
        (project / "mltriage.toml").write_text('[project]\ntask = "classification"\n\n[data]\ntrain = "train"\n'
                                               f'valid = "valid.parquet"\ntarget = "label"\nengine = "{engine}"\n')
        check = measure([sys.executable, "-m", "mltriage.tui.cli", "check", str(project), "--steps", "problem,data",
                         "--format", "json"])
        print(f"  `mltriage check --steps problem,data` engine = {engine}: cpu {check['cpu']:.1f} s "
              f"(peak {check['rss_mb']:.0f} MB): {check['cpu'] / read['cpu']:.1f}x the read (target <= 3x)")
        try:
            findings = json.loads(check["out"])["findings"]
        except (ValueError, KeyError):
            print("    (no JSON report)")
            continue
        slow = sorted(findings, key=lambda f: -(f.get("seconds") or 0))[:5]
        print("    slowest checks: " + ", ".join(f"{f['check']} {f.get('seconds') or 0:.1f} s" for f in slow))
        print("    " + "; ".join(f"{f['check']}: {f['status']}" for f in findings
                               if f["check"] in ("data.missing_values", "data.duplicates", "data.split_overlap",
                                                 "data.constant_features", "data.label_order")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--check-rows", type=int, default=1_000_000, help="0: skip the whole-check comparison")
    parser.add_argument("--keep", help="write the data here and keep it")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mltriage-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        compare_engine(root, args.rows)
        if args.check_rows:
            compare_check(root, args.check_rows)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
