"""A fail of the metrics step judged on mltriage's probe that the time budget stopped early is a warn that says
so (checks/steps/metrics/cut_short.py): on a busy machine the probe trains fewer epochs, and a verdict must
not turn to fail with the load."""

from __future__ import annotations

from types import SimpleNamespace

from mltriage.checks.findings import fail, passed, warn
from mltriage.checks.steps.metrics.classes import PerClassMeasure, per_class_verdict
from mltriage.checks.steps.metrics.cut_short import on_probe

CUT = SimpleNamespace(budget_limited=True)
FULL = SimpleNamespace(budget_limited=False)


def _never_predicts_one_class():
    table = {"a": {"support": 40, "predicted": 80, "correct": 38, "precision": 0.47, "recall": 0.95, "f1": 0.6},
             "b": {"support": 40, "predicted": 0, "correct": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}}
    return per_class_verdict(PerClassMeasure(table))


def test_a_fail_on_a_probe_cut_by_the_budget_is_a_warn_that_says_why():
    found = _never_predicts_one_class()
    assert found.status == "fail"
    judged = on_probe(found, CUT)
    assert judged.status == "warn" and judged.title == found.title
    assert "time budget stopped" in judged.detail and "Raise [budget] seconds" in judged.fix
    assert judged.evidence["budget_limited"] is True and judged.evidence["per_class"] == found.evidence["per_class"]


def test_a_fully_trained_probe_keeps_its_fail_and_other_statuses_stand():
    assert on_probe(_never_predicts_one_class(), FULL).status == "fail"
    assert on_probe(fail("x"), SimpleNamespace()).status == "fail"  # predictions from a file: no budget
    for finding in (warn("w"), passed("p")):
        assert on_probe(finding, CUT) is finding
