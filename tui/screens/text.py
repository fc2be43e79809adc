"""Ask for one line of text."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ..actions import TEXT, bindings
from ..plain import plain_text


class TextScreen(ModalScreen[str | None]):
    """Ask for one line of text (used by bug hunts: what would you fix?)."""

    BINDINGS = bindings(TEXT)

    def __init__(self, title: str, value: str = "", placeholder: str = "", cursor_blink: bool = True):
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="text-box"):
            yield Label(plain_text(self.title_text), classes="dialog-title")
            field = Input(self.value, placeholder=self.placeholder, id="text-input")
            field.cursor_blink = self.cursor_blink
            yield field
            yield Static(Text("enter: save   esc: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#text-input").focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
