"""The current step's checks, one line each: status icon, name, the finding's title."""

from __future__ import annotations

from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mltriage.checks.findings import Finding

from ..present import check_line, fit
from .start_here import causes


class CheckList(OptionList):
    """The checks (id "checks"); an option's id is the check id."""

    def show(self, ids: list[str], findings: dict[str, Finding], titles: dict[str, str], running: str | None,
             marks: dict[str, str], reset: bool = False) -> None:
        keep = None if reset else self.highlighted
        # One line per check, cut to the width: the full title is in the detail below / beside.
        width = self.scrollable_content_region.width or 200
        folded = causes(findings)
        options = [Option(fit(check_line(cid, findings.get(cid), titles.get(cid, ""), running=running == cid,
                                         marked=cid in marks, cause=folded.get(cid)), width), id=cid)
                   for cid in ids]
        self.set_options(options)
        if options:
            self.highlighted = keep if keep is not None and keep < len(options) else 0

    def selected(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None
