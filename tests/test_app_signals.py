"""The app ends on SIGHUP/SIGTERM, whatever it is doing: the terminal hung up just after the first frame,
its event loop blocked, a check worker running project code, a note being typed. It saves the session
and the note draft, restores the terminal when there is one, and leaves no process behind (issue 19).

Every wait is bounded and generous (the machine is loaded); no test asserts a duration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from app_fixtures import write_tiny_project

from mltriage.tui.session import session_path

MARKER_VAR = "MLTRIAGE_TEST_MARKER"
FIRST_FRAME = b"Problem definition"
EXIT_WAIT = 10.0       # the app must be gone by then (it aims at one second)
SURVIVOR_WAIT = 5.0    # and every process carrying the marker, this long after


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    return write_tiny_project(tmp_path / "tiny")


def marked_pids(marker: str) -> list[int]:
    """Processes (of this user) whose environment carries the marker."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_until_none(marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in marked_pids(marker) if not _zombie(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in marked_pids(marker) if not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def spawn(args: list[str], cwd: Path, marker: str, size=(24, 80)) -> tuple[subprocess.Popen, int]:
    """Start `args` on a fresh pty (its own session, like a tmux pane); returns the process and the master."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    env = dict(os.environ, TERM="xterm-256color", **{MARKER_VAR: marker})

    def controlling_tty():  # in the child: the pty becomes its controlling terminal, so a hangup signals it
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                            start_new_session=True, preexec_fn=controlling_tty)
    os.close(slave)
    return proc, master


def read_until(master: int, needle: bytes, timeout: float) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def drain(master: int, seconds: float) -> bytes:
    return read_until(master, b"\0never\0", seconds)


def app_args(project: Path) -> list[str]:
    return [sys.executable, "-m", "mltriage.tui.cli", str(project)]


def finish(proc: subprocess.Popen, master: int | None, marker: str) -> None:
    """Whatever happened, leave nothing running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    for pid in marked_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if master is not None:
        try:
            os.close(master)
        except OSError:
            pass


@pytest.mark.parametrize("attempt", range(3))
def test_hangup_just_after_the_first_frame_ends_the_app(project, attempt):
    """What `tmux kill-session` does: the terminal goes away (its master closes) and SIGHUP arrives."""
    marker = uuid.uuid4().hex
    proc, master = spawn(app_args(project), project, marker)
    try:
        assert FIRST_FRAME in read_until(master, FIRST_FRAME, 60)
        os.close(master)  # the terminal is gone: every later read/write of the app fails
        master = None
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(EXIT_WAIT) == 128 + signal.SIGHUP
        assert wait_until_none(marker, SURVIVOR_WAIT) == []
    finally:
        finish(proc, master, marker)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_while_the_event_loop_is_blocked_still_ends_the_app(project, tmp_path, sig):
    """A stuck event loop (what a hung-up terminal causes inside Textual) must not make the app ignore
    SIGTERM: it saves the session from the signal's thread, restores the terminal and exits."""
    marker = uuid.uuid4().hex
    script = tmp_path / "blocked_app.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from mltriage.tui import app as app_module
        from mltriage.tui.screens.main import MainScreen

        original = MainScreen.on_mount
        def on_mount(self):
            original(self)
            self.session.set_note("data", "typed before the hang")
            def block():
                sys.__stderr__.write("BLOCKED\\n"); sys.__stderr__.flush()
                time.sleep(120)
            self.set_timer(0.5, block)
        MainScreen.on_mount = on_mount
        sys.exit(app_module.run_app({str(project)!r}))
    """))
    proc, master = spawn([sys.executable, str(script)], project, marker)
    try:
        assert b"BLOCKED" in read_until(master, b"BLOCKED", 60)
        proc.send_signal(sig)
        assert proc.wait(EXIT_WAIT) == 128 + sig
        rest = drain(master, 0.5)
        assert b"\x1b[?1049l" in rest  # left the alternate screen
        assert json.loads(session_path(project).read_text())["notes"]["data"] == "typed before the hang"
        assert wait_until_none(marker, SURVIVOR_WAIT) == []
    finally:
        finish(proc, master, marker)


HANGING_IMPORT = """
import time
time.sleep(600)   # project code that never finishes importing: the worker is busy in it


def build_model(n_inputs, n_outputs):
    raise RuntimeError("never reached")
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_a_run_leaves_no_worker_behind(project, sig):
    (project / "model.py").write_text(HANGING_IMPORT)
    toml = project / "mltriage.toml"
    toml.write_text(toml.read_text() + '\n[model]\ncode = "model.py"\nbuild = "build_model"\n')
    marker = uuid.uuid4().hex
    proc, master = spawn(app_args(project), project, marker)
    try:
        assert FIRST_FRAME in read_until(master, FIRST_FRAME, 60)
        os.write(master, b"2")
        time.sleep(0.5)
        os.write(master, b"r")
        deadline = time.monotonic() + 60
        while len(marked_pids(marker)) < 2 and time.monotonic() < deadline:  # the app and its worker
            drain(master, 0.2)
        assert len(marked_pids(marker)) >= 2, "the run did not start a worker"
        drain(master, 1.0)  # the worker is now inside the project's import
        proc.send_signal(sig)
        assert proc.wait(EXIT_WAIT) == 128 + sig
        assert wait_until_none(marker, SURVIVOR_WAIT) == []
    finally:
        finish(proc, master, marker)


def test_note_typed_before_a_hangup_is_kept_and_reopened(project):
    marker = uuid.uuid4().hex
    proc, master = spawn(app_args(project), project, marker)
    try:
        assert FIRST_FRAME in read_until(master, FIRST_FRAME, 60)
        os.write(master, b"3")
        drain(master, 0.5)
        os.write(master, b"n")
        assert b"Note for" in read_until(master, b"Note for", 30)
        os.write(master, b"labels shifted [data] in week 3")
        drain(master, 0.3)  # typed, and the signal comes before the draft's debounce may have fired
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(EXIT_WAIT) == 128 + signal.SIGHUP
    finally:
        finish(proc, master, marker)
    data = json.loads(session_path(project).read_text())
    assert data["drafts"] == {"data": "labels shifted [data] in week 3"}
    assert "data" not in data.get("notes", {})  # a draft, not a saved note

    marker = uuid.uuid4().hex
    proc, master = spawn(app_args(project), project, marker)
    try:
        screen = read_until(master, b"draft restored", 60)
        assert b"draft restored" in screen  # the dialog is open again, with the text
        os.write(master, b"\x1b")  # escape: save and close
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            drain(master, 0.2)
            notes = json.loads(session_path(project).read_text()).get("notes", {})
            if notes.get("data"):
                break
        data = json.loads(session_path(project).read_text())
        assert data["notes"]["data"] == "labels shifted [data] in week 3"
        assert "drafts" not in data
        os.write(master, b"q")
        assert proc.wait(EXIT_WAIT) == 0
    finally:
        finish(proc, master, marker)


@pytest.mark.skipif(__import__("shutil").which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("attempt", range(3))
def test_tmux_kill_session_just_after_the_first_frame_ends_the_app(project, attempt):
    """The reported case itself: `tmux kill-session` right after the first frame (a private tmux server)."""
    marker = uuid.uuid4().hex
    server = ["tmux", "-L", f"mltriage-test-{marker[:12]}"]
    command = f"env {MARKER_VAR}={marker} {sys.executable} -m mltriage.tui.cli '{project}'"
    subprocess.run(server + ["-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", "80", "-y", "24", command],
                   check=True, timeout=30, env=dict(os.environ, TERM="xterm-256color"))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pane = subprocess.run(server + ["capture-pane", "-p", "-t", "app"], capture_output=True, text=True,
                                  timeout=30).stdout
            if FIRST_FRAME.decode() in pane:
                break
            time.sleep(0.05)
        assert FIRST_FRAME.decode() in pane
        subprocess.run(server + ["kill-session", "-t", "app"], timeout=30)
        assert wait_until_none(marker, EXIT_WAIT + SURVIVOR_WAIT) == []
    finally:
        subprocess.run(server + ["kill-server"], capture_output=True, timeout=30)
        socket = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / server[2]
        socket.unlink(missing_ok=True)  # tmux leaves the socket file of a killed server behind
        for pid in marked_pids(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
