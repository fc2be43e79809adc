"""'Step 3/7 · Data  2 fail·5 pass': the current step's title and status."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mltriage.checks.engine.registry import STEP_TITLES, STEPS
from mltriage.checks.findings import Finding

from ..present import step_status_text


def step_title_text(step: str, findings: dict[str, Finding], running: tuple[int, int] | None) -> Text:
    title = Text()
    title.append(f"Step {STEPS.index(step) + 1}/7 · {STEP_TITLES[step]}  ", style="bold")
    title.append_text(step_status_text(step, findings, running))
    return title


class StepTitle(Static):
    """The title line above the guidance (id "step-title")."""

    def show(self, step: str, findings: dict[str, Finding], running: tuple[int, int] | None) -> None:
        self.update(step_title_text(step, findings, running))
