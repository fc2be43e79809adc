"""Run checks for a project, by default in a child process that can be killed.

The parent side imports only the standard library and mltriage's light modules, so the app and
the CLI stay fast to start. Findings stream back one at a time through callbacks. A check that
runs past its time limit, or a child that dies (a crash in project code, out of memory), becomes
an `error` finding and the run carries on in a fresh child with the remaining checks.
"""

from __future__ import annotations

import os
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

from ..findings import Finding, errored, summarize
from ..project.config import ProjectConfig, ProjectError
from ..project.usercode import ROLE_FILE_VAR, ROLE_SLOT_BYTES, read_role_file
from .diagnosis import (_out_of_run_time, _process_died, _tail, _timed_out, hung_project_role,  # noqa: F401
                        last_words, role_label)
from .messages import (PARENT_PID_VAR, Done, FindingMessage, Message, Plan, PlannedCheck, ProjectFailed,
                       RunRequest, Started, decode, encode)

# A hung check is killed after its own limit or, by default, the training budget plus this slack:
# model-touching checks spend at most the budget, data checks take seconds.
CHECK_TIMEOUT_SLACK = 120.0
SINGLE_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The worker has this long to load the project and data before the run is abandoned.
PREPARE_TIMEOUT = 900.0
# Importing the project's code ([model] code) may take this long (torch alone takes seconds on a busy
# machine) before it counts as hung; with --check-timeout, that limit, but never under IMPORT_MIN_SECONDS.
IMPORT_TIMEOUT = 120.0
IMPORT_MIN_SECONDS = 20.0

# After this many workers in a row end without a single finding of their own (each timed out or died:
# a --check-timeout far too small, a memory limit too low), the remaining checks are not attempted;
# otherwise each of ~60 checks would pay a fresh worker's start and the run would take many minutes.
MAX_WORKERS_LOST_IN_A_ROW = 3

# Workers alive in this process, so that a signal handler (the CLI's SIGTERM/SIGHUP/SIGINT) can take
# their process groups down at once, whatever the thread that started them is doing.
_LIVE: set = set()
_LIVE_LOCK = threading.RLock()  # re-entrant: the handler may interrupt its own thread holding it


def kill_workers() -> int:
    """SIGKILL the process group of every worker this process started that is still running; returns
    how many. Safe to call from a signal handler (no waiting) and more than once."""
    with _LIVE_LOCK:
        workers = list(_LIVE)
    killed = 0
    for worker in workers:
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError, OSError):
            pass
    return killed


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

    def __init__(self, request: RunRequest, log_path: Path, role_path: Path | None = None):
        read_fd, write_fd = os.pipe()
        self.log = open(log_path, "ab")
        self.log_start = self.log.tell()  # this worker's output starts here (the log holds every worker's)
        self.role_path = role_path
        if role_path is not None:
            role_path.write_bytes(b"\0" * ROLE_SLOT_BYTES)  # no project function running yet
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
        if role_path is not None:
            env[ROLE_FILE_VAR] = str(role_path)
        with _LIVE_LOCK:  # registered before it exists: a signal now still finds it once it does
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mltriage.checks.engine.worker", str(write_fd)],
                stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, pass_fds=(write_fd,),
                env=env, start_new_session=True)  # its own process group: a terminal ^C goes to us only
            _LIVE.add(self)
        os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""
        try:
            self.proc.stdin.write(encode(request).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it died at once: read() meets EOF and the run reports its last words

    def role(self) -> str | None:
        """The project role the worker was running (from the role file), or None."""
        return read_role_file(self.role_path) if self.role_path is not None else None

    def own_output(self, log_path: Path) -> str:
        """What this worker wrote to the log (the log holds the output of every worker of the run)."""
        try:
            with open(log_path, "rb") as handle:
                handle.seek(self.log_start)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

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
        with _LIVE_LOCK:
            _LIVE.discard(self)
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
        return _with_causes(_run_in_process(run))
    log_dir = Path(tempfile.mkdtemp(prefix="mltriage-"))
    log_path = log_dir / "worker.log"
    try:
        while True:
            worker = _Worker(run.request, log_path, role_path=log_dir / "role")
            outcome = _follow(worker, run, cancel, log_path)
            if not _carry_on(run, outcome, log_path):
                break
    finally:
        run.result.seconds = time.monotonic() - run.t0
        _cleanup(log_dir)
    return _with_causes(run.result)


def _with_causes(result: RunResult) -> RunResult:
    """Knock-on findings point at their root cause (caused_by), for every view of the run."""
    from .causes import assign_causes

    if not result.cancelled:
        assign_causes(result.findings)
    return result


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
        self.import_timeout = max(options.check_timeout, IMPORT_MIN_SECONDS) if options.check_timeout \
            else IMPORT_TIMEOUT
        self.request = RunRequest(project=str(config.path), steps=options.steps, checks=options.checks,
                                  budget=budget, budget_used=0.0, device=options.device)
        self.plan: list[PlannedCheck] | None = None
        self.pending: list[str] = []
        self.current: str | None = None   # the check the current worker is running
        self.losses = 0                   # workers lost in a row (timed out or died) with no finding between

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
            self.losses = 0
        elif isinstance(message, Done):
            return "done"
        return "progress"

    def emit(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        if finding.check in self.pending:
            self.pending.remove(finding.check)
        if self.on_finding:
            self.on_finding(finding)

    def limit(self, check_id: str | None, role: str | None = None) -> float:
        """Seconds the worker may take: to get ready (no check running; `role` "import" while it imports
        the project's code), else for this check."""
        if check_id is None:
            return self.import_timeout if role == "import" else PREPARE_TIMEOUT
        return _timeout_for(self.plan, check_id, self.default_timeout)

    def past_total_timeout(self) -> bool:
        total = self.options.total_timeout
        return bool(total) and time.monotonic() - self.t0 > total


@dataclass
class _Outcome:
    """How one worker ended: done, crashed, timeout (of the check running), cancelled, total_timeout;
    `preparing` when it ended before starting any check (loading the project, importing its code)."""
    kind: str
    stack: str = ""                 # a timed-out worker's Python stacks (faulthandler)
    exit_code: int | None = None
    role: str | None = None         # the project role it was running when it ended (the role file)
    output: str = ""                # what this worker wrote to the log (its last words)
    preparing: bool = False


def _follow(worker: _Worker, run: _Run, cancel: threading.Event | None, log_path: Path) -> _Outcome:
    """Read the worker's messages into the run until it ends, hangs, or the run is cancelled."""
    run.current, started = None, time.monotonic()
    kind, any_started = "done", False
    role_started: tuple[str | None, float] = (None, started)  # the role while preparing, since when
    try:
        while True:
            if cancel is not None and cancel.is_set():
                kind = "cancelled"
                break
            if run.past_total_timeout():
                kind = "total_timeout"
                break
            clock = started
            role = None
            if run.current is None and not any_started:
                role = worker.role()
                if role != role_started[0]:
                    role_started = (role, time.monotonic())
                if role == "import":
                    clock = role_started[1]
            limit = run.limit(run.current, role)
            message = worker.read(min(0.2, max(0.0, limit - (time.monotonic() - clock))))
            if message is None:
                if time.monotonic() - clock > limit:
                    kind = "timeout"
                    break
                continue
            if message is EOF:
                kind = "done" if (run.plan is not None and not run.pending) else "crashed"
                break
            handled = run.handle(message)
            if isinstance(message, Started):
                any_started = True
            if handled == "done":
                break
            if handled == "progress":
                started = time.monotonic()
    finally:
        stack = worker.dump_stack(log_path) if kind == "timeout" else ""
        role = worker.role()
        worker.kill()
    # ended before its first check: for the run's first worker, nothing could be checked at all
    preparing = not any_started and kind in ("timeout", "crashed")
    return _Outcome(kind, stack=stack, exit_code=worker.proc.returncode, role=role,
                    output=worker.own_output(log_path), preparing=preparing)


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
    if outcome.preparing and not run.result.findings:
        raise ProjectError(_not_started_message(run, outcome, log_path))
    if outcome.preparing:  # a fresh worker could not even get ready: do not start another for each check
        message = _not_started_message(run, outcome, log_path)
        for cid in list(run.pending):
            run.emit(_finished(errored("not run: the check process ended before it could start this check",
                                       detail=message), cid))
        return False
    victim = run.current or (run.pending[0] if run.pending else None)
    if victim is None:
        return False
    if outcome.kind == "timeout":
        limit = run.limit(victim)
        role, where = hung_project_role(outcome.stack, run.config)
        if role is None and outcome.role and outcome.role != "import":
            role = outcome.role  # stuck outside Python (a C extension, a lock): the role file knows
        if role:
            run.request.hung[role] = where or f"It was running the project's {role_label(role, run.config)}."
        run.emit(_finished(_timed_out(limit, role, role_label(role, run.config) if role else None, where), victim))
    else:
        own = outcome.output or _log_tail(log_path)
        role, where = hung_project_role(own, run.config) if "Fatal Python error" in own else (None, "")
        if role is None and outcome.role and outcome.role != "import":
            role = outcome.role
        if role:  # the next worker does not call it again: one crashing build_model, one error each
            run.request.crashed[role] = (f"In an earlier check the project's {role_label(role, run.config)} "
                                         f"ended the check process (exit code {outcome.exit_code})."
                                         + (f"\n\n{where}" if where else ""))
        run.emit(_finished(_process_died(outcome.exit_code, _tail(own), role_label(role, run.config)
                                         if role else None), victim))
    run.losses += 1
    if not run.pending:
        return False
    if run.losses >= MAX_WORKERS_LOST_IN_A_ROW:  # each restart pays the project's loading again: stop here
        for cid in list(run.pending):
            run.emit(_finished(errored(
                f"not run: the previous {run.losses} checks each timed out or ended their process",
                detail=f"{run.losses} checks in a row ended without a result (see them above), so mltriage "
                       f"stopped restarting the check process for the remaining ones. Fix what the first of "
                       f"them reports (or raise --check-timeout) and run again."), cid))
        return False
    run.request = replace(run.request, checks=list(run.pending), steps=None)
    return True


# --- the prose of the findings the supervisor itself reports -------------------------------------


def _not_started_message(run: "_Run", outcome: _Outcome, log_path: Path) -> str:
    """The exit-2 message for a worker that ended before it ran a single check: nothing was checked."""
    words = last_words(outcome.output or _log_tail(log_path)) or "(it printed nothing)"
    code = run.config.model_code
    if outcome.kind == "timeout" and outcome.role == "import":
        _, where = hung_project_role(outcome.stack, run.config)
        return (f"{run.config.path}: importing [model] code = \"{code}\" did not finish within "
                f"{run.import_timeout:.0f} s and was stopped, so nothing was checked. Code that runs at import "
                f"time (a download, a loop, a lock) must return; move it into build_model or behind "
                f"`if __name__ == \"__main__\":`." + (f"\n\n{where}" if where else ""))
    if outcome.kind == "timeout":
        return (f"{run.config.path}: loading the project did not finish within {PREPARE_TIMEOUT:.0f} s, so "
                f"nothing was checked.\n\nLast output of the check process:\n{words}")
    during = (f" while importing [model] code = \"{code}\"" if outcome.role == "import" else "")
    return (f"{run.config.path}: the check process ended (exit code {outcome.exit_code}){during} before it "
            f"ran a single check, so nothing was checked. Project code that exits or crashes at import "
            f"time, or a memory limit too small to load the data, does this.\n\n"
            f"Last output of the check process:\n{words}")


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
