"""A bug hunt's answer key: what was found, missed and wrongly suspected, with the fix as a diff."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from ..widgets.key_footer import KeyFooter
from ..actions import REVEAL, bindings
from ..hunt import Exercise, Score, bug_diff
from ..plain import plain


def _diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "dim")
        text.append("    " + plain(line) + "\n", style=style)
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
                text.append(plain(marks[hit]) + "\n")
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

    sections = (("Found", "green", "✓", [(f"caught by {', '.join(hits)}", bug, hits) for bug, hits in result.found]),
                ("Missed", "red", "✗", [(f"look at {bug.check}", bug, None) for bug in result.missed]))
    for heading, color, icon, rows in sections:
        if rows:
            text.append(f"{heading} ({len(rows)})\n", style=f"bold {color} underline")
        for line, bug, hits in rows:
            text.append(f"  {icon} ", style=f"bold {color}")
            text.append(line + "\n", style=color)
            bug_block(bug, hits)
    if result.false_marks:
        text.append(f"False suspicions ({len(result.false_marks)})\n", style="bold yellow underline")
        for cid in result.false_marks:
            text.append(f"  ! {cid}", style="bold yellow")
            text.append(f": {marks.get(cid) or 'no fix written'}\n")
        text.append("    Not one of the planted bugs. The finding may still be worth a look, but fixing it "
                    "would not have fixed this project.\n", style="dim")
    return text



class RevealScreen(Screen):
    """The answer key of a bug hunt against the user's marks (k)."""

    BINDINGS = bindings(REVEAL)

    def __init__(self, exercise: Exercise, result: Score, marks: dict[str, str]):
        super().__init__()
        self.exercise, self.result, self.marks = exercise, result, marks

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="reveal"):
            yield Static(reveal_text(self.exercise, self.result, self.marks), id="reveal-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#reveal").focus()
