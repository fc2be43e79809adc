"""The export dialog: Markdown or HTML and a file name."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet

from ..actions import EXPORT, bindings


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Choose Markdown or HTML and a file name; returns (format, path)."""

    BINDINGS = bindings(EXPORT)

    def __init__(self, default_dir: Path, cursor_blink: bool = True):
        super().__init__()
        self.default_dir = default_dir
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="dialog"):
            yield Label("Export the session: findings, plots as text, notes, ticked items", classes="dialog-title")
            with RadioSet(id="export-format"):
                yield RadioButton("Markdown", value=True, id="fmt-markdown")
                yield RadioButton("HTML (self-contained)", id="fmt-html")
            field = Input(str(self.default_dir / "mltriage-report.md"), id="export-path")
            field.cursor_blink = self.cursor_blink
            yield field
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path").focus()

    @property
    def fmt(self) -> str:
        return "html" if self.query_one("#fmt-html", RadioButton).value else "markdown"

    @on(RadioSet.Changed)
    def format_changed(self) -> None:
        field = self.query_one("#export-path", Input)
        path = Path(field.value)
        field.value = str(path.with_suffix(".html" if self.fmt == "html" else ".md"))

    @on(Button.Pressed, "#export-go")
    @on(Input.Submitted, "#export-path")
    def export(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        if value:
            self.dismiss((self.fmt, value))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
