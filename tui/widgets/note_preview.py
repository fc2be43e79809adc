"""The first lines of the step's note, or how to write one."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..plain import plain


class NotePreview(Static):
    """id "note-preview"."""

    def show(self, note: str) -> None:
        note = plain(note.strip())
        if note:
            lines = note.splitlines()
            self.update(Text("\n".join(lines[:4]) + ("\n…" if len(lines) > 4 else "")))
        else:
            self.update(Text("no note yet: press n to write what you tried and saw", style="dim"))
