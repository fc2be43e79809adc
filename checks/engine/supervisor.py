"""Run checks for a project, by default in a child process that can be killed.

The parent side imports only the standard library and mltriage's light modules, so the app and
the CLI stay fast to start. Findings stream back one at a time through callbacks. A check that
runs past its time limit, or a child that dies (a crash in project code, out of memory), becomes
an `error` finding and the run carries on in a fresh child with the remaining checks.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..findings import Finding, errored, skipped, summarize
from ..project.config import ProjectConfig, ProjectError
from .messages import (PARENT_PID_VAR, Done, FindingMessage, Message, Plan, PlannedCheck, ProjectFailed,
                       RunRequest, Started, decode, encode)

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


# What _Worker.read returns when the worker has closed its end of the pipe.
EOF = object()


class _Worker:
    """One child process and the pipe its messages come through: start, read, dump stack, kill."""

    def __init__(self, request: RunRequest, log_path: Path):
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
        env[PARENT_PID_VAR] = str(os.getpid())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mltriage.checks.engine.worker", str(write_fd)],
            stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, pass_fds=(write_fd,),
            env=env, start_new_session=True)  # its own process group: a terminal ^C goes to us only
        os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""
        self.proc.stdin.write(encode(request).encode())
        self.proc.stdin.close()

    def read(self, timeout: float) -> Message | None | object:
        """The next message; None on timeout; EOF when the child closed the pipe."""
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
                return EOF
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return decode(line)

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
    run = _Run(config, options, on_plan, on_start, on_finding)
    if not options.isolate:
        return _run_in_process(run)
    log_dir = Path(tempfile.mkdtemp(prefix="mltriage-"))
    log_path = log_dir / "worker.log"
    try:
        while True:
            worker = _Worker(run.request, log_path)
            outcome = _follow(worker, run, cancel, log_path)
            if not _carry_on(run, outcome, log_path):
                break
    finally:
        run.result.seconds = time.monotonic() - run.t0
        _cleanup(log_dir)
    return run.result


class _Run:
    """What the supervisor knows of a run, across the workers it takes: the plan, the checks still
    pending, the one running now, and the request for the next worker."""

    def __init__(self, config: ProjectConfig, options: RunOptions, on_plan, on_start, on_finding):
        self.config, self.options = config, options
        self.on_plan, self.on_start, self.on_finding = on_plan, on_start, on_finding
        self.t0 = time.monotonic()
        self.result = RunResult(project=config.name)
        budget = options.budget if options.budget is not None else config.budget_seconds
        self.default_timeout = options.check_timeout or budget + CHECK_TIMEOUT_SLACK
        self.request = RunRequest(project=str(config.path), steps=options.steps, checks=options.checks,
                                  budget=budget, budget_used=0.0, device=options.device)
        self.plan: list[PlannedCheck] | None = None
        self.pending: list[str] = []
        self.current: str | None = None   # the check the current worker is running

    def handle(self, message: Message) -> str | None:
        """Apply one message: "done" at the end of the worker's run, "progress" when the check clock
        restarts, None otherwise. Raises ProjectError when the project cannot be checked."""
        if isinstance(message, ProjectFailed):
            raise ProjectError(message.message)
        if isinstance(message, Plan):
            if self.plan is not None:
                return None  # a restarted worker plans its remaining checks: the run's plan stands
            self.plan = message.checks
            self.pending = [c.id for c in self.plan]
            if self.on_plan:
                self.on_plan([asdict(c) for c in self.plan])
        elif isinstance(message, Started):
            self.current = message.check
            if self.on_start:
                self.on_start(message.check)
        elif isinstance(message, FindingMessage):
            self.request.budget_used = message.budget_used
            self.emit(message.finding)
            self.current = None
        elif isinstance(message, Done):
            return "done"
        return "progress"

    def emit(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        if finding.check in self.pending:
            self.pending.remove(finding.check)
        if self.on_finding:
            self.on_finding(finding)

    def limit(self, check_id: str | None) -> float:
        """Seconds the worker may take: to get ready (no check running), else for this check."""
        if check_id is None:
            return PREPARE_TIMEOUT
        return _timeout_for(self.plan, check_id, self.default_timeout)

    def past_total_timeout(self) -> bool:
        total = self.options.total_timeout
        return bool(total) and time.monotonic() - self.t0 > total


@dataclass
class _Outcome:
    """How one worker ended: done, crashed, timeout (of the check running), cancelled, total_timeout."""
    kind: str
    stack: str = ""                 # a timed-out worker's Python stacks (faulthandler)
    exit_code: int | None = None


def _follow(worker: _Worker, run: _Run, cancel: threading.Event | None, log_path: Path) -> _Outcome:
    """Read the worker's messages into the run until it ends, hangs, or the run is cancelled."""
    run.current, started = None, time.monotonic()
    kind = "done"
    try:
        while True:
            if cancel is not None and cancel.is_set():
                kind = "cancelled"
                break
            if run.past_total_timeout():
                kind = "total_timeout"
                break
            limit = run.limit(run.current)
            message = worker.read(min(0.2, max(0.0, limit - (time.monotonic() - started))))
            if message is None:
                if time.monotonic() - started > limit:
                    kind = "timeout"
                    break
                continue
            if message is EOF:
                kind = "done" if not run.pending else "crashed"
                break
            handled = run.handle(message)
            if handled == "done":
                break
            if handled == "progress":
                started = time.monotonic()
    finally:
        stack = worker.dump_stack(log_path) if kind == "timeout" else ""
        worker.kill()
    return _Outcome(kind, stack=stack, exit_code=worker.proc.returncode)


def _carry_on(run: _Run, outcome: _Outcome, log_path: Path) -> bool:
    """The restart policy: after a worker ends, report what its end means and say whether a fresh
    worker should run the remaining checks (then run.request asks for them)."""
    if outcome.kind == "done" and not run.pending:
        return False
    if outcome.kind == "cancelled":
        run.result.cancelled = True
        return False
    if outcome.kind == "total_timeout":
        for cid in list(run.pending):
            run.emit(_finished(_out_of_run_time(run.options.total_timeout), cid))
        return False
    victim = run.current or (run.pending[0] if run.pending else None)
    if victim is None:
        return False
    if outcome.kind == "timeout":
        limit = run.limit(victim)
        role, where = hung_project_role(outcome.stack, run.config)
        if role:
            run.request.hung[role] = where  # the next worker does not call it again
        run.emit(_finished(_timed_out(limit, role, getattr(run.config, role) if role else None, where), victim))
    else:
        run.emit(_finished(_process_died(outcome.exit_code, _log_tail(log_path)), victim))
    if not run.pending:
        return False
    run.request = replace(run.request, checks=list(run.pending), steps=None)
    return True


# --- the prose of the findings the supervisor itself reports -------------------------------------

def _out_of_run_time(total_timeout: float) -> Finding:
    return skipped("not run: the run's time limit was reached",
                   detail=f"The whole run is limited to {total_timeout:.0f} s.")


def _timed_out(limit: float, role: str | None, function: str | None, where: str) -> Finding:
    if role:
        return errored(f"timed out after {limit:.0f} s inside the project's {function}()",
                       detail=f"The check did not finish within {limit:.0f} s and its process was stopped. It was "
                              f"stuck in project code ({role} = \"{function}\"); later checks will not "
                              f"call it again in this run.\n\n{where}")
    return errored(f"timed out after {limit:.0f} s",
                   detail=f"The check did not finish within {limit:.0f} s and its process was stopped. If project "
                          f"code can hang (a loop, a lock, a sleep), fix that; if it is just slow, lower the data "
                          f"size or raise --budget.")


def _process_died(exit_code: int | None, last_output: str) -> Finding:
    return errored(f"the check process died (exit code {exit_code})",
                   detail="The process running this check ended without a result: project code "
                          "crashed it, or it ran out of memory.\n\nLast output:\n" + last_output)


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


def _timeout_for(plan: list[PlannedCheck] | None, check_id: str, default: float) -> float:
    for item in plan or []:
        if item.id == check_id and item.timeout:
            return float(item.timeout)
    return default


def _finished(finding: Finding, check_id: str) -> Finding:
    finding.check, finding.step = check_id, check_id.split(".", 1)[0]
    return finding


def _cleanup(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()


def _run_in_process(run: _Run) -> RunResult:
    """The same run setup as the worker's (serve.py), in this process: its messages are handled as
    they come. Checks run one at a time here, so that each gets its in-process SIGALRM limit."""
    from .serve import serve

    serve(run.request, run.handle, config=run.config, concurrency=1, default_timeout=run.options.check_timeout)
    run.result.seconds = time.monotonic() - run.t0
    return run.result
