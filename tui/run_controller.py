"""Starts and cancels a run of checks in a thread worker and turns the runner's callbacks into
typed messages posted to the screen (tui/messages.py). The checks themselves run in a child process
started by checks/engine/supervisor.py, so nothing heavy is imported by the app's process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial

from textual.message import Message
from textual.screen import Screen

from mltriage.checks.findings import Finding
from mltriage.checks.project.config import ProjectConfig, ProjectError

from .messages import CheckStarted, FindingArrived, RunEnded, RunPlanned
from .session import save_app_run


@dataclass
class RunState:
    """A run in progress: which checks it plans, which is running, how many are done."""

    steps: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    plan: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    current: str | None = None
    backup: dict[str, Finding] = field(default_factory=dict)
    finished: threading.Event = field(default_factory=threading.Event)  # the worker has returned

    def planned(self, plan: list[str], findings: dict[str, Finding]) -> None:
        """The checks this run will do. Their old findings are set aside (restored if the run is
        cancelled), so that what is shown is always this run's verdict or "not run"."""
        self.plan = plan
        self.backup = {cid: findings.pop(cid) for cid in plan if cid in findings}

    def arrived(self, finding: Finding, findings: dict[str, Finding]) -> None:
        findings[finding.check] = finding
        self.done.add(finding.check)
        if self.current == finding.check:
            self.current = None

    def restore(self, findings: dict[str, Finding]) -> None:
        """The run stopped early: the findings set aside come back where it gave none."""
        for cid, finding in self.backup.items():
            findings.setdefault(cid, finding)

    def step_progress(self, step: str) -> tuple[int, int] | None:
        """(done, planned) of a step this run still works on; None for a step it does not run, or one whose
        planned checks have all arrived (the step then shows its verdicts, not "running 4/4")."""
        planned = [c for c in self.plan if c.split(".", 1)[0] == step]
        if step not in self.steps:
            return None
        done = len([c for c in planned if c in self.done])
        if self.plan and done == len(planned):
            return None
        return done, len(planned)


def end_notice(run: RunState, result) -> str | None:
    """What the app says when a run ends (None: it stopped before it began)."""
    if result is None:
        return None
    if result.cancelled:
        return f"Run cancelled after {len(run.done)} of {len(run.plan)} checks."
    counts = result.summary
    return (f"{len(result.findings)} checks: {counts.get('fail', 0)} fail, {counts.get('warn', 0)} warn, "
            f"{counts.get('error', 0)} error, {counts.get('pass', 0)} pass")


class RunController:
    """At most one run at a time for one screen; `current` is the run going on, or None."""

    def __init__(self, screen: Screen):
        self.screen = screen
        self.current: RunState | None = None

    def start(self, steps: list[str], config: ProjectConfig, device: str) -> RunState | None:
        """Start a run of these steps; None when one is going already."""
        if self.current is not None:
            return None
        run = self.current = RunState(steps=steps)
        self.screen.app.active_run = run
        self.screen.run_worker(partial(self._work, run, config, device), thread=True, group="checks")
        return run

    def cancel(self) -> bool:
        """Ask the run to stop (it ends with a RunEnded message); False when none is going."""
        if self.current is None:
            return False
        self.current.cancel.set()
        return True

    def finish(self, run: RunState) -> None:
        """The screen has handled RunEnded: the run is no longer current."""
        if self.current is run:
            self.current = None
        if self.screen.app.active_run is run:
            self.screen.app.active_run = None

    # --- on the worker thread ----------------------------------------------------------------
    def _work(self, run: RunState, config: ProjectConfig, device: str) -> None:
        try:
            self._run(run, config, device)
        finally:
            run.finished.set()

    def _run(self, run: RunState, config: ProjectConfig, device: str) -> None:
        from mltriage.checks.engine.supervisor import RunOptions, run_checks

        post = self._post
        try:
            result = run_checks(config, RunOptions(steps=run.steps, device=device),
                                on_plan=lambda plan: post(RunPlanned(run, [c["id"] for c in plan])),
                                on_start=lambda cid: post(CheckStarted(run, cid)),
                                on_finding=lambda f: post(FindingArrived(run, f)),
                                cancel=run.cancel)
        except ProjectError as exc:
            post(RunEnded(run, None, f"The project could not be checked:\n{exc}"))
            return
        except Exception as exc:  # the app must survive anything the runner raises
            post(RunEnded(run, None, f"The run stopped: {type(exc).__name__}: {exc}"))
            return
        error = None
        if not result.cancelled:
            _, error = save_app_run(config.root, result.to_dict())
        post(RunEnded(run, result, error))

    def _post(self, message: Message) -> None:
        """Hand a message to the screen (thread-safe); quietly drop it when the app is gone."""
        try:
            self.screen.post_message(message)
        except Exception:
            pass
