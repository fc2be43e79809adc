"""The rows behind findings (issue 18 item 1): the table travels with the finding from the worker, is written
as one CSV per finding by --export-rows, and the JSON names the file; the user's own files are never replaced."""

from __future__ import annotations

import csv
import json

import pytest

from mltriage.checks.engine.messages import FindingMessage, decode, encode
from mltriage.checks.findings import ROWS_KEPT, Finding, RowTable, passed, warn
from mltriage.checks.io.report import to_html, to_markdown, to_text
from mltriage.checks.io.row_export import MANIFEST, RowExportError, check_export_folder, export_rows, rows_file_name


def _flagged(check: str = "data.duplicates", n: int = 3) -> Finding:
    table = RowTable.from_columns({"position": list(range(n)), "text": [f"text, with \"quotes\" {i}" for i in range(n)],
                                   "duplicate_score": [1.0 - i / 10 for i in range(n)]})
    f = warn(f"{n} duplicated rows", detail="d", fix="f", rows=table)
    f.check, f.step = check, "data"
    return f


def _read(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_row_table_keeps_a_capped_prefix_and_counts_all():
    table = RowTable.from_columns({"position": range(ROWS_KEPT + 10)})
    assert len(table) == ROWS_KEPT and table.total == ROWS_KEPT + 10
    with pytest.raises(ValueError, match="differ in length"):
        RowTable.from_columns({"a": [1, 2], "b": [1]})


def test_rows_travel_in_worker_messages_but_not_in_the_run_json():
    f = _flagged()
    back = decode(encode(FindingMessage(finding=f))).finding
    assert back.rows is not None and back.rows.records == f.rows.records and back.rows.total == 3
    assert "row_table" not in f.to_dict() and "rows" not in f.to_dict()


def test_export_writes_one_csv_per_flagged_finding_and_names_it(tmp_path):
    flagged, other, clean = _flagged(), _flagged("errors.confident_mistakes", 2), passed("fine")
    clean.rows = RowTable.from_columns({"position": [1]})
    written = export_rows([flagged, other, clean], tmp_path / "rows")
    assert sorted(p.name for p in written) == ["data.duplicates.csv", "errors.confident_mistakes.csv"]
    rows = _read(tmp_path / "rows" / "data.duplicates.csv")
    assert rows[0] == ["position", "text", "duplicate_score"]
    assert rows[1] == ["0", 'text, with "quotes" 0', "1.0"] and len(rows) == 4
    assert flagged.to_dict()["rows"] == str(tmp_path / "rows" / "data.duplicates.csv")
    assert clean.rows_file is None
    assert Finding.from_dict(flagged.to_dict()).rows_file == flagged.rows_file


def test_a_file_the_user_owns_is_never_replaced(tmp_path):
    mine = tmp_path / "data.duplicates.csv"
    mine.write_text("my own notes\n")
    written = export_rows([_flagged()], tmp_path)
    assert mine.read_text() == "my own notes\n"
    assert [p.name for p in written] == ["data.duplicates-2.csv"]


def test_a_later_export_replaces_its_own_files_and_drops_stale_ones(tmp_path):
    export_rows([_flagged(n=3), _flagged("data.outliers", 2)], tmp_path)
    export_rows([_flagged(n=5)], tmp_path)
    assert len(_read(tmp_path / "data.duplicates.csv")) == 6
    assert not (tmp_path / "data.outliers.csv").exists()
    assert json.loads((tmp_path / MANIFEST).read_text())["files"] == {
        "data.duplicates.csv": {"check": "data.duplicates", "rows": 5, "total": 5}}


def test_a_tampered_manifest_cannot_reach_outside_the_folder(tmp_path):
    outside = tmp_path / "precious.csv"
    outside.write_text("keep\n")
    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"files": {"../precious.csv": {}}}))
    export_rows([_flagged()], folder)
    assert outside.read_text() == "keep\n"
    assert rows_file_name("../../etc/passwd") == "_.._etc_passwd.csv"


def test_a_file_given_as_the_folder_is_refused_with_the_name(tmp_path):
    target = tmp_path / "rows.csv"
    target.write_text("x")
    with pytest.raises(RowExportError, match="rows.csv is a file"):
        check_export_folder(target)


def test_reports_name_the_rows_file(tmp_path):
    f = _flagged()
    export_rows([f], tmp_path)
    run = {"mltriage": "0", "project": "p", "findings": [f.to_dict()], "summary": {}}
    for render in (to_text, to_markdown, to_html):
        assert "data.duplicates.csv" in render(run)


def test_cli_export_rows_writes_the_rows_the_json_names(tmp_path):
    """End to end: planted train/valid overlap -> data.split_overlap's CSV holds exactly the copied rows."""
    import subprocess
    import sys

    import numpy as np
    import pandas as pd

    from helpers import write_project

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "label": rng.integers(0, 2, 300)})
    valid = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100), "label": rng.integers(0, 2, 100)})
    valid.iloc[[5, 17, 60]] = train.iloc[[1, 2, 3]].to_numpy()
    root = write_project(tmp_path / "p", train, valid)
    out = tmp_path / "rows"
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--checks",
                        "data.split_overlap", "--format", "json", "--export-rows", str(out)],
                       capture_output=True, text=True, timeout=300)
    finding = next(f for f in json.loads(r.stdout)["findings"] if f["check"] == "data.split_overlap")
    assert finding["status"] != "pass" and finding["rows"] == str(out / "data.split_overlap.csv"), r.stderr
    rows = _read(finding["rows"])
    position = rows[0].index("position")
    assert sorted(int(row[position]) for row in rows[1:]) == [5, 17, 60]
    refused = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "check", str(root), "--export-rows",
                              finding["rows"]], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "is a file" in refused.stderr and "Traceback" not in refused.stderr
