"""The single widgets that replaced Textual composites on the main screen (issue 17, start-up): the footer
that recomposes once per change, the run's progress line and the step guide. Each must behave as the
composite did: the same keys, the same line, the same folding."""

from __future__ import annotations

import pytest
from app_fixtures import pilot_test, write_tiny_project
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from mltriage.tui.app import MltriageApp
from mltriage.tui.widgets.key_footer import KeyFooter
from mltriage.tui.widgets.run_progress import BAR_WIDTH, RunProgress
from mltriage.tui.widgets.step_guide import StepGuide

SIZE = (80, 24)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_HOME", str(tmp_path / "home"))
    return write_tiny_project(tmp_path / "tiny")


def make_app(project) -> MltriageApp:
    return MltriageApp(project, cursor_blink=False, check_titles=False)


def line_text(widget) -> str:
    """The widget's content as the terminal shows it, one string per line."""
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset)).rstrip()


@pilot_test
async def test_footer_shows_the_screens_keys_as_textual_footer_would(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        assert isinstance(footer, Footer)
        keys = list(footer.query(FooterKey))
        shown = {b.key for _, b, _, _ in app.screen.active_bindings.values() if b.show}
        assert {k.key for k in keys if not k.has_class("-command-palette")} == shown
        # keys bound to the footer's style are not compact; the palette key keeps its own compact look
        assert all(not k.compact and not k.has_class("-compact") for k in keys if not k.has_class("-command-palette"))
        palette = [k for k in keys if k.has_class("-command-palette")]
        assert palette and palette[0].compact and palette[0].has_class("-compact")


@pilot_test
async def test_footer_joins_requests_that_arrive_before_it_recomposes(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        composed = []
        compose = footer.compose
        footer.compose = lambda: (composed.append(1), (yield from compose()))[1]
        for _ in range(5):
            app.screen.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert len(composed) == 1
        assert footer.query(FooterKey)  # and the keys are back


@pilot_test
async def test_progress_line_draws_label_bar_and_percentage(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        progress = app.screen.query_one(RunProgress)
        assert not progress.display or progress.region.height == 0  # hidden until a run starts
        progress.starting(["data"])
        await pilot.pause()
        text = line_text(progress)
        assert "starting data" in text and text.endswith("--%")
        progress.planned(4)
        progress.running("data.duplicates", 1, 4)
        progress.advanced(1)
        await pilot.pause()
        text = line_text(progress)
        assert "running data.duplicates  1/4" in text and text.endswith("25%")
        assert text.count("━") == BAR_WIDTH // 4  # the done quarter of the bar is drawn
        progress.advanced(4)
        await pilot.pause()
        text = line_text(progress)
        assert text.endswith("100%") and text.count("━") == BAR_WIDTH
        progress.stopped()
        await pilot.pause()
        assert not progress.has_class("running")


@pilot_test
async def test_step_guide_folds_with_g_and_a_click_on_its_title(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        guide = app.screen.query_one(StepGuide)
        assert not guide.collapsed  # a step not run yet opens its guidance
        assert "▼ About this step (g)" in line_text(guide) and "Look at:" in line_text(guide)
        await pilot.press("g")
        await pilot.pause()
        assert guide.collapsed and line_text(guide).strip() == "▶ About this step (g)"
        await pilot.click(StepGuide, offset=(3, 0))
        await pilot.pause()
        assert not guide.collapsed and "Common mistakes:" in line_text(guide)
        await pilot.click(StepGuide, offset=(3, 2))  # a click on the text does not fold it
        await pilot.pause()
        assert not guide.collapsed
