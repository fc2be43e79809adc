"""The rows behind findings, written as CSV files (issue 18; DESIGN §4 `--export-rows DIR`, §5 `"rows"`).

One CSV per non-pass finding that carries rows, named after its check id (`data.duplicates.csv`), with the
table's columns as the header. A folder the user names may hold their own files: a file mltriage did not
write there is never replaced (the export takes the next free name, `data.duplicates-2.csv`); the files it
did write are listed in `.mltriage-rows.json` in that folder, and a later export replaces those.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Iterable

from ..findings import Finding, RowTable
from .state import atomic_write_json, atomic_write_text

MANIFEST = ".mltriage-rows.json"


class RowExportError(Exception):
    """The export folder cannot be used; the message names it and says what to do."""


def rows_file_name(check_id: str) -> str:
    """`data.duplicates` -> `data.duplicates.csv`; anything but letters, digits, dots, dashes and
    underscores becomes `_`, so an id can never name a path outside the folder."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", check_id or "finding").strip(".") or "finding"
    return f"{safe}.csv"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rows_csv_text(table: RowTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for record in table.records:
        writer.writerow([_cell(v) for v in record])
    return out.getvalue()


def write_rows_csv(table: RowTable, path: Path) -> Path:
    """Write one table atomically (readers see the old file or the new one), creating the folder."""
    path = Path(path)
    atomic_write_text(path, rows_csv_text(table))
    return path


def check_export_folder(directory: str | Path) -> Path:
    """Refuse an unusable --export-rows before the run, not after minutes of checks."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise RowExportError(f"--export-rows {directory} is a file. Name a folder to write the rows into "
                             f"(it is created when missing).")
    manifest = folder / MANIFEST
    if manifest.is_symlink():
        raise RowExportError(f"{manifest} is a symbolic link; mltriage does not write through links there. "
                             f"Remove it or choose another folder.")
    return folder


def _free_name(folder: Path, name: str, ours: set[str], taken: set[str]) -> str:
    """`name`, unless a file there is not one of our exports (or this run already used the name)."""
    stem, candidate, n = name[:-4], name, 1
    while candidate in taken or ((folder / candidate).exists() and candidate not in ours):
        n += 1
        candidate = f"{stem}-{n}.csv"
    return candidate


def export_rows(findings: Iterable[Finding], directory: str | Path) -> list[Path]:
    """Write the rows of every non-pass finding that has some; set each finding's `rows_file`."""
    folder = check_export_folder(directory)
    wanted = [f for f in findings if f.status != "pass" and f.rows is not None and len(f.rows)]
    if not wanted:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    previous = _manifest_files(folder)
    ours, taken, written, listing = set(previous), set(), [], {}
    for finding in wanted:
        name = _free_name(folder, rows_file_name(finding.check), ours, taken)
        taken.add(name)
        path = write_rows_csv(finding.rows, folder / name)
        finding.rows_file = str(path)
        written.append(path)
        listing[name] = {"check": finding.check, "rows": len(finding.rows), "total": finding.rows.total}
    _remove_stale(folder, [n for n in previous if n not in listing])
    atomic_write_json(folder / MANIFEST, {"files": listing}, follow_symlinks=False)
    return written


def _remove_stale(folder: Path, names: list[str]) -> None:
    """Rows an earlier export wrote for findings this run no longer has: a folder of CSVs read as a whole
    must not mix runs. Only names our manifest lists, only plain files directly in the folder."""
    for name in names:
        path = folder / name
        if name == rows_file_name(name[:-4]) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def _manifest_files(folder: Path) -> dict:
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("files", {})
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}
