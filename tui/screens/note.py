"""A free-text note for one step."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Label, TextArea

from mltriage.checks.engine.registry import STEP_TITLES

from ..actions import NOTE, bindings

# What is typed is saved as a draft this long after the last key (an SSH drop then loses at most
# half a second of typing; saving on every key would rewrite session.json dozens of times a second).
DRAFT_SAVE_SECONDS = 0.5


class NoteScreen(ModalScreen[str | None]):
    """A free-text note for one step. Escape or ctrl+s saves; nothing typed is ever thrown away: with a
    session, what is typed is kept as a draft in session.json as it is typed (debounced), and the
    draft comes back at the next start if the app stopped before the note was saved."""

    BINDINGS = bindings(NOTE)

    def __init__(self, step: str, text: str, cursor_blink: bool = True, session=None, restored: bool = False):
        super().__init__()
        self.step = step
        self.text = text
        self.cursor_blink = cursor_blink
        self.session = session
        self.restored = restored
        self.latest = text                 # what is in the text area now (read by the signal path)
        self._draft_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box", classes="dialog"):
            title = f"Note for {STEP_TITLES[self.step]}  (esc or ctrl+s: save and close)"
            if self.restored:
                title += "  · draft restored"
            yield Label(Text(title), classes="dialog-title")
            area = TextArea(self.text, id="note-area", soft_wrap=True)
            area.cursor_blink = self.cursor_blink
            yield area

    def on_mount(self) -> None:
        self.query_one("#note-area").focus()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.latest = event.text_area.text
        if self.session is None:
            return
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_SAVE_SECONDS, self.save_draft)

    def save_draft(self) -> None:
        """Write what is typed so far to session.json (the saved note itself is unchanged)."""
        self._draft_timer = None
        if self.session is not None and self.keep_draft(self.session):
            error = self.session.save()
            if error:
                self.notify(error, severity="error", timeout=10, markup=False)

    def keep_draft(self, session) -> bool:
        """Put what is typed into the session's drafts (not saved); False when nothing is new."""
        if self.latest == session.note(self.step) and not session.draft(self.step):
            return False
        session.set_draft(self.step, self.latest)
        return True

    def action_save(self) -> None:
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        self.dismiss(self.query_one("#note-area", TextArea).text)
