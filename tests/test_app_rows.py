"""The rows behind a finding in the app (issue 18 item 1): enter on a finding with rows shows them as a
sortable DataTable with the actual texts; `s` sorts by the highlighted column, `o` copies the row's key,
`x` exports the rows as CSV; a 50,000-row table fills in chunks while keys are handled; a finding from a
saved run (no rows kept) says how to get them back.

Findings with rows are injected into the main screen as a live run would deliver them (a saved run never
holds rows). Every wait is bounded and generous; no test asserts a duration.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from app_fixtures import pilot_test, write_fixed_run, write_tiny_project

from mltriage.checks.findings import Finding, RowTable, warn
from mltriage.tui.app import MltriageApp
from mltriage.tui.screens import FindingScreen
from mltriage.tui.widgets.rows_table import PAGE, RowsTable, column_widths, make_cell, sort_key

SIZE = (100, 34)
TEXTS = ["the film was a delight", "Terrible acting [bold]and[/] a dull plot", "zero stars, never again",
         "A moving story, well told", "meh", "best film of the year " * 40]




@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    project = write_tiny_project(tmp_path / "tiny")
    write_fixed_run(project)
    return project


def duplicates_finding(total: int = 9) -> Finding:
    """data.duplicates-style rows: position, split, text, is_duplicate, duplicate_score."""
    rows = RowTable.from_columns({"position": [12, 3, 40, 7, 25, 31], "split": ["train"] * 6, "text": TEXTS,
                                  "is_duplicate": [True] * 6,
                                  "duplicate_score": [0.91, 0.99, None, 0.5, 0.77, 0.6]}, total=total)
    f = warn(f"{total} duplicate rows in train", detail="Rows that appear more than once.",
             fix="Drop the duplicates.", evidence={"duplicate_rows": total}, rows=rows)
    f.check, f.step = "data.duplicates", "data"
    return f


def inject(app: MltriageApp, finding: Finding) -> None:
    screen = app.screen
    screen.findings[finding.check] = finding
    screen.refresh_checks()


async def open_duplicates(pilot, app, finding: Finding) -> FindingScreen:
    inject(app, finding)
    await pilot.press("3", "tab", "down", "enter")  # data.duplicates: the second check of the data step
    await pilot.pause()
    assert isinstance(app.screen, FindingScreen) and app.screen.check_id == "data.duplicates"
    return app.screen


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def first_texts(table: RowsTable, column: int, n: int = 3) -> list:
    return [table.record(i)[column] for i in range(n)]


# --- pure helpers -------------------------------------------------------------------------------------
def test_sort_key_orders_numbers_then_texts_and_keeps_empty_cells_last():
    values = [3, None, "b", 1.5, "A", True]
    assert sorted(values, key=sort_key) == [True, 1.5, 3, "A", "b", None]
    assert sorted(values, key=lambda v: sort_key(v, True), reverse=True)[-1] is None


def test_cells_are_literal_one_line_and_cut_to_their_column():
    cell = make_cell("a [bold]b[/] \x1b[31m\nnext line " + "x" * 100, 30)
    assert "[bold]b[/]" in cell.plain and "\x1b" not in cell.plain and "\n" not in cell.plain
    assert cell.cell_len == 30 and cell.plain.endswith("…") and cell.plain.startswith("a [bold]")
    assert make_cell(0.123456, 10).plain == "0.1235" and make_cell(None, 5).plain == ""
    table = RowTable(["position", "text", "score"], [[1, "w " * 200, 0.5]])
    widths = column_widths(table, 80)
    assert sum(widths) + 2 * len(widths) <= 80 and widths[1] > widths[0]
    assert column_widths(RowTable(["position", "text"], [[1, "short"]]), 80) == [10, 6]


def test_a_finding_names_rows_it_no_longer_holds_only_when_reloaded():
    from mltriage.tui.screens.finding import names_rows

    live = duplicates_finding()
    assert not names_rows(live) and not names_rows(None) and not names_rows(warn("no rows"))
    live.rows = None
    assert not names_rows(live)
    live.rows_file = "rows/data.duplicates.csv"  # the run exported them (--export-rows)
    assert names_rows(live)
    live.rows_file, live.rows_total = None, 9  # the saved run counted them
    assert names_rows(live)


def test_export_writes_into_the_state_folder_and_never_through_a_link(tmp_path):
    from types import SimpleNamespace

    from mltriage.tui.screens.finding import export_rows

    app = SimpleNamespace(config=SimpleNamespace(root=tmp_path))
    rows = duplicates_finding().rows
    path, error = export_rows(app, "data.duplicates", rows)
    assert error is None and path == tmp_path / ".mltriage" / "rows" / "data.duplicates.csv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(rows.columns)
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("mine")
    path.unlink()
    path.symlink_to(theirs)
    path2, error = export_rows(app, "data.duplicates", rows)
    assert path2 is None and "symbolic link" in error and theirs.read_text() == "mine"
    assert export_rows(SimpleNamespace(config=None), "data.duplicates", rows)[1].startswith("No project")


# --- the finding screen ---------------------------------------------------------------------------------
@pilot_test
async def test_rows_show_the_texts_sort_copy_and_export(project):
    app = MltriageApp(project, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        finding = duplicates_finding()
        screen = await open_duplicates(pilot, app, finding)
        table = screen.query_one("#rows-table", RowsTable)
        await wait_for(pilot, lambda: not table.filling)
        assert table.row_count == 6 and app.focused is table
        cells = [str(table.get_cell_at((r, 2))) for r in range(6)]
        assert "the film was a delight" in cells and cells[1].startswith("Terrible acting [bold]and[/]")
        assert "6 of 9 rows" in str(screen.query_one("#rows-caption").render())
        # the long text is cut in the table and shown in full under it
        assert table.cursor_column == 2  # the cursor starts on the text, shown in full under the table
        await pilot.press("down", "down", "down", "down", "down")
        assert table.cursor_coordinate == (5, 2) and str(table.get_cell_at((5, 2))).endswith("…")
        assert "best film of the year " * 10 in str(screen.query_one("#rows-cell").render())

        # s sorts by the highlighted column (text), again reverses; the cursor goes to the first row
        assert table.record(0)[2] == "the film was a delight"
        await pilot.press("s")
        assert first_texts(table, 2) == ["A moving story, well told", "best film of the year " * 40, "meh"]
        await pilot.press("s")
        assert table.record(0)[2] == "zero stars, never again" and table.cursor_row == 0
        await pilot.press("left", "left", "s")  # position, ascending
        assert first_texts(table, 0) == [3, 7, 12]
        await pilot.press("right", "right", "right", "right", "s", "s")  # score, descending: empty last
        assert first_texts(table, 4, 6) == [0.99, 0.91, 0.77, 0.6, 0.5, None]

        await pilot.click("#rows-table", offset=(4, 0))  # a click on a header sorts by it: position
        assert table.sorted_by == 0 and not table.reverse and first_texts(table, 0) == [3, 7, 12]
        await pilot.press("right", "right", "right", "right", "s", "s")  # score, descending: empty last
        assert first_texts(table, 4, 6) == [0.99, 0.91, 0.77, 0.6, 0.5, None]

        # o copies the highlighted row's key (position), x exports every row
        await pilot.press("down", "o")
        assert app.clipboard == "12"
        await pilot.press("x")
        await pilot.pause()
        path = project / ".mltriage" / "rows" / "data.duplicates.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            written = list(csv.reader(handle))
        assert written[0] == finding.rows.columns and len(written) == 7
        assert [r[2] for r in written[1:]] == TEXTS  # the check's order, not the screen's sort
        messages = [n.message for n in app._notifications]
        assert any("Copied position 12" in m for m in messages)
        assert any(str(path) in m and "6 rows" in m for m in messages)
        await pilot.press("escape")
        assert not isinstance(app.screen, FindingScreen)


@pilot_test
async def test_a_finding_without_rows_is_unchanged_and_a_reloaded_one_says_how_to_get_them(project):
    app = MltriageApp(project, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "tab", "down", "down", "enter")  # data.split_overlap from the saved run
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FindingScreen) and not screen.query("#rows-table")
        assert not screen.query("#rows-note") and app.focused is screen.query_one("#finding")
        await pilot.press("s", "o", "x")  # the rows keys do nothing here
        assert not (project / ".mltriage" / "rows").exists() and app.clipboard == ""
        assert "escape" in screen.active_bindings and not {"s", "o", "x"} & set(screen.active_bindings)
        await pilot.press("escape")

        saved = duplicates_finding()
        saved.rows, saved.rows_file = None, "/tmp/rows/data.duplicates.csv"  # a run reloaded from disk
        inject(app, saved)
        await pilot.press("up", "enter")
        await pilot.pause()
        note = str(app.screen.query_one("#rows-note").render())
        assert "rows are kept for the current run only: press r on the main screen to re-run" in note
        assert "/tmp/rows/data.duplicates.csv" in note and not app.screen.query("#rows-table")


@pilot_test
async def test_the_palette_of_a_finding_with_rows_lists_its_row_actions(project):
    from mltriage.tui.screens.finding import FindingCommands

    app = MltriageApp(project, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_duplicates(pilot, app, duplicates_finding())
        titles = [hit.text async for hit in FindingCommands(screen).discover()]
        assert titles == ["Sort the rows by this column", "Copy the row's key", "Export the rows as CSV"]
        hits = [hit async for hit in FindingCommands(screen).search("export rows")]
        assert hits and hits[0].text == "Export the rows as CSV"
        await pilot.press("escape", "down", "enter")  # data.split_overlap: no rows, no row actions
        await pilot.pause()
        assert isinstance(app.screen, FindingScreen) and app.screen.check_id == "data.split_overlap"
        assert [hit async for hit in FindingCommands(app.screen).discover()] == []


@pilot_test
async def test_fifty_thousand_rows_open_a_page_at_a_time_and_keys_stay_live(project):
    n = 50_000
    rows = RowTable.from_columns({"position": list(range(n)), "text": [f"review {i:05d}" for i in range(n)],
                                  "label_score": [((i * 7919) % n) / n for i in range(n)]}, total=120_000)
    finding = warn("50000 rows", rows=rows)
    finding.check, finding.step = "data.duplicates", "data"
    app = MltriageApp(project, cursor_blink=False, check_titles=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_duplicates(pilot, app, finding)
        table = screen.query_one("#rows-table", RowsTable)
        # keys are handled at once, while the first page fills chunk by chunk (one timer tick each)
        await pilot.press("down", "down", "down", "left")
        assert table.cursor_coordinate == (3, 0) and table.row_count <= PAGE
        await wait_for(pilot, lambda: not table.filling)
        caption = str(screen.query_one("#rows-caption").render())
        assert "50,000 of 120,000 rows" in caption and f"1–{PAGE:,} shown" in caption
        # down past the page's last row shows the next page, up before its first the previous one
        table.move_cursor(row=table.row_count - 1)
        await pilot.press("down")
        await wait_for(pilot, lambda: not table.filling)
        assert table.record(0)[0] == PAGE and table.cursor_row == 0 and table.row_count == PAGE
        await pilot.press("up")
        await wait_for(pilot, lambda: not table.filling and table.cursor_row == PAGE - 1)
        assert table.record()[0] == PAGE - 1
        await pilot.press("ctrl+end")
        await wait_for(pilot, lambda: not table.filling and table.cursor_row == PAGE - 1)
        caption = str(screen.query_one("#rows-caption").render())
        assert table.record()[0] == n - 1 and f"{n - PAGE + 1:,}–50,000 shown" in caption
        await pilot.press("ctrl+home", "right", "right", "s", "s")  # sorting orders every row, not the page
        await wait_for(pilot, lambda: not table.sorting and not table.filling)
        assert table.record(0)[2] == max(r[2] for r in rows.records) and table.page_start == 0
        await pilot.press("down", "o")
        assert app.clipboard == str(table.record()[0])


def test_readme_lists_the_finding_screens_row_keys():
    from mltriage.tui.actions import FINDING, actions_of

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    lines = text[text.index("| key | on a finding's screen |"):].splitlines()[2:]
    keys = set()
    for line in lines:
        if not line.startswith("|"):
            break
        for cell in [c.strip() for c in line.strip("|").split("|")][0::2]:
            keys.update(k for k in cell.split("`")[1::2])
    assert keys == {a.key for a in actions_of(FINDING) if a.help}


# --- the snapshot: a finding with rows at 80x24 -------------------------------------------------------
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    project = write_tiny_project(tmp_path / "tiny")
    write_fixed_run(project)
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_snapshot_finding_with_rows_80x24(workdir, snap_compare):
    async def open_rows(pilot):
        inject(pilot.app, duplicates_finding())
        await pilot.press("3", "tab", "down", "enter", "down")
        table = pilot.app.screen.query_one("#rows-table", RowsTable)
        await wait_for(pilot, lambda: not table.filling)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    app = MltriageApp("tiny", cursor_blink=False, check_titles=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_rows)
