"""The bottom line while a run is going: what runs now and a progress bar.

One widget that draws the label, the bar and the percentage itself, with Textual's own bar renderable
and the colours of Textual's ProgressBar. The ProgressBar widget would be a label, a bar and a
percentage status with three style sheets, built and styled for every start of the app although the
line only shows during a run (issue 17: the first frame near a bare Textual app). While the plan is not
known the bar stays empty, as does the percentage ("--%"): no animation timer redraws it 15 times a
second while the checks need the CPU.
"""

from __future__ import annotations

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.renderables.bar import Bar
from textual.widgets import Static

BAR_WIDTH = 20


class RunProgress(Static):
    """id "progress"; shown while it has the class "running"."""

    COMPONENT_CLASSES = {"run-progress--bar", "run-progress--complete"}
    DEFAULT_CSS = """
    RunProgress {
        & > .run-progress--bar { color: $primary; background: $surface; }
        & > .run-progress--complete { color: $success; background: $surface; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._label: str | Text = ""
        self._total: int | None = None
        self._done = 0

    def _draw(self) -> None:
        gap = 2  # a column's width counts its padding
        line = Table.grid(expand=True, padding=(0, 0, 0, gap))
        line.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        line.add_column(width=BAR_WIDTH + gap)
        line.add_column(width=4 + gap, justify="right")
        line.add_row(self._label, self._bar(), self._percent())
        self.update(line)

    def _fraction(self) -> float | None:
        return None if not self._total else min(1.0, self._done / self._total)

    def _bar(self) -> Bar:
        fraction = self._fraction() or 0.0
        style = self.get_component_rich_style("run-progress--complete" if fraction >= 1 else "run-progress--bar")
        return Bar(highlight_range=(0, BAR_WIDTH * fraction), highlight_style=Style.from_color(style.color),
                   background_style=Style.from_color(style.bgcolor), width=BAR_WIDTH)

    def _percent(self) -> str:
        fraction = self._fraction()
        return "--%" if fraction is None else f"{round(fraction * 100)}%"

    def _say(self, text: str | Text) -> None:
        self._label = text
        self._draw()

    def starting(self, steps: list[str]) -> None:
        self.add_class("running")
        self._total, self._done = None, 0
        self._say(f"starting {', '.join(steps) if len(steps) < 3 else 'all steps'}…")

    def planned(self, checks: int) -> None:
        self._total, self._done = max(1, checks), 0
        self._say(Text("loading the project's data…", style="bold"))

    def running(self, check_id: str, number: int, planned: int) -> None:
        self._say(Text.assemble(("running ", "bold"), check_id, (f"  {number}/{planned}", "dim")))

    def advanced(self, done: int) -> None:
        self._done = done
        self._draw()

    def cancelling(self) -> None:
        self._say("cancelling…")

    def stopped(self) -> None:
        self.remove_class("running")
