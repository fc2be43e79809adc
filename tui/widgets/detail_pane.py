"""The selected finding in full beside the lists, with its plots (wide terminals only)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from mltriage.checks.findings import Finding

from ..present import finding_text


class DetailPane(VerticalScroll):
    """id "detail-pane"; redrawn only when what it shows changes (plots are slow to build)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def forget(self) -> None:
        """Redraw at the next show (the size changed)."""
        self._shown = None

    def show(self, cid: str, finding: Finding | None, title: str, running: bool) -> None:
        key = (cid, id(finding), running, title)
        if key == self._shown:
            return
        self._shown = key
        self.remove_children()
        from .plots import plot_widget  # plotext loads on the first plot, not at start-up

        from dataclasses import replace

        from .input_examples import DRAWN_KEYS, InputExamples, wants_input_examples

        batch = finding is not None and wants_input_examples(finding.check, finding.evidence)
        # the widget draws the examples: the text keeps the rest of the evidence, never base64 PNGs
        shown = replace(finding, evidence={k: v for k, v in finding.evidence.items() if k not in DRAWN_KEYS}) \
            if batch else finding
        widgets = [Static(finding_text(cid, shown, title))]
        if batch:
            widgets.append(InputExamples(finding.evidence))
        widgets += [plot_widget(spec) for spec in (finding.plots if finding else [])]
        self.mount_all(widgets)
