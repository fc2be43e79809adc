"""The worker process: loads the project, runs checks, streams the protocol's messages back.

Started by the supervisor as `python -m mltriage.checks.engine.worker FD`. The request comes as one
JSON object on stdin; messages go out as JSON lines on file descriptor FD (messages.py), so that
whatever the project's code prints cannot corrupt them (its stdout/stderr go to a log file of the
supervisor's). The run itself is engine/serve.py's, the same the in-process path uses.
"""

from __future__ import annotations

import os
import sys
import threading
import time

# How often the watcher thread checks that the parent is still there, seconds.
PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def serve(request, out) -> None:
    """Run the request, writing each message to `out` as one JSON line."""
    from .messages import encode
    from .serve import serve as run

    def send(message) -> None:
        out.write(encode(message) + "\n")
        out.flush()

    run(request, send)


def die_with_parent() -> None:
    """Never outlive the supervisor: a worker left behind by a killed app would go on training.

    On Linux the kernel sends SIGKILL when the parent goes (prctl PR_SET_PDEATHSIG; strictly, when the
    parent *thread* that started us ends: the supervisor waits for us on that thread, so it is the same).
    A thread that watches os.getppid() covers other systems and the moment before prctl takes effect."""
    from .messages import PARENT_PID_VAR

    expected = int(os.environ.get(PARENT_PID_VAR) or os.getppid())
    _set_parent_death_signal()
    if os.getppid() != expected:  # the parent died before the signal was armed
        _kill_own_group()
    threading.Thread(target=_watch_parent, args=(expected,), name="mltriage-parent-watch", daemon=True).start()


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the watcher thread still notices


def _watch_parent(expected: int) -> None:
    while os.getppid() == expected:
        time.sleep(PARENT_POLL_SECONDS)
    _kill_own_group()


def _kill_own_group() -> None:
    """SIGKILL our process group (we lead it: the supervisor starts us in a new session), which takes
    any process the project's code started along; just exit when we are not its leader."""
    import signal

    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


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
    die_with_parent()
    sys.dont_write_bytecode = True
    limit_memory()
    # On SIGUSR1 dump every thread's Python stack into our log (stderr): the supervisor asks for it
    # before killing a check that hangs, to tell the user where in their code it was stuck.
    import faulthandler
    import signal

    from .messages import decode_request

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    # A segfault or abort in project code (an extension) prints the stacks too: the supervisor reads
    # them from the log to name the project function that ended the process.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    from ..project.usercode import ROLE_FILE_VAR, track_roles

    track_roles(os.environ.get(ROLE_FILE_VAR))
    out = os.fdopen(fd, "w", encoding="utf-8")
    request = decode_request(sys.stdin.read())
    # Project code must never write into the terminal of the app or the CLI's output: the supervisor
    # already points our stdout/stderr at a log file.
    serve(request, out)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
