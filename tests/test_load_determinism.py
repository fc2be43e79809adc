"""Same project, same findings on an idle machine and on one whose every core is busy (issue 15): the
training ceilings read CPU time (engine/context.cpu_clock), never wall time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "sample_projects" / "sentiment" / "buggy"
BURN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


def findings(root: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--format", "json"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    return {f["check"]: (f["status"], f["title"]) for f in json.loads(r.stdout)["findings"]}


def test_a_loaded_machine_gives_the_same_statuses_and_titles(tmp_path):
    idle, loaded = tmp_path / "idle", tmp_path / "loaded"
    for copy in (idle, loaded):
        shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns(".mltriage"))
    quiet = findings(idle)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        busy = findings(loaded)
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()
    assert busy == quiet, {k: (quiet.get(k), busy.get(k)) for k in set(quiet) | set(busy) if quiet.get(k) != busy.get(k)}
    assert quiet["training.lr_range"][0] in ("warn", "fail")  # the planted lr = 5.0 is flagged in both runs
