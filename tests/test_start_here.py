"""The app's "Start here" line and folded knock-ons (issue 15: root causes in the app)."""

from __future__ import annotations

from mltriage.checks.findings import Finding
from mltriage.tui.present import check_line
from mltriage.tui.widgets.start_here import causes, start_here_text


def _f(check: str, status: str, **evidence) -> Finding:
    return Finding(check=check, step=check.split(".")[0], status=status, title=f"{check} {status}", evidence=evidence)


def test_the_root_is_named_and_its_knock_ons_are_folded_under_it():
    findings = {f.check: f for f in (
        _f("architecture.output_layer", "fail"), _f("training.plateau", "fail"), _f("training.underfitting", "warn"),
        _f("data.label_issues", "warn"), _f("metrics.summary", "pass"))}
    text = start_here_text(findings).plain
    assert text.startswith("Start here · 2 likely causes: ✗ output_layer (+2), ! label_issues")
    folded = causes(findings)
    assert folded == {"training.plateau": "architecture.output_layer", "training.underfitting": "architecture.output_layer"}
    line = check_line("training.plateau", findings["training.plateau"], "", cause=folded["training.plateau"]).plain
    assert "↳ output_layer: training.plateau fail" in line


def test_a_clean_run_has_no_start_here_line():
    assert start_here_text({"metrics.summary": _f("metrics.summary", "pass")}) is None


def test_a_stale_saved_cause_is_not_trusted():
    stale = _f("training.plateau", "fail")
    stale.caused_by = "architecture.dead_units"  # from an older run: that root is not flagged now
    assert causes({"training.plateau": stale}) == {}
    assert "1 likely cause" in start_here_text({"training.plateau": stale}).plain
