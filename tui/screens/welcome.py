"""Shown when no project file was found: what mltriage is, the samples to open, how to start."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..actions import WELCOME, bindings
from ..plain import plain

INTRO = ("Debug a machine-learning model in seven steps: problem, sanity, data, architecture, training, "
         "metrics, errors. Each step runs checks on your data, code and logs and shows the evidence, a fix "
         "to try and plots. Notes and ticks are kept in .mltriage/.")


class WelcomeScreen(Screen):
    """Shown when no project file was found: what mltriage is, samples to open, how to start."""

    BINDINGS = bindings(WELCOME)

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
                yield Static(Text(plain(self.reason), style="yellow"), id="welcome-reason")
            yield Static(INTRO, id="welcome-intro")
            yield Label("Start on your own data:", classes="section")
            yield Static("  mltriage init --data data/train.csv --target label, then mltriage there\n"
                         "  mltriage tour     guided bug hunts on the samples", id="welcome-start")
            yield Label("Open a sample project (enter):", classes="section")
            options = [Option(Text.assemble((plain(p.parent.name), "bold"), f"/{plain(p.name)}  ",
                                            (plain(self._shown(p)), "dim")), id=str(p)) for p in self.samples]
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
