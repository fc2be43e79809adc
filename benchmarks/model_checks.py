"""Time the sanity and architecture steps on every sample project variant.

    python benchmarks/model_checks.py [sample_projects_dir] [--steps sanity,architecture]

Runs the checks in-process (as the worker does), one fresh context per variant, and prints seconds per
check, the status of each check, the total per variant and whether it stays under LIMIT_SECONDS. Also
lists, for buggy variants, which answer-key bugs assigned to these steps were flagged.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

LIMIT_SECONDS = 30.0  # the two steps together, per sample project (issue 4)


def run_variant(root: Path, steps: list[str]):
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.engine.run import run_specs
    from mltriage.checks.project.config import load_project
    from mltriage.checks.engine.registry import checks_for

    start = time.perf_counter()
    ctx = RunContext(load_project(root))
    ctx.prepare()
    prepare = time.perf_counter() - start
    findings = run_specs(checks_for(steps), ctx)
    return prepare, findings, time.perf_counter() - start


def answer_key(root: Path, steps: list[str]) -> list[dict]:
    path = root / "bugs.toml"
    if not path.exists():
        return []
    bugs = tomllib.loads(path.read_text()).get("bug", [])
    return [b for b in bugs if any(cid.split(".")[0] in steps for cid in [b["check"], *b.get("also", [])])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="?", default=str(Path(__file__).resolve().parents[1] / "sample_projects"))
    parser.add_argument("--steps", default="sanity,architecture")
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    over = 0
    for root in sorted(Path(args.samples).glob("*/*/mltriage.toml")):
        root = root.parent
        prepare, findings, total = run_variant(root, steps)
        counts = {s: sum(f.status == s for f in findings) for s in ("fail", "warn", "error")}
        ok = total <= LIMIT_SECONDS
        over += not ok
        print(f"\n{root.parent.name}/{root.name}: {total:.1f} s total ({prepare:.1f} s loading) "
              f"{'OK' if ok else f'OVER {LIMIT_SECONDS:g} s'}; fail {counts['fail']}, warn {counts['warn']}, "
              f"error {counts['error']}")
        for f in findings:
            print(f"  {f.seconds:6.2f} s  {f.status:<7} {f.check:<30} {f.title[:80]}")
        by_id = {f.check: f.status for f in findings}
        for bug in answer_key(root, steps):
            ids = [bug["check"], *bug.get("also", [])]
            hit = [cid for cid in ids if by_id.get(cid) in ("warn", "fail")]
            own = bug["check"].split(".")[0] in steps
            verdict = ("FLAGGED" if by_id.get(bug["check"]) in ("warn", "fail") else "via also" if hit
                       else "MISSED " if own else "elsewhere")  # elsewhere: its check belongs to another step
            print(f"  bug {verdict} [{bug['check']}] {bug['summary'][:70]}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
