"""Write the current step's note (n): the dialog, then the session is saved and the preview redrawn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .screens.note import NoteScreen
from .widgets.note_preview import NotePreview

if TYPE_CHECKING:
    from .screens.main import MainScreen


def note_dialog(screen: "MainScreen") -> None:
    step = screen.step

    def saved(text: str | None) -> None:
        if text is None:
            return
        screen.session.set_note(step, text)
        screen.save_session()
        if step == screen.step:
            screen.query_one(NotePreview).show(screen.session.note(step))

    screen.app.push_screen(NoteScreen(step, screen.session.note(step), cursor_blink=screen.app.cursor_blink), saved)
