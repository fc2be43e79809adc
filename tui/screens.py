"""The app's secondary screens: welcome, broken project, finding detail, note, export, help, problem."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, RadioButton, RadioSet, Select, Static, TextArea
from textual.widgets.option_list import Option

from mltriage.checks.findings import Finding
from mltriage.checks.engine.registry import STEP_TITLES

from .guide import STATUS_MEANINGS
from .present import ICONS, STYLES, finding_text

INTRO = ("Debug a machine-learning model in seven steps: problem, sanity, data, architecture, training, "
         "metrics, errors. Each step runs checks on your data, code and logs and shows the evidence, a fix "
         "to try and plots. Notes and ticks are kept in .mltriage/.")


class WelcomeScreen(Screen):
    """Shown when no project file was found: what mltriage is, samples to open, how to start."""

    BINDINGS = [Binding("q", "app.quit", "Quit"), Binding("?", "app.help", "Help")]

    def __init__(self, samples: list[Path], reason: str = "", display_root: Path | None = None):
        super().__init__()
        self.samples = samples
        self.reason = reason
        self.display_root = display_root

    def _shown(self, path: Path) -> str:
        for base in filter(None, (Path.cwd(), self.display_root)):
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return str(path)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="welcome"):
            yield Static(Text("mltriage", style="bold"), id="welcome-title")
            if self.reason:
                yield Static(Text(self.reason, style="yellow"), id="welcome-reason")
            yield Static(INTRO, id="welcome-intro")
            yield Label("Start on your own data:", classes="section")
            yield Static("  mltriage init --data data/train.csv --target label, then mltriage there\n"
                         "  mltriage tour     guided bug hunts on the samples", id="welcome-start")
            yield Label("Open a sample project (enter):", classes="section")
            options = [Option(Text.assemble((p.parent.name, "bold"), f"/{p.name}  ",
                                            (self._shown(p), "dim")), id=str(p)) for p in self.samples]
            yield OptionList(*options, id="samples")
            if not self.samples:
                yield Static(Text("No sample projects found (set MLTRIAGE_SAMPLES to their folder).",
                                  style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        samples = self.query_one("#samples", OptionList)
        if self.samples:
            samples.highlighted = 0
        samples.focus()

    @on(OptionList.OptionSelected, "#samples")
    def open_sample(self, event: OptionList.OptionSelected) -> None:
        self.app.open_project(Path(event.option.id), display=self._shown(Path(event.option.id)))


class BrokenProjectScreen(Screen):
    """The project file exists but does not load: the message, how to fix it, and retry."""

    BINDINGS = [Binding("r", "retry", "Reload"), Binding("q", "app.quit", "Quit"),
                Binding("?", "app.help", "Help")]

    def __init__(self, message: str, path: Path | None):
        super().__init__()
        self.message = message
        self.path = path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="broken"):
            yield Static(Text("The project file does not load", style="bold red"), id="broken-title")
            yield Static(Text(self.message), id="broken-message")
            yield Static(Text("Fix the file in your editor, then press r to reload. "
                              "`mltriage check` shows the same message from the command line. "
                              "`mltriage init --data FILE` writes a fresh starter file.", style="dim"),
                         id="broken-help")
        yield Footer()

    def action_retry(self) -> None:
        self.app.reload_project()


class FindingScreen(Screen):
    """One finding in full: what was measured, the fix, the evidence and every plot."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("q", "app.pop_screen", "Back", show=False),
                Binding("b", "mark", "Mark as bug")]

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
        from .plots import plot_widget  # plotext loads on the first plot, not at start-up

        with VerticalScroll(id="finding"):
            yield Static(finding_text(self.check_id, self.finding, self.check_title, full=True), id="finding-text")
            for spec in (self.finding.plots if self.finding else []):
                yield plot_widget(spec)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#finding").focus()

    def action_mark(self) -> None:
        if self.hunt is not None:
            self.app.pop_screen()
            self.app.screen.action_mark_bug()


class NoteScreen(ModalScreen[str | None]):
    """A free-text note for one step. Escape or ctrl+s saves; nothing typed is ever thrown away."""

    BINDINGS = [Binding("escape", "save", "Save and close"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, step: str, text: str, cursor_blink: bool = True):
        super().__init__()
        self.step = step
        self.text = text
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box", classes="dialog"):
            yield Label(f"Note for {STEP_TITLES[self.step]}  (esc or ctrl+s: save and close)", classes="dialog-title")
            area = TextArea(self.text, id="note-area", soft_wrap=True)
            area.cursor_blink = self.cursor_blink
            yield area

    def on_mount(self) -> None:
        self.query_one("#note-area").focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#note-area", TextArea).text)


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Choose Markdown or HTML and a file name; returns (format, path)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default_dir: Path, cursor_blink: bool = True):
        super().__init__()
        self.default_dir = default_dir
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="dialog"):
            yield Label("Export the session: findings, plots as text, notes, ticked items", classes="dialog-title")
            with RadioSet(id="export-format"):
                yield RadioButton("Markdown", value=True, id="fmt-markdown")
                yield RadioButton("HTML (self-contained)", id="fmt-html")
            field = Input(str(self.default_dir / "mltriage-report.md"), id="export-path")
            field.cursor_blink = self.cursor_blink
            yield field
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path").focus()

    @property
    def fmt(self) -> str:
        return "html" if self.query_one("#fmt-html", RadioButton).value else "markdown"

    @on(RadioSet.Changed)
    def format_changed(self) -> None:
        field = self.query_one("#export-path", Input)
        path = Path(field.value)
        field.value = str(path.with_suffix(".html" if self.fmt == "html" else ".md"))

    @on(Button.Pressed, "#export-go")
    @on(Input.Submitted, "#export-path")
    def export(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        if value:
            self.dismiss((self.fmt, value))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def help_table() -> tuple[Table, Table]:
    keys = Table(box=None, padding=(0, 2), show_header=False)
    keys.add_column(style="bold", no_wrap=True)
    keys.add_column()
    for key, what in (("1 … 7", "jump to a step"), ("↑ ↓ / tab", "move; tab goes steps → checks → checklist"),
                      ("r", "run the current step's checks"), ("a", "run all steps"),
                      ("escape", "cancel the run (or close a dialog)"), ("enter", "open the selected finding"),
                      ("n", "write the step's note"), ("space", "tick a manual checklist item"),
                      ("g", "show or hide the step's guidance"), ("c", "problem step: confirm or change task/metric"),
                      ("e", "export the session (Markdown or HTML)"), ("ctrl+p", "command palette: every action"),
                      ("b / k", "bug hunts (mltriage tour): mark a finding as a bug / reveal the answer key"),
                      ("?", "this help"), ("q", "quit")):
        keys.add_row(key, what)
    statuses = Table(box=None, padding=(0, 2), show_header=False)
    statuses.add_column(no_wrap=True)
    statuses.add_column()
    for status, meaning in STATUS_MEANINGS:
        statuses.add_row(Text(f"{ICONS[status]} {status}", style=STYLES[status]), meaning)
    return keys, statuses


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Close"), Binding("?", "app.pop_screen", "Close", show=False),
                Binding("q", "app.pop_screen", "Close", show=False)]

    def compose(self) -> ComposeResult:
        keys, statuses = help_table()
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            yield Static(keys)
            yield Label("What the statuses mean", classes="dialog-title")
            yield Static(statuses)
            yield Static(Text("esc: close", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()  # arrow keys scroll it on small terminals


class ProblemScreen(ModalScreen[tuple[str | None, str | None] | None]):
    """Confirm or change the task and metric; returns them only after an explicit confirmation."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, task: str | None, metric: str | None, inferred_task: str | None):
        super().__init__()
        self.current_task = task
        self.current_metric = metric
        self.inferred_task = inferred_task

    def compose(self) -> ComposeResult:
        from mltriage.checks.project.config import TASKS

        task = self.current_task or self.inferred_task or "classification"
        with Vertical(id="problem-box", classes="dialog"):
            yield Label("Confirm or change what is being predicted", classes="dialog-title")
            yield Label("Task")
            yield Select([(t, t) for t in TASKS], value=task, allow_blank=False, id="task-select")
            yield Label("Metric")
            yield Select(self._metric_options(task), value=self._metric_for(task), allow_blank=False,
                         id="metric-select")
            yield Static("", id="problem-preview")
            with Horizontal(classes="buttons"):
                yield Button("Write to mltriage.toml", variant="primary", id="problem-write")
                yield Button("Cancel", id="problem-cancel")

    @staticmethod
    def _metric_options(task: str) -> list[tuple[str, str]]:
        from mltriage.checks.project.config import CLASSIFICATION_METRICS, REGRESSION_METRICS

        return [(m, m) for m in (CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS)]

    def _metric_for(self, task: str) -> str:
        options = [m for m, _ in self._metric_options(task)]
        return self.current_metric if self.current_metric in options else options[0]

    def on_mount(self) -> None:
        self._preview()

    @on(Select.Changed, "#task-select")
    def task_changed(self, event: Select.Changed) -> None:
        metric = self.query_one("#metric-select", Select)
        metric.set_options(self._metric_options(str(event.value)))
        metric.value = self._metric_for(str(event.value))
        self._preview()

    @on(Select.Changed, "#metric-select")
    def metric_changed(self) -> None:
        self._preview()

    def _chosen(self) -> tuple[str, str]:
        return str(self.query_one("#task-select", Select).value), str(self.query_one("#metric-select", Select).value)

    def _preview(self) -> None:
        task, metric = self._chosen()
        lines = ["[project] in mltriage.toml will read:", f'  task = "{task}"', f'  metric = "{metric}"']
        if (task, metric) == (self.current_task, self.current_metric):
            lines.append("(unchanged: writing records that you confirmed it)")
        self.query_one("#problem-preview", Static).update("\n".join(lines))

    @on(Button.Pressed, "#problem-write")
    def write(self) -> None:
        self.dismiss(self._chosen())

    @on(Button.Pressed, "#problem-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[str | None]):
    """Ask for one line of text (used by bug hunts: what would you fix?)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", cursor_blink: bool = True):
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="text-box"):
            yield Label(self.title_text, classes="dialog-title")
            field = Input(self.value, placeholder=self.placeholder, id="text-input")
            field.cursor_blink = self.cursor_blink
            yield field
            yield Static(Text("enter: save   esc: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#text-input").focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
