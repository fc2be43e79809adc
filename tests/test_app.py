"""Pilot tests of the app: keys, runs, cancel, persistence, damaged session, broken project, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_fixtures import pilot_test, write_fixed_run, write_tiny_project

from mltriage.checks.engine.registry import STEPS
from mltriage.tui.app import MainScreen, MltriageApp
from mltriage.tui.screens import (BrokenProjectScreen, ExportScreen, FindingScreen, HelpScreen, NoteScreen,
                                  ProblemScreen, WelcomeScreen)
from mltriage.tui.session import Session, session_path

SIZE = (100, 34)




@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    return write_tiny_project(tmp_path / "tiny")


def make_app(project, **kwargs) -> MltriageApp:
    return MltriageApp(project, cursor_blink=False, check_titles=False, **kwargs)


async def wait_for(pilot, condition, timeout: float = 30.0) -> float:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)
    return time.monotonic() - t0


@pilot_test
async def test_keys_navigate_and_open_every_screen(project):
    write_fixed_run(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        for i, step in enumerate(STEPS, start=1):
            await pilot.press(str(i))
            assert screen.step == step
        await pilot.press("3")
        ids = [o.id for o in screen.query_one("#checks").options]
        assert ids[:3] == ["data.missing_values", "data.duplicates", "data.split_overlap"]  # catalog order
        await pilot.press("tab", "down", "down")
        assert screen.selected_check() == "data.split_overlap"
        await pilot.press("enter")
        assert isinstance(app.screen, FindingScreen)
        text = str(app.screen.query_one("#finding-text").render())
        assert "12 valid rows also appear in train" in text and "overlap_rows" in text and "Deduplicate" in text
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("n")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press("escape")
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")
        await pilot.press("1", "c")
        assert isinstance(app.screen, ProblemScreen)
        await pilot.press("escape")
        guide = screen.query_one("#guide")
        before = guide.collapsed
        await pilot.press("g")
        assert guide.collapsed is not before
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
        await pilot.press(*"run all")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pilot_test
async def test_command_palette_lists_every_action(project):
    app = make_app(project)
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    for expected in ("Run this step", "Run all steps", "Cancel the run", "Open the selected finding",
                     "Write a note", "Tick a checklist item", "Export the session", "Help", "Quit",
                     "Step 1: Problem definition", "Step 7: Error analysis"):
        assert expected in titles


@pilot_test
async def test_running_a_step_streams_findings_and_saves_the_run(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert "not run" in str(screen.query_one("#steps").get_option("problem").prompt)
        await pilot.press("r")
        assert screen.current_run is not None
        assert screen.query_one("#progress").has_class("running")
        await wait_for(pilot, lambda: screen.current_run is None)
        assert screen.findings["problem.task_type"].status == "pass"
        prompt = str(screen.query_one("#steps").get_option("problem").prompt)
        assert "pass" in prompt and "not run" not in prompt
        rows = [str(o.prompt) for o in screen.query_one("#checks").options]
        assert any("task_type" in r and "classification" in r for r in rows)
        assert not screen.query_one("#progress").has_class("running")
    runs = list((project / ".mltriage" / "runs").glob("*.json"))
    assert len(runs) == 1
    saved = json.loads(runs[0].read_text())
    assert {f["check"].split(".")[0] for f in saved["findings"]} == {"problem"}
    # Reopening shows the last findings.
    app = make_app(project)
    async with app.run_test(size=SIZE):
        assert app.screen.findings["problem.task_type"].status == "pass"


@pilot_test
async def test_escape_cancels_a_run_quickly(project):
    write_fixed_run(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("a")
        run = screen.current_run
        assert run is not None
        await pilot.pause(0.3)
        await pilot.press("escape")
        took = await wait_for(pilot, lambda: screen.current_run is None, timeout=5)
        assert took < 1.0
        assert run.cancel.is_set()
        # Findings set aside at the start of the run come back when it is cancelled.
        assert screen.findings["data.split_overlap"].status == "fail"
        assert not screen.query_one("#progress").has_class("running")
        assert run.finished.wait(2)
    assert len(list((project / ".mltriage" / "runs").glob("*.json"))) == 1  # only the fixture's run


@pilot_test
async def test_notes_and_ticks_persist_across_restarts(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "n")
        await pilot.press(*"leak in valid")
        await pilot.press("escape")
        await pilot.press("space")
        await pilot.press("q")
    data = json.loads(session_path(project).read_text())
    assert data["notes"] == {"data": "leak in valid"}
    assert data["ticked"] == {"data": ["Read 20 random training examples with their labels"]}
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert screen.step == "data"  # the session reopens where it was left
        assert "leak in valid" in str(screen.query_one("#note-preview").render())
        first = str(screen.query_one("#manual").get_option_at_index(0).prompt)
        assert first.startswith("[x]")
        await pilot.press("space")  # the next unticked item
    assert len(Session.load(project).ticked["data"]) == 2


@pilot_test
async def test_export_writes_markdown_and_html_with_notes_and_ticks(project):
    write_fixed_run(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "n", *"check dedupe", "escape", "space", "e")
        await pilot.press("enter")
        await pilot.pause()
        md = (project / "mltriage-report.md").read_text()
        await pilot.press("e")
        app.screen.query_one("#fmt-html").value = True
        await pilot.pause()
        await pilot.click("#export-go")
        await pilot.pause()
    assert "12 valid rows also appear in train" in md and "check dedupe" in md
    assert "- [x] Read 20 random training examples" in md
    html = (project / "mltriage-report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "check dedupe" in html and "<script" not in html


@pilot_test
async def test_damaged_session_is_set_aside_with_a_notice(project):
    path = session_path(project)
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, MainScreen)
        assert any("damaged" in n.message for n in app._notifications)
        await pilot.press("space")
    aside = list(path.parent.glob("session.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    assert json.loads(path.read_text())["ticked"]["problem"]


@pilot_test
async def test_broken_project_shows_the_message_and_reloads_when_fixed(project):
    good = (project / "mltriage.toml").read_text()
    (project / "mltriage.toml").write_text(good.replace("[data]", "[data]\ntrian = \"x.csv\""))
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, BrokenProjectScreen)
        message = str(app.screen.query_one("#broken-message").render())
        assert "unknown key 'trian'" in message and "Did you mean 'train'" in message
        (project / "mltriage.toml").write_text(good)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


@pilot_test
async def test_welcome_screen_without_a_project_opens_a_sample(tmp_path, monkeypatch):
    samples = tmp_path / "sample_projects"
    write_tiny_project(samples / "demo" / "buggy")
    monkeypatch.setenv("MLTRIAGE_SAMPLES", str(samples))
    monkeypatch.chdir(tmp_path)
    app = make_app(None)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, WelcomeScreen)
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "mltriage init" in text
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and app.screen.config.name == "tiny"


@pilot_test
async def test_problem_step_writes_task_and_metric_keeping_comments(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, ProblemScreen)
        dialog.query_one("#metric-select").value = "balanced_accuracy"
        await pilot.pause()
        await pilot.click("#problem-write")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.screen.config.metric == "balanced_accuracy"
        assert "confirmed by you" in str(app.screen.query_one("#inferred").render())
    text = (project / "mltriage.toml").read_text()
    assert "# A tiny project for the app tests." in text and "# shown in the top bar" in text
    assert 'metric = "balanced_accuracy"' in text


def test_set_project_keys_adds_a_table_after_the_header_comment():
    from mltriage.tui.projectfile import set_project_keys

    text = "# my project\n\n[data]  # the data\ntrain = \"t.csv\"\ntarget = \"y\"\n"
    out = set_project_keys(text, {"task": "regression", "metric": "mae"})
    assert out.startswith("# my project\n\n[project]\ntask = \"regression\"\nmetric = \"mae\"\n")
    assert "[data]  # the data" in out


def _spawn_in_pty(args: list[str], cwd: Path, env: dict) -> tuple[subprocess.Popen, int]:
    import pty

    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                            start_new_session=True)
    os.close(slave)
    return proc, master


def _read_until(master: int, needle: bytes, timeout: float) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                out += os.read(master, 65536)
            except OSError:
                break
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signals_exit_cleanly_and_restore_the_terminal(project, sig):
    env = dict(os.environ, TERM="xterm-256color")
    proc, master = _spawn_in_pty([sys.executable, "-m", "mltriage.tui.cli", str(project)], project, env)
    try:
        screen = _read_until(master, b"Problem definition", 15)
        assert b"Problem definition" in screen
        proc.send_signal(sig)
        rest = _read_until(master, b"\x1b[?1049l", 5)
        assert proc.wait(5) == 128 + sig
        assert b"\x1b[?1049l" in rest  # left the alternate screen: the terminal is restored
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_app_start_imports_no_heavy_library(project):
    script = (
        "import asyncio, sys\n"
        "from mltriage.tui.app import MltriageApp\n"
        "async def main():\n"
        f"    app = MltriageApp({str(project)!r}, cursor_blink=False)\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        await pilot.pause(0.5)\n"
        "        await pilot.press('3', 'enter', 'escape', 'n', 'escape')\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'pandas', 'numpy', 'scipy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- the action table: bindings, palette and help derived from one declaration -----------------------
def _readme_keys() -> set[str]:
    """The keys of the README's key table (`1`–`7` stands for 1 … 7)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    lines = text[text.index("| key | action | key | action |"):].splitlines()[2:]
    keys: set[str] = set()
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for cell in cells[0::2]:
            found = re.findall(r"`([^`]+)`", cell)
            if len(found) == 2 and "–" in cell:  # a range: `1`–`7`
                keys.update(str(i) for i in range(int(found[0]), int(found[1]) + 1))
            else:
                keys.update(found)
    return keys


def test_readme_key_table_lists_the_action_tables_keys():
    from mltriage.tui.actions import MAIN, actions_of

    # The README shows the keys of a normal session: bug-hunt keys are explained with the tour, and the
    # arrows/tab are not listed.
    table = {a.key for a in actions_of(MAIN) if not a.hunt_only and a.id != "move"}
    assert _readme_keys() == table


def test_every_screens_bindings_come_from_the_action_table():
    from mltriage.tui import actions
    from mltriage.tui.screens import (BrokenProjectScreen, ExportScreen, FindingScreen, HelpScreen, MainScreen,
                                      NoteScreen, ProblemScreen, RevealScreen, TextScreen, TourScreen,
                                      WelcomeScreen)

    screens = {actions.MAIN: MainScreen, actions.APP: MltriageApp, actions.WELCOME: WelcomeScreen,
               actions.BROKEN: BrokenProjectScreen, actions.FINDING: FindingScreen, actions.NOTE: NoteScreen,
               actions.EXPORT: ExportScreen, actions.HELP: HelpScreen, actions.PROBLEM: ProblemScreen,
               actions.TEXT: TextScreen, actions.REVEAL: RevealScreen, actions.TOUR: TourScreen}
    assert {a.screen for a in actions.ACTIONS} == set(screens)
    ids = [a.id for a in actions.ACTIONS]
    assert len(ids) == len(set(ids))
    for name, cls in screens.items():
        declared = [(b.key, b.action, b.description, b.show, b.id) for b in cls.BINDINGS]
        table = [(a.key, a.action, a.description, a.show, a.id) for a in actions.actions_of(name) if a.bind]
        assert declared == table, name
        for a in actions.actions_of(name):  # each action names a method that exists
            if a.bind and not a.action.startswith("app."):
                assert hasattr(cls, "action_" + a.action.split("(")[0]), a.id
    # The footer's order on the main screen is the one users know.
    shown = [b.key for b in MainScreen.BINDINGS if b.show]
    assert shown == ["r", "a", "escape", "n", "e", "b", "k", "t", "?", "q"]


def test_help_screen_keys_are_the_action_tables():
    from mltriage.tui.actions import help_rows
    from mltriage.tui.screens.help import help_table

    rows = help_rows()
    keys, _ = help_table()
    assert keys.row_count == len(rows)
    assert rows[0] == ("1 … 7", "jump to a step") and ("ctrl+p", "command palette: every action") in rows
    assert ("b / k", "bug hunts (mltriage tour): mark a finding as a bug / reveal the answer key") in rows
    assert [k for k, _ in rows][-2:] == ["?", "q"]


@pilot_test
async def test_command_palette_follows_the_action_table_and_hunt_mode(project):
    from mltriage.tui.actions import MAIN, palette_entries

    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        expected = [a.palette for a in palette_entries(MAIN, hunt=False)]
        assert titles[:len(expected)] == expected and titles[len(expected)] == "Help"
        assert "Mark as a bug" not in titles
        assert commands[titles.index("Run this step")].help == "Run the current step's checks (r)"
        app.screen.hunt = object()  # bug-hunt mode adds its two actions
        assert "Mark as a bug" in {c.title for c in app.get_system_commands(app.screen)}
        app.screen.hunt = None
        next(c for c in commands if c.title == "Step 3: Data").callback()
        await pilot.pause()
        assert app.screen.step == "data"


# --- typed messages from the worker thread ------------------------------------------------------------
def test_run_state_sets_old_findings_aside_and_restores_them():
    from mltriage.checks.findings import Finding
    from mltriage.tui.run_controller import RunState

    old = Finding(check="data.duplicates", step="data", status="fail", title="old")
    findings = {"data.duplicates": old}
    run = RunState(steps=["data"])
    run.planned(["data.duplicates", "data.outliers"], findings)
    assert findings == {} and run.step_progress("data") == (0, 2) and run.step_progress("problem") is None
    run.current = "data.outliers"
    new = Finding(check="data.outliers", step="data", status="pass", title="new")
    run.arrived(new, findings)
    assert run.current is None and run.step_progress("data") == (1, 2)
    run.arrived(Finding(check="data.duplicates", step="data", status="warn", title="new too"), findings)
    assert run.step_progress("data") is None       # every planned check arrived: the step shows its verdicts
    findings.pop("data.duplicates")
    run.restore(findings)
    assert findings == {"data.outliers": new, "data.duplicates": old}


@pilot_test
async def test_messages_posted_from_a_thread_update_the_screen(project):
    import threading

    from mltriage.checks.findings import Finding
    from mltriage.tui.messages import CheckStarted, FindingArrived, RunEnded, RunPlanned
    from mltriage.tui.run_controller import RunState

    write_fixed_run(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("3")
        run = screen.runs.current = app.active_run = RunState(steps=["data"])
        fresh = Finding(check="data.outliers", step="data", status="pass", title="no outliers")

        def worker() -> None:  # what the run controller's thread does, without a child process
            screen.post_message(RunPlanned(run, ["data.outliers", "data.split_overlap"]))
            screen.post_message(CheckStarted(run, "data.outliers"))
            screen.post_message(FindingArrived(run, fresh))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: "data.outliers" in run.done)
        assert "data.split_overlap" not in screen.findings  # set aside while it runs
        assert "running 1/2" in str(screen.query_one("#steps").get_option("data").prompt)
        screen.post_message(RunEnded(run, None, "The run stopped: planted"))
        await wait_for(pilot, lambda: screen.current_run is None)
        assert app.active_run is None
        assert screen.findings["data.split_overlap"].status == "fail"  # restored: the run stopped early
        assert screen.findings["data.outliers"] is fresh
        assert any("planted" in n.message for n in app._notifications)
