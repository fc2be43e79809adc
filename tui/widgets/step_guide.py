"""'About this step (g)': what the step is for, what to look at, the usual mistakes; folds."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Collapsible, Static

from ..guide import GUIDES


def guide_text(step: str) -> Text:
    guide = GUIDES[step]
    body = Text()
    body.append(guide.purpose + "\n")
    body.append("Look at: ", style="bold")
    body.append(guide.look_at + "\n")
    body.append("Common mistakes: ", style="bold")
    body.append(guide.mistakes)
    return body


class StepGuide(Collapsible):
    """The step's guidance (id "guide"), its text in a Static (id "guide-text")."""

    def __init__(self) -> None:
        super().__init__(Static(id="guide-text"), title="About this step (g)", collapsed=False, id="guide")

    def on_mount(self) -> None:
        # tab goes steps -> checks -> checklist; the guidance folds with g or a click.
        for title in self.query("CollapsibleTitle"):
            title.can_focus = False

    def show(self, step: str, has_findings: bool) -> None:
        self.query_one("#guide-text", Static).update(guide_text(step))
        # Open on a step not run yet (orientation), folded once there are findings to read.
        self.collapsed = has_findings
