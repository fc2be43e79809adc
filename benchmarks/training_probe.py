"""Seconds the training step takes on each sample project variant, with the default budget and --budget 15.

Runs `mltriage check <project> --steps training --format json` (the real CLI, worker process included)
and prints the wall time, the CPU time of the CLI and its worker (what the training ceilings are read on,
and what issue 17's targets count: wall time on a shared box measures the neighbours), the seconds the
checks report and the findings' statuses.

    python benchmarks/training_probe.py [--budgets 60,15] [PROJECT ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUDGET = 60.0


def variants() -> list[Path]:
    return sorted(p for p in (ROOT / "sample_projects").glob("*/*") if (p / "mltriage.toml").exists())


def run(project: Path, budget: float | None) -> dict:
    """One check of a fresh copy of the project (without .mltriage/: saved runs feed the history checks,
    and the sample folders stay as they are)."""
    copy = Path(tempfile.mkdtemp(prefix="mltriage-probe-")) / project.name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".mltriage"))
    try:
        return _run(copy, budget)
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def _run(project: Path, budget: float | None) -> dict:
    cmd = [sys.executable, "-m", "mltriage.tui.cli", "check", str(project), "--steps", "training",
           "--format", "json"]
    if budget is not None:
        cmd += ["--budget", str(budget)]
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"seconds": seconds, "cpu": cpu, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    statuses = {f["check"].split(".", 1)[1]: f["status"] for f in report["findings"]}
    check_seconds = sum(f.get("seconds", 0.0) for f in report["findings"])
    return {"seconds": seconds, "cpu": cpu, "check_seconds": check_seconds, "summary": report["summary"],
            "statuses": statuses}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", type=Path)
    parser.add_argument("--budgets", default=f"default,15",
                        help="comma-separated budgets; 'default' = [budget] seconds of each project file")
    args = parser.parse_args(argv)
    budgets = [None if b == "default" else float(b) for b in args.budgets.split(",")]
    projects = args.projects or variants()
    print(f"{'project':28} {'budget':>8} {'wall s':>7} {'CPU s':>7} {'checks s':>8}  summary")
    for project in projects:
        name = "/".join(project.resolve().parts[-2:])
        for budget in budgets:
            r = run(project, budget)
            label = "default" if budget is None else f"{budget:g}"
            if "error" in r:
                print(f"{name:28} {label:>8} {r['seconds']:7.1f} {r['cpu']:7.1f}  error: {r['error']}")
                continue
            s = r["summary"]
            flagged = ", ".join(f"{c}={st}" for c, st in r["statuses"].items() if st in ("warn", "fail", "error"))
            print(f"{name:28} {label:>8} {r['seconds']:7.1f} {r['cpu']:7.1f} {r['check_seconds']:8.1f}  "
                  f"fail {s['fail']} warn {s['warn']} skip {s['skipped']}  {flagged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
