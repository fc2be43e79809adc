"""The worker process: loads the project, runs checks, streams JSON messages back.

Started by runner.py as `python -m mltriage.checks.engine.worker FD`. The request comes as one JSON
object on stdin; messages go out as JSON lines on file descriptor FD, so that whatever the
project's code prints cannot corrupt them (its stdout/stderr go to a log file of the runner's).
"""

from __future__ import annotations

import json
import os
import sys


def _send(stream, message: dict) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def serve(request: dict, out) -> None:
    from .context import RunContext
    from .run import run_specs
    from ..project.config import ProjectError, load_project
    from ..io.readers import parse_ahead
    from .registry import all_checks, checks_for

    from ..project import usercode

    usercode.HUNG_ROLES.update(request.get("hung") or {})
    try:
        config = load_project(request["project"])
        parse_ahead([config.train, config.valid, config.test])  # overlaps the imports below
        ctx = RunContext(config, budget_seconds=request.get("budget"), device=request.get("device", "cpu"))
        ctx.budget.used = float(request.get("budget_used", 0.0))
        if request.get("checks") is not None:
            registered = all_checks()
            specs = [registered[c] for c in request["checks"] if c in registered]
        else:
            specs = checks_for(request.get("steps"))
        _send(out, {"type": "plan", "project": config.name,
                    "checks": [{"id": s.id, "step": s.step, "title": s.title, "timeout": s.timeout}
                               for s in specs]})
        ctx.prepare()
    except ProjectError as exc:
        _send(out, {"type": "project_error", "message": str(exc)})
        return
    run_specs(specs, ctx, concurrency=min(2, os.cpu_count() or 1),
              on_start=lambda spec: _send(out, {"type": "start", "check": spec.id}),
              on_finding=lambda f: _send(out, {"type": "finding", "finding": f.to_dict(),
                                               "budget_used": ctx.budget.used}))
    _send(out, {"type": "done", "budget_used": ctx.budget.used})


# Project code that allocates far too much gets a MemoryError (an `error` finding) instead of
# driving the machine into the OOM killer: cap the address space at this share of physical memory.
MEMORY_SHARE = 0.75


def limit_memory() -> None:
    import resource

    override = os.environ.get("MLTRIAGE_MEMORY_LIMIT_MB")
    try:
        if override:
            limit = int(override) * 1024 * 1024
        else:
            limit = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_SHARE)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError, AttributeError):
        pass  # not available on this platform: run without the cap


def main(argv: list[str]) -> int:
    fd = int(argv[1])
    sys.dont_write_bytecode = True
    limit_memory()
    # On SIGUSR1 dump every thread's Python stack into our log (stderr): the runner asks for it
    # before killing a check that hangs, to tell the user where in their code it was stuck.
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    out = os.fdopen(fd, "w", encoding="utf-8")
    request = json.loads(sys.stdin.read())
    # Project code must never write into the terminal of the app or the CLI's output: the runner
    # already points our stdout/stderr at a log file.
    serve(request, out)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
