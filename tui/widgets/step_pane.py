"""The current step, right of the step list: title, guidance, what mltriage understood (problem step),
the checks, the selected finding in brief, the manual checklist and the note."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region, Spacing
from textual.widgets import Label, OptionList

from mltriage.checks.findings import Finding
from mltriage.checks.project.config import ProjectConfig

from ..session import Session
from .check_list import CheckList
from .checklist import Checklist
from .finding_brief import FindingBrief
from .note_preview import NotePreview
from .problem_summary import ProblemSummary
from .start_here import StartHere
from .step_guide import StepGuide
from .step_title import StepTitle


class StepPane(VerticalScroll):
    """id "right"; it scrolls as a whole, so tab goes from the steps straight to the checks."""

    can_focus = False

    def compose(self) -> ComposeResult:
        yield StartHere(id="start-here")
        yield StepTitle(id="step-title")
        yield StepGuide()
        yield ProblemSummary(id="inferred")
        yield Label("Checks", classes="section", id="checks-label")
        yield CheckList(id="checks")
        yield FindingBrief(id="brief")
        yield Label("Your checklist (space ticks)", classes="section")
        yield Checklist(id="manual")
        yield Label("Note (n)", classes="section")
        yield NotePreview(id="note-preview")

    def show(self, step: str, findings: dict[str, Finding], running: tuple[int, int] | None,
             config: ProjectConfig, session: Session) -> None:
        """Everything but the checks, which redraw on their own (CheckList.show)."""
        self.query_one(StartHere).show(findings)
        self.query_one(StepTitle).show(step, findings, running)
        self.query_one(StepGuide).show(step, any(f.step == step for f in findings.values()))
        summary = self.query_one(ProblemSummary)
        summary.display = step == "problem"
        if step == "problem":
            self.show_problem_summary(config, findings, session)
        self.query_one(Checklist).show(step, session)
        self.query_one(NotePreview).show(session.note(step))

    def show_problem_summary(self, config: ProjectConfig, findings: dict[str, Finding], session: Session) -> None:
        confirmed = bool(session.progress.get("problem", {}).get("confirmed"))
        self.query_one(ProblemSummary).show(config, findings, confirmed)

    @on(OptionList.OptionHighlighted, "#checks")
    def keep_check_in_view(self, event: OptionList.OptionHighlighted) -> None:
        # The list is as tall as its options and this pane scrolls around it: keep the row in view.
        checks = event.option_list
        if checks.has_focus:
            row = checks.virtual_region.y + event.option_index
            self.scroll_to_region(Region(0, row, 1, 1), animate=False, immediate=True, spacing=Spacing(1, 0, 3, 0))
