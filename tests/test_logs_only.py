"""A project that is the logs of a run alone (issue 16): [artifacts] without [data]."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_projects" / "logs_only" / "buggy" / "logs"


def _logs_only(tmp_path) -> Path:
    shutil.copytree(SAMPLE_LOGS, tmp_path / "logs")
    (tmp_path / "mltriage.toml").write_text('[artifacts]\ntraining_log = "logs/metrics.csv"\n')
    return tmp_path


def _check(project, *args):
    return subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(project), *args],
                          capture_output=True, text=True, timeout=300)


def test_a_log_alone_is_a_project_whose_training_checks_run(tmp_path):
    r = _check(_logs_only(tmp_path), "--format", "json")
    assert r.returncode == 1, r.stderr  # the sample run overfits: training.overfitting fails
    found = {f["check"]: f for f in json.loads(r.stdout)["findings"]}
    assert not [c for c, f in found.items() if f["status"] == "error"]
    assert found["training.overfitting"]["status"] == "fail" and found["training.divergence"]["status"] == "pass"
    assert found["data.duplicates"]["status"] == "skipped" and "training log alone" in found["data.duplicates"]["title"]


def test_a_project_file_without_data_or_logs_still_asks_for_data(tmp_path):
    (tmp_path / "mltriage.toml").write_text('[project]\nname = "x"\n')
    r = _check(tmp_path)
    assert r.returncode == 2 and "[data] train is required" in r.stderr
