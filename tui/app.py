"""The mltriage app: a guided seven-step debugging session in the terminal (Textual).

Start-up stays light: loading the project file is tomllib, the session and the saved runs are
JSON, and checks run in a child process started by checks/runner.py from a thread worker, so the
event loop never waits on a check and torch/sklearn/pandas are never imported by this process.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rich.text import Text
from textual.geometry import Region, Spacing
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Collapsible, Footer, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from mltriage.checks.findings import Finding
from mltriage.checks.project.config import ProjectConfig, ProjectError, find_project_file, load_project
from mltriage.checks.engine.registry import STEP_TITLES, STEPS

from .guide import GUIDES
from .present import check_line, finding_text, step_check_ids, step_label, step_status_text
from .screens import (BrokenProjectScreen, ExportScreen, FindingScreen, HelpScreen, NoteScreen, ProblemScreen,
                      TextScreen, WelcomeScreen)
from .session import Session, export_session, load_findings, save_app_run
from .styles import APP_CSS


def fit(text: Text, width: int) -> Text:
    text = text.copy()
    text.truncate(max(10, width), overflow="ellipsis")
    return text


@dataclass
class RunState:
    """A run in progress: which checks it plans, which is running, how many are done."""

    steps: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    plan: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    current: str | None = None
    backup: dict[str, Finding] = field(default_factory=dict)
    finished: threading.Event = field(default_factory=threading.Event)  # the worker has returned

    def step_progress(self, step: str) -> tuple[int, int] | None:
        planned = [c for c in self.plan if c.split(".", 1)[0] == step]
        if step not in self.steps:
            return None
        return len([c for c in planned if c in self.done]), len(planned)


class MainScreen(Screen):
    """The seven steps on the left; the current step's guidance, checks, detail, checklist and note."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        *[Binding(str(i), f"goto({i})", f"Step {i}", show=False) for i in range(1, 8)],
        Binding("r", "run_step", "Run"),
        Binding("a", "run_all", "Run all"),
        Binding("escape", "cancel_run", "Cancel"),
        Binding("n", "note", "Note"),
        Binding("space", "tick", "Tick", show=False),
        Binding("e", "export", "Export"),
        Binding("g", "toggle_guide", "Guide", show=False),
        Binding("c", "confirm_problem", "Task/metric", show=False),
        Binding("b", "mark_bug", "Bug"),
        Binding("k", "reveal", "Key"),
        Binding("t", "back_to_tour", "Tour"),
        Binding("?", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, config: ProjectConfig, display: str, session: Session,
                 findings: dict[str, Finding], notices: list[str] | None = None, hunt=None):
        super().__init__()
        self.config = config
        self.display_label = display
        self.session = session
        self.findings = findings
        self.notices = list(notices or [])
        self.hunt = hunt
        self.step = session.current_step
        self.current_run: RunState | None = None
        self.titles: dict[str, str] = {}
        self._detail_key: tuple | None = None
        self._manual_step: str | None = None

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(self._topbar_text(), id="topbar")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Label("Steps", id="steps-label")
                yield OptionList(*self._step_options(), id="steps")
            with VerticalScroll(id="right"):
                yield Static(id="step-title")
                with Collapsible(title="About this step (g)", collapsed=False, id="guide"):
                    yield Static(id="guide-text")
                yield Static(id="inferred")
                yield Label("Checks", classes="section", id="checks-label")
                yield OptionList(id="checks")
                yield Static(id="brief")
                yield Label("Your checklist (space ticks)", classes="section")
                yield OptionList(id="manual")
                yield Label("Note (n)", classes="section")
                yield Static(id="note-preview")
            yield VerticalScroll(id="detail-pane")
        with Horizontal(id="progress"):
            yield Label(id="progress-label")
            yield ProgressBar(id="progress-bar", show_eta=False)
        yield Footer()

    def on_mount(self) -> None:
        steps = self.query_one("#steps", OptionList)
        steps.highlighted = STEPS.index(self.step)
        self.show_step(self.step)
        steps.focus()
        # tab goes steps -> checks -> checklist; the guidance folds with g or a click.
        for title in self.query("#guide CollapsibleTitle"):
            title.can_focus = False
        self.query_one("#right").can_focus = False
        for notice in self.notices + ([self.session.notice] if self.session.notice else []):
            self.notify(notice, severity="warning", timeout=12)
        self.session.notice = None
        if self.app.check_titles:
            # After the first frame: importing the check modules would compete with it for the GIL.
            self.set_timer(0.3, self.load_titles)

    @work(thread=True, group="titles")
    def load_titles(self) -> None:
        """Check titles from the registry, imported off the event loop (check modules are many)."""
        try:
            from mltriage.checks.engine.registry import all_checks

            titles = {cid: spec.title for cid, spec in all_checks().items()}
        except Exception:  # a broken check module must not stop the app; the runner reports it
            return
        try:
            self.app.call_from_thread(self._set_titles, titles)
        except RuntimeError:
            pass

    def _set_titles(self, titles: dict[str, str]) -> None:
        self.titles = titles
        self.refresh_checks()

    def on_resize(self) -> None:
        self._detail_key = None
        self.call_after_refresh(self.refresh_checks)
        self.call_after_refresh(lambda: self._fill_manual(self.step))

    def _topbar_text(self) -> Text:
        text = Text()
        text.append("mltriage", style="bold")
        text.append(" · ")
        text.append(self.config.name, style="bold")
        if self.display_label and self.display_label != self.config.name:
            text.append(f"  {self.display_label}", style="dim")
        if self.hunt is not None:
            text.append("   bug hunt: ", style="bold yellow")
            text.append(f"{len(self.hunt.progress.marks)} marked · b mark · k answer key", style="yellow")
        return text

    def _step_options(self) -> list[Option]:
        options = []
        for i, step in enumerate(STEPS, start=1):
            running = self.current_run.step_progress(step) if self.current_run else None
            status = step_status_text(step, self.findings, running)
            options.append(Option(step_label(i, step, STEP_TITLES[step], status, step == self.step), id=step))
        return options

    # --- rendering -----------------------------------------------------------------------------
    def refresh_steps(self) -> None:
        steps = self.query_one("#steps", OptionList)
        for option in self._step_options():
            steps.replace_option_prompt(option.id, option.prompt)

    def show_step(self, step: str) -> None:
        self.step = step
        self.session.mark_visited(step)
        guide = GUIDES[step]
        index = STEPS.index(step) + 1
        title = Text()
        title.append(f"Step {index}/7 · {STEP_TITLES[step]}  ", style="bold")
        title.append_text(step_status_text(step, self.findings, self.current_run.step_progress(step) if self.current_run else None))
        self.query_one("#step-title", Static).update(title)
        body = Text()
        body.append(guide.purpose + "\n")
        body.append("Look at: ", style="bold")
        body.append(guide.look_at + "\n")
        body.append("Common mistakes: ", style="bold")
        body.append(guide.mistakes)
        self.query_one("#guide-text", Static).update(body)
        # Guidance open on a step not run yet (orientation), folded once there are findings to read.
        self.query_one("#guide", Collapsible).collapsed = any(f.step == step for f in self.findings.values())
        inferred = self.query_one("#inferred", Static)
        inferred.display = step == "problem"
        if step == "problem":
            inferred.update(self._inferred_text())
        self.refresh_steps()
        self.refresh_checks(reset=True)
        self._fill_manual(step)
        self._show_note()

    def _inferred_text(self) -> Text:
        cfg = self.config
        evidence = self.findings.get("problem.task_type")
        ev = evidence.evidence if evidence else {}
        balance = self.findings.get("problem.class_balance")
        task = cfg.task or ev.get("inferred_task")
        source = "declared" if cfg.task else ("inferred from the target" if task else "run step 1 to infer it")
        classes = cfg.classes
        class_source = "declared"
        counts = balance.evidence.get("counts") if balance else None
        if classes is None and isinstance(counts, dict) and isinstance(counts.get("train"), dict):
            classes, class_source = list(counts["train"]), "found in train"
        default_metric = "accuracy" if task != "regression" else "rmse"
        text = Text()
        text.append("What mltriage understood", style="bold")
        text.append("  (c: confirm/change)\n", style="dim")
        rows = [("task", task or "?", source), ("target", cfg.target, "declared"),
                ("classes", ", ".join(map(str, classes)) if classes else ("-" if task == "regression" else "?"),
                 class_source if classes else ""),
                ("metric", cfg.metric or default_metric, "declared" if cfg.metric else "default: not set in mltriage.toml")]
        for key, value, note in rows:
            text.append(f"  {key:<8}", style="bold")
            text.append(str(value))
            if note:
                text.append(f"  ({note})", style="dim")
            text.append("\n")
        if self.session.progress.get("problem", {}).get("confirmed"):
            text.append("  ✓ confirmed by you", style="green")
        else:
            text.append("  not confirmed yet", style="yellow")
        return text

    def _check_ids(self) -> list[str]:
        return step_check_ids(self.step, self.findings)

    def refresh_checks(self, reset: bool = False) -> None:
        checks = self.query_one("#checks", OptionList)
        keep = None if reset else checks.highlighted
        marks = self.hunt.progress.marks if self.hunt is not None else {}
        # One line per check, cut to the width: the full title is in the detail below / beside.
        width = checks.scrollable_content_region.width or 200
        options = [Option(fit(check_line(cid, self.findings.get(cid), self.titles.get(cid, ""),
                                     running=self.current_run is not None and self.current_run.current == cid,
                                     marked=cid in marks), width), id=cid)
                   for cid in self._check_ids()]
        checks.set_options(options)
        if options:
            checks.highlighted = keep if keep is not None and keep < len(options) else 0
        self.refresh_detail()

    def selected_check(self) -> str | None:
        checks = self.query_one("#checks", OptionList)
        option = checks.highlighted_option
        return option.id if option is not None else None

    def refresh_detail(self) -> None:
        cid = self.selected_check()
        if cid is None:
            return
        finding = self.findings.get(cid)
        running = self.current_run is not None and self.current_run.current == cid
        brief = self.query_one("#brief", Static)
        if running:
            brief.update(Text(f"{cid}: running…", style="bold cyan"))
        else:
            brief.update(finding_text(cid, finding, self.titles.get(cid, ""), brief=True))
        if self.has_class("-wide"):
            key = (cid, id(finding), running, self.titles.get(cid))
            if key != self._detail_key:
                self._detail_key = key
                pane = self.query_one("#detail-pane", VerticalScroll)
                pane.remove_children()
                from .plots import plot_widget  # plotext loads on the first plot, not at start-up

                widgets = [Static(finding_text(cid, finding, self.titles.get(cid, "")))]
                widgets += [plot_widget(spec) for spec in (finding.plots if finding else [])]
                pane.mount_all(widgets)

    def _fill_manual(self, step: str) -> None:
        manual = self.query_one("#manual", OptionList)
        keep = manual.highlighted
        width = manual.scrollable_content_region.width or 200
        options = []
        for i, item in enumerate(GUIDES[step].manual):
            ticked = self.session.is_ticked(step, item)
            line = Text.assemble(("[x] " if ticked else "[ ] ", "bold green" if ticked else "bold"),
                                 (item, "" if not ticked else "dim"))
            options.append(Option(fit(line, width), id=f"manual-{i}"))
        manual.set_options(options)
        if keep is not None and keep < len(options) and self._manual_step == step:
            manual.highlighted = keep
        self._manual_step = step

    def _show_note(self) -> None:
        note = self.session.note(self.step).strip()
        preview = self.query_one("#note-preview", Static)
        if note:
            lines = note.splitlines()
            shown = "\n".join(lines[:4]) + ("\n…" if len(lines) > 4 else "")
            preview.update(Text(shown))
        else:
            preview.update(Text("no note yet: press n to write what you tried and saw", style="dim"))

    # --- events --------------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#steps")
    def step_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.step:
            self.show_step(event.option.id)

    @on(OptionList.OptionSelected, "#steps")
    def step_selected(self) -> None:
        self.query_one("#checks").focus()

    @on(OptionList.OptionHighlighted, "#checks")
    def check_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.refresh_detail()
        # The list is as tall as its options and the pane around it scrolls: keep the row in view.
        checks = event.option_list
        if checks.has_focus:
            row = checks.virtual_region.y + event.option_index
            self.query_one("#right", VerticalScroll).scroll_to_region(
                Region(0, row, 1, 1), animate=False, immediate=True, spacing=Spacing(1, 0, 3, 0))

    @on(OptionList.OptionSelected, "#checks")
    def check_selected(self) -> None:
        self.action_open_finding()

    @on(OptionList.OptionSelected, "#manual")
    def manual_selected(self, event: OptionList.OptionSelected) -> None:
        self.toggle_manual(event.option_index)

    def toggle_manual(self, index: int) -> None:
        items = GUIDES[self.step].manual
        if 0 <= index < len(items):
            self.session.toggle(self.step, items[index])
            self.session.set_ticked(self.step, [i for i in items if self.session.is_ticked(self.step, i)])
            self._save_session()
            self._fill_manual(self.step)

    def _save_session(self) -> None:
        error = self.session.save()
        if error:
            self.notify(error, severity="error", timeout=10)

    # --- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # False hides the key from the footer and lets it fall through to other handlers.
        if action in ("mark_bug", "reveal", "back_to_tour") and self.hunt is None:
            return False
        if action == "cancel_run" and self.current_run is None:
            return False
        return True

    def action_goto(self, index: int) -> None:
        self.query_one("#steps", OptionList).highlighted = index - 1
        if STEPS[index - 1] != self.step:
            self.show_step(STEPS[index - 1])

    def action_open_finding(self) -> None:
        cid = self.selected_check()
        if cid is not None:
            self.app.push_screen(FindingScreen(cid, self.findings.get(cid), self.titles.get(cid, ""), hunt=self.hunt))

    def action_toggle_guide(self) -> None:
        guide = self.query_one("#guide", Collapsible)
        guide.collapsed = not guide.collapsed

    def action_tick(self) -> None:
        """Tick the highlighted item of the checklist; from elsewhere, the first unticked one."""
        manual = self.query_one("#manual", OptionList)
        if self.focused is not manual:
            unticked = [i for i, item in enumerate(GUIDES[self.step].manual)
                        if not self.session.is_ticked(self.step, item)]
            if not unticked:
                self.notify("Every checklist item of this step is ticked.")
                return
            manual.focus()
            manual.highlighted = unticked[0]
        if manual.highlighted is not None:
            self.toggle_manual(manual.highlighted)

    def action_note(self) -> None:
        step = self.step

        def saved(text: str | None) -> None:
            if text is None:
                return
            self.session.set_note(step, text)
            self._save_session()
            if step == self.step:
                self._show_note()

        self.app.push_screen(NoteScreen(step, self.session.note(step), cursor_blink=self.app.cursor_blink), saved)

    def action_export(self) -> None:
        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is None:
                return
            fmt, target = choice
            path = Path(target).expanduser()
            if not path.is_absolute():
                path = self.config.root / path
            try:
                from mltriage.checks.io.state import atomic_write_text

                atomic_write_text(path, export_session(self.config.name, self.findings, self.session, fmt))
            except OSError as exc:
                self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error", timeout=10)
                return
            self.notify(f"Wrote {path}", title="Exported", timeout=8)

        self.app.push_screen(ExportScreen(self.config.root, cursor_blink=self.app.cursor_blink), chosen)

    def action_confirm_problem(self) -> None:
        if self.step != "problem":
            self.action_goto(1)
        ev = self.findings.get("problem.task_type")
        inferred = ev.evidence.get("inferred_task") if ev else None

        def chosen(choice) -> None:
            if choice is None:
                return
            task, metric = choice
            from .projectfile import write_task_metric

            try:
                self.config = write_task_metric(self.config, task, metric)
            except (ProjectError, OSError) as exc:
                self.notify(f"mltriage.toml was not changed: {exc}", severity="error", timeout=12)
                return
            self.session.progress.setdefault("problem", {})["confirmed"] = True
            self._save_session()
            self.notify(f'task = "{task}", metric = "{metric}" in {self.config.path.name}', title="Saved")
            self.show_step(self.step)

        self.app.push_screen(ProblemScreen(self.config.task, self.config.metric, inferred), chosen)

    # --- runs ----------------------------------------------------------------------------------
    def action_run_step(self) -> None:
        self.start_run([self.step])

    def action_run_all(self) -> None:
        self.start_run(list(STEPS))

    def action_cancel_run(self) -> None:
        if self.current_run is not None:
            self.current_run.cancel.set()
            self.query_one("#progress-label", Label).update("cancelling…")

    def start_run(self, steps: list[str]) -> None:
        if self.current_run is not None:
            self.notify("A run is in progress: escape cancels it.", severity="warning")
            return
        self.current_run = RunState(steps=steps)
        self.app.active_run = self.current_run
        self.query_one("#progress").add_class("running")
        self.query_one("#progress-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#progress-label", Label).update(f"starting {', '.join(steps) if len(steps) < 3 else 'all steps'}…")
        self.refresh_steps()
        self.refresh_bindings()  # escape (cancel) shows in the footer while a run is going
        self.run_checks_worker(self.current_run)

    @work(thread=True, group="checks")
    def run_checks_worker(self, run: RunState) -> None:
        try:
            self._run_checks(run)
        finally:
            run.finished.set()

    def _run_checks(self, run: RunState) -> None:
        from mltriage.checks.engine.supervisor import RunOptions, run_checks

        post = self._post
        try:
            result = run_checks(self.config, RunOptions(steps=run.steps, device=self.app.device),
                                on_plan=lambda plan: post(self._on_plan, run, [c["id"] for c in plan]),
                                on_start=lambda cid: post(self._on_start, run, cid),
                                on_finding=lambda f: post(self._on_finding, run, f),
                                cancel=run.cancel)
        except ProjectError as exc:
            post(self._on_run_end, run, None, f"The project could not be checked:\n{exc}")
            return
        except Exception as exc:  # the app must survive anything the runner raises
            post(self._on_run_end, run, None, f"The run stopped: {type(exc).__name__}: {exc}")
            return
        error = None
        if not result.cancelled:
            _, error = save_app_run(self.config.root, result.to_dict())
        post(self._on_run_end, run, result, error)

    def _post(self, callback, *args) -> None:
        """Hand a runner callback to the event loop; quietly drop it when the app is gone."""
        try:
            self.app.call_from_thread(callback, *args)
        except Exception:
            pass

    def _on_plan(self, run: RunState, plan: list[str]) -> None:
        run.plan = plan
        # Old findings of the checks about to run are set aside (restored if the run is cancelled),
        # so that what is shown is always this run's verdict or "not run".
        run.backup = {cid: self.findings.pop(cid) for cid in plan if cid in self.findings}
        self.query_one("#progress-bar", ProgressBar).update(total=max(1, len(plan)), progress=0)
        self.query_one("#progress-label", Label).update(
            Text("loading the project's data…", style="bold"))
        self._update_run_views()

    def _on_start(self, run: RunState, check_id: str) -> None:
        run.current = check_id
        self.query_one("#progress-label", Label).update(
            Text.assemble(("running ", "bold"), check_id, (f"  {len(run.done) + 1}/{len(run.plan)}", "dim")))
        self._update_run_views()

    def _on_finding(self, run: RunState, finding: Finding) -> None:
        self.findings[finding.check] = finding
        run.done.add(finding.check)
        if run.current == finding.check:
            run.current = None
        self.query_one("#progress-bar", ProgressBar).update(progress=len(run.done))
        self._update_run_views()

    def _update_run_views(self) -> None:
        self.refresh_steps()
        self.refresh_checks()
        self.show_title_only()

    def show_title_only(self) -> None:
        title = Text()
        title.append(f"Step {STEPS.index(self.step) + 1}/7 · {STEP_TITLES[self.step]}  ", style="bold")
        title.append_text(step_status_text(self.step, self.findings,
                                           self.current_run.step_progress(self.step) if self.current_run else None))
        self.query_one("#step-title", Static).update(title)

    def _on_run_end(self, run: RunState, result, error: str | None) -> None:
        cancelled = result is None or result.cancelled
        if cancelled:
            for cid, finding in run.backup.items():
                self.findings.setdefault(cid, finding)
        self.current_run = None
        if self.app.active_run is run:
            self.app.active_run = None
        self.query_one("#progress").remove_class("running")
        self.refresh_bindings()
        if result is not None and not result.cancelled:
            self.session.mark_run(run.steps)
            self._save_session()
            counts = result.summary
            self.notify(f"{len(result.findings)} checks: {counts.get('fail', 0)} fail, {counts.get('warn', 0)} warn, "
                        f"{counts.get('error', 0)} error, {counts.get('pass', 0)} pass", title="Run finished")
        elif result is not None:
            self.notify(f"Run cancelled after {len(run.done)} of {len(run.plan)} checks.", severity="warning")
        if error:
            self.notify(error, severity="error", timeout=15)
        self._update_run_views()
        if self.step == "problem":
            self.query_one("#inferred", Static).update(self._inferred_text())

    # --- bug hunt ------------------------------------------------------------------------------
    def action_mark_bug(self) -> None:
        if self.hunt is None:
            return
        cid = self.selected_check()
        if cid is None:
            return
        marks = self.hunt.progress.marks
        if cid in marks:
            del marks[cid]
            self.hunt.save(self)
            self.notify(f"{cid}: no longer marked as a bug")
            self._after_mark()
            return
        if cid not in self.findings:
            self.notify("Run this step first (r), then mark the finding that shows the bug.", severity="warning")
            return

        def saved(text: str | None) -> None:
            if text is None:
                return
            marks[cid] = text.strip()
            self.hunt.save(self)
            self._after_mark()

        self.app.push_screen(TextScreen(f"{cid} is a bug. What would you fix?", placeholder="e.g. call model.eval() in predict",
                                        cursor_blink=self.app.cursor_blink), saved)

    def _after_mark(self) -> None:
        self.query_one("#topbar", Static).update(self._topbar_text())
        self.refresh_checks()

    def action_back_to_tour(self) -> None:
        if self.current_run is not None:
            self.current_run.cancel.set()
        self._save_session()
        self.app.pop_screen()

    def action_reveal(self) -> None:
        if self.hunt is not None:
            self.hunt.reveal(self)


class MltriageApp(App):
    """Opens a project (or the welcome screen) and hosts the main screen."""

    CSS = APP_CSS
    TITLE = "mltriage"
    BINDINGS = [Binding("q", "quit", "Quit", show=False), Binding("?", "help", "Help", show=False)]

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

    def on_mount(self) -> None:
        self._install_signal_handlers()
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

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.cancel_active_run()
        screen = self.screen
        if isinstance(screen, MainScreen):
            screen._save_session()
        self.exit()

    def cancel_active_run(self) -> None:
        if self.active_run is not None:
            self.active_run.cancel.set()

    # --- signals: leave the terminal as it was -------------------------------------------------
    def _install_signal_handlers(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self._on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or not supported: Textual's defaults apply

    def _on_signal(self, sig: int) -> None:
        self.cancel_active_run()
        if isinstance(self.screen, MainScreen):
            self.screen.session.save()
        self.exit(return_code=128 + int(sig))

    # --- command palette -----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, MainScreen):
            for i, step in enumerate(STEPS, start=1):
                yield SystemCommand(f"Step {i}: {STEP_TITLES[step]}", f"Go to step {i} ({i})",
                                    lambda i=i: screen.action_goto(i))
            commands = [
                ("Run this step", "Run the current step's checks (r)", screen.action_run_step),
                ("Run all steps", "Run every step's checks (a)", screen.action_run_all),
                ("Cancel the run", "Stop the checks that are running (escape)", screen.action_cancel_run),
                ("Open the selected finding", "Detail, evidence, fix and plots (enter)", screen.action_open_finding),
                ("Write a note", "The current step's note (n)", screen.action_note),
                ("Tick a checklist item", "Tick the next manual checklist item (space)", screen.action_tick),
                ("Show or hide the guidance", "What the step is for (g)", screen.action_toggle_guide),
                ("Confirm or change task and metric", "Written to mltriage.toml (c)", screen.action_confirm_problem),
                ("Export the session", "Markdown or HTML report (e)", screen.action_export),
            ]
            if screen.hunt is not None:
                commands += [("Mark as a bug", "Bug hunt: mark the selected finding (b)", screen.action_mark_bug),
                             ("Reveal the answer key", "Bug hunt: what was planted (k)", screen.action_reveal)]
            for title, help_text, callback in commands:
                yield SystemCommand(title, help_text, callback)
        yield SystemCommand("Help", "Keys and what the statuses mean (?)", self.action_help)
        yield from super().get_system_commands(screen)


def run_app(project: str | None) -> int:
    """`mltriage [PROJECT]`: run the app; returns the exit code."""
    app = MltriageApp(project)
    try:
        app.run()
    finally:
        finish_runs(app)
    return app.return_code or 0


def finish_runs(app: MltriageApp, wait: float = 3.0) -> None:
    """Stop a run still going when the app exits, so no check process outlives the app."""
    run = app.active_run
    if run is not None:
        run.cancel.set()
        run.finished.wait(wait)
