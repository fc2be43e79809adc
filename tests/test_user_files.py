"""Nothing the user owns is overwritten, re-permissioned or written through a link out of the project,
and nothing in a data file becomes configuration or reaches the terminal as a control sequence."""

from __future__ import annotations

import os
import stat
import tomllib
import warnings

import pandas as pd
import pytest
import torch

from mltriage.checks.io.report import printable, to_text
from mltriage.checks.io.state import UnsafeStatePath, atomic_write_text, save_run
from mltriage.checks.project.starter import write_starter


def test_write_goes_through_a_symlink_to_its_target(tmp_path):
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_existing_file_keeps_its_mode_and_new_file_honours_the_umask(tmp_path):
    shared = tmp_path / "report.md"
    shared.write_text("old")
    shared.chmod(0o664)
    atomic_write_text(shared, "new")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "fresh.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.md").stat().st_mode) == 0o644


def test_a_device_is_written_in_place_never_replaced():
    atomic_write_text(os.devnull, "nothing")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_folder_as_output_is_a_clear_error(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write_text(tmp_path, "x")


def test_state_is_not_written_through_a_linked_state_folder(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    outside.mkdir()
    (project / ".mltriage").symlink_to(outside)
    with pytest.raises(UnsafeStatePath, match="symbolic link"):
        save_run(project, {"findings": [], "started": 0})
    assert list(outside.iterdir()) == []
    twin = tmp_path / "twin"
    twin.mkdir()
    assert save_run(twin, {"findings": [], "started": 0}).is_relative_to(twin / ".mltriage" / "runs")


def test_monitor_refuses_a_linked_state_folder_without_raising(tmp_path, monkeypatch):
    from mltriage.monitor import Monitor

    (tmp_path / "mltriage.toml").write_text('[data]\ntrain = "t.csv"\ntarget = "y"\n')
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".mltriage").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    model = torch.nn.Linear(2, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon = Monitor(model, every=1)
        mon.step(model(torch.ones(1, 2)).sum())
    assert not mon.enabled and "symbolic link" in str(caught[0].message)
    assert list((tmp_path / "elsewhere").iterdir()) == []


HOSTILE = ['label"\n[model]\ncode = "evil.py"', "a]b", "x = 1", "tab\tand 'quote'", "ünïcødé ✓", "back\\slash",
           "[[slices]]", "# comment"]


@pytest.mark.parametrize("name", HOSTILE)
def test_init_keeps_a_hostile_column_name_a_string(tmp_path, name):
    df = pd.DataFrame({name: [0, 1] * 10, "other column": range(20)})
    df.to_parquet(tmp_path / "train.parquet")
    out = write_starter(tmp_path / "train.parquet", target=name, output=tmp_path / "mltriage.toml")
    parsed = tomllib.loads(out.read_text())
    assert parsed["data"]["target"] == name
    assert set(parsed) == {"project", "data", "budget"}, "data became a section of the project file"


def test_control_characters_from_data_never_reach_the_terminal():
    finding = {"check": "data.text_quality", "step": "data", "status": "warn",
               "title": "row says \x1b]0;pwned\x07 and \x1b[2J", "detail": "bidi \u202etxt.exe", "fix": "",
               "evidence": {}, "seconds": 0.0}
    run = {"mltriage": "0", "project": "p\x1b[31m", "findings": [finding], "summary": {"warn": 1}}
    text = to_text(run)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]0;pwned\\x07" in text


def test_plain_text_is_left_as_it_is():
    assert printable("Loss fell 12% — ünïcødé, tabs\tand\nnewlines") == "Loss fell 12% — ünïcødé, tabs\tand\nnewlines"


def test_damaged_saved_runs_are_passed_over_not_crashed_on(tmp_path):
    """Run files are data on disk: a truncated one is set aside, odd shapes are skipped, and the newest
    well-formed run is the one compared with."""
    import json

    from mltriage.checks.io.state import load_previous_run
    from mltriage.checks.steps.errors.regressions import _counts_ok, _summary_shape_ok

    runs = tmp_path / ".mltriage" / "runs"
    runs.mkdir(parents=True)
    good = {"findings": [{"check": "metrics.summary", "evidence": {"splits": {"valid": {"metrics": {"f1": 0.9}}}}}]}
    (runs / "20260101T000000.json").write_text(json.dumps(good))
    (runs / "20260102T000000.json").write_text('{"findings": "nope"}')
    (runs / "20260103T000000.json").write_text("[1, 2]")
    (runs / "20260104T000000.json").write_text('{"findings": [{"check": "metrics.summary", "evid')
    assert load_previous_run(tmp_path) == good
    assert any(p.name.startswith("20260104T000000.json.damaged") for p in runs.iterdir())
    assert _summary_shape_ok(good["findings"][0]["evidence"])
    for bad in ("x", {"splits": "x"}, {"splits": {"valid": 3}}, {"splits": {"valid": {"metrics": []}}},
                {"splits": {"valid": {"metrics": {}}}, "per_class": {"valid": "x"}}):
        assert not _summary_shape_ok(bad)
    assert _counts_ok({"support": 10, "correct": 7})
    assert not any(_counts_ok(r) for r in (None, "x", {"support": 0, "correct": 0}, {"support": "10", "correct": 1},
                                           {"support": 10, "correct": True}))
