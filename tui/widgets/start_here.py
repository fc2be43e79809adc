"""'Start here': the run's likely root causes (DESIGN §5 `caused_by`, issue 15), one line above the step,
so a user facing ten red checks for four bugs knows which to read first. Knock-ons are marked in the
check lists (↳ the cause)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mltriage.checks.engine.causes import plan_causes
from mltriage.checks.engine.registry import in_catalog_order
from mltriage.checks.findings import Finding

from ..present import plain

MAX_NAMED = 4  # causes named on the line; the rest are counted


def causes(findings: dict[str, Finding]) -> dict[str, str]:
    """knock-on check id -> its likely cause, worked out afresh from the findings shown (a saved run's
    caused_by may come from an older catalog, and the app merges the newest finding of each check)."""
    plan = plan_causes(in_catalog_order(list(findings.values())))
    return {cid: root for cid, (root, _) in plan.items() if root}


def start_here_text(findings: dict[str, Finding]) -> Text | None:
    """"Start here · 3 likely causes: ✗ input_batch (+6), ✗ feature_scale (+2), ! frozen_layers", or None
    when the run flagged nothing."""
    folded = causes(findings)
    roots = [f for f in in_catalog_order(list(findings.values()))
             if f.status in ("fail", "warn") and f.check not in folded]
    roots.sort(key=lambda f: f.status != "fail")  # fails first, catalog order within
    if not roots:
        return None
    line = Text()
    line.append(f"Start here · {len(roots)} likely cause{'s' if len(roots) != 1 else ''}: ", style="bold")
    for k, root in enumerate(roots[:MAX_NAMED]):
        if k:
            line.append(", ")
        line.append("✗ " if root.status == "fail" else "! ", style="bold red" if root.status == "fail" else "yellow")
        line.append(plain(root.check.split(".", 1)[-1]))
        knock_ons = sum(1 for r in folded.values() if r == root.check)
        if knock_ons:
            line.append(f" (+{knock_ons})", style="dim")
    if len(roots) > MAX_NAMED:
        line.append(f" … and {len(roots) - MAX_NAMED} more", style="dim")
    return line


class StartHere(Static):
    """id "start-here": hidden until a run flags something."""

    DEFAULT_CSS = "StartHere { height: auto; padding: 0 1 0 1; }"

    def show(self, findings: dict[str, Finding]) -> None:
        text = start_here_text(findings)
        self.display = text is not None
        if text is not None:
            self.update(text)
