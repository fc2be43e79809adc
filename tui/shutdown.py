"""SIGTERM and SIGHUP end the app within a second, whatever its event loop is doing.

Why not `loop.add_signal_handler`: when the terminal goes away (an SSH drop, `tmux kill-session`),
Textual's output thread dies on the first write to the hung-up terminal, its bounded queue fills, and
the event loop blocks for ever in `queue.put`; a handler that needs the loop then never runs, so the
process ignored SIGTERM too. Here the C-level signal handler writes the signal number to a pipe
(`signal.set_wakeup_fd`), which a thread of its own reads, so the signal is seen even while the main
thread is blocked. That thread:

1. cancels the run and SIGKILLs the check workers' process groups at once;
2. asks the app to save the session (and an open note draft) and exit, on its event loop;
3. if the app has not finished after SIGNAL_GRACE_SECONDS, saves from this thread instead (bounded),
   restores the terminal by hand (non-blocking writes) and ends the process with os._exit.

A second signal while stopping skips the wait. Standard library only.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

# The app must be gone within a second of the signal (issue 19): a graceful exit gets this long
# before the process is ended by hand; the rest of the second is for saving and restoring the terminal.
SIGNAL_GRACE_SECONDS = 0.6
# Saving the session from the signal thread (the loop is stuck) may take this long (a lock, a write).
FORCED_SAVE_SECONDS = 0.3
# After a graceful exit, interpreter shutdown (joining threads) may take this long before os._exit.
EXIT_SLACK_SECONDS = 1.5
SIGNALS = (signal.SIGTERM, signal.SIGHUP)

# What Textual's LinuxDriver.stop_application_mode writes, plus mouse and paste modes off: the terminal
# as it was before the app (main screen, cursor shown, line wrap on, no mouse reporting).
RESTORE_SEQUENCE = ("\x1b[<u\x1b[?1049l\x1b[?25h\x1b[?1004l\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l"
                    "\x1b[?2004l\x1b[?7h")


def kill_check_workers() -> None:
    """SIGKILL every check worker's process group this process started (nothing to do when no run
    was ever started: the supervisor module is then not even imported)."""
    supervisor = sys.modules.get("mltriage.checks.engine.supervisor")
    if supervisor is not None:
        try:
            supervisor.kill_workers()
        except Exception:
            pass


class SignalStop:
    """Installed around App.run() in the main thread; `done()` once the app has returned."""

    def __init__(self, request_exit: Callable[[int], None], save: Callable[[], None],
                 restore_terminal: Callable[[], None], cancel_run: Callable[[], None]):
        self.request_exit = request_exit          # on the signal thread: schedule save + exit on the loop
        self.save = save                          # thread-safe enough to call when the loop is stuck
        self.restore_terminal = restore_terminal
        self.cancel_run = cancel_run
        self.finished = threading.Event()
        self.signalled: int | None = None
        self.installed = False
        self._read_fd = self._write_fd = -1
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1
        self._thread: threading.Thread | None = None
        self._second = threading.Event()

    # --- install / uninstall (main thread) -----------------------------------------------------
    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._write_fd, False)
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, _noop)
            self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        except (OSError, ValueError):
            self.uninstall()
            return False
        self._thread = threading.Thread(target=self._watch, name="mltriage-signals", daemon=True)
        self._thread.start()
        self.installed = True
        return True

    def uninstall(self) -> None:
        """Put the previous handlers back (the app has returned). A stop in progress carries on."""
        for sig, handler in self._previous.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError, TypeError):
                pass
        self._previous.clear()
        if self._write_fd >= 0:
            try:
                signal.set_wakeup_fd(self._previous_wakeup)
            except (ValueError, OSError):
                pass
            try:
                os.write(self._write_fd, b"\0")  # tells the watch thread to end
            except OSError:
                pass
        self.installed = False

    def done(self) -> None:
        self.finished.set()

    # --- the watch thread ------------------------------------------------------------------------
    def _watch(self) -> None:
        try:
            while True:
                data = os.read(self._read_fd, 64)
                if not data or b"\0" in data:
                    break
                for sig in (b for b in data if b in SIGNALS):
                    if self.signalled is None:
                        self.signalled = sig
                        threading.Thread(target=self._stop, args=(sig,), name="mltriage-stop", daemon=True).start()
                    else:
                        self._second.set()
        except OSError:
            pass
        finally:
            for fd in (self._read_fd, self._write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _stop(self, sig: int) -> None:
        code = 128 + int(sig)
        for step in (self.cancel_run, kill_check_workers):
            try:
                step()
            except Exception:
                pass
        try:
            self.request_exit(sig)
        except Exception:
            pass
        if self._wait(SIGNAL_GRACE_SECONDS):
            # The app returned; the process should end by itself. If it does not, end it.
            threading.Event().wait(EXIT_SLACK_SECONDS)
            kill_check_workers()
            os._exit(code)
        saver = threading.Thread(target=self._quiet, args=(self.save,), daemon=True)
        saver.start()
        saver.join(FORCED_SAVE_SECONDS)
        kill_check_workers()
        self._quiet(self.restore_terminal)
        os._exit(code)

    def _wait(self, seconds: float) -> bool:
        """Wait for the app to finish; a second signal cuts the wait short (False)."""
        step = 0.02
        waited = 0.0
        while waited < seconds:
            if self.finished.wait(step):
                return True
            if self._second.is_set():
                return False
            waited += step
        return self.finished.is_set()

    @staticmethod
    def _quiet(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            pass


def _noop(signum, frame) -> None:
    """The Python-level handler does nothing: the byte on the wakeup pipe is what acts."""


def restore_terminal(driver) -> None:
    """Leave the alternate screen and put the terminal's modes back, without blocking: the terminal may
    be gone (EIO) or not reading (a full output buffer)."""
    import termios

    out_fd = 2
    try:
        out_fd = driver._file.fileno()
    except Exception:
        pass
    try:
        # A new open file description of the same terminal, non-blocking: setting O_NONBLOCK on fd 2
        # itself would change the descriptor the user's shell shares.
        fd = os.open(os.ttyname(out_fd), os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            os.write(fd, RESTORE_SEQUENCE.encode())
        except OSError:
            pass
        finally:
            os.close(fd)
    attrs = getattr(driver, "attrs_before", None)
    fileno = getattr(driver, "fileno", None)
    if attrs is not None and isinstance(fileno, int):
        try:
            termios.tcsetattr(fileno, termios.TCSANOW, attrs)
        except (termios.error, OSError):
            pass
