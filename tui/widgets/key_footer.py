"""Textual's Footer, composed once per change of the keys instead of once per request (issue 17, start-up).

Textual's Footer answers every "bindings changed" signal with its own recompose: on the way to the first
frame the screen resumes, focuses the step list and refreshes its bindings, so the seven keys were built,
styled and thrown away three times. Each key was styled three times besides: on mount its `compact`
reactive's first watcher call adds the "-compact" class, then the data binding to the footer's `compact`
removes it again, and each class change restyles the key. Together that was 60 of the ~350 style
passes to the first frame, the largest share of the app's start-up beyond a bare Textual app
(benchmarks/startup.py --compare).

KeyFooter keeps Textual's look, keys and clicks (it is a Footer and its keys are Textual's FooterKeys):
- requests that arrive while a recompose is pending join it: the recompose reads the screen's active
  bindings when it runs, so it shows the latest keys;
- each key starts with the footer's `compact` value set, so neither its first watcher call nor the data
  binding changes a class.
Written against textual 8.2.8 (pinned in pyproject.toml): it reads Footer's `_bindings_ready` flag.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """The footer of every mltriage screen."""

    _recompose_pending = False

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                # A value already set is not initialised again on mount (no watcher call), and the data
                # binding then sets the same value (no watcher call either). The palette key is not bound
                # to the footer's value: it keeps FooterKey's own default, compact.
                compact = True if widget.has_class("-command-palette") else self.compact
                widget.set_reactive(FooterKey.compact, compact)
                widget.set_class(compact, "-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or self._recompose_pending:
            return
        if self.is_attached and screen is self.screen:
            self._recompose_pending = True
            self.call_after_refresh(self._recompose_once)

    async def _recompose_once(self) -> None:
        self._recompose_pending = False
        await self.recompose()
