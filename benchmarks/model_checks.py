"""CPU seconds of a whole `mltriage check` and of its sanity step on the table sample projects (issue 17).

    python benchmarks/model_checks.py [VARIANT ...] [--rounds N] [--steps sanity,architecture]

VARIANT is "tabular/buggy" and the like (default: tabular, regression, sentiment and digits, buggy and
fixed). For each variant, on a fresh copy without .mltriage/ (saved runs would feed the history checks):

- whole run: the real CLI (`mltriage check COPY --format json`, worker process included), its CPU read
  from the kernel's accounting of the finished child processes (user + system);
- per check: the same checks in one fresh process, set up as the worker sets itself up for model code
  (one OpenMP/MKL thread), each check's CPU read on the process clock between its start and its finding.

CPU, never wall time: on a shared box wall time measures the neighbours. Medians over --rounds. Targets:
a whole run at most WHOLE_RUN_CPU, the sanity step at most SANITY_CPU; exit 1 when a variant is over.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE_PROJECTS = ("tabular", "regression", "sentiment", "digits")
WHOLE_RUN_CPU = 10.0   # seconds of CPU for a whole check of one table sample project (issue 17)
SANITY_CPU = 3.0       # seconds of CPU for its sanity step
SINGLE_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # as the worker sets them

# Runs in the fresh process: every check of the run, each one's CPU seconds and verdict as JSON lines.
PER_CHECK = r"""
import json, sys, time
from mltriage.checks.engine.context import RunContext
from mltriage.checks.engine.registry import checks_for
from mltriage.checks.engine.run import run_specs
from mltriage.checks.project.config import load_project

start = time.process_time()
ctx = RunContext(load_project(sys.argv[1]))
ctx.prepare()
print(json.dumps({"check": "(prepare)", "cpu": time.process_time() - start, "status": "", "title": ""}))
marks = {}
def started(spec):
    marks[spec.id] = time.process_time()
def finished(f):
    print(json.dumps({"check": f.check, "cpu": time.process_time() - marks[f.check], "status": f.status,
                      "title": f.title}), flush=True)
steps = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else None
run_specs(checks_for(steps), ctx, on_start=started, on_finding=finished)
"""


def fresh_copy(variant: str) -> Path:
    copy = Path(tempfile.mkdtemp(prefix="mltriage-bench-")) / variant
    shutil.copytree(ROOT / "sample_projects" / variant, copy, ignore=shutil.ignore_patterns(".mltriage"))
    return copy


def child_cpu(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Run cmd to its end; (CPU seconds of it and every descendant it waited for, the result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def whole_run(variant: str) -> tuple[float, dict]:
    copy = fresh_copy(variant)
    try:
        cpu, proc = child_cpu([sys.executable, "-m", "mltriage.tui.cli", "check", str(copy), "--format", "json"])
    finally:
        shutil.rmtree(copy.parent.parent, ignore_errors=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{variant}: mltriage check exited {proc.returncode}\n{proc.stderr[-2000:]}")
    return cpu, json.loads(proc.stdout)


def per_check(variant: str, steps: str) -> list[dict]:
    copy = fresh_copy(variant)
    env = {**os.environ, **{name: "1" for name in SINGLE_THREAD_VARS}}
    try:
        _, proc = child_cpu([sys.executable, "-c", PER_CHECK, str(copy), steps], env=env)
    finally:
        shutil.rmtree(copy.parent.parent, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: the in-process run failed\n{proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def measure(variant: str, rounds: int, steps: str) -> dict:
    wholes, checks = [], []
    for _ in range(rounds):
        cpu, _report = whole_run(variant)
        wholes.append(cpu)
        checks.append(per_check(variant, steps))
    by_check: dict[str, list[float]] = {}
    for run in checks:
        for row in run:
            by_check.setdefault(row["check"], []).append(row["cpu"])
    sanity = [sum(r["cpu"] for r in run if r["check"].startswith("sanity.")) for run in checks]
    return {"whole": statistics.median(wholes), "sanity": statistics.median(sanity),
            "checks": {c: statistics.median(v) for c, v in by_check.items()}, "rows": checks[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="e.g. digits/buggy (default: every table sample project)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per variant; medians are reported")
    parser.add_argument("--steps", default="", help="steps of the per-check run (default: all, as the CLI)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    variants = args.variants or [f"{p}/{k}" for p in TABLE_PROJECTS for k in ("buggy", "fixed")]
    over, figures = 0, {}
    print(f"{'variant':20} {'whole CPU s':>11} {'sanity CPU s':>12}  targets {WHOLE_RUN_CPU:g} s / {SANITY_CPU:g} s")
    for variant in variants:
        m = figures[variant] = measure(variant, args.rounds, args.steps)
        ok = m["whole"] <= WHOLE_RUN_CPU and m["sanity"] <= SANITY_CPU
        over += not ok
        print(f"{variant:20} {m['whole']:11.2f} {m['sanity']:12.2f}  {'OK' if ok else 'OVER'}")
        for row in m["rows"]:
            if row["check"].startswith(("sanity.", "(prepare)")) or m["checks"][row["check"]] >= 0.25:
                print(f"    {m['checks'][row['check']]:6.2f}  {row['status']:<7} {row['check']:<30} {row['title'][:70]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
