"""`mltriage tour`'s first screen: the exercises, with their story, difficulty and the user's progress."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from ..widgets.key_footer import KeyFooter
from ..actions import TOUR, bindings
from ..hunt import Exercise, TourState
from ..hunt_mode import Hunt


class TourScreen(Screen):
    """The exercises, with their story, difficulty and the user's progress."""

    BINDINGS = bindings(TOUR)

    def __init__(self, items: list[Exercise], state: TourState):
        super().__init__()
        self.items = items
        self.state = state

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="tour"):
            yield Static(Text("mltriage tour: bug hunts", style="bold"))
            yield Static("Each exercise is a small project with bugs planted in it. Open one, run the steps, "
                         "mark the findings you think are the bugs (b) and write what you would fix; then "
                         "reveal the answer key (k) to see what you found and missed. t returns here.\n")
            yield Label("Exercises (enter opens one):", classes="section")
            yield OptionList(*self._options(), id="exercises")
            if not self.items:
                yield Static(Text("No exercises found: sample_projects/*/buggy/bugs.toml is missing "
                                  "(set MLTRIAGE_SAMPLES to the sample_projects folder).", style="yellow"))
        yield KeyFooter()

    def _options(self) -> list[Option]:
        options = []
        for ex in self.items:
            progress = self.state.exercises.get(ex.name)
            status = (progress.result if progress and progress.revealed and progress.result
                      else f"{len(progress.marks)} marked" if progress and progress.marks else "not started")
            line = Text.assemble((ex.name, "bold"), f"  {ex.difficulty} · {len(ex.bugs)} bugs · ",
                                 (status, "cyan"), "\n  ", (ex.story, "dim"))
            options.append(Option(line, id=ex.name))
        return options

    def on_mount(self) -> None:
        self.query_one("#exercises").focus()

    def on_screen_resume(self) -> None:
        listing = self.query_one("#exercises", OptionList)
        keep = listing.highlighted
        listing.set_options(self._options())
        if keep is not None and self.items:
            listing.highlighted = min(keep, len(self.items) - 1)

    @on(OptionList.OptionSelected, "#exercises")
    def open_exercise(self, event: OptionList.OptionSelected) -> None:
        exercise = next(ex for ex in self.items if ex.name == event.option.id)
        self.app.open_project(exercise.buggy, display=f"tour: {exercise.name}/buggy",
                              hunt=Hunt(exercise, self.state))
