"""The seven steps down the left, each with its live status ('2 fail·5 pass', 'running 3/13')."""

from __future__ import annotations

from typing import Callable

from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mltriage.checks.engine.registry import STEP_TITLES, STEPS
from mltriage.checks.findings import Finding

from ..present import step_label, step_status_text

Progress = Callable[[str], "tuple[int, int] | None"]  # a step's (done, planned) while it runs


def step_options(findings: dict[str, Finding], current: str, progress: Progress) -> list[Option]:
    return [Option(step_label(i, step, STEP_TITLES[step], step_status_text(step, findings, progress(step)),
                              step == current), id=step)
            for i, step in enumerate(STEPS, start=1)]


class StepList(OptionList):
    """The steps (id "steps"); an option's id is the step's name."""

    def show(self, findings: dict[str, Finding], current: str, progress: Progress) -> None:
        for option in step_options(findings, current, progress):
            self.replace_option_prompt(option.id, option.prompt)
