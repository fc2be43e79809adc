"""The tour's bug hunts: exercises from the samples, scoring of marks, the answer key with diffs, progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_fixtures import pilot_test, write_fixed_run, write_tiny_project

from mltriage.tui.hunt import Bug, TourState, bug_diff, exercises, score

BUGS_TOML = '''
[[bug]]
check = "data.split_overlap"
also = ["data.duplicates"]
summary = "valid rows copied from train"
where = "data/valid.csv"
explain = "Copies inflate the validation score."
fix = "Deduplicate across splits."

[[bug]]
check = "training.lr_range"
summary = "learning rate far too high"
where = "mltriage.toml: [project] name"
explain = "The loss jumps around."
fix = "Use a learning rate near 1e-3."

[[bug]]
check = "sanity.train_step"
summary = "no zero_grad"
where = "model.py: train_step"
'''




@pytest.fixture
def samples(tmp_path, monkeypatch):
    root = tmp_path / "sample_projects"
    buggy = write_tiny_project(root / "demo" / "buggy")
    fixed = write_tiny_project(root / "demo" / "fixed")
    (buggy / "bugs.toml").write_text(BUGS_TOML)
    (buggy / "README.md").write_text("# demo — a tiny classifier\n\nThe story.\n")
    (fixed / "mltriage.toml").write_text((fixed / "mltriage.toml").read_text().replace('"tiny"', '"tiny-fixed"'))
    (buggy / "model.py").write_text("def other():\n    return 1\n\n\ndef train_step(m, o, l, x, y):\n"
                                    "    loss = l(m(x), y)\n    loss.backward()\n")
    (fixed / "model.py").write_text("def other():\n    return 2\n\n\ndef train_step(m, o, l, x, y):\n"
                                    "    o.zero_grad()\n    loss = l(m(x), y)\n    loss.backward()\n")
    (root / "README.md").write_text("| project | story | difficulty |\n|---|---|---|\n"
                                    "| [`demo`](demo/) | A tiny classifier that will not learn. | easy |\n\n"
                                    "- **demo**: `data.split_overlap` (spoiler)\n")
    monkeypatch.setenv("MLTRIAGE_SAMPLES", str(root))
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    write_fixed_run(buggy)
    return root


def test_exercises_read_story_and_difficulty_from_the_index_table(samples):
    (exercise,) = exercises()
    assert exercise.name == "demo" and exercise.buggy == samples / "demo" / "buggy"
    assert exercise.story == "A tiny classifier that will not learn."  # the table, never the spoiler list
    assert exercise.difficulty == "easy" and len(exercise.bugs) == 3


def test_score_counts_check_and_also_ids_and_false_suspicions():
    bugs = [Bug("data.split_overlap", "copies", also=["data.duplicates"]), Bug("training.lr_range", "lr"),
            Bug("sanity.train_step", "zero_grad")]
    result = score(bugs, {"data.duplicates", "training.lr_range", "metrics.summary"})
    assert [(b.check, hits) for b, hits in result.found] == [("data.split_overlap", ["data.duplicates"]),
                                                             ("training.lr_range", ["training.lr_range"])]
    assert [b.check for b in result.missed] == ["sanity.train_step"]
    assert result.false_marks == ["metrics.summary"]
    assert result.summary == "found 2 of 3 planted bugs, 1 false suspicion"
    assert score(bugs, set()).summary == "found 0 of 3 planted bugs, 0 false suspicions"


def test_bug_diff_shows_only_the_named_function(samples):
    (exercise,) = exercises()
    diff = bug_diff(exercise, exercise.bugs[2])
    assert "+    o.zero_grad()" in diff
    assert "return 2" not in diff  # the change in other() belongs to no bug named here
    toml_diff = bug_diff(exercise, exercise.bugs[1])
    assert '-name = "tiny"' in toml_diff and '+name = "tiny-fixed"' in toml_diff


@pilot_test
async def test_bug_hunt_marks_reveals_and_saves_progress(samples, tmp_path):
    from mltriage.tui.app import MainScreen
    from mltriage.tui.tour import RevealScreen, TourApp, TourScreen

    app = TourApp(cursor_blink=False, check_titles=False)
    async with app.run_test(size=(100, 34)) as pilot:
        assert isinstance(app.screen, TourScreen)
        await pilot.press("enter")
        await pilot.pause()
        main = app.screen
        assert isinstance(main, MainScreen) and main.hunt is not None
        # data.split_overlap (a planted bug) and data.outliers (not one)
        await pilot.press("3", "tab", "down", "down", "b")
        await pilot.press(*"dedupe valid", "enter")
        await pilot.press("down", "down", "down", "down", "down", "b")
        assert main.selected_check() == "data.outliers"
        await pilot.press(*"clip a", "enter")
        assert main.hunt.progress.marks == {"data.split_overlap": "dedupe valid", "data.outliers": "clip a"}
        rows = [str(o.prompt) for o in main.query_one("#checks").options]
        assert sum("[bug]" in r for r in rows) == 2
        # a check without a finding cannot be marked
        await pilot.press("up", "b")
        assert "data.feature_scale" not in main.hunt.progress.marks
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, RevealScreen)
        text = str(app.screen.query_one("#reveal-text").render())
        assert "found 1 of 3 planted bugs, 1 false suspicion" in text.lower()
        assert "Missed (2)" in text and "data.outliers" in text and "+    o.zero_grad()" in text
        await pilot.press("escape", "t")
        await pilot.pause()
        assert isinstance(app.screen, TourScreen)
        assert "found 1 of 3" in str(app.screen.query_one("#exercises").get_option_at_index(0).prompt)
    saved = json.loads((tmp_path / "home" / "tour.json").read_text())["exercises"]["demo"]
    assert saved["revealed"] and saved["marks"]["data.split_overlap"] == "dedupe valid"
    assert TourState().get("demo").marks == saved["marks"]
    # Nothing was written into the sample folders except their own .mltriage/.
    written = {p.relative_to(samples).parts[:3] for p in samples.rglob("*") if p.is_file()}
    assert all(".mltriage" in parts or parts[-1] in ("README.md",) or len(parts) < 3 or parts[2] in
               ("data", "mltriage.toml", "model.py", "bugs.toml", "README.md") for parts in written)


def test_tour_list_prints_exercises(samples, capsys):
    from mltriage.tui.tour import run_tour

    assert run_tour(list_only=True) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "easy" in out and "3 bugs" in out and "A tiny classifier" in out
    assert "spoiler" not in out
