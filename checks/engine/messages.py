"""The worker protocol: the request the supervisor sends and the messages the worker streams back.

Both sides use these dataclasses and the one `encode`/`decode` pair, so a field cannot be spelled
two ways. On the wire every message is one JSON object per line with a "type" (DESIGN §2): the
request goes to the worker's stdin, the messages come back on a pipe of their own (never stdout,
where project code prints). The in-process path hands the same objects over without encoding.

Standard library and findings.py only: the supervisor runs in the app's process, which must start fast.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..findings import Finding


# The supervisor puts its pid in the worker's environment under this name: the worker dies with it.
PARENT_PID_VAR = "MLTRIAGE_SUPERVISOR_PID"


class ProtocolError(ValueError):
    """A line from the worker that is not a message of this protocol."""


@dataclass
class RunRequest:
    """What one worker is asked to run. On a restart `checks` names the remaining checks."""
    project: str                              # path of mltriage.toml (or its folder)
    steps: list[str] | None = None
    checks: list[str] | None = None           # explicit check ids, in this order (overrides steps)
    budget: float | None = None               # training budget of the whole run, seconds
    budget_used: float = 0.0                  # spent by earlier workers of the same run
    device: str = "cpu"
    hung: dict[str, str] = field(default_factory=dict)  # project role -> where it hung (not called again)
    crashed: dict[str, str] = field(default_factory=dict)  # project role -> how it ended a worker (not called again)


@dataclass
class PlannedCheck:
    id: str
    step: str
    title: str
    timeout: float | None = None


@dataclass
class Plan:
    project: str
    checks: list[PlannedCheck]
    type: str = "plan"


@dataclass
class Started:
    check: str
    type: str = "start"


@dataclass
class FindingMessage:
    finding: Finding
    budget_used: float = 0.0
    type: str = "finding"


@dataclass
class Done:
    budget_used: float = 0.0
    type: str = "done"


@dataclass
class ProjectFailed:
    """The project cannot be checked at all (a ProjectError while loading or preparing it)."""
    message: str
    type: str = "project_error"


Message = Plan | Started | FindingMessage | Done | ProjectFailed


def encode(message: Message | RunRequest) -> str:
    """One line of JSON (no newline) for a message or a request."""
    if isinstance(message, FindingMessage):
        data = {"type": message.type, "finding": message.finding.to_dict(with_rows=True), "budget_used": message.budget_used}
    else:
        data = asdict(message)
    return json.dumps(data)


def decode(line: str | bytes) -> Message:
    """The message a line of the worker's output holds; ProtocolError when it holds none."""
    try:
        data = json.loads(line)
        return _DECODERS[data["type"]](data)
    except ProtocolError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        shown = line[:200] if isinstance(line, str) else line[:200].decode("utf-8", "replace")
        raise ProtocolError(f"not a worker message ({type(exc).__name__}: {exc}): {shown!r}") from None


def decode_request(text: str | bytes) -> RunRequest:
    data = json.loads(text)
    return RunRequest(**data)


def _plan(data: dict) -> Plan:
    return Plan(project=data["project"], checks=[PlannedCheck(**item) for item in data["checks"]])


def _finding(data: dict) -> FindingMessage:
    # the worker built the row table with RowTable (plain JSON values) and json.dumps wrote it: not converted again
    return FindingMessage(finding=Finding.from_dict(data["finding"], plain_rows=True),
                          budget_used=float(data.get("budget_used", 0.0)))


_DECODERS = {
    "plan": _plan,
    "start": lambda data: Started(check=data["check"]),
    "finding": _finding,
    "done": lambda data: Done(budget_used=float(data.get("budget_used", 0.0))),
    "project_error": lambda data: ProjectFailed(message=data["message"]),
}
