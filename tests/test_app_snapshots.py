"""Snapshot tests of the app's screens (pytest-textual-snapshot) at 80x24 and 120x40.

Deterministic by construction: a fixed project copied into tmp and opened by a relative name, findings
from a fixed saved run (no live checks, so no timings), check titles not read from the registry (the
catalog ids are the contract; titles grow as checks are added), cursor blink off.
Regenerate after an intended change with `pytest tests/test_app_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from app_fixtures import write_fixed_run, write_tiny_project

from mltriage.tui.app import MltriageApp

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    project = write_tiny_project(tmp_path / "tiny")
    write_fixed_run(project)
    samples = tmp_path / "sample_projects"
    write_tiny_project(samples / "demo" / "buggy")
    write_tiny_project(samples / "demo" / "fixed")
    monkeypatch.setenv("MLTRIAGE_SAMPLES", str(samples))
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def app_for(project):
    return MltriageApp(project, cursor_blink=False, check_titles=False)


async def settle(pilot):
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_welcome_screen(workdir, snap_compare, size):
    assert snap_compare(app_for(None), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_with_findings(workdir, snap_compare, size):
    async def open_data_step(pilot):
        await pilot.press("3", "tab", "down", "down")  # data.split_overlap, a fail
        await settle(pilot)

    assert snap_compare(app_for("tiny"), terminal_size=size, run_before=open_data_step)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_finding_with_a_plot(workdir, snap_compare, size):
    async def open_lr_range(pilot):
        await pilot.press("5", "tab", "enter")  # training.lr_range: a log-x curve
        await settle(pilot)

    assert snap_compare(app_for("tiny"), terminal_size=size, run_before=open_lr_range)
