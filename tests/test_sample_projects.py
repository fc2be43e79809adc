"""Every planted bug of every sample project is flagged by its check; fixed twins stay quiet (issue 8).

An answer-key entry that no check detects yet is marked `pending = true` with the issue that will
deliver it; this test then only requires that it is not flagged by accident... and nothing else.
"""


import pytest

from mltriage.checks.project.answer_key import flagged_by, load_answer_key, sample_variants

VARIANTS = sample_variants()
MAX_WARNS_ON_FIXED = 2


def all_runs():
    """The JSON run of every variant, shared with the wording and root-cause tests (tests/sample_runs.py):
    each sample is checked once per test session."""
    from sample_runs import all_runs as shared_runs

    return {path: run for path, (run, _) in shared_runs().items()}


@pytest.mark.parametrize("name,buggy,fixed", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_planted_bug_is_flagged(name, buggy, fixed):
    run = all_runs()[buggy]
    bugs = load_answer_key(buggy)
    assert 3 <= len(bugs) <= 6, f"{name}: plant 3-6 bugs"
    missed = [b.summary for b in bugs if not b.pending and not flagged_by(b, run["findings"])]
    assert missed == [], f"{name}: planted bugs not flagged: {missed}"
    for bug in bugs:
        if bug.pending:
            assert bug.issue, f"{name}: pending bug '{bug.summary}' must name the issue that delivers it"


@pytest.mark.parametrize("name,buggy,fixed", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_fixed_twin_is_quiet(name, buggy, fixed):
    run = all_runs()[fixed]
    fails = [f"{f['check']}: {f['title']}" for f in run["findings"] if f["status"] == "fail"]
    warns = [f"{f['check']}: {f['title']}" for f in run["findings"] if f["status"] == "warn"]
    errors = [f"{f['check']}: {f['title']}" for f in run["findings"] if f["status"] == "error"]
    assert fails == [], f"{name}/fixed has fails: {fails}"
    assert errors == [], f"{name}/fixed has check errors: {errors}"
    assert len(warns) <= MAX_WARNS_ON_FIXED, f"{name}/fixed has {len(warns)} warns: {warns}"


def test_there_are_sample_projects():
    assert any(name == "sentiment" for name, _, _ in VARIANTS)
