"""Every key of the app, declared once: the screens' BINDINGS, the command palette and the help
screen's key table are derived from this table (posting's pattern: `Binding(..., tooltip=, id=)`).

The order of the table is the order of the footer, of the palette and of the help table. Entries with
`bind=False` are keys a widget or Textual itself handles (enter in a list, the arrows, ctrl+p): they are
listed in the help and the palette but not bound again. The README's key table is kept in sync by hand;
tests/test_app.py checks that it lists the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable, Iterator

from textual.actions import parse
from textual.binding import Binding

from mltriage.checks.engine.registry import STEP_TITLES, STEPS

# Which screen an action belongs to.
MAIN, APP, WELCOME, BROKEN, FINDING, NOTE, EXPORT, HELP, PROBLEM, TEXT, REVEAL, TOUR = (
    "main", "app", "welcome", "broken", "finding", "note", "export", "help", "problem", "text", "reveal",
    "tour")


@dataclass(frozen=True)
class Action:
    id: str                  # unique; also the Binding's id
    screen: str              # the screen it belongs to (MAIN, WELCOME, ...)
    key: str                 # Textual key name(s), comma-separated
    action: str              # the action string: "run_step", "goto(3)", "app.help"
    description: str = ""    # the footer's label
    show: bool = True        # shown in the footer
    tooltip: str = ""        # the footer's tooltip and the palette's help text (the key is appended)
    palette: str = ""        # the palette's title; "" keeps it out of the palette
    help: str = ""           # the help table's text; "" keeps it out of the help table
    help_key: str = ""       # how the help table writes the key, when not the key itself
    group: str = ""          # adjacent entries of one group share a help row ("b / k")
    hunt_only: bool = False  # exists only in bug-hunt mode (mltriage tour)
    bind: bool = True        # False: handled by a widget or by Textual; not bound again

    @property
    def palette_help(self) -> str:
        return f"{self.tooltip} ({self.key})"

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.description, show=self.show, tooltip=self.tooltip,
                       id=self.id)


def _goto(i: int, step: str) -> Action:
    return Action(f"goto-{i}", MAIN, str(i), f"goto({i})", f"Step {i}", show=False,
                  tooltip=f"Go to step {i}", palette=f"Step {i}: {STEP_TITLES[step]}",
                  help="jump to a step" if i == 1 else "", help_key="1 … 7", group="goto")


def _quit_and_help(screen: str) -> tuple[Action, Action]:
    return (Action(f"{screen}-quit", screen, "q", "app.quit", "Quit"),
            Action(f"{screen}-help", screen, "?", "app.help", "Help"))


def _back(screen: str, description: str, *also: str) -> tuple[Action, ...]:
    """escape leaves the screen; `also` and q do the same without a place in the footer."""
    return (Action(f"{screen}-back", screen, "escape", "app.pop_screen", description),
            *(Action(f"{screen}-back-{key}", screen, key, "app.pop_screen", description, show=False)
              for key in (*also, "q")))


ACTIONS: tuple[Action, ...] = (
    # --- the main screen ---------------------------------------------------------------------------
    *(_goto(i, step) for i, step in enumerate(STEPS, start=1)),
    Action("move", MAIN, "up,down,tab", "", help="move; tab goes steps → checks → checklist",
           help_key="↑ ↓ / tab", bind=False),
    Action("run-step", MAIN, "r", "run_step", "Run", tooltip="Run the current step's checks",
           palette="Run this step", help="run the current step's checks"),
    Action("run-all", MAIN, "a", "run_all", "Run all", tooltip="Run every step's checks",
           palette="Run all steps", help="run all steps"),
    Action("cancel-run", MAIN, "escape", "cancel_run", "Cancel", tooltip="Stop the checks that are running",
           palette="Cancel the run", help="cancel the run (or close a dialog)"),
    Action("open-finding", MAIN, "enter", "open_finding", "Open", tooltip="Detail, evidence, fix and plots",
           palette="Open the selected finding", help="open the selected finding", bind=False),
    Action("note", MAIN, "n", "note", "Note", tooltip="The current step's note", palette="Write a note",
           help="write the step's note"),
    Action("tick", MAIN, "space", "tick", "Tick", show=False, tooltip="Tick the next manual checklist item",
           palette="Tick a checklist item", help="tick a manual checklist item"),
    Action("toggle-guide", MAIN, "g", "toggle_guide", "Guide", show=False, tooltip="What the step is for",
           palette="Show or hide the guidance", help="show or hide the step's guidance"),
    Action("confirm-problem", MAIN, "c", "confirm_problem", "Task/metric", show=False,
           tooltip="Written to mltriage.toml", palette="Confirm or change task and metric",
           help="problem step: confirm or change task/metric"),
    Action("export", MAIN, "e", "export", "Export", tooltip="Markdown or HTML report",
           palette="Export the session", help="export the session (Markdown or HTML)"),
    Action("palette", MAIN, "ctrl+p", "app.command_palette", help="command palette: every action",
           bind=False),
    Action("mark-bug", MAIN, "b", "mark_bug", "Bug", tooltip="Bug hunt: mark the selected finding",
           palette="Mark as a bug", help="bug hunts (mltriage tour): mark a finding as a bug", group="hunt",
           hunt_only=True),
    Action("reveal", MAIN, "k", "reveal", "Key", tooltip="Bug hunt: what was planted",
           palette="Reveal the answer key", help="reveal the answer key", group="hunt", hunt_only=True),
    Action("back-to-tour", MAIN, "t", "back_to_tour", "Tour", tooltip="Back to the list of bug hunts",
           hunt_only=True),
    Action("help", MAIN, "?", "app.help", "Help", tooltip="Keys and what the statuses mean", help="this help"),
    Action("quit", MAIN, "q", "app.quit", "Quit", tooltip="Save and quit", help="quit"),
    # --- the app (every screen) --------------------------------------------------------------------
    Action("app-quit", APP, "q", "quit", "Quit", show=False),
    Action("app-help", APP, "?", "help", "Help", show=False, tooltip="Keys and what the statuses mean",
           palette="Help"),
    # --- the other screens -------------------------------------------------------------------------
    *_quit_and_help(WELCOME),
    Action("broken-retry", BROKEN, "r", "retry", "Reload"),
    *_quit_and_help(BROKEN),
    *_back(FINDING, "Back"),
    Action("finding-mark", FINDING, "b", "mark", "Mark as bug"),
    # a finding's rows (issue 18): hidden from the footer and the palette when the finding has none
    Action("finding-sort", FINDING, "s", "sort_rows", "Sort", tooltip="Sort the rows by the highlighted column",
           palette="Sort the rows by this column",
           help="sort a finding's rows by the highlighted column (again: reverse)"),
    Action("finding-copy", FINDING, "o", "copy_row_key", "Copy key", tooltip="Copy the highlighted row's key",
           palette="Copy the row's key", help="copy the highlighted row's key (position or id)"),
    Action("finding-export", FINDING, "x", "export_rows", "Export rows",
           tooltip="Write the rows to .mltriage/rows/<check>.csv", palette="Export the rows as CSV",
           help="export a finding's rows to .mltriage/rows/<check id>.csv"),
    Action("note-close", NOTE, "escape", "save", "Save and close"),
    Action("note-save", NOTE, "ctrl+s", "save", "Save"),
    Action("export-cancel", EXPORT, "escape", "cancel", "Cancel"),
    *_back(HELP, "Close", "?"),
    Action("problem-cancel", PROBLEM, "escape", "cancel", "Cancel"),
    Action("text-cancel", TEXT, "escape", "cancel", "Cancel"),
    *_back(REVEAL, "Back"),
    *_quit_and_help(TOUR),
)


def actions_of(screen: str) -> list[Action]:
    return [a for a in ACTIONS if a.screen == screen]


def bindings(screen: str) -> list[Binding]:
    """A screen's BINDINGS: its actions that are bound, in table order (the footer's order)."""
    return [a.binding() for a in actions_of(screen) if a.bind]


@cache
def hunt_actions() -> frozenset[str]:
    """Action names that exist only in bug-hunt mode (hidden from footer and palette otherwise)."""
    return frozenset(a.action for a in ACTIONS if a.hunt_only)


def help_rows(screen: str = MAIN) -> list[tuple[str, str]]:
    """(key, what it does) rows of the help table; adjacent entries of one group share a row."""
    rows: list[tuple[str, str]] = []
    last_group = None
    for a in actions_of(screen):
        if a.group and a.group == last_group:
            if a.help:
                key, text = rows[-1]
                rows[-1] = (key if a.help_key else f"{key} / {a.key}", f"{text} / {a.help}")
            continue
        last_group = a.group or None
        if a.help:
            rows.append((a.help_key or a.key, a.help))
    return rows


def palette_entries(screen: str, hunt: bool) -> Iterator[Action]:
    """The actions of a screen the command palette lists, in table order."""
    return (a for a in actions_of(screen) if a.palette and (hunt or not a.hunt_only))


def resolve(target, action: str) -> Callable[[], object]:
    """The bound method an action string names on `target` (a screen; 'app.' goes to its app)."""
    namespace, name, params = parse(action)
    if namespace == "app":
        target = target.app
    method = getattr(target, f"action_{name}")
    return lambda: method(*params)
