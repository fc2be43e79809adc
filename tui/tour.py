"""`mltriage tour`: bug hunts on the sample projects.

Each exercise opens the app on a sample's buggy variant in bug-hunt mode: the user runs the steps,
marks the findings they believe are planted bugs (b) with what they would fix, and asks for the
answer key (k) to see which bugs they found, which they missed and which suspicions were false,
with the explanation and a diff from buggy/ to fixed/. Progress is saved per user (hunt.py).
"""

from __future__ import annotations

import sys

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from .app import MltriageApp
from .hunt import Exercise, Score, TourState, bug_diff, exercises, score


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
        return score(self.exercise.bugs, self.progress.marks)

    def reveal(self, screen) -> None:
        result = self.score()
        self.progress.revealed = True
        self.progress.result = result.summary
        self.save(screen)
        screen.app.push_screen(RevealScreen(self.exercise, result, dict(self.progress.marks)))


def _diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "dim")
        text.append("    " + line + "\n", style=style)
    return text


def reveal_text(exercise: Exercise, result: Score, marks: dict[str, str]) -> Text:
    """The answer key against the user's marks, as one block of text."""
    text = Text()
    text.append(f"Answer key: {exercise.name}\n", style="bold")
    text.append(result.summary[0].upper() + result.summary[1:] + ".\n\n",
                style="bold green" if not result.missed else "bold yellow")

    def bug_block(bug, hits: list[str] | None) -> None:
        text.append(f"  {bug.summary}\n", style="bold")
        text.append(f"    where: {bug.where}    flagged by: {', '.join(sorted(bug.ids))}\n", style="dim")
        for hit in hits or []:
            if marks.get(hit):
                text.append(f"    you marked {hit}: ", style="cyan")
                text.append(marks[hit] + "\n")
        if bug.explain:
            text.append("    why: ", style="bold")
            text.append(" ".join(bug.explain.split()) + "\n")
        if bug.fix:
            text.append("    fix: ", style="bold")
            text.append(" ".join(bug.fix.split()) + "\n")
        diff = bug_diff(exercise, bug)
        if diff:
            text.append_text(_diff_text(diff))
        text.append("\n")

    if result.found:
        text.append(f"Found ({len(result.found)})\n", style="bold green underline")
        for bug, hits in result.found:
            text.append("  ✓ ", style="bold green")
            text.append(f"caught by {', '.join(hits)}\n", style="green")
            bug_block(bug, hits)
    if result.missed:
        text.append(f"Missed ({len(result.missed)})\n", style="bold red underline")
        for bug in result.missed:
            text.append("  ✗ ", style="bold red")
            text.append(f"look at {bug.check}\n", style="red")
            bug_block(bug, None)
    if result.false_marks:
        text.append(f"False suspicions ({len(result.false_marks)})\n", style="bold yellow underline")
        for cid in result.false_marks:
            text.append(f"  ! {cid}", style="bold yellow")
            text.append(f": {marks.get(cid) or 'no fix written'}\n")
        text.append("    Not one of the planted bugs. The finding may still be worth a look, but fixing it "
                    "would not have fixed this project.\n", style="dim")
    return text


class RevealScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("q", "app.pop_screen", "Back", show=False)]

    def __init__(self, exercise: Exercise, result: Score, marks: dict[str, str]):
        super().__init__()
        self.exercise, self.result, self.marks = exercise, result, marks

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="reveal"):
            yield Static(reveal_text(self.exercise, self.result, self.marks), id="reveal-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#reveal").focus()


class TourScreen(Screen):
    """The exercises, with their story, difficulty and the user's progress."""

    BINDINGS = [Binding("q", "app.quit", "Quit"), Binding("?", "app.help", "Help")]

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
        yield Footer()

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


class TourApp(MltriageApp):
    def __init__(self, state: TourState | None = None, items: list[Exercise] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.state = state or TourState()
        self.items = exercises() if items is None else items

    def open_start(self) -> None:
        if self.state.notice:
            self.notify(self.state.notice, severity="warning", timeout=12)
        self.push_screen(TourScreen(self.items, self.state))


def list_exercises(items: list[Exercise], state: TourState) -> str:
    if not items:
        return "No exercises found (sample_projects/*/buggy/bugs.toml). Set MLTRIAGE_SAMPLES to the folder."
    lines = []
    for ex in items:
        progress = state.exercises.get(ex.name)
        status = progress.result if progress and progress.revealed else (
            f"{len(progress.marks)} marked" if progress and progress.marks else "not started")
        lines.append(f"{ex.name:<12} {ex.difficulty:<7} {len(ex.bugs)} bugs  {status}")
        lines.append(f"{'':<12} {ex.story}")
        lines.append(f"{'':<12} mltriage {ex.buggy}")
    return "\n".join(lines)


def run_tour(list_only: bool = False) -> int:
    state = TourState()
    items = exercises()
    if list_only:
        print(list_exercises(items, state))
        return 0
    app = TourApp(state=state, items=items)
    try:
        app.run()
    finally:
        from .app import finish_runs

        finish_runs(app)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(run_tour("--list" in sys.argv))
