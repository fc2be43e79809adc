"""Bug-hunt mode of the main screen (mltriage tour): mark the selected finding as a bug (b) with
what the user would fix, reveal the answer key (k), go back to the tour (t); the marks show in the top
bar and as [bug] tags. Exercises, scoring and saved progress: hunt.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .widgets.topbar import TopBar, topbar_text

if TYPE_CHECKING:  # bug hunts load their scoring and screens only in `mltriage tour`
    from .hunt import Exercise, Score, TourState
    from .screens.main import MainScreen


class Hunt:
    """Bug-hunt mode of the main screen for one exercise."""

    def __init__(self, exercise: Exercise, state: TourState):
        self.exercise = exercise
        self.state = state
        self.progress = state.get(exercise.name)

    def save(self, screen) -> None:
        error = self.state.save()
        if error:
            screen.notify(error, severity="error", timeout=10)

    def score(self) -> Score:
        from .hunt import score

        return score(self.exercise.bugs, self.progress.marks)

    def reveal(self, screen) -> None:
        result = self.score()
        self.progress.revealed = True
        self.progress.result = result.summary
        self.save(screen)
        from .screens.reveal import RevealScreen

        screen.app.push_screen(RevealScreen(self.exercise, result, dict(self.progress.marks)))


class HuntMode:
    """The main screen's bug-hunt keys and marks (a mixin of MainScreen; `hunt` None: not a hunt)."""

    hunt: "Hunt | None"

    def _hunt_marks(self) -> dict[str, str]:
        return self.hunt.progress.marks if self.hunt is not None else {}

    def _topbar(self):
        marks = len(self.hunt.progress.marks) if self.hunt is not None else None
        return topbar_text(self.config.name, self.display_label, marks)

    def show_marks(self) -> None:
        """A bug was marked or unmarked: the top bar's count and the [bug] tags."""
        self.query_one(TopBar).update(self._topbar())
        self.refresh_checks()

    def action_mark_bug(self) -> None:
        mark_bug(self)

    def action_reveal(self) -> None:
        if self.hunt is not None:
            self.hunt.reveal(self)

    def action_back_to_tour(self) -> None:
        self.runs.cancel()
        self.save_session()
        self.app.pop_screen()


def mark_bug(screen: "MainScreen") -> None:
    """Mark the selected check as a bug, asking what would fix it; a second b takes the mark back."""
    hunt = screen.hunt
    cid = screen.selected_check()
    if hunt is None or cid is None:
        return
    marks = hunt.progress.marks
    if cid in marks:
        del marks[cid]
        hunt.save(screen)
        screen.notify(f"{cid}: no longer marked as a bug")
        screen.show_marks()
        return
    if cid not in screen.findings:
        screen.notify("Run this step first (r), then mark the finding that shows the bug.", severity="warning")
        return

    def saved(text: str | None) -> None:
        if text is None:
            return
        marks[cid] = text.strip()
        hunt.save(screen)
        screen.show_marks()

    from .screens.text import TextScreen

    screen.app.push_screen(TextScreen(f"{cid} is a bug. What would you fix?",
                                      placeholder="e.g. call model.eval() in predict",
                                      cursor_blink=screen.app.cursor_blink), saved)
