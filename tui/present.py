"""How findings and statuses look in the app: icons, styles and text blocks (Rich Text)."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from mltriage.checks.findings import Finding
from mltriage.checks.engine.registry import CATALOG, STEPS

from .plain import plain

# Icons plus colour: the icon alone must tell the status apart (16 colours, colour-blind users).
ICONS = {"fail": "✗", "warn": "!", "error": "E", "info": "i", "pass": "✓", "skipped": "-",
         "not run": "·", "running": "»"}
STYLES = {"fail": "bold red", "warn": "bold yellow", "error": "bold magenta", "info": "cyan",
          "pass": "green", "skipped": "dim", "not run": "dim", "running": "bold cyan"}
LABELS = {"fail": "FAIL", "warn": "WARN", "error": "ERROR", "info": "INFO", "pass": "PASS",
          "skipped": "SKIPPED", "not run": "NOT RUN", "running": "RUNNING"}
EVIDENCE_MAX_ITEMS = 16
EVIDENCE_VALUE_CHARS = 160


def step_check_ids(step: str, findings: dict[str, Finding]) -> list[str]:
    """Every catalog id of the step, then ids found in runs but not in the catalog."""
    ids = [f"{step}.{name}" for name in CATALOG[step]]
    ids += sorted(cid for cid, f in findings.items() if f.step == step and cid not in ids)
    return ids


def fit(text: Text, width: int) -> Text:
    """One line cut to the width with an ellipsis (never narrower than 10)."""
    text = text.copy()
    text.truncate(max(10, width), overflow="ellipsis")
    return text


def humanize(check_id: str) -> str:
    return check_id.split(".", 1)[-1].replace("_", " ")


def step_counts(step: str, findings: dict[str, Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings.values():
        if f.step == step:
            counts[f.status] = counts.get(f.status, 0) + 1
    return counts


STATUS_ORDER = ("fail", "warn", "error", "pass", "info", "skipped")
SHORT = {"error": "err", "skipped": "skip"}
STEP_STATUS_WIDTH = 22  # the steps column is 26 wide: 2 indent + border + padding


def step_status_text(step: str, findings: dict[str, Finding], running: tuple[int, int] | None = None) -> Text:
    """'2 fail·1 warn·5 pass', 'not run' or 'running 3/13', always one line of the steps column."""
    if running is not None:
        done, total = running
        return Text(f"running {done}/{total}" if total else "running…", style=STYLES["running"])
    counts = step_counts(step, findings)
    if not counts:
        return Text("not run", style="dim")
    parts = [(f"{counts[s]} {SHORT.get(s, s)}", s) for s in STATUS_ORDER if counts.get(s)]
    verdicts = [p for p in parts if p[1] in ("fail", "warn", "error", "pass")]
    shown: list[tuple[str, str]] = []
    for part in parts:
        if sum(len(p[0]) + 1 for p in shown + [part]) - 1 > STEP_STATUS_WIDTH:
            break
        shown.append(part)
    if not all(p in shown for p in verdicts):
        # Too many kinds for the column: icons and counts ("✗2 !1 E1 ✓9").
        text = Text()
        for i, status in enumerate(s for s in STATUS_ORDER[:4] if counts.get(s)):
            text.append(("" if i == 0 else " ") + f"{ICONS[status]}{counts[status]}", style=STYLES[status])
        return text
    text = Text()
    for i, (label, status) in enumerate(shown):
        if i:
            text.append("·", style="dim")
        text.append(label, style=STYLES[status])
    return text


def step_label(index: int, step: str, title: str, status: Text, current: bool = False) -> Text:
    label = Text()
    label.append(f"{index} ", style="bold")
    label.append(title, style="bold" if current else "")
    label.append("\n  ")
    label.append_text(status)
    return label


def check_line(check_id: str, finding: Finding | None, title: str, running: bool = False,
               marked: bool = False, cause: str | None = None) -> Text:
    """One check's line; `cause`: the finding is a knock-on of that check (shown dim, "↳ cause")."""
    status = "running" if running else (finding.status if finding else "not run")
    line = Text()
    line.append(ICONS[status] + " ", style=STYLES[status])
    line.append(plain(check_id.split(".", 1)[-1]), style="bold" if finding else "")
    if marked:
        line.append(" [bug]", style="bold reverse")
    if running:
        line.append("  running…", style=STYLES["running"])
    elif finding and cause:  # a knock-on: folded under its likely cause (Start here)
        line.append(f"  ↳ {plain(cause.split('.', 1)[-1])}: ", style="dim")
        line.append(plain(finding.title), style="dim")
    elif finding:
        line.append("  " + plain(finding.title), style="dim" if finding.status in ("pass", "skipped") else "")
    else:
        line.append("  " + plain(title or "not run"), style="dim")
    return line


INLINE_CHARS = 70  # nested values shorter than this stay on one line in the finding screen


def _inline(value: Any) -> str:
    """One-line form: numbers to 4 significant digits, lists in brackets, dicts as k=v pairs."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return str(value)


def _nested_lines(value: Any, depth: int) -> list[str]:
    """Readable multi-line form for the finding screen: short parts inline, long ones nested."""
    pad = "    " * depth
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            flat = _inline(item)
            if len(flat) <= INLINE_CHARS or not isinstance(item, (dict, list, tuple)):
                lines.append(f"{pad}{key}: {flat}")
            else:
                lines.append(f"{pad}{key}:")
                lines.extend(_nested_lines(item, depth + 1))
    else:
        for item in value:
            flat = _inline(item)
            if len(flat) <= INLINE_CHARS or not isinstance(item, (dict, list, tuple)):
                lines.append(f"{pad}- {flat}")
            else:
                sub = _nested_lines(item, depth + 1)
                lines.append(f"{pad}- " + sub[0].lstrip())
                lines.extend(sub[1:])
    return lines


def format_value(value: Any, limit: int = EVIDENCE_VALUE_CHARS, indent: int | None = None) -> str:
    if isinstance(value, (dict, list, tuple)) and indent and len(_inline(value)) > INLINE_CHARS:
        text = "\n" + "\n".join(_nested_lines(value, 1))
    else:
        text = _inline(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def evidence_text(evidence: dict[str, Any], full: bool = False) -> Text:
    """Key: value lines; `full` (the finding screen) pretty-prints nested values at more length."""
    text = Text()
    items = list(evidence.items())
    for key, value in items[:EVIDENCE_MAX_ITEMS]:
        text.append(f"  {plain(key)}: ", style="bold")
        text.append(plain(format_value(value, limit=1500 if full else EVIDENCE_VALUE_CHARS,
                                       indent=2 if full else None)) + "\n")
    if len(items) > EVIDENCE_MAX_ITEMS:
        text.append(f"  … {len(items) - EVIDENCE_MAX_ITEMS} more\n", style="dim")
    return text


def finding_text(check_id: str, finding: Finding | None, title: str = "", brief: bool = False,
                 full: bool = False) -> Text:
    """The detail of one check: status, what was measured, the fix, the evidence."""
    text = Text()
    if finding is None:
        text.append(plain(check_id), style="bold")
        text.append(f"  {plain(title)}\n" if title else "\n", style="dim")
        text.append("Not run yet. Press r to run this step's checks (a: all steps).", style="dim")
        return text
    status = finding.status if finding.status in LABELS else "error"
    text.append(f" {LABELS[status]} ", style=STYLES[status] + " reverse")
    text.append(f" {plain(check_id)}\n", style="bold")
    text.append(plain(finding.title) + "\n", style="bold")
    detail = plain(finding.detail.strip())
    if brief and len(detail) > 400:
        detail = detail[:399] + "…"
    if detail:
        text.append("\nWhat was measured\n", style="bold underline")
        text.append(detail + "\n")
    if finding.fix:
        text.append("\nWhat to try\n", style="bold underline")
        text.append(plain(finding.fix.strip()) + "\n")
    if finding.evidence and not brief:
        text.append("\nEvidence\n", style="bold underline")
        text.append_text(evidence_text(finding.evidence, full=full))
    if brief:
        extras = []
        if finding.evidence:
            extras.append("evidence")
        if finding.plots:
            extras.append(f"{len(finding.plots)} plot{'s' if len(finding.plots) > 1 else ''}")
        if extras:
            text.append(f"\nenter: full detail with {' and '.join(extras)}", style="dim italic")
    elif finding.seconds:
        text.append(f"\n{finding.seconds:.2f} s", style="dim")
    return text


def step_index(step: str) -> int:
    return STEPS.index(step) + 1
