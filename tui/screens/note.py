"""A free-text note for one step."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from mltriage.checks.engine.registry import STEP_TITLES

from ..actions import NOTE, bindings


class NoteScreen(ModalScreen[str | None]):
    """A free-text note for one step. Escape or ctrl+s saves; nothing typed is ever thrown away."""

    BINDINGS = bindings(NOTE)

    def __init__(self, step: str, text: str, cursor_blink: bool = True):
        super().__init__()
        self.step = step
        self.text = text
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box", classes="dialog"):
            yield Label(f"Note for {STEP_TITLES[self.step]}  (esc or ctrl+s: save and close)", classes="dialog-title")
            area = TextArea(self.text, id="note-area", soft_wrap=True)
            area.cursor_blink = self.cursor_blink
            yield area

    def on_mount(self) -> None:
        self.query_one("#note-area").focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#note-area", TextArea).text)
