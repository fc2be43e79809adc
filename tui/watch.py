"""`mltriage watch`: follow a training run while it trains and print alarms as they happen (DESIGN §4).

The source is `--log FILE` (a monitor file or any training log mltriage reads), else the project's
monitor file (`[artifacts] monitor`, or the newest in .mltriage/monitor/, waited for when the run has not
started yet), else `[artifacts] training_log`. A monitor file is read incrementally (only the appended
lines); another log is re-read when it changes. Changes are noticed through watchfiles (inotify and
friends) when it is installed, with a stat poll as the fallback, which also covers network filesystems.

Exit codes: 0 when the run ended (the monitor's closing line, or the log stopped growing for --idle
seconds) or on Ctrl-C/SIGHUP/SIGTERM; 1 with --until-alarm at the first `fail` alarm; 2 when nothing can be
watched.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path

from mltriage.checks.project.config import ProjectError

EVENT_MARK = "tfevents"        # TensorBoard event files (events.out.tfevents.*)
POLL_SECONDS = 0.25            # the fallback poll: a stat per interval, well under 1% of a core
MIN_POLL_SECONDS = 0.2         # at most 5 reads a second however fast the log grows (latency stays < 0.5 s)
EXIT_OK, EXIT_ALARM, EXIT_UNUSABLE = 0, 1, 2


class Stop(Exception):
    """A signal asked the watcher to end."""


class Printer:
    def __init__(self, fmt: str, stream=None):
        self.fmt = fmt
        self.stream = stream or sys.stdout

    def event(self, event: str, text: str, **fields) -> None:
        if self.fmt == "jsonl":
            line = json.dumps({"event": event, "time": round(time.time(), 3), **fields, "text": text}, default=str)
        else:
            import shutil
            import textwrap

            from mltriage.checks.wording import printable

            width = shutil.get_terminal_size((80, 24)).columns if self.stream.isatty() else 80
            stamp = f"[{time.strftime('%H:%M:%S')}] "
            line = "\n".join(textwrap.fill(part, width=max(40, width), initial_indent=stamp if i == 0 else " " * 11,
                                            subsequent_indent=" " * 16,
                                            # a file's path stays whole, so it can be copied
                                            break_long_words=False, break_on_hyphens=False)
                             for i, part in enumerate(printable(text).split("\n")))
        self.stream.write(line + "\n")
        self.stream.flush()

    def alarm(self, alarm) -> None:
        text = f"{alarm.status.upper():4s} step {alarm.step}: {alarm.title}\nfix: {alarm.fix}" \
            if self.fmt == "text" else alarm.title
        self.event("alarm", text, alarm=alarm.to_dict())


class MonitorSource:
    """A monitor file, read as it grows."""

    def __init__(self, path: Path):
        from mltriage.checks.io.monitor_file import MonitorFollower

        self.path = path
        self.follower = MonitorFollower(path)
        self.steps_seen = self.evals_seen = 0
        self.restarts = 0

    def changed(self, watcher_factory):
        """New (kind, step, value, layers) items since the last call, and a fresh watcher on a new run."""
        self.follower.poll()
        if self.follower.restarted != self.restarts:  # the file was replaced: a new run
            self.restarts, self.steps_seen, self.evals_seen = self.follower.restarted, 0, 0
            watcher_factory()
        run = self.follower.run
        items = []
        for i in range(self.steps_seen, run.records):
            layers = {name: {k: series[k][i] for k in series if i < len(series[k])}
                      for name, series in run.layers.items()}
            items.append(("step", run.steps[i], run.loss[i], layers))
        for i in range(self.evals_seen, len(run.evals)):
            values = run.evals[i]
            loss_key = next((k for k in values if "loss" in k.lower() and "train" not in k.lower()), None)
            items.append(("eval", run.eval_steps[i], values.get(loss_key) if loss_key else None, None))
        self.steps_seen, self.evals_seen = run.records, len(run.evals)
        return items

    @property
    def ended(self) -> bool:
        return self.follower.run.ended


class LogSource:
    """Any other training log mltriage reads, followed incrementally (checks/io/logs.LogFollower): only
    what was appended is parsed, so an update costs the same at line 100 and at line 1,000,000."""

    def __init__(self, path: Path):
        from mltriage.checks.io.log_follow import LogFollower

        self.path = path
        self.follower = LogFollower(path)
        self.restarts = 0
        self.error: str | None = None

    @property
    def curves(self):
        """The log as read so far (the app's live view draws it)."""
        return self.follower.curves()

    def changed(self, watcher_factory):
        points = self.follower.poll()
        items = []
        if self.follower.restarted != self.restarts:  # replaced or truncated: a new run
            self.restarts = self.follower.restarted
            watcher_factory()
        error = self.follower.error
        if error and error != self.error:  # half-written or not yet a log: said once, tried again on change
            items.append(("unreadable", 0, error, None))
        self.error = error
        items += [(kind, int(step) if math.isfinite(step) else 0, value, None) for kind, step, value in points]
        return items

    ended = False


def find_source(args):
    """(source, description) from --log or the project; ProjectError when there is nothing to watch."""

    if args.log:
        path = Path(args.log)
        if path.is_dir():  # a Lightning or Hugging Face run folder: its newest metrics file
            from mltriage.checks.io.log_files import find_run_log

            found, _ = find_run_log(path)
            if found.is_dir() and not any(EVENT_MARK in p.name for p in found.rglob("*")):
                raise ProjectError(f"--log {path}: not a file, and no metrics.csv, trainer_state.json or "
                                   f"TensorBoard events in it. Name the log or monitor file to follow.")
            return LogSource(found), f"{found}"
        elif path.exists() and not path.is_file():
            raise ProjectError(f"--log {path}: not a file. Name the log or monitor file to follow.")
        if path.suffix.lower() == ".jsonl" and (not path.exists() or _first_line(path) is None):
            return DeferredSource(path), f"{path}"   # the run has not written its first line yet
        return (MonitorSource(path) if is_monitor_file(path) else LogSource(path)), f"{path}"
    from mltriage.checks.project.config import load_project

    return source_for_config(load_project(args.project))


def source_for_config(config, wait: bool = True):
    """(source, description) of a project: its monitor file, else its training log, else (with `wait`) the
    monitor folder the run will write to; None when there is nothing to follow and `wait` is False."""
    from mltriage.checks.io.monitor_file import find_monitor_file

    path, note = find_monitor_file(config.monitor, config.root)
    if path is not None:
        return MonitorSource(path), f"the monitor file {path} ({note})"
    if config.training_log is not None:
        return LogSource(config.training_log), f"the training log {config.training_log}"
    if not wait:
        return None
    folder = config.monitor or config.root / ".mltriage" / "monitor"
    return PendingMonitor(config, folder), f"{folder}/ (waiting for the run's monitor file)"


def is_monitor_file(path: Path) -> bool:
    if path.suffix.lower() != ".jsonl":
        return False
    if not path.exists():
        return True  # the monitor's format: the run will create it
    with open(path, "rb") as handle:
        first = handle.readline(65536)
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and ("monitor" in record or "layers" in record)


def _first_line(path: Path) -> bytes | None:
    """The file's first complete line, None while there is none."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(65536)
    except OSError:
        return None
    return line if line.endswith(b"\n") else None


class DeferredSource:
    """A JSON-lines file not written yet: once its first line is there, a monitor file is followed as one,
    anything else as a training log."""

    def __init__(self, path: Path):
        self.path, self.inner = path, None

    def changed(self, watcher_factory):
        if self.inner is None:
            if _first_line(self.path) is None:
                return []
            self.inner = MonitorSource(self.path) if is_monitor_file(self.path) else LogSource(self.path)
        return self.inner.changed(watcher_factory)

    @property
    def ended(self) -> bool:
        return self.inner is not None and self.inner.ended


class PendingMonitor:
    """No monitor file yet: wait for the run to create one, then follow it."""

    def __init__(self, config, folder: Path):
        self.config, self.folder, self.inner = config, folder, None
        self.path = folder

    def changed(self, watcher_factory):
        from mltriage.checks.io.monitor_file import find_monitor_file

        if self.inner is None:
            path, _ = find_monitor_file(self.config.monitor, self.config.root)
            if path is None:
                return []
            self.inner, self.path = MonitorSource(path), path
            return [("found", 0, str(path), None)] + self.inner.changed(watcher_factory)
        return self.inner.changed(watcher_factory)

    @property
    def ended(self) -> bool:
        return self.inner is not None and self.inner.ended


class ChangeWaiter:
    """Sleeps until the followed file (or its folder) changes, at most `seconds`.

    One watchfiles watcher lives as long as the folder is followed (changes that arrive while the
    watcher is busy are kept for its next wait, and no inotify watch is set up per wake-up); without
    watchfiles, or while the folder does not exist, a stat poll every POLL_SECONDS. Wake-ups come at most
    every MIN_POLL_SECONDS: a log written 200 times a second is read in a few batches a second, which
    keeps the watcher's CPU low and the alarm latency well under a second.
    """

    def __init__(self):
        self.folder: Path | None = None
        self.changes = None
        self.last = 0.0

    def wait(self, path: Path, seconds: float) -> None:
        pause = MIN_POLL_SECONDS - (time.monotonic() - self.last)
        if pause > 0:
            time.sleep(pause)
        try:
            self._wait(path, seconds)
        finally:
            self.last = time.monotonic()

    def _wait(self, path: Path, seconds: float) -> None:
        folder = path if path.is_dir() else path.parent
        if not folder.exists():
            self.changes = None
            time.sleep(min(seconds, POLL_SECONDS))
            return
        if self.changes is None or folder != self.folder:
            try:
                import watchfiles
            except ImportError:
                time.sleep(min(seconds, POLL_SECONDS))
                return
            self.folder = folder
            self.changes = watchfiles.watch(folder, rust_timeout=int(min(seconds, 1.0) * 1000),
                                            yield_on_timeout=True, debounce=50, step=20, raise_interrupt=True)
        try:
            next(self.changes)
        except StopIteration:
            self.changes = None
        except (OSError, RuntimeError):  # the folder went away under the watcher: poll until it is back
            self.changes = None
            time.sleep(min(seconds, POLL_SECONDS))


def wait_for_change(path: Path, seconds: float) -> None:
    """One wait for a change (a fresh watcher each call; `ChangeWaiter` keeps one)."""
    ChangeWaiter().wait(path, seconds)


def cmd_watch(args) -> int:
    from mltriage.checks.analyses.alarms import RunWatcher

    for name in ("idle",):
        value = getattr(args, name)
        if value is not None and not (value > 0 and value < float("inf")):
            raise ProjectError(f"--{name} must be a positive number of seconds, got {value}.")
    printer = Printer(args.format)
    source, description = find_source(args)
    state = {"watcher": RunWatcher()}
    printer.event("start", f"watching {description}", source=str(source.path))
    _install_signal_handlers()
    last_growth = time.monotonic()
    waiter = ChangeWaiter()
    try:
        while True:
            items = source.changed(lambda: _new_run(state, printer))
            if items:
                last_growth = time.monotonic()
            for kind, step, value, layers in items:
                code = _feed(state["watcher"], printer, kind, step, value, layers, args.until_alarm)
                if code is not None:
                    return code
            if source.ended:
                printer.event("end", "the run ended (the monitor closed its file)")
                return EXIT_OK
            if args.idle and time.monotonic() - last_growth > args.idle:
                printer.event("end", f"the log has not grown for {args.idle:g} s: the run is done or stalled")
                return EXIT_OK
            waiter.wait(Path(source.path), 1.0)
    except (KeyboardInterrupt, Stop):
        printer.event("end", "stopped")
        return EXIT_OK


def _new_run(state, printer) -> None:
    from mltriage.checks.analyses.alarms import RunWatcher

    state["watcher"] = RunWatcher()
    printer.event("restart", "the file was replaced or truncated: following the new run")


def _feed(watcher, printer, kind, step, value, layers, until_alarm) -> int | None:
    if kind == "found":
        printer.event("found", f"the run started: following {value}")
        return None
    if kind == "unreadable":
        printer.event("unreadable", f"cannot read the log yet: {value}")
        return None
    alarms = watcher.step(step, value, layers) if kind == "step" else watcher.eval(step, value)
    for alarm in alarms:
        printer.alarm(alarm)
        if until_alarm and alarm.status == "fail":
            return EXIT_ALARM
    return None


def _install_signal_handlers() -> None:
    def stop(signum, frame):
        raise Stop()

    for sig in (signal.SIGHUP, signal.SIGTERM):
        try:
            signal.signal(sig, stop)
        except (ValueError, OSError, AttributeError):  # not the main thread, or not on this platform
            pass
