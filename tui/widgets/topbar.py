"""The top bar: the project's name, how it was opened and, in a bug hunt, the marks so far."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..plain import plain


def topbar_text(project: str, display: str, hunt_marks: int | None) -> Text:
    text = Text()
    text.append("mltriage", style="bold")
    text.append(" · ")
    text.append(plain(project), style="bold")
    if display and display != project:
        text.append(f"  {plain(display)}", style="dim")
    if hunt_marks is not None:
        text.append("   bug hunt: ", style="bold yellow")
        text.append(f"{hunt_marks} marked · b mark · k answer key", style="yellow")
    return text


class TopBar(Static):
    """One line above everything (id "topbar")."""

    def show(self, project: str, display: str, hunt_marks: int | None) -> None:
        self.update(topbar_text(project, display, hunt_marks))
