"""Named analyses (checks/engine/analysis.py): computed once per run and per argument, exceptions cached,
one computation when two threads ask at once, and an index of every declared analysis."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from mltriage.checks.engine.analysis import ANALYSES, analysis
from helpers import context_for, write_project

CALLS: list[tuple] = []


@analysis
def counted(ctx, split):
    CALLS.append(("counted", split))
    time.sleep(0.05)  # long enough that a second thread arrives while the first computes
    return len(ctx.splits[split])


@analysis
def broken(ctx):
    CALLS.append(("broken",))
    raise ValueError("bad input")


@pytest.fixture
def ctx(tmp_path):
    CALLS.clear()
    df = pd.DataFrame({"x": range(20), "label": [0, 1] * 10})
    write_project(tmp_path, df, df.iloc[:6])
    return context_for(tmp_path)


def test_computed_once_per_argument(ctx):
    assert counted(ctx, "train") == 20 and counted(ctx, "train") == 20
    assert counted(ctx, "valid") == 6
    assert CALLS == [("counted", "train"), ("counted", "valid")]


def test_a_new_run_computes_again(ctx, tmp_path):
    counted(ctx, "train")
    counted(context_for(tmp_path), "train")
    assert CALLS == [("counted", "train"), ("counted", "train")]


def test_exception_is_cached_and_raised_to_every_caller(ctx):
    for _ in range(2):
        with pytest.raises(ValueError, match="bad input"):
            broken(ctx)
    assert CALLS == [("broken",)]


def test_two_threads_share_one_computation(ctx):
    results = []
    threads = [threading.Thread(target=lambda: results.append(counted(ctx, "train"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [20, 20] and CALLS == [("counted", "train")]


def test_every_analysis_is_indexed_by_name():
    assert counted.analysis_name.endswith("test_analysis.counted")
    assert ANALYSES[counted.analysis_name] is counted and ANALYSES[broken.analysis_name] is broken
