"""Root causes first (issue 15, item 2): checks/engine/causes.py, the `caused_by` field, "Start here"."""

from __future__ import annotations

import json

import pytest

from mltriage.checks.engine.causes import KNOCK_ONS, ROOT_ORDER, assign_causes, plan_causes, start_here
from mltriage.checks.engine.registry import CATALOG_IDS
from mltriage.checks.findings import Finding, run_document
from mltriage.checks.io.report import to_markdown, to_text
from mltriage.checks.project.answer_key import load_answer_key


def f(check: str, status: str, title: str = "", **evidence) -> Finding:
    return Finding(status=status, title=title or f"{check} says {status}", check=check,
                   step=check.split(".")[0], evidence=evidence)


def causes(findings) -> dict[str, str | None]:
    return {x.check: x.caused_by for x in assign_causes(findings)}


# --- the table ------------------------------------------------------------------------------------
def test_table_uses_catalog_ids_only():
    for root, links in KNOCK_ONS.items():
        assert root in CATALOG_IDS, root
        for link in links:
            assert link.knock_on in CATALOG_IDS or link.knock_on == "data.feature_relevance", link.knock_on
            assert link.reason and not link.reason.endswith("."), link
            assert all(r in CATALOG_IDS for r in link.requires)
    assert set(ROOT_ORDER) == set(KNOCK_ONS)


# --- conservative folding ---------------------------------------------------------------------------
def test_knock_on_folded_under_a_flagged_root():
    got = causes([f("architecture.output_layer", "fail"), f("training.plateau", "fail"),
                  f("metrics.vs_baseline", "warn"), f("training.underfitting", "info")])
    assert got == {"architecture.output_layer": None, "training.plateau": "architecture.output_layer",
                   "metrics.vs_baseline": "architecture.output_layer",
                   "training.underfitting": "architecture.output_layer"}


@pytest.mark.parametrize("root_status", ["pass", "info", "skipped", "error"])
def test_nothing_folded_when_the_root_was_not_flagged(root_status):
    got = causes([f("architecture.output_layer", root_status), f("training.plateau", "fail")])
    assert got["training.plateau"] is None


def test_nothing_folded_when_the_root_is_absent():
    assert causes([f("training.plateau", "fail"), f("metrics.vs_baseline", "fail")]) == {
        "training.plateau": None, "metrics.vs_baseline": None}


@pytest.mark.parametrize("status", ["pass", "skipped", "error"])
def test_pass_skip_and_error_are_never_folded(status):
    got = causes([f("architecture.output_layer", "fail"), f("training.plateau", status)])
    assert got["training.plateau"] is None


def test_outcome_checks_need_the_baseline_failure_too():
    alone = causes([f("architecture.output_layer", "fail"), f("errors.slice_tests", "fail")])
    assert alone["errors.slice_tests"] is None
    both = causes([f("architecture.output_layer", "fail"), f("metrics.vs_baseline", "fail"),
                   f("errors.slice_tests", "fail")])
    assert both["errors.slice_tests"] == "architecture.output_layer"


def test_lr_sweep_folded_only_when_its_loss_never_fell():
    broken = [f("architecture.dead_units", "fail"), f("training.lr_range", "warn", fell=False)]
    assert causes(broken)["training.lr_range"] == "architecture.dead_units"
    advice = [f("architecture.dead_units", "fail"), f("training.lr_range", "warn", fell=True)]
    assert causes(advice)["training.lr_range"] is None


def test_a_root_that_explains_others_is_never_folded():
    # lr_range explains the divergence, so it stays a cause of its own even under a broken output layer.
    got = causes([f("architecture.output_layer", "fail"), f("training.lr_range", "fail", fell=True),
                  f("training.divergence", "warn")])
    assert got["training.lr_range"] is None and got["training.divergence"] == "training.lr_range"
    # Two structural roots: both stay; the shared knock-on goes to the first in ROOT_ORDER.
    got = causes([f("sanity.loss_shapes", "fail"), f("architecture.output_layer", "fail"),
                  f("training.plateau", "fail")])
    assert got == {"sanity.loss_shapes": None, "architecture.output_layer": None,
                   "training.plateau": "architecture.output_layer"}


def test_one_level_only():
    findings = [f(cid, "fail", fell=False) for cid in CATALOG_IDS]
    plan = plan_causes(findings)
    for knock_on, (root, _) in plan.items():
        assert root not in plan, f"{knock_on} -> {root} -> {plan[root][0]}"


def test_assign_is_idempotent_and_clears_stale_causes():
    findings = [f("architecture.output_layer", "fail"), f("training.plateau", "fail")]
    assign_causes(findings)
    assign_causes(findings)
    assert findings[1].caused_by == "architecture.output_layer"
    findings[0].status = "pass"
    assign_causes(findings)
    assert findings[1].caused_by is None


def test_works_on_json_dicts():
    dicts = [f("architecture.output_layer", "fail").to_dict(), f("training.plateau", "fail").to_dict()]
    assign_causes(dicts)
    assert dicts[1]["caused_by"] == "architecture.output_layer" and "caused_by" not in dicts[0]


def test_start_here_lists_roots_fails_first_with_their_knock_ons():
    findings = assign_causes([f("data.label_issues", "warn"), f("architecture.output_layer", "fail"),
                              f("training.plateau", "fail"), f("problem.baseline", "pass"),
                              f("errors.regressions", "info")])
    got = [(root.check, [k.check for k in ks]) for root, ks in start_here(findings)]
    assert got == [("architecture.output_layer", ["training.plateau"]), ("data.label_issues", [])]


# --- the field ------------------------------------------------------------------------------------
def test_caused_by_round_trips_and_is_omitted_when_none():
    plain = f("training.plateau", "fail")
    assert "caused_by" not in plain.to_dict()
    assert Finding.from_dict(plain.to_dict()).caused_by is None
    plain.caused_by = "architecture.output_layer"
    data = json.loads(json.dumps(plain.to_dict()))
    assert data["caused_by"] == "architecture.output_layer"
    assert Finding.from_dict(data).caused_by == "architecture.output_layer"


# --- the views ------------------------------------------------------------------------------------
def _run(findings):
    return run_document("demo", findings, version="0")


def test_text_and_markdown_start_with_the_causes():
    findings = [f("architecture.output_layer", "fail", "softmax before CrossEntropyLoss"),
                f("training.plateau", "fail", "the loss is stuck"), f("metrics.vs_baseline", "fail", "no better")]
    text = to_text(_run(findings), width=80)
    assert "Start here: 1 likely cause\n" in text
    assert text.index("Start here") < text.index("== Architecture")
    assert "explains 2 more: training.plateau (fail), metrics.vs_baseline (fail)" in " ".join(text.split())
    assert "Likely a knock-on of architecture.output_layer" in " ".join(text.split())
    md = to_markdown(_run(findings))
    assert "## Start here: 1 likely cause" in md
    assert md.index("Start here") < md.index("## Architecture")
    assert "  - fail `training.plateau`" in md and "(knock-on of `architecture.output_layer`)" in md


def test_no_start_here_on_a_clean_run():
    text = to_text(_run([f("problem.baseline", "pass"), f("architecture.summary", "info")]), width=80)
    assert "Start here" not in text


def test_text_fits_the_width_and_groups_identical_skip_reasons():
    long_title = "a very long title " * 12
    findings = [f("data.missing_values", "warn", long_title)] + [
        Finding(status="skipped", title="needs model code", detail="Add [model] code.", check=cid,
                step=cid.split(".")[0]) for cid in ("sanity.model_builds", "sanity.forward_pass", "architecture.summary")]
    text = to_text(_run(findings), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("needs model code") == 1
    assert "3 checks: needs model code" in text and "sanity.forward_pass" in text
    assert max(len(line) for line in to_text(_run(findings), width=50).splitlines()) <= 50


# --- the sample projects --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs():
    from sample_runs import all_runs

    return all_runs()


def _buggy_variants():
    from sample_runs import VARIANTS

    return VARIANTS


@pytest.mark.parametrize("name,buggy,fixed", _buggy_variants(), ids=[v[0] for v in _buggy_variants()])
def test_start_here_names_each_planted_bug_and_no_more(runs, name, buggy, fixed):
    run, _ = runs[buggy]
    roots = start_here(assign_causes([Finding.from_dict(x) for x in run["findings"]]))
    listed = {root.check for root, _ in roots}
    bugs = load_answer_key(buggy)
    assert len(roots) <= len(bugs), f"{name}: start here lists {sorted(listed)} for {len(bugs)} bugs"
    missing = [b.summary for b in bugs if not b.pending and not (b.ids & listed)]
    assert missing == [], f"{name}: planted bugs missing from start here {sorted(listed)}: {missing}"


# --- crashes with a measured cause (CRASH_LINKS) ------------------------------------------------------
_LOOKUP_CRASH = "project code failed: the model's forward() raised IndexError: index out of range in self"
_IDS_PAST = {"id_range": {"train": [2, 299], "valid": [2, 360]},
             "token_table": {"name": "embed", "num_embeddings": 300}}


def test_embedding_crashes_are_folded_under_the_ids_past_the_table():
    from mltriage.checks.engine.causes import reason_for

    found = [f("data.token_ids", "fail", **_IDS_PAST), f("training.plateau", "error", _LOOKUP_CRASH),
             f("metrics.summary", "error", _LOOKUP_CRASH), f("training.divergence", "error", "project code failed: "
                                                             "the model's forward() raised ValueError: shapes")]
    got = causes(found)
    assert got["training.plateau"] == got["metrics.summary"] == "data.token_ids"
    assert got["training.divergence"] is None                    # another crash: not explained by the ids
    assert "embedding" in reason_for("training.plateau", "data.token_ids", "error")
    roots = start_here(found)
    assert [r.check for r, _ in roots] == ["data.token_ids"]
    assert {k.check for k in roots[0][1]} == {"training.plateau", "metrics.summary"}
    assert "data.token_ids" in to_text(run_document("p", found, 1.0))


@pytest.mark.parametrize("evidence", [{"id_range": {"train": [2, 299], "valid": [2, 299]},
                                       "token_table": {"name": "embed", "num_embeddings": 300}}, {}])
def test_embedding_crashes_stay_errors_when_the_ids_fit(evidence):
    # data.token_ids flagged something else (padding, truncation): the crash is not its doing
    got = causes([f("data.token_ids", "warn", **evidence), f("training.plateau", "error", _LOOKUP_CRASH)])
    assert got["training.plateau"] is None
