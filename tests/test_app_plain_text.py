"""Everything a user or a dataset supplies is shown as plain text: brackets are not markup ("[data]
target" keeps "[data]", "[/]" cannot break or freeze the app) and control characters (ESC, BEL, bidi
overrides) are shown escaped, never sent to the terminal (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_fixtures import pilot_test, write_tiny_project

from mltriage.tui.app import MainScreen, MltriageApp
from mltriage.tui.plain import plain
from mltriage.tui.screens import BrokenProjectScreen, FindingScreen
from mltriage.tui.session import Session

SIZE = (120, 40)
# A bit of everything hostile: markup-like brackets, a closing tag with no opening, an ANSI colour, an
# OSC title change ended by BEL, and a right-to-left override.
HOSTILE = "[data] target [/] [bold red]x[/bold red] \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \u202eevil"
CONTROL = ("\x1b", "\x07", "\u202e")




def shown_literally(text: str) -> bool:
    """The hostile string's visible parts are there as typed, and no control character is."""
    return ("[data] target [/] [bold red]x[/bold red]" in text and "\\x1b[31mred" in text and "\\x07" in text
            and "\\u202e" in text and not any(c in text for c in CONTROL))


def hostile_run() -> dict:
    def finding(check, status, title, detail="", fix="", evidence=None, plots=None):
        return {"check": check, "step": check.split(".")[0], "status": status, "title": title,
                "detail": detail, "fix": fix, "evidence": evidence or {}, "seconds": 0.05, "plots": plots or []}

    heatmap = {"kind": "heatmap", "title": "confusion " + HOSTILE, "x_label": "predicted [/]", "y_label": "true",
               "x_log": False, "y_log": False, "series": [], "matrix": [[5, 2], [1, 12]],
               "row_labels": ["[/]", "\x1b[2J"], "col_labels": ["[b]", "[/b]"]}
    bars = {"kind": "bar", "title": "per class " + HOSTILE, "x_label": "class [/]", "y_label": "rows",
            "x_log": False, "y_log": False, "matrix": None, "row_labels": None, "col_labels": None,
            "series": [{"name": "train [/]", "x": ["[/]", "\x1b[31m"], "y": [3, 4]}]}
    findings = [finding("data.split_overlap", "fail", HOSTILE, detail="rows: " + HOSTILE, fix="fix " + HOSTILE,
                        evidence={"column [/]": HOSTILE, "nested": {"path": "/tmp/[/]x", "v": HOSTILE}},
                        plots=[heatmap, bars])]
    return {"mltriage": "0", "project": "tiny", "findings": findings, "summary": {"fail": 1},
            "started": 1700000000.0, "seconds": 0.1}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    return write_tiny_project(tmp_path / "we[/]ird [data] \x1b[31mname")


def write_hostile_run(root: Path) -> None:
    runs = root / ".mltriage" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "20231114T221320.json").write_text(json.dumps(hostile_run()))


def test_plain_escapes_control_characters_and_keeps_brackets():
    assert shown_literally(plain(HOSTILE))
    assert plain("line one\nline\ttwo") == "line one\nline\ttwo"  # newlines and tabs stay


@pilot_test
async def test_hostile_finding_note_and_path_are_shown_as_plain_text(project):
    write_hostile_run(project)
    session = Session.load(project)
    session.set_note("data", "note " + HOSTILE)
    session.save()
    app = MltriageApp(project, display=str(project), cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        top = str(screen.query_one("#topbar").render())
        assert "we[/]ird [data] \\x1b[31mname" in top and "\x1b" not in top
        await pilot.press("3", "tab", "down", "down")
        assert screen.selected_check() == "data.split_overlap"
        await pilot.pause()
        option = str(screen.query_one("#checks").get_option_at_index(2).prompt)
        assert "[data] target [/]" in option and "\x1b" not in option
        assert shown_literally(str(screen.query_one("#note-preview").render()))
        detail = "\n".join(str(w.render()) for w in screen.query_one("#detail-pane").query("Static"))
        assert shown_literally(detail) and "column [/]" in detail and "/tmp/[/]x" in detail
        await pilot.press("enter")
        assert isinstance(app.screen, FindingScreen)
        await pilot.pause()
        assert shown_literally(str(app.screen.query_one("#finding-text").render()))
        await pilot.press("escape")
        app.notify("could not write /tmp/[/]out [data] \x1b[2J", title="[/]")
        screen.notify("[b]unclosed", severity="error")
        await pilot.pause(0.3)
        messages = [n.message for n in app._notifications]
        assert "could not write /tmp/[/]out [data] \\x1b[2J" in messages and "[b]unclosed" in messages
        assert all(not n.markup for n in app._notifications)
        await pilot.press("n")
        await pilot.pause()
        assert "note [data] target [/]" in app.screen.query_one("#note-area").text  # edited as it was written
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@pilot_test
async def test_broken_project_message_with_markup_and_escapes_is_plain(project):
    (project / "mltriage.toml").write_text('[data]\ntrain = "[/]\x1b[31m.csv"\ntarget = 3\n')
    app = MltriageApp(project, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, BrokenProjectScreen)
        message = str(app.screen.query_one("#broken-message").render())
        assert "\x1b" not in message and str(project).split("\x1b")[0] in message
        await pilot.press("q")
