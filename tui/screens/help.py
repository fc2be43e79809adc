"""The help screen: the main screen's keys (from the action table) and what the statuses mean."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..actions import FINDING, HELP, bindings, help_rows
from ..guide import STATUS_MEANINGS
from ..present import ICONS, STYLES


def _keys(screen: str | None = None) -> Table:
    keys = Table(box=None, padding=(0, 2), show_header=False)
    keys.add_column(style="bold", no_wrap=True)
    keys.add_column()
    for key, what in (help_rows() if screen is None else help_rows(screen)):
        keys.add_row(key, what)
    return keys


def help_table() -> tuple[Table, Table]:
    """The main screen's keys, derived from the action table, and the statuses."""
    keys = _keys()
    statuses = Table(box=None, padding=(0, 2), show_header=False)
    statuses.add_column(no_wrap=True)
    statuses.add_column()
    for status, meaning in STATUS_MEANINGS:
        statuses.add_row(Text(f"{ICONS[status]} {status}", style=STYLES[status]), meaning)
    return keys, statuses


class HelpScreen(ModalScreen[None]):
    """The keys and what the statuses mean (?)."""

    BINDINGS = bindings(HELP)

    def compose(self) -> ComposeResult:
        keys, statuses = help_table()
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            yield Static(keys)
            yield Label("On a finding's rows", classes="dialog-title")
            yield Static(_keys(FINDING))
            yield Label("What the statuses mean", classes="dialog-title")
            yield Static(statuses)
            yield Static(Text("esc: close", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()  # arrow keys scroll it on small terminals
