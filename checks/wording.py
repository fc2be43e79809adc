"""Formatting helpers for the words of findings (issue 15, item 7): bottom layer, beside findings/vocab.

Prose must read right whatever the numbers are: the direction word comes from the numbers (rose/fell),
a non-finite value is never printed as "inf"/"nan", a percentage never reads "-0%", and a long list
is cut with "... and N more" so that the reader knows it was cut.
"""

from __future__ import annotations

import re

import math
from typing import Any, Iterable


def num(x: Any, digits: int = 4) -> str:
    """`x` with `digits` significant digits; non-finite values in words ("unbounded", "not a number")."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "not a number"
    if math.isinf(v):
        return "unbounded" if v > 0 else "unbounded below"
    if v == 0:
        return "0"  # also turns -0.0 into "0"
    text = f"{v:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def pct(fraction: Any, digits: int = 0) -> str:
    """A fraction (0.123) as a percentage ("12%"): never "-0%"; a tiny non-zero value reads "<1%"."""
    try:
        v = float(fraction) * 100
    except (TypeError, ValueError):
        return str(fraction)
    if not math.isfinite(v):
        return num(v)
    text = f"{v:.{digits}f}"
    if float(text) == 0:
        if v == 0:
            return "0%"
        step = 10 ** -digits
        return f"<{step:g}%" if v > 0 else f"<{step:g}% lower"
    return f"{text}%"


def change(before: Any, after: Any, digits: int = 4, up: str = "rose", down: str = "fell",
           same: str = "stayed at") -> str:
    """"rose from 1.1 to 1.19 (+8.2%)", "fell from ...", "stayed at ...": the word from the numbers."""
    try:
        a, b = float(before), float(after)
    except (TypeError, ValueError):
        return f"went from {before} to {after}"
    if not (math.isfinite(a) and math.isfinite(b)):
        return f"went from {num(a, digits)} to {num(b, digits)}"
    if num(a, digits) == num(b, digits):
        return f"{same} {num(a, digits)}"
    word = up if b > a else down
    rel = f" ({'+' if b > a else '-'}{pct(abs(b - a) / abs(a))})" if a != 0 else ""
    return f"{word} from {num(a, digits)} to {num(b, digits)}{rel}"


def relative(value: Any, reference: Any, higher: str = "higher", lower: str = "lower") -> str:
    """"12% higher" / "8% lower" than the reference: a positive percentage with the word that fits."""
    try:
        v, r = float(value), float(reference)
    except (TypeError, ValueError):
        return ""
    if not (math.isfinite(v) and math.isfinite(r)) or r == 0:
        return ""
    diff = (v - r) / abs(r)
    if pct(abs(diff)) == "0%":
        return "about the same"
    return f"{pct(abs(diff))} {higher if diff > 0 else lower}"


def cut_list(items: Iterable[Any], limit: int = 5, sep: str = ", ") -> str:
    """"a, b, c ... and 4 more": at most `limit` items, and the count of the rest when cut."""
    items = [str(i) for i in items]
    if len(items) <= limit:
        return sep.join(items)
    return sep.join(items[:limit]) + f" ... and {len(items) - limit} more"


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 class", "3 classes": the count with the word in the right number."""
    if many is None:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{n:,} {word if n == 1 else many}"


def baseline_name(is_classification: bool) -> str:
    """What the trivial baseline predicts, in words that fit the task."""
    return "the majority class" if is_classification else "the training mean"


def _decimals(x: Any, spec: str, zero) -> str:
    """`x` formatted with `spec`; non-numbers as they are, non-finite numbers in words, and a value that
    rounds to zero through `zero(text)` (so it never reads "-0.000")."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return num(v)
    text = format(v, spec)
    return zero(text) if float(text) == 0 else text


def signed(x: Any, decimals: int = 3) -> str:
    """`x` with its sign and fixed decimals ("+0.012", "-0.300"); a value that rounds to zero reads "0"."""
    return _decimals(x, f"+.{decimals}f", lambda text: "0")


def fixed(x: Any, decimals: int = 3) -> str:
    """`x` with fixed decimals ("0.153"), never "-0.000" or "nan"."""
    return _decimals(x, f".{decimals}f", lambda text: text.lstrip("-"))


# Control characters (and bidirectional overrides) a terminal or a page would act on instead of showing.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character shown as a \\xNN / \\uNNNN escape."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)
