"""Confirm or change the task and metric written to mltriage.toml."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static

from ..actions import PROBLEM, bindings


class ProblemScreen(ModalScreen[tuple[str | None, str | None] | None]):
    """Confirm or change the task and metric; returns them only after an explicit confirmation."""

    BINDINGS = bindings(PROBLEM)

    def __init__(self, task: str | None, metric: str | None, inferred_task: str | None):
        super().__init__()
        self.current_task = task
        self.current_metric = metric
        self.inferred_task = inferred_task

    def compose(self) -> ComposeResult:
        from mltriage.checks.project.config import TASKS

        task = self.current_task or self.inferred_task or "classification"
        with Vertical(id="problem-box", classes="dialog"):
            yield Label("Confirm or change what is being predicted", classes="dialog-title")
            yield Label("Task")
            yield Select([(t, t) for t in TASKS], value=task, allow_blank=False, id="task-select")
            yield Label("Metric")
            yield Select(self._metric_options(task), value=self._metric_for(task), allow_blank=False,
                         id="metric-select")
            yield Static("", id="problem-preview")
            with Horizontal(classes="buttons"):
                yield Button("Write to mltriage.toml", variant="primary", id="problem-write")
                yield Button("Cancel", id="problem-cancel")

    @staticmethod
    def _metric_options(task: str) -> list[tuple[str, str]]:
        from mltriage.checks.project.config import CLASSIFICATION_METRICS, REGRESSION_METRICS

        return [(m, m) for m in (CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS)]

    def _metric_for(self, task: str) -> str:
        options = [m for m, _ in self._metric_options(task)]
        return self.current_metric if self.current_metric in options else options[0]

    def on_mount(self) -> None:
        self._preview()

    @on(Select.Changed, "#task-select")
    def task_changed(self, event: Select.Changed) -> None:
        metric = self.query_one("#metric-select", Select)
        metric.set_options(self._metric_options(str(event.value)))
        metric.value = self._metric_for(str(event.value))
        self._preview()

    @on(Select.Changed, "#metric-select")
    def metric_changed(self) -> None:
        self._preview()

    def _chosen(self) -> tuple[str, str]:
        return str(self.query_one("#task-select", Select).value), str(self.query_one("#metric-select", Select).value)

    def _preview(self) -> None:
        task, metric = self._chosen()
        lines = ["[project] in mltriage.toml will read:", f'  task = "{task}"', f'  metric = "{metric}"']
        if (task, metric) == (self.current_task, self.current_metric):
            lines.append("(unchanged: writing records that you confirmed it)")
        self.query_one("#problem-preview", Static).update(Text("\n".join(lines)))

    @on(Button.Pressed, "#problem-write")
    def write(self) -> None:
        self.dismiss(self._chosen())

    @on(Button.Pressed, "#problem-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
