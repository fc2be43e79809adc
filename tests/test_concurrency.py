"""Checks that run ahead on a thread pool, prefetching, and ctx.shared under threads (checks/engine.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from helpers import ENGINE_PLUGIN, GOOD_TORCH_MODEL, install_plugin, write_project
from mltriage.checks.engine.context import RunContext
from mltriage.checks.engine.run import run_specs
from mltriage.checks.project.config import load_project
from mltriage.checks.engine.registry import all_checks, checks_for
from mltriage.checks.engine.supervisor import RunOptions, run_checks

EXTRA_CHECKS = '''

CALLS = {"prefetch": 0}


def slow_analysis(ctx):
    def compute():
        CALLS["prefetch"] += 1
        time.sleep(0.2)
        raise ValueError("the shared analysis broke")
    return ctx.shared("zz:broken", compute)


@check("data.zz_thread", title="where am I")
def where(ctx):
    import threading
    return passed("ran", evidence={"thread": threading.current_thread().name})


@check("data.zz_prefetch_broken", prefetch=slow_analysis)
def uses_broken(ctx):
    slow_analysis(ctx)
    return passed("unreachable")
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    # the engine tests' misbehaving checks, moved to the data step (which may run on the pool)
    install_plugin(tmp_path, monkeypatch, "zz_concurrency", ENGINE_PLUGIN.replace('"sanity.', '"data.') + EXTRA_CHECKS)
    return tmp_path


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.integers(0, 5, n),
                       "colour": rng.choice(["red", "green", "blue"], n),
                       "review": [f"review number {i % 150} is fine and long enough to be free text" for i in range(n)]})
    df["label"] = (df["x"] + rng.normal(0, 0.5, n) > 0).astype(int)
    df.loc[::17, "x"] = np.nan
    return pd.concat([df, df.iloc[:20]], ignore_index=True)  # some duplicates


def _strip(findings):
    return [{k: v for k, v in f.to_dict().items() if k != "seconds"} for f in findings]


def test_run_ahead_reports_in_order_and_matches_one_at_a_time(tmp_path):
    root = write_project(tmp_path / "p", _table(), _table(seed=1).iloc[:150], text=["review"])
    specs = checks_for(["problem", "data"])
    runs = {}
    for concurrency in (1, 2):
        ctx = RunContext(load_project(root))
        ctx.prepare()
        started = []
        runs[concurrency] = run_specs(specs, ctx, on_start=lambda s: started.append(s.id), concurrency=concurrency)
        assert started == [s.id for s in specs]
        assert [f.check for f in runs[concurrency]] == [s.id for s in specs]
    assert _strip(runs[1]) == _strip(runs[2])
    assert {f.status for f in runs[2]} <= {"pass", "info", "warn", "fail", "skipped"}


def test_checks_run_on_the_pool_only_without_project_code(plugin):
    spec = [all_checks()["data.zz_thread"]]
    plain = write_project(plugin / "plain", _table(40), _table(40, seed=1))
    ctx = RunContext(load_project(plain))
    ctx.prepare()
    assert run_specs(spec, ctx, concurrency=2)[0].evidence["thread"].startswith("mltriage-check")
    with_code = write_project(plugin / "code", _table(40).drop(columns=["colour", "review"]),
                              _table(40, seed=1).drop(columns=["colour", "review"]), model_code=GOOD_TORCH_MODEL,
                              toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"\n')
    ctx = RunContext(load_project(with_code))
    ctx.prepare()
    assert run_specs(spec, ctx, concurrency=2)[0].evidence["thread"] == "MainThread"


def test_a_failing_prefetch_is_reported_by_its_check_and_computed_once(plugin):
    import zz_concurrency

    root = write_project(plugin / "p", _table(40), _table(40, seed=1))
    ctx = RunContext(load_project(root))
    ctx.prepare()
    finding = run_specs([all_checks()["data.zz_prefetch_broken"]], ctx, concurrency=2)[0]
    assert finding.status == "error" and "the shared analysis broke" in finding.title
    assert zz_concurrency.CALLS["prefetch"] == 1


def test_a_hanging_check_on_the_pool_is_stopped_and_the_run_goes_on(plugin):
    root = write_project(plugin / "p", _table(40), _table(40, seed=1))
    t0 = time.monotonic()
    result = run_checks(load_project(root), RunOptions(checks=["data.zz_thread", "data.zz_hang", "data.zz_after"]))
    by_id = {f.check: f for f in result.findings}
    assert [f.check for f in result.findings] == ["data.zz_thread", "data.zz_hang", "data.zz_after"]
    assert by_id["data.zz_thread"].evidence["thread"].startswith("mltriage-check")  # the worker runs ahead
    assert by_id["data.zz_hang"].status == "error" and "timed out" in by_id["data.zz_hang"].title
    assert by_id["data.zz_after"].status == "pass"
    assert time.monotonic() - t0 < 30


def test_shared_computes_once_when_threads_ask_together(tmp_path):
    root = write_project(tmp_path / "p", _table(40), _table(40, seed=1))
    ctx = RunContext(load_project(root))
    calls, results = [], []

    def compute():
        calls.append(1)
        time.sleep(0.1)
        return object()

    threads = [threading.Thread(target=lambda: results.append(ctx.shared("k", compute))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


def test_plugin_checks_do_not_outlive_their_test():
    # runs after the tests above, in file order: their checks (one ends the process) must be gone
    assert not [s.id for s in checks_for(["problem", "data", "sanity"]) if ".zz_" in s.id]


def test_warm_up_skips_imports_of_checks_that_will_be_skipped(tmp_path, monkeypatch):
    import importlib

    from mltriage.checks.engine import run as engine

    imported = []
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name))
    df = _table(60).assign(label=lambda d: d["x"].fillna(0) * 2.0)  # a regression target
    ctx = RunContext(load_project(write_project(tmp_path / "p", df, df)))
    ctx.prepare()
    specs = checks_for(["data"])
    engine.warm_up(specs, ctx)
    assert "cleanlab.filter" not in imported  # data.label_issues needs a classification task
    assert "scipy.stats" in imported  # data.drift runs
