"""The bottom line while a run is going: what runs now and a progress bar."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class RunProgress(Horizontal):
    """id "progress"; shown while it has the class "running"."""

    def compose(self) -> ComposeResult:
        yield Label(id="progress-label")
        yield ProgressBar(id="progress-bar", show_eta=False)

    def _say(self, text) -> None:
        self.query_one("#progress-label", Label).update(text)

    def starting(self, steps: list[str]) -> None:
        self.add_class("running")
        self.query_one("#progress-bar", ProgressBar).update(total=None, progress=0)
        self._say(f"starting {', '.join(steps) if len(steps) < 3 else 'all steps'}…")

    def planned(self, checks: int) -> None:
        self.query_one("#progress-bar", ProgressBar).update(total=max(1, checks), progress=0)
        self._say(Text("loading the project's data…", style="bold"))

    def running(self, check_id: str, number: int, planned: int) -> None:
        self._say(Text.assemble(("running ", "bold"), check_id, (f"  {number}/{planned}", "dim")))

    def advanced(self, done: int) -> None:
        self.query_one("#progress-bar", ProgressBar).update(progress=done)

    def cancelling(self) -> None:
        self._say("cancelling…")

    def stopped(self) -> None:
        self.remove_class("running")
