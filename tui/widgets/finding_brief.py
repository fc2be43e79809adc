"""The selected finding in short, under the check list (hidden when the detail pane shows)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mltriage.checks.findings import Finding

from ..present import finding_text


class FindingBrief(Static):
    """id "brief"."""

    def show(self, cid: str, finding: Finding | None, title: str, running: bool) -> None:
        if running:
            self.update(Text(f"{cid}: running…", style="bold cyan"))
        else:
            self.update(finding_text(cid, finding, title, brief=True))
