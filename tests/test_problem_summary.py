"""The problem step's 'What mltriage understood' box says where a tensor project's labels come from (it
showed an empty target before: tensor projects have no target column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltriage.checks.project.config import load_project
from mltriage.tui.widgets.problem_summary import problem_summary_text

SAMPLES = Path(__file__).resolve().parents[1] / "sample_projects"


def _target_line(project: Path) -> str:
    text = problem_summary_text(load_project(project), {}, confirmed=False).plain
    return next(line for line in text.splitlines() if line.strip().startswith("target"))


@pytest.mark.parametrize("sample", ["tokens/buggy", "images/fixed"])
def test_a_dataset_project_names_the_items_as_its_target(sample):
    line = _target_line(SAMPLES / sample)
    assert "y of each (x, y) item" in line and "(Dataset)" in line
    assert len(line) <= 46          # fits the box on an 80-column terminal


def test_a_table_project_shows_its_declared_target_column():
    cfg = load_project(SAMPLES / "tabular" / "fixed")
    assert _target_line(SAMPLES / "tabular" / "fixed").split()[1] == cfg.target
    assert "(declared)" in _target_line(SAMPLES / "tabular" / "fixed")


def _line(project: Path, key: str, findings=None) -> str:
    text = problem_summary_text(load_project(project), findings or {}, confirmed=False).plain
    return next(line for line in text.splitlines() if line.strip().startswith(key))


def test_unknown_classes_say_how_to_find_them_and_fit_the_box():
    line = _line(SAMPLES / "images" / "fixed", "classes")
    assert "?" in line and "run step 1" in line
    assert len(line) <= 46


def test_classes_found_in_train_are_listed():
    from mltriage.checks.findings import Finding

    balance = Finding(check="problem.class_balance", step="problem", status="pass", title="",
                      evidence={"counts": {"train": {"cat": 5, "dog": 7}}})
    line = _line(SAMPLES / "images" / "fixed", "classes", {"problem.class_balance": balance})
    assert "cat, dog" in line and "found in train" in line and "run step 1" not in line
