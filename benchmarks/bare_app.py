"""The reference for benchmarks/startup.py: a bare Textual app with what mltriage's first screen has at
its simplest, a list of the seven steps, a plotext plot and the footer (issue 17: "a bare Textual app
with a list and a plotext plot"). It draws the same words the start-up measure waits for."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, ListItem, ListView, Label
from textual_plotext import PlotextPlot

STEPS = ("Problem definition", "Sanity checks", "Data", "Architecture", "Training", "Metrics", "Error analysis")


class BareApp(App):
    def compose(self) -> ComposeResult:
        yield ListView(*(ListItem(Label(name)) for name in STEPS))
        yield PlotextPlot()
        yield Footer()

    def on_mount(self) -> None:
        plt = self.query_one(PlotextPlot).plt
        plt.plot([1, 2, 3, 4], [4, 2, 3, 1])


if __name__ == "__main__":
    BareApp().run()
