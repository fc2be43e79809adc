"""Detection quality over all sample projects: planted bugs found / planted, and fails/warns on fixed twins.

Usage: python benchmarks/detection.py [NAME ...]      (sample project names; default: all)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from mltriage.checks.project.answer_key import flagged_by, load_answer_key, sample_variants


def check(path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(path), "--format", "json"],
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{path}: exit {r.returncode}\n{r.stderr}")
    return json.loads(r.stdout), time.perf_counter() - t0


def main(argv: list[str]) -> int:
    if any(a.startswith("-") for a in argv):
        print(__doc__.strip())
        return 0
    planted = found = by_own = pending = fixed_fails = fixed_warns = 0
    variants = [v for v in sample_variants() if not argv or v[0] in argv]
    unknown = set(argv) - {v[0] for v in variants}
    if unknown:
        raise SystemExit(f"no sample project named {', '.join(sorted(unknown))}")
    for name, buggy, fixed in variants:
        run, seconds_b = check(buggy)
        bugs = load_answer_key(buggy)
        for bug in bugs:
            hit = flagged_by(bug, run["findings"])
            planted += 1
            found += bool(hit)
            own = bug.check in hit
            by_own += own
            pending += bug.pending
            print(f"{name:10s} {'FOUND ' if hit else 'missed'} {bug.check:32s} {bug.summary[:60]}"
                  + ("" if own or not hit else f" (only by {', '.join(hit)})") + (" (pending)" if bug.pending else ""))
        fixed_run, seconds_f = check(fixed)
        fails = [f["check"] for f in fixed_run["findings"] if f["status"] == "fail"]
        warns = [f["check"] for f in fixed_run["findings"] if f["status"] == "warn"]
        fixed_fails += len(fails)
        fixed_warns += len(warns)
        print(f"{name:10s} fixed: {len(fails)} fail {fails}, {len(warns)} warn {warns}; "
              f"seconds buggy {seconds_b:.1f}, fixed {seconds_f:.1f}")
    print(f"\nplanted bugs found: {found}/{planted}, {by_own} by their own check (pending: {pending}); "
          f"fixed variants: {fixed_fails} fail, {fixed_warns} warn")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
