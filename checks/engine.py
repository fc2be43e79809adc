"""Running checks inside one process: the loop the worker process uses, also usable in-process.

The runner (runner.py) normally calls this in a child process so that project code that hangs or
crashes can be killed without taking mltriage down. Tests may call it directly (isolate=False).
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterable

from .context import RunContext
from .findings import Finding, SkipCheck, errored, skipped
from .project import ProjectError
from .registry import CheckSpec
from .usercode import UserCodeError


class CheckTimeout(Exception):
    pass


@contextmanager
def _alarm(seconds: float | None):
    """In-process time limit via SIGALRM (main thread only). The worker process relies on being killed."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_one(spec: CheckSpec, ctx: RunContext, timeout: float | None = None) -> Finding:
    """Run one check; never raises. Missing inputs -> skipped, exceptions -> error."""
    start = time.perf_counter()
    try:
        finding = _run_guarded(spec, ctx, timeout)
    except BaseException as exc:  # KeyboardInterrupt included: turn it into a finding, the runner decides
        if isinstance(exc, KeyboardInterrupt):
            raise
        finding = errored(_failure_title(exc), detail=traceback.format_exc())
    finding.check, finding.step = spec.id, spec.step
    finding.seconds = time.perf_counter() - start
    return finding


def _failure_title(exc: BaseException) -> str:
    """Name the failure: the model's own forward() (a project bug, e.g. a shape mismatch) or the check."""
    message = (str(exc).strip().splitlines() or [""])[0][:160]
    what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if any("torch/nn/modules/module.py" in f.filename.replace("\\", "/") for f in frames):
        return f"project code failed: the model's forward() raised {what}"
    return f"the check failed: {what}"


def _run_guarded(spec: CheckSpec, ctx: RunContext, timeout: float | None) -> Finding:
    for need in spec.needs:
        try:
            what = ctx.missing(need)
        except (UserCodeError, ProjectError) as exc:
            return errored(f"could not tell whether {need} is available", detail=_describe(exc))
        if what:
            return skipped(f"needs {what.split(':')[0]}", detail=f"This check needs {what}.",
                           evidence={"missing": need})
    try:
        with _alarm(timeout):
            result = spec.fn(ctx)
    except SkipCheck as exc:
        return skipped(str(exc).splitlines()[0] if str(exc) else "does not apply", detail=str(exc))
    except CheckTimeout:
        return errored(f"timed out after {timeout:.0f} s", detail=f"The check did not finish within its "
                       f"limit of {timeout:.0f} s and was stopped.")
    except UserCodeError as exc:
        return errored(f"project code failed: {str(exc).splitlines()[0]}", detail=_describe(exc))
    except ProjectError as exc:
        return errored(str(exc).splitlines()[0][:120], detail=str(exc))
    if not isinstance(result, Finding):
        return errored("the check returned no finding",
                       detail=f"{spec.fn.__module__}.{spec.fn.__name__} returned {type(result).__name__}.")
    return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UserCodeError):
        return f"{exc}\n\n{exc.user_traceback}"
    return str(exc)


def run_specs(specs: Iterable[CheckSpec], ctx: RunContext, on_start: Callable[[CheckSpec], None] | None = None,
              on_finding: Callable[[Finding], None] | None = None,
              default_timeout: float | None = None) -> list[Finding]:
    findings = []
    for spec in specs:
        if on_start:
            on_start(spec)
        finding = run_one(spec, ctx, spec.timeout or default_timeout)
        findings.append(finding)
        if on_finding:
            on_finding(finding)
    return findings
