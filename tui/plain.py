"""Every user- or data-supplied string the app shows goes through here: control characters (ESC, BEL,
bidi overrides, ...) become visible escapes, so a dataset cannot rewrite the terminal or reorder what
is shown. Markup is never parsed from such strings: the app builds rich Text (or passes markup=False),
so "[data] target" keeps its brackets and a path holding "[/]" is just text."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from mltriage.checks.wording import printable


def plain(value: Any) -> str:
    """`value` as a string with control characters escaped."""
    return printable(value if isinstance(value, str) else str(value))


def plain_text(value: Any, style: str = "") -> Text:
    """A rich Text holding `value` literally (no markup), control characters escaped."""
    return Text(plain(value), style=style)
