"""Start an app and exit as soon as its first frame is drawn: benchmarks/startup.py --instructions runs
this under valgrind (callgrind) to count the instructions each side executes up to its first frame, a
figure that machine load does not move (wall time and even CPU time do, on a shared 2-core box).

    python benchmarks/first_frame_exit.py app PROJECT   # `mltriage PROJECT`, through the CLI
    python benchmarks/first_frame_exit.py bare          # benchmarks/bare_app.py
"""

from __future__ import annotations

import sys
from pathlib import Path


def exit_after_first_frame(screen) -> None:
    # after the refresh that follows on_mount: the first frame is written (what the pty measure waits for)
    screen.call_after_refresh(screen.app.exit)


def run_bare() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bare_app import BareApp

    class ExitingBareApp(BareApp):
        def on_mount(self) -> None:
            super().on_mount()
            exit_after_first_frame(self.screen)

    ExitingBareApp().run()


def run_app(project: str) -> None:
    from mltriage.tui.cli import main
    from mltriage.tui.screens import main as main_screen

    mount = main_screen.MainScreen.on_mount

    def on_mount(self) -> None:
        mount(self)
        exit_after_first_frame(self)

    main_screen.MainScreen.on_mount = on_mount
    # The check titles load 0.3 s after mount, after the first frame of a real start; under valgrind (50x
    # slower) the timer would fire before it and count work the real first frame never waits for.
    main_screen.MainScreen.set_timer = lambda self, *args, **kwargs: None
    main([project])


if __name__ == "__main__":
    run_bare() if sys.argv[1] == "bare" else run_app(sys.argv[2])
