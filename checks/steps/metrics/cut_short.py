"""Verdicts on a probe that mltriage's time budget stopped early.

Without a predictions file or a checkpoint the metrics step judges the project's model as mltriage trained it
(analyses/probe.py): the configured epochs, within the run's [budget] seconds. When the budget stops that
training first, the probe is under-trained by mltriage's clock, not by the project: a class it never
predicts, a baseline it does not beat or a gap it shows says how far a busy machine got, and it changes
with the machine's load. Such a fail is reported as a warn that says so, with the fix that gets a verdict
(a larger budget, or the project's own predictions/checkpoint); warns and passes stand as they are.
"""

from __future__ import annotations

from dataclasses import replace

from ...findings import Finding

NOTE = (" Judged on the model as mltriage trained it, and the time budget stopped that training before its "
        "configured epochs: an under-trained probe, so this is not a fail of the project.")
FIX = ("Raise [budget] seconds (or --budget) so that mltriage trains the configured epochs, or give "
       "[artifacts] predictions / checkpoint from the real run.")


def on_probe(finding: Finding, outputs) -> Finding:
    """`finding` as it stands, or as a warn when it is a fail on a probe the budget cut short."""
    if finding.status != "fail" or not getattr(outputs, "budget_limited", False):
        return finding
    evidence = dict(finding.evidence, budget_limited=True, status_on_a_fully_trained_probe="fail")
    return replace(finding, status="warn", detail=(finding.detail + NOTE).strip(),
                   fix=f"{FIX} {finding.fix}".strip(), evidence=evidence)
