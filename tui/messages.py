"""Typed messages from the app's thread workers to the main screen (harlequin's pattern).

A worker thread calls `screen.post_message(FindingArrived(run, finding))` (thread-safe) and one
`@on(FindingArrived)` handler on the screen updates the views; no worker calls into a screen method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from mltriage.checks.findings import Finding

if TYPE_CHECKING:
    from .run_controller import RunState


class RunMessage(Message):
    """Something that happened in one run."""

    def __init__(self, run: "RunState") -> None:
        super().__init__()
        self.run = run


class RunPlanned(RunMessage):
    """The run knows which checks it will run, in order."""

    def __init__(self, run: "RunState", plan: list[str]) -> None:
        super().__init__(run)
        self.plan = plan


class CheckStarted(RunMessage):
    def __init__(self, run: "RunState", check_id: str) -> None:
        super().__init__(run)
        self.check_id = check_id


class FindingArrived(RunMessage):
    def __init__(self, run: "RunState", finding: Finding) -> None:
        super().__init__(run)
        self.finding = finding


class RunEnded(RunMessage):
    """The run is over: `result` None when it stopped early; `error` a message for the user or None."""

    def __init__(self, run: "RunState", result: Any, error: str | None) -> None:
        super().__init__(run)
        self.result = result
        self.error = error


class TitlesLoaded(Message):
    """The titles of every registered check, read off the event loop."""

    def __init__(self, titles: dict[str, str]) -> None:
        super().__init__()
        self.titles = titles
