"""The worker protocol (typed messages, one encode/decode pair) and the supervisor's pieces that need no
process: message handling, the restart policy's wording, the hung-role bookkeeping in usercode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltriage.checks.engine import supervisor
from mltriage.checks.engine.messages import (Done, FindingMessage, Plan, PlannedCheck, ProjectFailed, ProtocolError,
                                             RunRequest, Started, decode, decode_request, encode)
from mltriage.checks.findings import Finding, PlotSpec, Series
from mltriage.checks.project.config import ProjectError


def _finding() -> Finding:
    plot = PlotSpec(kind="line", title="loss", series=[Series("train", [1, 2], [0.5, 0.25])])
    return Finding(status="warn", title="t", detail="d", fix="f", evidence={"n": 3}, plots=[plot],
                   check="data.x", step="data", seconds=0.5)


@pytest.mark.parametrize("message", [
    Plan(project="churn", checks=[PlannedCheck("data.x", "data", "X", None), PlannedCheck("sanity.y", "sanity", "Y", 5.0)]),
    Started(check="data.x"),
    Done(budget_used=1.5),
    ProjectFailed(message="mltriage.toml: [data] target is missing"),
])
def test_messages_round_trip(message):
    line = encode(message)
    assert "\n" not in line and json.loads(line)["type"] == message.type
    assert decode(line) == message
    assert decode(line.encode()) == message  # the supervisor reads bytes off the pipe


def test_finding_message_round_trips_its_finding():
    back = decode(encode(FindingMessage(finding=_finding(), budget_used=2.25)))
    assert isinstance(back, FindingMessage) and back.budget_used == 2.25
    assert back.finding.to_dict() == _finding().to_dict()


def test_wire_format_keeps_its_type_names():
    # the names the worker protocol has always used on the wire
    assert [json.loads(encode(m))["type"] for m in (Plan("p", []), Started("c"), FindingMessage(_finding()),
                                                    Done(), ProjectFailed("m"))] == \
        ["plan", "start", "finding", "done", "project_error"]


def test_request_round_trips():
    request = RunRequest(project="/p/mltriage.toml", steps=None, checks=["sanity.a"], budget=60.0, budget_used=3.0,
                         hung={"build": "Where it was stuck: ..."})
    assert decode_request(encode(request)) == request


@pytest.mark.parametrize("line", ["not json", '{"no_type": 1}', '{"type": "gossip"}', '{"type": "start"}',
                                  '[1, 2]', '{"type": "plan", "project": "p", "checks": [{"nope": 1}]}', b"\xff\xfe"])
def test_malformed_line_is_a_protocol_error(line):
    with pytest.raises(ProtocolError, match="not a worker message"):
        decode(line)


# --- message handling, without a process -----------------------------------------------------------

class _Config:
    name, path, root, budget_seconds = "p", Path("/p/mltriage.toml"), Path("/p"), 60.0
    build, featurize, train_step, predict = "build_model", None, None, None


def _run(**callbacks):
    return supervisor._Run(_Config(), supervisor.RunOptions(), callbacks.get("on_plan"),
                           callbacks.get("on_start"), callbacks.get("on_finding"))


def test_handling_tracks_plan_pending_current_and_budget():
    plans, starts, found = [], [], []
    run = _run(on_plan=plans.append, on_start=starts.append, on_finding=found.append)
    plan = Plan("p", [PlannedCheck("sanity.a", "sanity", "A", 5.0), PlannedCheck("sanity.b", "sanity", "B")])
    assert run.handle(plan) == "progress"
    assert plans == [[{"id": "sanity.a", "step": "sanity", "title": "A", "timeout": 5.0},
                      {"id": "sanity.b", "step": "sanity", "title": "B", "timeout": None}]]
    assert run.handle(Started("sanity.a")) == "progress" and run.current == "sanity.a" and starts == ["sanity.a"]
    assert run.limit("sanity.a") == 5.0 and run.limit("sanity.b") == 60.0 + supervisor.CHECK_TIMEOUT_SLACK
    finding = _finding()
    finding.check = "sanity.a"
    run.handle(FindingMessage(finding, budget_used=4.0))
    assert run.pending == ["sanity.b"] and run.current is None and run.request.budget_used == 4.0
    assert run.handle(Plan("p", [PlannedCheck("sanity.b", "sanity", "B")])) is None  # a restart's plan
    assert len(plans) == 1 and run.handle(Done()) == "done"


def test_project_failed_raises_project_error():
    with pytest.raises(ProjectError, match="target is missing"):
        _run().handle(ProjectFailed("target is missing"))


# --- the restart policy and its prose ---------------------------------------------------------------

def _planned(run, *ids):
    run.handle(Plan("p", [PlannedCheck(i, i.split(".")[0], i) for i in ids]))


def test_a_crash_errors_the_running_check_and_restarts_with_the_rest(tmp_path):
    run = _run()
    _planned(run, "sanity.a", "sanity.b", "sanity.c")
    run.handle(Started("sanity.a"))
    log = tmp_path / "worker.log"
    log.write_text("Segmentation fault\n")
    assert supervisor._carry_on(run, supervisor._Outcome("crashed", exit_code=-11), log)
    crashed = run.result.findings[-1]
    assert crashed.check == "sanity.a" and crashed.step == "sanity" and crashed.status == "error"
    assert crashed.title == "the check process died (exit code -11)" and "Segmentation fault" in crashed.detail
    assert run.request.checks == ["sanity.b", "sanity.c"] and run.request.steps is None


def test_a_hang_in_project_code_names_the_role_and_tells_the_next_worker(tmp_path):
    run = _run()
    _planned(run, "sanity.a", "sanity.b")
    run.handle(Started("sanity.a"))
    stack = 'Thread 0x1 (most recent call first):\n  File "/p/model.py", line 3 in build_model\n'
    assert supervisor._carry_on(run, supervisor._Outcome("timeout", stack=stack), tmp_path / "none.log")
    hung = run.result.findings[-1]
    assert hung.title == f"timed out after {60 + supervisor.CHECK_TIMEOUT_SLACK:.0f} s inside the project's build_model()"
    assert "later checks will not call it again" in hung.detail and "model.py" in hung.detail
    assert set(run.request.hung) == {"build"} and run.request.checks == ["sanity.b"]


def test_the_last_check_ending_badly_ends_the_run(tmp_path):
    run = _run()
    _planned(run, "sanity.a")
    assert not supervisor._carry_on(run, supervisor._Outcome("timeout"), tmp_path / "none.log")
    assert run.result.findings[-1].title == f"timed out after {60 + supervisor.CHECK_TIMEOUT_SLACK:.0f} s"
    assert not run.request.hung


def test_cancel_and_total_timeout(tmp_path):
    run = _run()
    _planned(run, "sanity.a", "sanity.b")
    assert not supervisor._carry_on(run, supervisor._Outcome("cancelled"), tmp_path / "x")
    assert run.result.cancelled and run.result.findings == []
    run = _run()
    run.options.total_timeout = 30
    _planned(run, "sanity.a", "sanity.b")
    assert not supervisor._carry_on(run, supervisor._Outcome("total_timeout"), tmp_path / "x")
    assert [(f.check, f.status) for f in run.result.findings] == [("sanity.a", "skipped"), ("sanity.b", "skipped")]
    assert run.result.findings[0].detail == "The whole run is limited to 30 s."


def test_a_clean_end_needs_no_restart(tmp_path):
    run = _run()
    assert not supervisor._carry_on(run, supervisor._Outcome("done"), tmp_path / "x")


# --- hung roles travel with the resolved function, not a process-wide table keyed by id() ---------

def test_a_hung_role_is_not_called_again(tmp_path):
    import types

    from mltriage.checks.project import usercode

    module = types.SimpleNamespace(build_model=lambda n_inputs, n_outputs: "built")
    config = types.SimpleNamespace(path=tmp_path / "mltriage.toml", root=tmp_path, model_code="model.py")
    fresh = usercode.resolve_function(config, module, "build", "build_model", hung={})
    assert usercode.call_user(config, "build_model", fresh, 1, 2) == "built"
    stuck = usercode.resolve_function(config, module, "build", "build_model", hung={"build": "in model.py, line 3"})
    with pytest.raises(usercode.UserCodeError, match="was not called: it hung") as caught:
        usercode.call_user(config, "build_model", stuck, 1, 2)
    assert caught.value.user_traceback == "in model.py, line 3"
    assert stuck.role == "build" and stuck.__name__ == "<lambda>"  # attributes pass through


# --- one run setup: the worker and the in-process path select and report the same ---------------

def test_worker_and_in_process_paths_agree(tmp_path, monkeypatch):
    import pandas as pd

    from helpers import ENGINE_PLUGIN, install_plugin, write_project
    from mltriage.checks.project.config import load_project

    install_plugin(tmp_path, monkeypatch, "zz_agree", ENGINE_PLUGIN)
    df = pd.DataFrame({"a": range(20), "label": [0, 1] * 10})
    config = load_project(write_project(tmp_path / "proj", df, valid_df=df))
    wanted = ["sanity.zz_skip", "sanity.zz_ok", "sanity.zz_raises", "sanity.zz_nonexistent", "sanity.zz_needs_test"]
    runs = {}
    for isolate in (True, False):
        plans = []
        result = supervisor.run_checks(config, supervisor.RunOptions(checks=wanted, isolate=isolate),
                                       on_plan=plans.append)
        runs[isolate] = (plans, [(f.check, f.status, f.title) for f in result.findings])
    assert runs[True] == runs[False]
    plans, findings = runs[True]
    assert [c["id"] for c in plans[0]] == [c for c in wanted if c != "sanity.zz_nonexistent"]  # order kept
