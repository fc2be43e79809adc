"""Run checks for a project, by default in a child process that can be killed.

The parent side imports only the standard library and mltriage's light modules, so the app and
the CLI stay fast to start. Findings stream back one at a time through callbacks. A check that
runs past its time limit, or a child that dies (a crash in project code, out of memory), becomes
an `error` finding and the run carries on in a fresh child with the remaining checks.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..findings import Finding, errored, skipped, summarize
from ..project.config import ProjectConfig, ProjectError

# A hung check is killed after its own limit or, by default, the training budget plus this slack:
# model-touching checks spend at most the budget, data checks take seconds.
CHECK_TIMEOUT_SLACK = 120.0
SINGLE_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The worker has this long to load the project and data before the run is abandoned.
PREPARE_TIMEOUT = 900.0


@dataclass
class RunResult:
    project: str
    findings: list[Finding] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.findings)

    def to_dict(self) -> dict:
        from mltriage import __version__

        return {"mltriage": __version__, "project": self.project,
                "findings": [f.to_dict() for f in self.findings], "summary": self.summary,
                "started": self.started, "seconds": round(self.seconds, 3)}


@dataclass
class RunOptions:
    steps: list[str] | None = None
    checks: list[str] | None = None      # explicit check ids (overrides steps)
    budget: float | None = None          # overrides [budget] seconds
    device: str = "cpu"
    check_timeout: float | None = None   # per-check cap; default: budget + CHECK_TIMEOUT_SLACK
    total_timeout: float | None = None   # whole run; remaining checks are skipped past it
    isolate: bool = True


class _Worker:
    """One child process and the pipe its messages come through."""

    def __init__(self, request: dict, log_path: Path):
        read_fd, write_fd = os.pipe()
        self.log = open(log_path, "ab")
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        env["PYTHONUNBUFFERED"] = "1"
        # Importing the project's model.py must not leave __pycache__ in the user's folder.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # One compute thread per library: the models checked here are small, and torch's and
        # scikit-learn's thread pools spinning against each other (or against a busy machine) made
        # steps 10-50x slower on two cores. Users who set these themselves keep their values.
        for var in SINGLE_THREAD_VARS:
            env.setdefault(var, "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mltriage.checks.engine.worker", str(write_fd)],
            stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, pass_fds=(write_fd,),
            env=env, start_new_session=True)  # its own process group: a terminal ^C goes to us only
        os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""
        self.proc.stdin.write(json.dumps(request).encode())
        self.proc.stdin.close()

    def read(self, timeout: float) -> dict | None | str:
        """The next message; None on timeout; 'eof' when the child closed the pipe."""
        deadline = time.monotonic() + max(0.0, timeout)
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return "eof"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def dump_stack(self, log_path: Path) -> str:
        """Ask a hung worker for its Python stacks (faulthandler) and return what it wrote."""
        start = log_path.stat().st_size if log_path.exists() else 0
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except (ProcessLookupError, PermissionError):
            return ""
        deadline = time.monotonic() + 1.0
        text, previous = "", None
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with open(log_path, "rb") as handle:
                handle.seek(start)
                text = handle.read().decode("utf-8", "replace")
            if "File " in text and text == previous:  # the dump is written and has stopped growing
                break
            previous = text
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.close()

    def close(self) -> None:
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for closer in (lambda: os.close(self.fd), self.log.close):
            try:
                closer()
            except OSError:
                pass


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_checks(config: ProjectConfig, options: RunOptions | None = None,
               on_plan: Callable[[list[dict]], None] | None = None,
               on_start: Callable[[str], None] | None = None,
               on_finding: Callable[[Finding], None] | None = None,
               cancel: threading.Event | None = None) -> RunResult:
    """Run the selected steps' checks. Raises ProjectError when the project cannot be checked."""
    options = options or RunOptions()
    if not options.isolate:
        return _run_in_process(config, options, on_plan, on_start, on_finding)
    result = RunResult(project=config.name)
    t0 = time.monotonic()
    budget = options.budget if options.budget is not None else config.budget_seconds
    default_timeout = options.check_timeout or budget + CHECK_TIMEOUT_SLACK
    request = {"project": str(config.path), "steps": options.steps, "checks": options.checks,
               "budget": budget, "budget_used": 0.0, "device": options.device}
    plan: list[dict] | None = None
    pending: list[str] = []
    log_dir = Path(tempfile.mkdtemp(prefix="mltriage-"))
    log_path = log_dir / "worker.log"

    def emit(finding: Finding) -> None:
        result.findings.append(finding)
        if finding.check in pending:
            pending.remove(finding.check)
        if on_finding:
            on_finding(finding)

    while True:
        worker = _Worker(request, log_path)
        current, started = None, time.monotonic()
        outcome = "done"
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    outcome = "cancelled"
                    break
                if options.total_timeout and time.monotonic() - t0 > options.total_timeout:
                    outcome = "total_timeout"
                    break
                limit = PREPARE_TIMEOUT if current is None else _timeout_for(plan, current, default_timeout)
                message = worker.read(min(0.2, max(0.0, limit - (time.monotonic() - started))))
                if message is None:
                    if time.monotonic() - started > limit:
                        outcome = "timeout"
                        break
                    continue
                if message == "eof":
                    outcome = "done" if not pending else "crashed"
                    break
                kind = message["type"]
                if kind == "project_error":
                    raise ProjectError(message["message"])
                if kind == "plan":
                    if plan is None:
                        plan = message["checks"]
                        pending = [c["id"] for c in plan]
                        if on_plan:
                            on_plan(plan)
                        started = time.monotonic()
                elif kind == "start":
                    current, started = message["check"], time.monotonic()
                    if on_start:
                        on_start(current)
                elif kind == "finding":
                    request["budget_used"] = message.get("budget_used", request["budget_used"])
                    emit(Finding.from_dict(message["finding"]))
                    current = None
                    started = time.monotonic()
                elif kind == "done":
                    outcome = "done"
                    break
        finally:
            stack = worker.dump_stack(log_path) if outcome == "timeout" else ""
            worker.kill()
        if outcome == "done" and not pending:
            break
        if outcome == "cancelled":
            result.cancelled = True
            break
        if outcome == "total_timeout":
            for cid in list(pending):
                emit(_finished(skipped("not run: the run's time limit was reached",
                                       detail=f"The whole run is limited to {options.total_timeout:.0f} s."), cid))
            break
        victim = current or (pending[0] if pending else None)
        if victim is None:
            break
        if outcome == "timeout":
            limit = _timeout_for(plan, victim, default_timeout)
            role, where = hung_project_role(stack, config)
            if role:
                request.setdefault("hung", {})[role] = where
                title = f"timed out after {limit:.0f} s inside the project's {getattr(config, role)}()"
                detail = (f"The check did not finish within {limit:.0f} s and its process was stopped. It was "
                          f"stuck in project code ({role} = \"{getattr(config, role)}\"); later checks will not "
                          f"call it again in this run.\n\n{where}")
            else:
                title = f"timed out after {limit:.0f} s"
                detail = (f"The check did not finish within {limit:.0f} s and its process was stopped. If project "
                          f"code can hang (a loop, a lock, a sleep), fix that; if it is just slow, lower the data "
                          f"size or raise --budget.")
            emit(_finished(errored(title, detail=detail), victim))
        else:
            code = worker.proc.returncode
            emit(_finished(errored(f"the check process died (exit code {code})",
                                   detail="The process running this check ended without a result: project code "
                                          "crashed it, or it ran out of memory.\n\nLast output:\n"
                                          + _log_tail(log_path)), victim))
        if not pending:
            break
        request = dict(request, checks=list(pending), steps=None)
    result.seconds = time.monotonic() - t0
    _cleanup(log_dir)
    return result


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def hung_project_role(stack: str, config: ProjectConfig) -> tuple[str | None, str]:
    """From a faulthandler dump: the project role (build, featurize, train_step, predict) whose
    function was on the stack, and the project frames as text; (None, "") when not in project code."""
    root = str(config.root.resolve())
    frames = [m.groupdict() for m in _FRAME.finditer(stack) if m.group("file").startswith(root)]
    if not frames:
        return None, ""
    # faulthandler prints the innermost frame first
    where = "Where it was stuck (innermost first):\n" + "\n".join(
        f'  File "{f["file"]}", line {f["line"]} in {f["func"]}' for f in frames[:8])
    names = {getattr(config, role): role for role in ("build", "featurize", "train_step", "predict")
             if getattr(config, role, None)}
    for frame in frames:
        if frame["func"] in names:
            return names[frame["func"]], where
    return None, where


def _timeout_for(plan: list[dict] | None, check_id: str, default: float) -> float:
    for item in plan or []:
        if item["id"] == check_id and item.get("timeout"):
            return float(item["timeout"])
    return default


def _finished(finding: Finding, check_id: str) -> Finding:
    finding.check, finding.step = check_id, check_id.split(".", 1)[0]
    return finding


def _cleanup(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()


def _run_in_process(config, options, on_plan, on_start, on_finding) -> RunResult:
    from .context import RunContext
    from .run import run_specs
    from .registry import checks_for

    t0 = time.monotonic()
    ctx = RunContext(config, budget_seconds=options.budget, device=options.device)
    specs = checks_for(options.steps)
    if options.checks is not None:
        specs = [s for s in checks_for(None) if s.id in options.checks]
    if on_plan:
        on_plan([{"id": s.id, "step": s.step, "title": s.title, "timeout": s.timeout} for s in specs])
    ctx.prepare()
    findings = run_specs(specs, ctx, on_start=(lambda s: on_start(s.id)) if on_start else None,
                         on_finding=on_finding, default_timeout=options.check_timeout)
    return RunResult(project=config.name, findings=findings, seconds=time.monotonic() - t0)
