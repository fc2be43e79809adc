"""One finding in full: what was measured, the fix, the evidence and every plot; and, when the finding
carries them (issue 18), its rows as a sortable table: `s` sorts, `o` copies a row's key, `x` exports."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from mltriage.checks.findings import Finding, RowTable

from ..widgets.key_footer import KeyFooter
from ..actions import FINDING, bindings, palette_entries, resolve
from ..plain import plain, plain_text
from ..present import finding_text

ROWS_ACTIONS = frozenset({"sort_rows", "copy_row_key", "export_rows"})
CELL_SHOWN = 2_000  # characters of the highlighted cell shown under the table (texts are cut to 500 anyway)
# A saved run keeps no rows (they stay in the run that made them): what the screen says instead.
RERUN_NOTE = "rows are kept for the current run only: press r on the main screen to re-run"


def shown_rows(finding: Finding | None) -> RowTable | None:
    rows = finding.rows if finding is not None else None
    return rows if rows is not None and len(rows) and rows.columns else None


def names_rows(finding: Finding | None) -> bool:
    """The finding had rows, but not here: a saved run reloaded from disk (its JSON names the export,
    or counts the rows, but holds none)."""
    if finding is None or shown_rows(finding) is not None:
        return False
    return bool(finding.rows_file) or bool(getattr(finding, "rows_total", 0))


class FindingCommands(Provider):
    """The command palette's entries for this screen, from the action table (rows actions only when the
    finding has rows, bug marking only in a bug hunt)."""

    def _entries(self):
        screen = self.screen
        hunt = getattr(screen, "hunt", None) is not None
        for action in palette_entries(FINDING, hunt=hunt):
            if screen.check_action(action.action, ()) is not False:
                yield action, resolve(screen, action.action)

    async def discover(self) -> Hits:
        for action, callback in self._entries():
            yield DiscoveryHit(action.palette, callback, help=action.palette_help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, callback in self._entries():
            score = matcher.match(action.palette)
            if score > 0:
                yield Hit(score, matcher.highlight(action.palette), callback, help=action.palette_help)


class FindingScreen(Screen):
    """One finding in full: what was measured, the fix, the evidence and every plot."""

    BINDINGS = bindings(FINDING)
    COMMANDS = {FindingCommands}

    def __init__(self, check_id: str, finding: Finding | None, title: str = "", hunt=None):
        super().__init__()
        self.check_id = check_id
        self.finding = finding
        self.check_title = title
        self.hunt = hunt
        self.rows = shown_rows(finding)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "mark" and self.hunt is None:
            return False  # bug marking exists only in bug-hunt mode
        if action in ROWS_ACTIONS and self.rows is None:
            return False  # no rows: the keys are not shown and do nothing
        return True

    def compose(self) -> ComposeResult:
        from ..widgets.input_examples import DRAWN_KEYS, InputExamples, wants_input_examples
        from ..widgets.plots import plot_widget  # plotext loads on the first plot, not at start-up

        batch = self.finding is not None and wants_input_examples(self.finding.check, self.finding.evidence)
        # the widget draws these keys (examples as pictures): the text keeps the rest, never base64 PNGs
        shown = replace(self.finding, evidence={k: v for k, v in self.finding.evidence.items()
                                                if k not in DRAWN_KEYS}) if batch else self.finding
        with VerticalScroll(id="finding"):
            yield Static(finding_text(self.check_id, shown, self.check_title, full=True), id="finding-text")
            if names_rows(self.finding):
                yield Static(self._rerun_note(), id="rows-note")
            if batch:
                yield InputExamples(self.finding.evidence, id="input-examples")
            for spec in (self.finding.plots if self.finding else []):
                yield plot_widget(spec)
        if self.rows is not None:
            yield from self._compose_rows()
        yield KeyFooter()

    def _compose_rows(self) -> ComposeResult:
        from ..widgets.rows_table import RowsTable  # the DataTable loads with the first finding with rows

        self.add_class("-rows")
        # the screen's width less #rows' padding and the table's scrollbar
        table = RowsTable(self.rows, width=max(self.app.size.width - 6, 30), id="rows-table")
        with Vertical(id="rows"):
            yield Label(plain_text(table.caption()), id="rows-caption")
            yield table
            yield Static("", id="rows-cell")

    def _rerun_note(self):
        from rich.text import Text

        note = Text(RERUN_NOTE, style="italic")
        if self.finding is not None and self.finding.rows_file:
            note.append(f" (they were exported to {plain(self.finding.rows_file)})")
        return note

    def on_mount(self) -> None:
        if self.rows is not None:
            self.query_one("#rows-table").focus()  # the arrows move through the rows; tab reaches the text
        else:
            self.query_one("#finding").focus()

    # --- the rows ------------------------------------------------------------------------------
    def _table(self):
        from ..widgets.rows_table import RowsTable

        return self.query_one("#rows-table", RowsTable)

    @on(DataTable.CellHighlighted, "#rows-table")
    def _cell_highlighted(self) -> None:
        self._show_cell()

    def on_rows_table_filled(self) -> None:
        self.query_one("#rows-caption", Label).update(plain_text(self._table().caption()))
        self._show_cell()

    def _show_cell(self) -> None:
        from rich.text import Text

        from ..widgets.rows_table import full_text

        cell = self._table().highlighted()
        if cell is None:
            return
        column, value = cell
        text = full_text(value)
        if len(text) > CELL_SHOWN:
            text = text[:CELL_SHOWN] + f"… ({len(text):,} characters)"
        line = Text(plain(column) + ": ", style="bold")
        line.append(text)
        self.query_one("#rows-cell", Static).update(line)

    def action_sort_rows(self) -> None:
        table = self._table()
        table.sort_by(table.cursor_column)

    def action_copy_row_key(self) -> None:
        table = self._table()
        value = table.key_value()
        if table.record() is None:
            self.notify("No row is highlighted.", severity="warning")
            return
        text = "" if value is None else str(value)
        self.app.copy_to_clipboard(text)
        # the copy goes through the terminal (OSC 52), which works over SSH when the terminal allows it
        self.notify(f"Copied {self.rows.key} {text} (through the terminal: in tmux or over SSH it must allow "
                    f"clipboard access)", title="Copied")

    def action_export_rows(self) -> None:
        path, error = export_rows(self.app, self.check_id, self.rows)
        if error:
            self.notify(error, severity="error", timeout=12)
        else:
            self.notify(f"{len(self.rows):,} rows written to {path}", title="Rows exported", timeout=10)

    def action_mark(self) -> None:
        if self.hunt is not None:
            self.app.pop_screen()
            self.app.screen.action_mark_bug()


def export_rows(app, check_id: str, rows: RowTable):
    """Write the rows to `<project>/.mltriage/rows/<check id>.csv`; (path, error text). mltriage's own
    state folder: a file there is replaced; a link there is refused (it could point at a user's file)."""
    from mltriage.checks.io.row_export import rows_file_name, write_rows_csv
    from mltriage.checks.io.state import state_file

    config = getattr(app, "config", None)
    if config is None:
        return None, "No project is open: the rows cannot be exported."
    try:
        path = state_file(config.root, "rows", rows_file_name(check_id))
        if path.is_symlink():
            return None, f"{path} is a symbolic link; mltriage does not write its state through links. Remove it."
        return write_rows_csv(rows, path), None
    except OSError as exc:
        return None, f"could not write the rows of {check_id}: {exc.strerror or exc}"
