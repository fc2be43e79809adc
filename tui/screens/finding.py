"""One finding in full: what was measured, the fix, the evidence and every plot."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mltriage.checks.findings import Finding

from ..actions import FINDING, bindings
from ..present import finding_text


class FindingScreen(Screen):
    """One finding in full: what was measured, the fix, the evidence and every plot."""

    BINDINGS = bindings(FINDING)

    def __init__(self, check_id: str, finding: Finding | None, title: str = "", hunt=None):
        super().__init__()
        self.check_id = check_id
        self.finding = finding
        self.check_title = title
        self.hunt = hunt

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "mark" and self.hunt is None:
            return False  # bug marking exists only in bug-hunt mode
        return True

    def compose(self) -> ComposeResult:
        from ..widgets.input_examples import DRAWN_KEYS, InputExamples, wants_input_examples
        from ..widgets.plots import plot_widget  # plotext loads on the first plot, not at start-up

        batch = self.finding is not None and wants_input_examples(self.finding.check, self.finding.evidence)
        # the widget draws these keys (examples as pictures): the text keeps the rest, never base64 PNGs
        shown = replace(self.finding, evidence={k: v for k, v in self.finding.evidence.items()
                                                if k not in DRAWN_KEYS}) if batch else self.finding
        with VerticalScroll(id="finding"):
            yield Static(finding_text(self.check_id, shown, self.check_title, full=True), id="finding-text")
            if batch:
                yield InputExamples(self.finding.evidence, id="input-examples")
            for spec in (self.finding.plots if self.finding else []):
                yield plot_widget(spec)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#finding").focus()

    def action_mark(self) -> None:
        if self.hunt is not None:
            self.app.pop_screen()
            self.app.screen.action_mark_bug()
