"""One run setup, used by the worker process and by the in-process path alike.

`serve` selects the checks, loads the project, builds and prepares the run context, runs the checks
and reports through `send` with the protocol's messages (messages.py). The worker passes a `send`
that writes JSON lines to its pipe; the supervisor's in-process path (isolate=False) passes one that
handles the message objects directly, so the two paths cannot drift apart.
"""

from __future__ import annotations

import os
from typing import Callable

from ..project.config import ProjectError
from .messages import Done, FindingMessage, Message, Plan, PlannedCheck, ProjectFailed, RunRequest, Started


def serve(request: RunRequest, send: Callable[[Message], None], config=None, concurrency: int | None = None,
          default_timeout: float | None = None) -> None:
    """Run what `request` asks for. `config`: an already loaded ProjectConfig (else loaded from
    request.project). `concurrency`: checks that may run ahead (default: up to 2, one per core).
    `default_timeout`: the in-process SIGALRM limit per check (the worker is killed instead)."""
    from .context import RunContext
    from .run import run_specs
    from ..project.config import load_project
    from ..project.usercode import UserCodeError
    from ..io.readers import parse_ahead
    try:
        config = config if config is not None else load_project(request.project)
        parse_ahead([config.train, config.valid, config.test])  # overlaps the imports below
        ctx = RunContext(config, budget_seconds=request.budget, device=request.device, hung_roles=request.hung,
                         crashed_roles=request.crashed)
        ctx.budget.used = float(request.budget_used)
        specs = select_specs(request.steps, request.checks, config=config)
        send(Plan(project=config.name, checks=[PlannedCheck(s.id, s.step, s.title, s.timeout) for s in specs]))
        ctx.prepare()
        _warm_up_torch(config)
    except ProjectError as exc:
        send(ProjectFailed(message=str(exc)))
        return
    except UserCodeError as exc:  # project code that every check needs (a Dataset, its items) failed
        send(ProjectFailed(message=f"{config.path}: {exc}\n\n{exc.user_traceback}".rstrip()))
        return
    if concurrency is None:
        concurrency = min(2, os.cpu_count() or 1)
    run_specs(specs, ctx, concurrency=concurrency, default_timeout=default_timeout,
              on_start=lambda spec: send(Started(check=spec.id)),
              on_finding=lambda finding: send(FindingMessage(finding=finding, budget_used=ctx.budget.used)))
    send(Done(budget_used=ctx.budget.used))


def select_specs(steps: list[str] | None, checks: list[str] | None, config=None) -> list:
    """The checks to run: explicit ids in the order given, else the steps' checks in catalog order. A
    restarted worker gets its remaining checks as explicit ids, in plan order; unknown ones are dropped.
    Unknown ids in the project's [checks] skip / max_status are a ProjectError naming them: a typo there
    must not silently skip nothing."""
    from .registry import all_checks, checks_for
    from ..project.config import did_you_mean

    registered = all_checks()
    if checks is not None:  # the CLI refuses unknown --checks ids before the run (tui/cli.py)
        specs = [registered[c] for c in dict.fromkeys(checks) if c in registered]
    else:
        specs = checks_for(steps)
    if config is not None:
        where = {"skip": list(getattr(config, "check_skip", None) or []),
                 "max_status": list((getattr(config, "check_max_status", None) or {}).keys())}
        for key, ids in where.items():
            for cid in ids:
                if cid not in registered:
                    section = "[checks] skip" if key == "skip" else "[checks.max_status]"
                    raise ProjectError(f"{config.path}: {section} names '{cid}', which is not a check id."
                                       f"{did_you_mean(cid, list(registered))} Fix the id or remove it.")
    return specs


def _warm_up_torch(config) -> None:
    """Import torch before the first check of a project with a model, outside every check's time limit:
    on a loaded machine the import alone can take seconds, and a check's limit is for the project's code
    (a hang found there must be located in that code, not in mltriage's imports)."""
    if not config.has_model:
        return
    try:
        import torch  # noqa: F401
    except ImportError:  # the checks that need it say so
        pass
