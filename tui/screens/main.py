"""The main screen: layout and wiring. The widgets draw (tui/widgets/); the run controller runs the checks
and posts typed messages (tui/run_controller.py, tui/messages.py); bug-hunt mode, export, the note and
the mltriage.toml edit live in hunt_mode.py, export.py, note_edit.py and problem_edit.py."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Label, OptionList

from mltriage.checks.engine.registry import STEPS
from mltriage.checks.findings import Finding
from mltriage.checks.project.config import ProjectConfig

from .. import note_edit
from ..actions import MAIN, bindings, hunt_actions
from ..hunt_mode import HuntMode
from ..messages import CheckStarted, FindingArrived, RunEnded, RunPlanned, TitlesLoaded
from ..present import step_check_ids
from ..run_controller import RunController, RunState, end_notice
from ..session import Session
from ..titles import load_titles
from ..widgets import (Checklist, CheckList, DetailPane, FindingBrief, RunProgress, StepGuide, StepList, StepPane,
                       StepTitle, TopBar, step_options)
from ..widgets.live_training import LiveTraining, show_for_step, store_alarm
from ..widgets.key_footer import KeyFooter


class MainScreen(HuntMode, Screen):
    """The seven steps on the left; the current step's guidance, checks, detail, checklist and note."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = bindings(MAIN)

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
        self.runs = RunController(self)
        self.titles: dict[str, str] = {}
        self._start_with_breakpoint_class()

    def _start_with_breakpoint_class(self) -> None:
        """Give the screen its width class (-narrow/-wide) before its first layout: Textual sets it on the
        first resize, and a class that changes then restyles every widget of the screen once more (about
        30 style passes on the way to the first frame)."""
        width = self.app.size.width
        for least, name in sorted(self.HORIZONTAL_BREAKPOINTS, reverse=True):
            if width >= least:
                self.add_class(name)
                return

    @property
    def current_run(self) -> RunState | None:
        return self.runs.current

    def _progress(self, step: str) -> tuple[int, int] | None:
        return self.current_run.step_progress(step) if self.current_run else None

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TopBar(self._topbar(), id="topbar")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Label("Steps", id="steps-label")
                yield StepList(*step_options(self.findings, self.step, self._progress), id="steps")
            yield StepPane(id="right")
            yield DetailPane(id="detail-pane")
        yield RunProgress(id="progress")
        yield KeyFooter()

    def on_mount(self) -> None:
        steps = self.query_one(StepList)
        steps.highlighted = STEPS.index(self.step)
        self.show_step(self.step)
        steps.focus()
        for notice in self.notices + ([self.session.notice] if self.session.notice else []):
            self.notify(notice, severity="warning", timeout=12, markup=False)
        self.session.notice = None
        if self.session.pending_drafts():
            # A note was being typed when the app last stopped (an SSH drop): open it again.
            self.call_after_refresh(lambda: note_edit.reopen_draft(self))
        if self.app.check_titles:
            # After the first frame: importing the check modules would compete with it for the GIL.
            self.set_timer(0.3, lambda: load_titles(self))

    @on(TitlesLoaded)
    def titles_loaded(self, message: TitlesLoaded) -> None:
        self.titles = message.titles
        self.refresh_checks()

    def on_resize(self) -> None:
        self.query_one(DetailPane).forget()
        self.call_after_refresh(self.refresh_checks)
        self.call_after_refresh(lambda: self.query_one(Checklist).show(self.step, self.session))

    # --- rendering -----------------------------------------------------------------------------
    def refresh_steps(self) -> None:
        self.query_one(StepList).show(self.findings, self.step, self._progress)

    def show_step(self, step: str) -> None:
        self.step = step
        self.session.mark_visited(step)
        self.query_one(StepPane).show(step, self.findings, self._progress(step), self.config, self.session)
        show_for_step(self, step)  # the Training step's live view of the run (issue 16)
        self.refresh_steps()
        self.refresh_checks(reset=True)

    def refresh_checks(self, reset: bool = False) -> None:
        running = self.current_run.current if self.current_run is not None else None
        self.query_one(CheckList).show(step_check_ids(self.step, self.findings), self.findings, self.titles,
                                       running, self._hunt_marks(), reset=reset)
        self.refresh_detail()

    def selected_check(self) -> str | None:
        return self.query_one(CheckList).selected()

    def refresh_detail(self) -> None:
        cid = self.selected_check()
        if cid is None:
            return
        finding, title = self.findings.get(cid), self.titles.get(cid, "")
        running = self.current_run is not None and self.current_run.current == cid
        self.query_one(FindingBrief).show(cid, finding, title, running)
        if self.has_class("-wide"):
            self.query_one(DetailPane).show(cid, finding, title, running)

    # --- events --------------------------------------------------------------------------------
    @on(LiveTraining.AlarmRaised)
    def live_alarm(self, message: LiveTraining.AlarmRaised) -> None:
        if store_alarm(self.findings, message.check_id, message.finding):
            self._update_run_views()

    @on(OptionList.OptionHighlighted, "#steps")
    def step_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.step:
            self.show_step(event.option.id)

    @on(OptionList.OptionSelected, "#steps")
    def step_selected(self) -> None:
        self.query_one(CheckList).focus()

    @on(OptionList.OptionHighlighted, "#checks")
    def check_highlighted(self) -> None:
        self.refresh_detail()

    @on(OptionList.OptionSelected, "#checks")
    def check_selected(self) -> None:
        self.action_open_finding()

    @on(OptionList.OptionSelected, "#manual")
    def manual_selected(self, event: OptionList.OptionSelected) -> None:
        self.toggle_manual(event.option_index)

    def toggle_manual(self, index: int) -> None:
        if self.query_one(Checklist).toggle(self.step, self.session, index):
            self.save_session()

    def save_session(self) -> None:
        error = self.session.save()
        if error:
            self.notify(error, severity="error", timeout=10)

    # --- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # False hides the key from the footer and lets it fall through to other handlers.
        if action in hunt_actions() and self.hunt is None:
            return False
        if action == "cancel_run" and self.current_run is None:
            return False
        return True

    def action_goto(self, index: int) -> None:
        self.query_one(StepList).highlighted = index - 1
        if STEPS[index - 1] != self.step:
            self.show_step(STEPS[index - 1])

    def action_open_finding(self) -> None:
        cid = self.selected_check()
        if cid is not None:
            from .finding import FindingScreen  # its table and plots load on the first finding opened

            self.app.push_screen(FindingScreen(cid, self.findings.get(cid), self.titles.get(cid, ""), hunt=self.hunt))

    def action_toggle_guide(self) -> None:
        guide = self.query_one(StepGuide)
        guide.collapsed = not guide.collapsed

    def action_tick(self) -> None:
        """Tick the highlighted item of the checklist; from elsewhere, the first unticked one."""
        manual = self.query_one(Checklist)
        if self.focused is not manual and not manual.highlight_first_unticked(self.step, self.session):
            self.notify("Every checklist item of this step is ticked.")
            return
        if manual.highlighted is not None:
            self.toggle_manual(manual.highlighted)

    def action_note(self) -> None:
        note_edit.note_dialog(self)

    def action_export(self) -> None:
        from .. import export  # the export dialog loads when it is opened, not at start-up

        export.export_dialog(self)

    def action_confirm_problem(self) -> None:
        if self.step != "problem":
            self.action_goto(1)
        from .. import problem_edit

        problem_edit.confirm_problem(self)

    # --- runs ----------------------------------------------------------------------------------
    def action_run_step(self) -> None:
        self.start_run([self.step])

    def action_run_all(self) -> None:
        self.start_run(list(STEPS))

    def action_cancel_run(self) -> None:
        if self.runs.cancel():
            self.query_one(RunProgress).cancelling()

    def start_run(self, steps: list[str]) -> None:
        if self.runs.start(steps, self.config, self.app.device) is None:
            self.notify("A run is in progress: escape cancels it.", severity="warning")
            return
        self.query_one(RunProgress).starting(steps)
        self.refresh_steps()
        self.refresh_bindings()  # escape (cancel) shows in the footer while a run is going

    @on(RunPlanned)
    def run_planned(self, message: RunPlanned) -> None:
        message.run.planned(message.plan, self.findings)
        self.query_one(RunProgress).planned(len(message.plan))
        self._update_run_views()

    @on(CheckStarted)
    def check_started(self, message: CheckStarted) -> None:
        run = message.run
        run.current = message.check_id
        self.query_one(RunProgress).running(message.check_id, len(run.done) + 1, len(run.plan))
        self._update_run_views()

    @on(FindingArrived)
    def finding_arrived(self, message: FindingArrived) -> None:
        message.run.arrived(message.finding, self.findings)
        self.query_one(RunProgress).advanced(len(message.run.done))
        self._update_run_views()

    def _update_run_views(self) -> None:
        self.refresh_steps()
        self.refresh_checks()
        self.query_one(StepTitle).show(self.step, self.findings, self._progress(self.step))

    @on(RunEnded)
    def run_ended(self, message: RunEnded) -> None:
        run, result = message.run, message.result
        if result is None or result.cancelled:
            run.restore(self.findings)
        self.runs.finish(run)
        self.query_one(RunProgress).stopped()
        self.refresh_bindings()
        if result is not None and not result.cancelled:
            self.session.mark_run(run.steps)
            self.save_session()
            self.notify(end_notice(run, result), title="Run finished")
        elif result is not None:
            self.notify(end_notice(run, result), severity="warning")
        if message.error:
            self.notify(message.error, severity="error", timeout=15)
        self._update_run_views()
        if self.step == "problem":
            self.query_one(StepPane).show_problem_summary(self.config, self.findings, self.session)
