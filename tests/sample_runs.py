"""Run the sample projects through the CLI once per test session (issue 15: root causes, wording sweep).

Each variant is checked on a fresh copy (saved runs in .mltriage/ would feed the history-based
regression check) with `--format json`, and its text output rendered from that run as the CLI renders it,
two variants at a time (the machine has two cores). The budget is the default one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from mltriage.checks.project.answer_key import sample_variants

VARIANTS = sample_variants()


def _cli_check(path: Path, fmt: str) -> subprocess.CompletedProcess:
    copy = Path(tempfile.mkdtemp(prefix=f"mltriage-{fmt}-")) / path.parent.name / path.name
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns(".mltriage"))
    try:
        r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(copy), "--format", fmt],
                           capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(copy.parent.parent, ignore_errors=True)
    assert r.returncode in (0, 1), f"{path} ({fmt}): exit {r.returncode}\n{r.stderr[-3000:]}"
    return r


def _both(path: Path) -> tuple[dict, str]:
    """The JSON run, and the text output the CLI prints for that run when stdout is not a terminal
    (to_text at 80 columns: `mltriage check` renders its text with the same function). One check run per
    variant instead of two keeps the suite inside its time on two cores."""
    from mltriage.checks.io.report import to_text

    run = json.loads(_cli_check(path, "json").stdout)
    return run, to_text(run, width=80)


@lru_cache(maxsize=1)
def all_runs() -> dict[Path, tuple[dict, str]]:
    """{variant folder: (JSON run, text output)} for every buggy and fixed variant."""
    paths = [p for _, buggy, fixed in VARIANTS for p in (buggy, fixed)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(paths, pool.map(_both, paths)))
