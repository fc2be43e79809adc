"""Bad input of every kind gets a clear message and the right exit code, never a traceback or a hang."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustness_corpus import CASES

TIMEOUT_CHECK_SECONDS = 3


def run_cli(root: Path):
    return subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--format", "json",
                           "--check-timeout", str(TIMEOUT_CHECK_SECONDS), "--budget", "5"],
                          capture_output=True, text=True, timeout=240)


# The cases that only need the data/project file run in every test session; the model-code ones too,
# but with a short per-check timeout so the hanging build is stopped quickly.
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_handled(tmp_path, name):
    root, allowed = CASES[name](tmp_path / name)
    before = {p: p.stat().st_mtime for p in root.rglob("*")}
    result = run_cli(root)
    assert result.returncode in allowed, (result.returncode, result.stderr[-2000:])
    # A trimmed traceback of the project's own code is wanted; mltriage's internals never show.
    assert "most recent call last" not in result.stderr and "site-packages" not in result.stderr
    assert "mltriage/checks" not in result.stderr and "/checks/" not in result.stderr
    if result.returncode == 2:
        assert result.stderr.startswith("mltriage: ") and len(result.stderr.strip()) > 20
    else:
        run = json.loads(result.stdout)
        for finding in run["findings"]:
            if finding["status"] == "error":
                # the check broke on bad input: the title must say why in words
                assert finding["title"] and "internal" not in finding["title"]
    after = {p: p.stat().st_mtime for p in root.rglob("*") if ".mltriage" not in p.parts}
    assert {p: m for p, m in before.items() if ".mltriage" not in p.parts} == after, "project files changed"


WRITER = r'''
import sys, json
sys.path.insert(0, sys.argv[2])
from mltriage.checks.io.state import atomic_write_json
path = sys.argv[1]
i = 0
while True:
    payload = {"i": i, "blob": ("A" if i % 2 else "B") * 200000}
    atomic_write_json(path, payload)
    i += 1
'''


def test_kill_while_writing_leaves_old_or_new_state(tmp_path):
    target = tmp_path / ".mltriage" / "session.json"
    for attempt in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(Path.cwd())])
        time.sleep(0.3 + 0.07 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = json.loads(target.read_text())  # never torn
        assert set(data["blob"]) <= {"A", "B"} and len(data["blob"]) == 200000
    leftovers = [p for p in target.parent.iterdir() if p.name != "session.json"]
    # temp files of a killed writer may remain, but never under the real name
    assert all(p.name.endswith(".tmp") for p in leftovers)


def test_damaged_state_file_is_moved_aside(tmp_path):
    from mltriage.checks.io.state import read_json

    path = tmp_path / "session.json"
    path.write_text('{"notes": {"data": "half')
    data, notice = read_json(path)
    assert data is None and "moved to session.json.damaged-" in notice
    assert not path.exists() and len(list(tmp_path.glob("session.json.damaged-*"))) == 1


PARENT = r'''
import os, sys
os.environ["MLTRIAGE_TEST_MARKER"] = sys.argv[2]  # inherited by the worker: how the test finds it
from mltriage.checks.project.config import load_project
from mltriage.checks.engine.supervisor import RunOptions, run_checks
run_checks(load_project(sys.argv[1]), RunOptions(checks=["sanity.model_builds"], check_timeout=120),
           on_start=lambda check: print("started", check, flush=True))
'''


def _processes_with(marker: str) -> list[int]:
    needle = f"MLTRIAGE_TEST_MARKER={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_dies_with_its_parent(tmp_path):
    import uuid

    import pandas as pd

    from helpers import write_project

    df = pd.DataFrame({"a": [float(i) for i in range(20)], "label": [0, 1] * 10})
    code = "import time\n\ndef build_model(n_inputs, n_outputs):\n    time.sleep(600)\n"
    root = write_project(tmp_path, df, valid_df=df, model_code=code,
                         toml_extra="[model]\ncode = 'model.py'\nbuild = 'build_model'")
    marker = uuid.uuid4().hex
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(root), marker], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert parent.stdout.readline().startswith("started sanity.model_builds")
        assert _processes_with(marker), "the worker should be running build_model"
    finally:
        parent.kill()  # SIGKILL: no chance to clean up after itself
        parent.wait()
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _processes_with(marker)
    for pid in survivors:  # leave no sleeping worker behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors


from robustness_corpus import CANARY, CLI_CASES  # noqa: E402


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_bad_command_line_is_handled(tmp_path, name):
    make, args, allowed = CLI_CASES[name]
    root = make(tmp_path / name)
    budget = [] if any(a.startswith("--budget") for a in args) else ["--budget=5"]
    result = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), *args, "--format", "json",
                             *budget], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode in allowed, (result.returncode, result.stderr[-2000:])
    assert "most recent call last" not in result.stderr and "internal error" not in result.stderr
    if result.returncode == 2:
        assert result.stderr.startswith("mltriage: ") and result.stderr.count("mltriage: ") == 1


def test_input_is_never_run_as_code(tmp_path):
    from robustness_corpus import CASES as ALL

    root, allowed = ALL["slice_where_runs_a_command"](tmp_path / "hostile")
    result = run_cli(root)
    assert result.returncode in allowed and "most recent call last" not in result.stderr
    assert not (root / CANARY).exists() and not (Path.cwd() / CANARY).exists()
