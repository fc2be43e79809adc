"""Write the current step's note (n): the dialog, then the session is saved and the preview redrawn.
A draft left by an app that stopped with the dialog open (tui/screens/note.py) is reopened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .widgets.note_preview import NotePreview

if TYPE_CHECKING:
    from .screens.main import MainScreen


def note_dialog(screen: "MainScreen", step: str | None = None) -> None:
    step = step or screen.step
    draft = screen.session.draft(step)
    restored = draft is not None and draft != screen.session.note(step)

    def saved(text: str | None) -> None:
        if text is None:
            return
        screen.session.set_note(step, text)
        screen.save_session()
        if step == screen.step:
            screen.query_one(NotePreview).show(screen.session.note(step))

    from .screens.note import NoteScreen  # TextArea loads when a note is written, not at start-up

    screen.app.push_screen(NoteScreen(step, draft if restored else screen.session.note(step),
                                      cursor_blink=screen.app.cursor_blink, session=screen.session,
                                      restored=restored), saved)


def reopen_draft(screen: "MainScreen") -> bool:
    """At start: a note was being typed when the app last stopped; go to its step and reopen it."""
    pending = screen.session.pending_drafts()
    if not pending:
        return False
    step = pending[0]
    if step != screen.step:
        from mltriage.checks.engine.registry import STEPS

        screen.action_goto(STEPS.index(step) + 1)
    note_dialog(screen, step)
    screen.notify("A note you were typing when mltriage last stopped was restored; esc saves it.",
                  timeout=8, markup=False)
    return True
