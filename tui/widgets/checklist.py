"""The step's manual checklist: what no code can check, ticked with space or enter."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..guide import GUIDES
from ..present import fit
from ..session import Session


def item_line(item: str, ticked: bool) -> Text:
    return Text.assemble(("[x] " if ticked else "[ ] ", "bold green" if ticked else "bold"),
                         (item, "" if not ticked else "dim"))


class Checklist(OptionList):
    """id "manual"; the highlighted row is kept while the same step is redrawn."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._step: str | None = None

    def show(self, step: str, session: Session) -> None:
        keep = self.highlighted
        width = self.scrollable_content_region.width or 200
        options = [Option(fit(item_line(item, session.is_ticked(step, item)), width), id=f"manual-{i}")
                   for i, item in enumerate(GUIDES[step].manual)]
        self.set_options(options)
        if keep is not None and keep < len(options) and self._step == step:
            self.highlighted = keep
        self._step = step

    def toggle(self, step: str, session: Session, index: int) -> bool:
        """Tick or untick item `index` in the session and redraw; False when there is no such item."""
        items = GUIDES[step].manual
        if not 0 <= index < len(items):
            return False
        session.toggle(step, items[index])
        session.set_ticked(step, [i for i in items if session.is_ticked(step, i)])
        self.show(step, session)
        return True

    def highlight_first_unticked(self, step: str, session: Session) -> bool:
        """Focus the list on its first unticked item; False when every item is ticked."""
        unticked = [i for i, item in enumerate(GUIDES[step].manual) if not session.is_ticked(step, item)]
        if not unticked:
            return False
        self.focus()
        self.highlighted = unticked[0]
        return True
