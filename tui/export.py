"""Export the session from the app: ask for Markdown or HTML and a file name, then write it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .screens.export import ExportScreen
from .session import export_session

if TYPE_CHECKING:
    from .screens.main import MainScreen


def export_dialog(screen: "MainScreen") -> None:
    def chosen(choice: tuple[str, str] | None) -> None:
        if choice is not None:
            write_export(screen, *choice)

    screen.app.push_screen(ExportScreen(screen.config.root, cursor_blink=screen.app.cursor_blink), chosen)


def write_export(screen: "MainScreen", fmt: str, target: str) -> None:
    """Write the report; a relative name is relative to the project's folder."""
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = screen.config.root / path
    try:
        from mltriage.checks.io.state import atomic_write_text

        atomic_write_text(path, export_session(screen.config.name, screen.findings, screen.session, fmt, path))
    except OSError as exc:
        screen.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error", timeout=10)
        return
    screen.notify(f"Wrote {path}", title="Exported", timeout=8)
