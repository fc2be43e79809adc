"""The rows behind a finding (issue 18) as a sortable Textual DataTable: the actual texts and values.

A finding keeps up to 50,000 rows (checks/findings.py ROWS_KEPT). A DataTable cannot hold that many and
stay responsive: Textual measures every new cell when it next idles (~75 µs a row on a loaded machine) and
rebuilds its list of row offsets, O(rows), several times for each change, so filling 50,000 rows in chunks
took 100 s here, and at once 5 s of frozen screen. So the DataTable holds one page (PAGE rows) of the
records in the current order, filled in chunks of CHUNK rows, one per timer tick, with keys handled in
between; moving past a page's last row shows the next one. Sorting orders all the records in Python (a
50,000-row sort takes milliseconds) and shows the first page again: every operation costs O(PAGE), however
many rows the finding has.

Cells are rich Text built from the values (never markup; control characters escaped, tui/plain.py), cut
to fit the screen's width with an ellipsis; the screen shows the highlighted cell's full value.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from mltriage.checks.findings import RowTable

from ..plain import plain

PAGE = 500              # rows the DataTable holds at a time (its offsets are rebuilt in O(rows) per change)
CHUNK = 100             # rows per fill tick: ~30 ms of Textual's measuring on a loaded 2-core machine
FILL_PAUSE = 0.01       # seconds between chunks: keys and repaints run in between
SORT_IN_THREAD = 5_000  # records from which a sort runs in a thread (below: a few ms, done at once)
NATURAL_SAMPLE = 1_000  # records read to size the columns (the rest are cut to the same widths)
MAX_COLUMN = 60         # no column wider than this, even on a wide screen
MIN_WIDE = 12           # a shrunk column keeps at least this many cells
HEADER_MIN = 8          # a header over narrow values (True/False, small numbers) is cut to this


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_text(value: Any) -> str:
    """A value as one line: floats to 4 significant digits, lists/dicts as JSON, None as empty, newlines
    and tabs as visible marks (a row is one line), control characters escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    return plain(str(value).replace("\r\n", "\n").replace("\n", " ⏎ ").replace("\t", " "))


def full_text(value: Any) -> str:
    """A value in full, for the line under the table (newlines kept)."""
    if value is None:
        return "(empty)"
    if isinstance(value, (list, dict)):
        return plain(json.dumps(value, ensure_ascii=False))
    return plain(str(value))


_NUMBERS = (int, float, bool)


def sort_key(value: Any, reverse: bool = False) -> tuple:
    """Numbers by value, then texts case-blind; empty cells last in both directions. (Called once per
    record for each sort: kept to type checks and one tuple.)"""
    if value is None:
        return (0 if reverse else 1, 0, 0.0, "")
    if type(value) in _NUMBERS:
        return (1 if reverse else 0, 0, value, "")
    return (1 if reverse else 0, 1, 0.0, str(value).casefold())


def sorted_order(records: list[list], column: int, reverse: bool) -> list[int]:
    """The records' indices ordered by one column (stable: ties keep the check's order)."""
    keys = [sort_key(r[column] if column < len(r) else None, reverse) for r in records]
    return sorted(range(len(records)), key=keys.__getitem__, reverse=reverse)


def make_cell(value: Any, width: int) -> Text:
    """A cell: the value as one line of literal text, cut to `width` cells with an ellipsis; numbers
    right-aligned."""
    text = value_text(value)
    if cell_len(text) > width:
        cut = Text(text)
        cut.truncate(width - 1)
        text = cut.plain + "…"
    return Text(text, justify="right" if _is_number(value) else None, no_wrap=True, end="")


def value_widths(table: RowTable) -> list[int]:
    """The longest value of each column (in a sample of the records), up to MAX_COLUMN cells."""
    sample = table.records[:NATURAL_SAMPLE]
    return [min(max((cell_len(value_text(r[i])) for r in sample if i < len(r)), default=1), MAX_COLUMN)
            for i in range(len(table.columns))]


def column_widths(table: RowTable, budget: int, values: list[int] | None = None) -> list[int]:
    """Each column's width in cells, to fit `budget`: its natural width (header or longest value in a
    sample, up to MAX_COLUMN) when all fit; else headers wider than their values are cut first (to
    HEADER_MIN: `is_duplicate` over True/False), then the widest columns (the texts) until the row fits."""
    headers = [cell_len(name) + 2 for name in table.columns]  # +2: the sort arrow
    values = value_widths(table) if values is None else values
    padding = 2 * len(headers)  # DataTable's cell_padding of 1 on each side
    natural = [max(h, v) for h, v in zip(headers, values)]
    if sum(natural) + padding <= budget:
        return natural
    widths = [max(v, min(h - 2, HEADER_MIN)) for h, v in zip(headers, values)]  # no room kept for the arrow
    cap = max(widths, default=MIN_WIDE)
    while cap > MIN_WIDE and sum(min(w, cap) for w in widths) + padding > budget:
        cap -= 1
    widths = [min(w, cap) for w in widths]
    spare = budget - padding - sum(widths)  # what the cut texts left: given back to the cut headers
    for i, (h, w) in enumerate(zip(headers, widths)):
        grow = max(min(h - w, spare), 0)
        widths[i], spare = w + grow, spare - grow
    return widths


class RowsTable(DataTable):
    """A finding's RowTable; id "rows-table". Row keys are the records' indices in the RowTable.

    The DataTable holds one page of PAGE rows of the current order; moving past the page's last row (or
    before its first) shows the next (previous) page, ctrl+home / ctrl+end the first / last."""

    def __init__(self, table: RowTable, width: int = 80, **kwargs):
        super().__init__(cursor_type="cell", zebra_stripes=True, **kwargs)
        self.table = table
        self.values = value_widths(table)
        self.widths = column_widths(table, width, self.values)
        self.order = list(range(len(table.records)))
        self.page_start = 0
        self.loaded = 0             # rows of the page in the DataTable so far
        self.sorted_by: int | None = None
        self.reverse = False
        self.sorting = False        # a sort is running in a thread
        self._timer = None
        self._cursor_to: tuple[int, int] | None = None  # (row, column) for the cursor once that row is in

    @property
    def page_end(self) -> int:
        return min(self.page_start + PAGE, len(self.order))

    @property
    def filling(self) -> bool:
        return self.loaded < self.page_end - self.page_start

    def on_mount(self) -> None:
        for i, (name, width) in enumerate(zip(self.table.columns, self.widths)):
            self.add_column(Text(plain(name), style="bold"), width=width, key=str(i))
        # the cursor starts on the widest column (the text): the line under the table shows it in full
        self.show_page(0, column=max(range(len(self.values)), key=self.values.__getitem__, default=0))

    # --- one page, filled in chunks ------------------------------------------------------------------
    def show_page(self, start: int, cursor_row: int = 0, column: int | None = None) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._cursor_to = (cursor_row, self.cursor_column if column is None else column)
        self.clear()
        self.page_start, self.loaded = max(0, start), 0
        self._fill()

    def _fill(self) -> None:
        self._timer = None
        records, widths, n = self.table.records, self.widths, len(self.widths)
        begin = self.page_start + self.loaded
        end = min(begin + CHUNK, self.page_end)
        for index in self.order[begin:end]:
            record = records[index]
            self.add_row(*(make_cell(record[c] if c < len(record) else None, widths[c]) for c in range(n)),
                         key=str(index))
        self.loaded = end - self.page_start
        if self._cursor_to is not None and self._cursor_to[0] < self.loaded:
            row, column = self._cursor_to
            self.move_cursor(row=row, column=column, animate=False)
            self._cursor_to = None
        if self.filling:
            self._timer = self.set_timer(FILL_PAUSE, self._fill)
        self.post_message(self.Filled(self))

    class Filled(Message):
        """The table grew or was re-ordered (the screen updates its caption)."""

        def __init__(self, table: "RowsTable"):
            super().__init__()
            self.table = table

    # --- moving across pages ----------------------------------------------------------------------------
    def _next_page(self) -> bool:
        if self.filling or self.cursor_row < self.row_count - 1 or self.page_end >= len(self.order):
            return False
        self.show_page(self.page_end)
        return True

    def _previous_page(self) -> bool:
        if self.cursor_row > 0 or self.page_start == 0:
            return False
        self.show_page(self.page_start - PAGE, cursor_row=PAGE - 1)
        return True

    def action_cursor_down(self) -> None:
        if not self._next_page():
            super().action_cursor_down()

    def action_page_down(self) -> None:
        if not self._next_page():
            super().action_page_down()

    def action_cursor_up(self) -> None:
        if not self._previous_page():
            super().action_cursor_up()

    def action_page_up(self) -> None:
        if not self._previous_page():
            super().action_page_up()

    def action_scroll_top(self) -> None:
        if self.page_start:
            self.show_page(0)
        else:
            super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        last = (max(len(self.order) - 1, 0) // PAGE) * PAGE
        if self.page_start != last:
            self.show_page(last, cursor_row=len(self.order) - 1 - last)
        else:
            super().action_scroll_bottom()

    # --- sorting ---------------------------------------------------------------------------------
    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by that column (again: reversed), as `s` does."""
        event.stop()
        self.sort_by(event.column_index)

    def sort_by(self, column: int) -> None:
        """Sort every record (not only the page) by a column; the same column again reverses. The first
        page is then shown, the cursor on its first row. A large table is sorted in a thread (a 50,000-row
        sort holds the GIL for a few hundred ms on a loaded machine; the thread lets the loop run)."""
        self.reverse = not self.reverse if self.sorted_by == column else False
        self.sorted_by = column
        if len(self.order) < SORT_IN_THREAD:
            self._show_sorted(sorted_order(self.table.records, column, self.reverse))
        else:
            self.sorting = True
            self.post_message(self.Filled(self))
            self._sort_in_thread(column, self.reverse)

    @work(exclusive=True, group="rows-sort")
    async def _sort_in_thread(self, column: int, reverse: bool) -> None:
        order = await asyncio.to_thread(sorted_order, self.table.records, column, reverse)
        self._show_sorted(order)  # a newer sort cancels this worker before it gets here

    def _show_sorted(self, order: list[int]) -> None:
        self.order, self.sorting = order, False
        self._label_columns()
        self.show_page(0, column=self.sorted_by)

    def _label_columns(self) -> None:
        for i, name in enumerate(self.table.columns):
            arrow = ("" if i != self.sorted_by else " ▼" if self.reverse else " ▲")
            self.columns[self.ordered_columns[i].key].label = Text(plain(name) + arrow, style="bold")

    # --- what the cursor is on -----------------------------------------------------------------------
    def record_index(self, row: int | None = None) -> int | None:
        """The RowTable record under the cursor (or at a table row)."""
        row = self.cursor_row if row is None else row
        if not self.is_valid_row_index(row) or not self.columns:
            return None
        return int(self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)

    def record(self, row: int | None = None) -> list | None:
        index = self.record_index(row)
        return None if index is None else self.table.records[index]

    def key_value(self) -> Any:
        """The highlighted row's value in the table's key column (what `o` copies)."""
        record = self.record()
        if record is None:
            return None
        column = self.table.columns.index(self.table.key) if self.table.key in self.table.columns else 0
        return record[column] if column < len(record) else None

    def highlighted(self) -> tuple[str, Any] | None:
        """(column name, full value) of the highlighted cell."""
        record, column = self.record(), self.cursor_column
        if record is None or not 0 <= column < len(self.table.columns):
            return None
        return self.table.columns[column], record[column] if column < len(record) else None

    def caption(self) -> str:
        """"N rows" / "N of TOTAL rows" (capped), the page shown, the sort, and how far the fill is."""
        n, total = len(self.table.records), self.table.total
        text = f"{n:,} of {total:,} rows" if total > n else f"{n:,} rows"
        if n > PAGE:
            text += f" · {self.page_start + 1:,}–{self.page_end:,} shown"
        if self.sorted_by is not None:
            text += f" · by {plain(self.table.columns[self.sorted_by])} " + ("▼" if self.reverse else "▲")
        if self.sorting:
            text += " · sorting…"
        elif self.filling:
            text += " · loading…"
        return text
