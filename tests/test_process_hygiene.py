"""Nothing left running, hangs contained, crashes remembered (issue 19): `mltriage check` killed by a
signal takes its worker's process group with it; a hang in the model's forward or a project function
that ends the worker costs one check, not one per check; a module whose import hangs or exits is a
clear exit 2 with the worker's last words."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import write_project
from mltriage.checks.project.config import ProjectError, load_project
from mltriage.checks.engine.supervisor import RunOptions, run_checks

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
MARKER_VAR = "MLTRIAGE_TEST_MARKER"
# generous: the box running the suite is loaded; nothing below asserts a duration
START_SECONDS = 180


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": [0, 1] * (n // 2)})


def _project(root: Path, code: str, extra: str = "") -> Path:
    toml = "[model]\ncode = 'model.py'\nbuild = 'build_model'\n" + extra
    return write_project(root, _frame(), valid_df=_frame(seed=1), model_code=code, toml_extra=toml)


def processes_with(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment carries the marker."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone, or not ours to read
        if state != "Z":
            found.append(int(entry.name))
    return found


def _wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = processes_with(marker)
    for pid in survivors:  # leave nothing sleeping behind when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return survivors


# build_model starts a grandchild (it must die too: it is in the worker's process group), says it is
# running, then sleeps far past the test.
SLEEPY_BUILD = '''
import subprocess, sys, time
from pathlib import Path

def build_model(n_inputs, n_outputs):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(__file__).with_name("started").write_text("yes")
    time.sleep(600)
'''


@linux_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_check_killed_by_a_signal_leaves_nothing_running(tmp_path, signum):
    root = _project(tmp_path / "p", SLEEPY_BUILD)
    marker = uuid.uuid4().hex
    env = {**os.environ, MARKER_VAR: marker}
    cli = subprocess.Popen([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--checks",
                            "sanity.model_builds", "--check-timeout", "300"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (root / "started").exists() and time.monotonic() < deadline and cli.poll() is None:
            time.sleep(0.1)
        assert (root / "started").exists(), cli.stderr.read() if cli.poll() is not None else "never started"
        time.sleep(0.3)  # the grandchild is spawned before the file is written; let it exec
        assert len(processes_with(marker)) >= 3  # the CLI, the worker, the grandchild
        cli.send_signal(signum)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 128 + signum, err
    assert "Traceback" not in err and f"stopped by {signum.name}" in err
    assert not _wait_gone(marker), "a process of the run survived its command"


HOOK_HANGS = '''
import time
import torch.nn as nn

def _stall(module, inputs, output):
    while True:
        time.sleep(0.05)

def build_model(n_inputs, n_outputs):
    model = nn.Sequential(nn.Linear(n_inputs, 8), nn.ReLU(), nn.Linear(8, n_outputs))
    model[2].register_forward_hook(_stall)
    return model
'''


def test_a_hang_in_the_models_forward_marks_the_model_hung(tmp_path):
    root = _project(tmp_path / "p", HOOK_HANGS)
    result = run_checks(load_project(root), RunOptions(steps=["sanity", "architecture"], check_timeout=4))
    timed_out = [f for f in result.findings if "timed out" in f.title]
    assert len(timed_out) == 1, [(f.check, f.title) for f in result.findings]
    assert "model code (its forward() or a hook)" in timed_out[0].title and "_stall" in timed_out[0].detail
    refused = [f for f in result.findings if f.title.startswith("not run: the model's own code")]
    assert refused, [(f.check, f.status, f.title) for f in result.findings]
    assert all(f.status == "error" for f in refused)
    assert "_stall" in refused[0].detail  # where it hung, once more


@pytest.mark.parametrize("how", ["__import__('os')._exit(7)", "__import__('ctypes').string_at(0)"], ids=["exit", "segfault"])
def test_a_project_function_that_kills_the_worker_is_not_called_again(tmp_path, how):
    code = f"def build_model(n_inputs, n_outputs):\n    {how}\n"
    root = _project(tmp_path / "p", code)
    result = run_checks(load_project(root), RunOptions(steps=["sanity", "architecture"], check_timeout=60))
    died = [f for f in result.findings if "process died" in f.title]
    assert len(died) == 1, [(f.check, f.title) for f in result.findings]
    assert "inside the project's build_model()" in died[0].title
    again = [f for f in result.findings if "was not called again" in f.title]
    assert again and all(f.status == "error" for f in again)


def test_a_module_whose_import_hangs_is_stopped_with_a_message(tmp_path):
    root = _project(tmp_path / "p", "import time\nwhile True:\n    time.sleep(0.05)\n\ndef build_model(n_inputs, n_outputs):\n    pass\n")
    with pytest.raises(ProjectError) as caught:
        run_checks(load_project(root), RunOptions(steps=["sanity"], check_timeout=1))
    message = str(caught.value)
    assert "importing [model] code = \"model.py\" did not finish within 20 s" in message
    assert "model.py" in message and "nothing was checked" in message


def test_a_module_that_exits_on_import_is_exit_2_with_its_last_words(tmp_path):
    code = "import sys, os\nprint('cannot find the GPU config', file=sys.stderr, flush=True)\nos._exit(3)\n"
    root = _project(tmp_path / "p", code)
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("mltriage: ") and "exit code 3" in r.stderr and "importing" in r.stderr
    assert "cannot find the GPU config" in r.stderr and "most recent call last" not in r.stderr


def test_a_worker_that_dies_before_its_plan_is_exit_2(tmp_path):
    root = write_project(tmp_path / "p", _frame(), valid_df=_frame(seed=1))
    env = {**os.environ, "MLTRIAGE_MEMORY_LIMIT_MB": "40"}  # too small to even import pandas
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--format", "json"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr)
    assert r.stderr.startswith("mltriage: ") and "nothing was checked" in r.stderr
    assert "Error" in r.stderr.split("Last output", 1)[1]  # its last words: MemoryError, ImportError, ...
    assert "most recent call last" not in r.stderr


# Checks that end their process (as a too-small memory limit or a broken extension would): without a
# limit on restarts each one costs a fresh worker and its start-up.
DYING_CHECKS = '''
import os
from mltriage.checks.engine.registry import check

for i in range(6):
    @check(f"sanity.zz_die{i}")
    def die(ctx):
        os._exit(3)
'''


def test_workers_lost_in_a_row_stop_the_restarts(tmp_path, monkeypatch):
    from helpers import install_plugin
    from mltriage.checks.engine import supervisor

    install_plugin(tmp_path, monkeypatch, "zz_dying", DYING_CHECKS)
    root = write_project(tmp_path / "p", _frame(), valid_df=_frame(seed=1))
    ids = [f"sanity.zz_die{i}" for i in range(6)]
    result = run_checks(load_project(root), RunOptions(checks=ids))
    titles = [f.title for f in result.findings]
    lost = supervisor.MAX_WORKERS_LOST_IN_A_ROW
    assert [f.check for f in result.findings] == ids
    assert all("process died (exit code 3)" in t for t in titles[:lost]), titles
    assert all(t.startswith(f"not run: the previous {lost} checks") for t in titles[lost:]), titles
    assert all(f.status == "error" for f in result.findings)
