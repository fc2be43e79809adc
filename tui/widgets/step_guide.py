"""'About this step (g)': what the step is for, what to look at, the usual mistakes; folds.

One widget that draws its title line and, unfolded, the text below it (g, or a click on the title,
folds it). Textual's Collapsible looked the same but was four widgets with four style sheets (the
collapsible, its title, its contents, the text), built and styled at every start of the app (issue 17:
the first frame near a bare Textual app)."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widgets import Static

from ..guide import GUIDES

TITLE = "About this step (g)"
OPEN, FOLDED = "▼", "▶"  # the symbols of Textual's Collapsible


def guide_text(step: str) -> Text:
    guide = GUIDES[step]
    body = Text()
    body.append(guide.purpose + "\n")
    body.append("Look at: ", style="bold")
    body.append(guide.look_at + "\n")
    body.append("Common mistakes: ", style="bold")
    body.append(guide.mistakes)
    return body


class StepGuide(Static):
    """The step's guidance (id "guide"); `collapsed` folds it to its title line."""

    COMPONENT_CLASSES = {"step-guide--title"}
    DEFAULT_CSS = """
    StepGuide {
        height: auto;
        & > .step-guide--title {
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    collapsed = reactive(False, init=False)

    def __init__(self) -> None:
        super().__init__(id="guide")
        self._body = Text()

    def show(self, step: str, has_findings: bool) -> None:
        self._body = guide_text(step)
        # Open on a step not run yet (orientation), folded once there are findings to read.
        self.set_reactive(StepGuide.collapsed, has_findings)
        self._draw()

    def watch_collapsed(self) -> None:
        self._draw()

    def _draw(self) -> None:
        title = Text(f" {FOLDED if self.collapsed else OPEN} {TITLE}",
                     style=self.get_component_rich_style("step-guide--title"))
        self.update(title if self.collapsed else Group(title, Padding(self._body, (0, 0, 0, 2))))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:  # the title line, as the Collapsible's title answered clicks
            self.collapsed = not self.collapsed
