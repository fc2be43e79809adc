"""`mltriage tour`: bug hunts on the sample projects.

Each exercise opens the app on a sample's buggy variant in bug-hunt mode: the user runs the steps,
marks the findings they believe are planted bugs (b) with what they would fix, and asks for the
answer key (k) to see which bugs they found, which they missed and which suspicions were false,
with the explanation and a diff from buggy/ to fixed/. Progress is saved per user (hunt.py).
"""

from __future__ import annotations

import sys

from .app import MltriageApp
from .hunt import Exercise, TourState, exercises
from .hunt_mode import Hunt
from .screens.reveal import RevealScreen, reveal_text
from .screens.tour import TourScreen

__all__ = ["Hunt", "RevealScreen", "TourApp", "TourScreen", "list_exercises", "reveal_text", "run_tour"]


class TourApp(MltriageApp):
    def __init__(self, state: TourState | None = None, items: list[Exercise] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.state = state or TourState()
        self.items = exercises() if items is None else items

    def open_start(self) -> None:
        if self.state.notice:
            self.notify(self.state.notice, severity="warning", timeout=12)
        self.push_screen(TourScreen(self.items, self.state))


def list_exercises(items: list[Exercise], state: TourState) -> str:
    if not items:
        return "No exercises found (sample_projects/*/buggy/bugs.toml). Set MLTRIAGE_SAMPLES to the folder."
    lines = []
    for ex in items:
        progress = state.exercises.get(ex.name)
        status = progress.result if progress and progress.revealed else (
            f"{len(progress.marks)} marked" if progress and progress.marks else "not started")
        lines.append(f"{ex.name:<12} {ex.difficulty:<7} {len(ex.bugs)} bugs  {status}")
        lines.append(f"{'':<12} {ex.story}")
        lines.append(f"{'':<12} mltriage {ex.buggy}")
    return "\n".join(lines)


def run_tour(list_only: bool = False) -> int:
    state = TourState()
    items = exercises()
    if list_only:
        print(list_exercises(items, state))
        return 0
    app = TourApp(state=state, items=items)
    try:
        app.run()
    finally:
        from .app import finish_runs

        finish_runs(app)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(run_tour("--list" in sys.argv))
