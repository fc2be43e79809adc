"""The project file exists but does not load: the message, how to fix it, and retry."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from ..widgets.key_footer import KeyFooter
from ..actions import BROKEN, bindings
from ..plain import plain_text


class BrokenProjectScreen(Screen):
    """The project file exists but does not load: the message, how to fix it, and retry."""

    BINDINGS = bindings(BROKEN)

    def __init__(self, message: str, path: Path | None):
        super().__init__()
        self.message = message
        self.path = path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="broken"):
            yield Static(Text("The project file does not load", style="bold red"), id="broken-title")
            yield Static(plain_text(self.message), id="broken-message")
            yield Static(Text("Fix the file in your editor, then press r to reload. "
                              "`mltriage check` shows the same message from the command line. "
                              "`mltriage init --data FILE` writes a fresh starter file.", style="dim"),
                         id="broken-help")
        yield KeyFooter()

    def action_retry(self) -> None:
        self.app.reload_project()
