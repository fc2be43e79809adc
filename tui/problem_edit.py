"""Confirm or change the task and metric from the app (c): the dialog, then mltriage.toml is
rewritten keeping the user's comments (projectfile.py) and the confirmation is kept in the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltriage.checks.project.config import ProjectError

from .screens.problem import ProblemScreen

if TYPE_CHECKING:
    from .screens.main import MainScreen


def confirm_problem(screen: "MainScreen") -> None:
    ev = screen.findings.get("problem.task_type")
    inferred = ev.evidence.get("inferred_task") if ev else None

    def chosen(choice) -> None:
        if choice is not None:
            write_choice(screen, *choice)

    screen.app.push_screen(ProblemScreen(screen.config.task, screen.config.metric, inferred), chosen)


def write_choice(screen: "MainScreen", task: str, metric: str) -> None:
    from .projectfile import write_task_metric

    try:
        screen.config = write_task_metric(screen.config, task, metric)
    except (ProjectError, OSError) as exc:
        screen.notify(f"mltriage.toml was not changed: {exc}", severity="error", timeout=12)
        return
    screen.session.progress.setdefault("problem", {})["confirmed"] = True
    screen.save_session()
    screen.notify(f'task = "{task}", metric = "{metric}" in {screen.config.path.name}', title="Saved")
    screen.show_step(screen.step)
