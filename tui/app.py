"""The mltriage app: a guided seven-step debugging session in the terminal (Textual).

Start-up stays light: loading the project file is tomllib, the session and the saved runs are
JSON, and checks run in a child process started by checks/engine/supervisor.py from a thread worker
(tui/run_controller.py), so the event loop never waits on a check and torch/sklearn/pandas are never
imported by this process. The screens are in tui/screens/, their widgets in tui/widgets/, every key
in tui/actions.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from mltriage.checks.project.config import ProjectConfig, ProjectError, find_project_file, load_project

from .actions import APP, MAIN, bindings, palette_entries, resolve
from .run_controller import RunState
from .screens import BrokenProjectScreen, HelpScreen, MainScreen, WelcomeScreen
from .session import Session, load_findings
from .plain import plain
from .shutdown import SignalStop, kill_check_workers, restore_terminal
from .styles import APP_CSS

__all__ = ["MainScreen", "MltriageApp", "RunState", "finish_runs", "run_app"]


class MltriageApp(App):
    """Opens a project (or the welcome screen) and hosts the main screen."""

    CSS = APP_CSS
    TITLE = "mltriage"
    BINDINGS = bindings(APP)

    def __init__(self, project: str | Path | None = None, display: str | None = None, cursor_blink: bool = True,
                 device: str = "cpu", check_titles: bool = True):
        """`display`: how the project is named on screen; `check_titles`: read the titles of checks not
        run yet from the registry (tests of the screen switch it off to stay independent of it)."""
        super().__init__()
        self.check_titles = check_titles
        self.project = project
        self.display_name = display
        self.cursor_blink = cursor_blink
        self.device = device
        self.active_run: RunState | None = None
        self.config: ProjectConfig | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._save_lock = threading.Lock()

    def on_mount(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        if self.console.color_system in ("standard", "windows"):
            # 16 colours: the ANSI theme uses the terminal's own palette, so every pairing stays legible.
            self.theme = "ansi-dark"
        self.open_start()

    def open_start(self) -> None:
        from .hunt import sample_projects

        target = Path(self.project) if self.project is not None else Path(".")
        try:
            find_project_file(target)
        except ProjectError:
            reason = "" if self.project is None else f"No mltriage.toml at {self.project}."
            self.push_screen(WelcomeScreen(sample_projects(), reason))
            return
        self.open_project(target, display=self.display_name or (str(self.project) if self.project else "."))

    def open_project(self, target: Path, display: str = "", hunt=None) -> None:
        """Load the project and show the main screen, or the broken-project screen with the message."""
        self._open_args = (target, display, hunt)
        # A bug hunt opens above the tour's list of exercises, so that leaving it returns there.
        show = self.push_screen if hunt is not None and not isinstance(self.screen, (MainScreen, BrokenProjectScreen)) \
            else self._show
        try:
            config = load_project(target)
        except ProjectError as exc:
            show(BrokenProjectScreen(str(exc), target))
            return
        self.config = config
        session = Session.load(config.root)
        findings, notices = load_findings(config.root)
        show(MainScreen(config, display or config.name, session, findings, notices, hunt=hunt))

    def reload_project(self) -> None:
        self.open_project(*self._open_args)

    def _show(self, screen: Screen) -> None:
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification is plain text: messages carry paths, column names and data values, in
        which "[...]" is not markup and control characters are shown escaped (tui/plain.py)."""
        super().notify(plain(message), title=plain(title), severity=severity, timeout=timeout, markup=False)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.cancel_active_run()
        screen = self.screen
        if isinstance(screen, MainScreen):
            screen.save_session()
        self.exit()

    def cancel_active_run(self) -> None:
        if self.active_run is not None:
            self.active_run.cancel.set()

    # --- signals (tui/shutdown.py): save, leave the terminal as it was, exit --------------------
    def save_state(self) -> None:
        """Save the session and an open note's draft. Called on the event loop, or from the signal
        thread when the loop is stuck; the lock keeps the two from writing at once."""
        if not self._save_lock.acquire(timeout=0.2):
            return
        try:
            from .screens.note import NoteScreen

            stack = list(self.screen_stack)
            main = next((s for s in reversed(stack) if isinstance(s, MainScreen)), None)
            note = next((s for s in reversed(stack) if isinstance(s, NoteScreen)), None)
            if main is None:
                return
            if note is not None:
                note.keep_draft(main.session)
            main.session.save()
        finally:
            self._save_lock.release()

    def request_exit_on_signal(self, sig: int) -> None:
        """From the signal thread: save and exit on the event loop (if it still runs)."""
        loop = self._event_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._exit_on_signal, sig)

    def _exit_on_signal(self, sig: int) -> None:
        self.cancel_active_run()
        try:
            self.save_state()
        finally:
            self.exit(return_code=128 + int(sig))

    # --- command palette: the action table's entries for this screen, then Textual's own --------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, MainScreen):
            for action in palette_entries(MAIN, hunt=screen.hunt is not None):
                yield SystemCommand(action.palette, action.palette_help, resolve(screen, action.action))
        for action in palette_entries(APP, hunt=False):
            yield SystemCommand(action.palette, action.palette_help, resolve(self, action.action))
        yield from super().get_system_commands(screen)


def _prepare_image_drawing(project: str | None) -> None:
    """Tensor projects show their input images: let textual-image ask the terminal for a graphics protocol
    (kitty, sixel) before Textual owns the terminal. Table projects skip the query and its start-up cost;
    without textual-image, or in tmux, images are drawn with half-blocks."""
    try:
        from mltriage.checks.project.config import load_project

        if not load_project(project or ".").is_tensor:
            return
        from .widgets.input_examples import prepare_terminal_graphics

        prepare_terminal_graphics()
    except Exception:  # noqa: BLE001 - no project yet (welcome screen) or no graphics: half-blocks
        return


def run_app(project: str | None) -> int:
    """`mltriage [PROJECT]`: run the app; returns the exit code. SIGTERM/SIGHUP end it within a second
    (tui/shutdown.py), saving the session and leaving no check worker behind."""
    _prepare_image_drawing(project)
    app = MltriageApp(project)
    stop = SignalStop(request_exit=app.request_exit_on_signal, save=app.save_state,
                      restore_terminal=lambda: restore_terminal(app._driver), cancel_run=app.cancel_active_run)
    stop.install()
    try:
        app.run()
    finally:
        stop.done()
        finish_runs(app, wait=0.5 if stop.signalled else 3.0)
        kill_check_workers()
        stop.uninstall()
    return app.return_code or 0


def finish_runs(app: MltriageApp, wait: float = 3.0) -> None:
    """Stop a run still going when the app exits, so no check process outlives the app."""
    run = app.active_run
    if run is not None:
        run.cancel.set()
        run.finished.wait(wait)
