"""The input batch shown in the app (InputExamples, the finding screen) and in the HTML report.

Evidence is synthetic but real: PNGs made with PIL from scikit-learn's bundled digits, coloured per
example, in the shape `sanity.input_batch` writes (DESIGN §6). Images are drawn with half-blocks here:
graphics protocols (kitty, sixel) need a real terminal and cannot be snapshot.
"""

from __future__ import annotations

import base64
import io
import sys

import numpy as np
from PIL import Image
from textual.app import App, ComposeResult
from textual.widgets import Static

from mltriage.checks.findings import Finding
from mltriage.checks.io.input_examples import padding_run, png_base64, shows_input_examples
from mltriage.checks.io.report import to_html
from mltriage.tui.screens.finding import FindingScreen
from mltriage.tui.styles import APP_CSS
from mltriage.tui.widgets.input_examples import (ImageGrid, ImageTile, InputExamples, decode_png, fit_pixels,
                                                 half_block_text, ids_text)

from app_fixtures import pilot_test

COLOURS = [(255, 80, 80), (80, 255, 80), (80, 140, 255), (255, 220, 60), (220, 80, 255), (60, 230, 230),
           (255, 255, 255), (255, 150, 40)]




def png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def digit_examples(n: int = 8) -> list[dict]:
    """n digits (8x8, 0-16) as 32x32 RGB PNGs in a colour each; every third one mispredicted."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    examples = []
    for i in range(n):
        rgb = (digits.images[i][..., None] / 16.0 * np.array(COLOURS[i % len(COLOURS)])).astype(np.uint8)
        image = Image.fromarray(rgb, "RGB").resize((32, 32), Image.Resampling.NEAREST)
        label = int(digits.target[i])
        examples.append({"index": 7 * i, "label": str(label), "prediction": str((label + (i % 3 == 0)) % 10),
                         "png": png_b64(image), "text": None, "ids": None})
    return examples


def image_evidence(examples: list[dict] | None = None) -> dict:
    return {"modality": "images", "batch_size": 64,
            "inputs": [{"name": "x", "shape": [64, 3, 32, 32], "dtype": "float32",
                        "min": -1.0, "max": 1.0, "mean": 0.01, "std": 0.5}],
            "target": {"shape": [64], "dtype": "int64"},
            "examples": digit_examples() if examples is None else examples}


def token_evidence() -> dict:
    return {"modality": "tokens", "batch_size": 32,
            "inputs": [{"name": "input_ids", "shape": [32, 40], "dtype": "int64", "min": 0, "max": 998,
                        "mean": 120.5, "std": 210.0}],
            "target": {"shape": [32], "dtype": "int64"},
            "examples": [{"index": 3, "label": "positive", "prediction": None,
                          "text": "a quietly moving film about [bold]friendship[/bold] " + "and more " * 30,
                          "png": None, "ids": [12, 5, 99, 0, 0]},
                         {"index": 4, "label": "negative", "prediction": "positive", "png": None, "text": None,
                          "ids": [7, 8, 9] + [0] * 37}]}


class Host(App):
    def __init__(self, evidence, **kwargs) -> None:
        super().__init__()
        self.evidence = evidence
        self.kwargs = kwargs

    def compose(self) -> ComposeResult:
        yield InputExamples(self.evidence, graphics=False, **self.kwargs)


def screen_text(app: App) -> str:
    """What each Static of the screen draws, line by line as the terminal shows it (glyphs, not markup)."""
    return "\n".join(w.render_line(y).text for w in app.screen.query(Static) for y in range(w.size.height))


# ---------------------------------------------------------------- pure pieces


def test_half_block_text_uses_top_and_bottom_pixel_colours():
    image = Image.new("RGB", (2, 2))
    image.putpixel((0, 0), (255, 0, 0))
    image.putpixel((0, 1), (0, 0, 255))
    image.putpixel((1, 0), (0, 255, 0))
    image.putpixel((1, 1), (255, 255, 255))
    text = half_block_text(image, cells=2, rows=1)
    assert text.plain == "▀▀"
    styles = [str(span.style) for span in text.spans]
    assert styles == ["#ff0000 on #0000ff", "#00ff00 on #ffffff"]


def test_a_32px_image_becomes_16_cells_by_8_rows():
    image = Image.new("RGB", (32, 32), (10, 20, 30))
    lines = half_block_text(image).plain.split("\n")
    assert len(lines) == 8 and all(line == "▀" * 16 for line in lines)
    assert fit_pixels((64, 32)) == (16, 8)  # wide images keep their aspect: 16 cells x 4 rows


def test_decode_png_notes_missing_and_broken_data():
    assert decode_png(None)[0] is None and "missing" in decode_png(None)[1]
    assert decode_png("not base64 at all!")[0] is None
    # valid base64, PNG magic, then garbage: PIL cannot read it
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()
    image, note = decode_png(broken)
    assert image is None and note == "PNG unreadable"
    image, note = decode_png(digit_examples(1)[0]["png"])
    assert image is not None and image.size == (32, 32) and note == ""


def test_padding_is_the_trailing_run_of_the_last_id():
    assert padding_run([12, 5, 99, 0, 0]) == 2
    assert padding_run([1, 2, 3]) == 0  # a single last id is a token, not padding
    assert padding_run([0, 0, 0]) == 3
    text = ids_text([12, 5, 99, 0, 0])
    assert text.plain == "12 5 99 0×2"
    dim = [text.plain[s.start:s.end] for s in text.spans if "dim" in str(s.style)]
    assert dim == ["0×2"]


def test_png_base64_rejects_what_could_break_out_of_an_attribute():
    good = digit_examples(1)[0]["png"]
    assert png_base64(good) == good
    assert png_base64('"><script>alert(1)</script>') is None
    assert png_base64(base64.b64encode(b"GIF89a....").decode()) is None


def test_which_findings_show_examples():
    assert shows_input_examples("sanity.input_batch", {"modality": "tensor"})
    assert shows_input_examples("errors.confident_mistakes", {"examples": [{"png": "x"}]})
    assert not shows_input_examples("errors.confident_mistakes", {"examples": [{"row": 3}]})
    assert not shows_input_examples("data.duplicates", {"rows": 3})


def test_a_graphics_protocol_is_used_only_when_detected_before_the_app(monkeypatch):
    """textual-image is never imported from here (its import queries the terminal); when the app's start-up
    imported it and it found kitty/sixel, its widget is used, else our half-blocks."""
    import types

    from mltriage.tui.widgets.input_examples import graphics_image_class

    class TGP: ...
    class Sixel: ...
    class Halfcell: ...
    class Widget: ...
    renderable = types.SimpleNamespace(Image=Halfcell, TGPImage=TGP, SixelImage=Sixel)
    widget = types.SimpleNamespace(Image=Widget)
    monkeypatch.delenv("MLTRIAGE_IMAGES", raising=False)
    monkeypatch.delitem(sys.modules, "textual_image.renderable", raising=False)
    assert graphics_image_class() is None  # never imported: half-blocks
    monkeypatch.setitem(sys.modules, "textual_image.renderable", renderable)
    monkeypatch.setitem(sys.modules, "textual_image.widget", widget)
    assert graphics_image_class() is None  # imported, no protocol (tmux, most SSH terminals)
    renderable.Image = TGP
    assert graphics_image_class() is Widget
    monkeypatch.setenv("MLTRIAGE_IMAGES", "blocks")
    assert graphics_image_class() is None


# ---------------------------------------------------------------- the widget


@pilot_test
async def test_images_are_drawn_with_labels_and_predictions():
    app = Host(image_evidence())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tiles = list(app.query(ImageTile))
        assert len(tiles) == 8
        text = screen_text(app)
        assert "▀" * 16 in text
        assert "label 0" in text and "pred 1" in text and "label 7" in text
        assert "64×3×32×32" in text and "float32" in text
        grid = app.query_one(ImageGrid)
        assert grid.styles.grid_size_columns == 4  # 4 tiles of 16 + gutters in 80 columns
        # the first row of tiles shares the same y: the grid wraps, it does not stack
        assert len({t.region.y for t in tiles[:4]}) == 1 and tiles[4].region.y > tiles[0].region.y


@pilot_test
async def test_the_grid_wraps_to_a_narrow_terminal():
    app = Host(image_evidence())
    async with app.run_test(size=(40, 24)) as pilot:
        await pilot.pause()
        assert app.query_one(ImageGrid).styles.grid_size_columns == 2


@pilot_test
async def test_broken_evidence_shows_a_note_not_a_crash():
    examples = digit_examples(3)
    examples[0]["png"] = "%%%not-base64%%%"
    del examples[1]["png"]
    examples.append("not a dict")
    app = Host(image_evidence(examples))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "not a base64 PNG" in text and "png missing" in text and "not an example" in text
        assert "▀" * 16 in text  # the one good example still draws
    for evidence in (None, [], {"modality": "images"}, {"examples": "nope", "inputs": [3, {"shape": "x"}]}):
        app = Host(evidence)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.query(Static)  # a note, no exception


@pilot_test
async def test_tokens_show_decoded_text_else_ids_one_line_each():
    app = Host(token_evidence())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = list(app.query(".token-line"))
        assert len(lines) == 2
        first, second = (str(w.render()) for w in lines)
        assert "a quietly moving film about [bold]friendship[/bold]" in first  # markup shown literally
        assert "label positive" in first and "pred" not in first
        assert "7 8 9 0×37" in second and "pred positive" in second
        # one terminal line each, the long text cut with an ellipsis
        assert all(w.region.height == 1 for w in lines)
        assert lines[0].render_line(0).text.rstrip().endswith("…")


# ---------------------------------------------------------------- the finding screen


def input_batch_finding() -> Finding:
    return Finding(status="info", title="Input batch: 64 images 3x32x32, float32 in [-1, 1]",
                   detail="The batch exactly as the model receives it.", evidence=image_evidence(),
                   check="sanity.input_batch", step="sanity")


class FindingHost(App):
    CSS = APP_CSS

    def on_mount(self) -> None:
        self.push_screen(FindingScreen("sanity.input_batch", input_batch_finding()))


@pilot_test
async def test_the_finding_screen_mounts_the_examples_and_hides_base64():
    app = FindingHost()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#input-examples", InputExamples)
        text = str(app.screen.query_one("#finding-text").render())
        assert "What was measured" in text
        # the widget shows these; the PNGs are drawn, never dumped as base64
        assert "Evidence" not in text and "examples" not in text and "iVBOR" not in text
        assert app.screen.query_one(ImageGrid).styles.grid_size_columns == 4


def test_snapshot_input_batch_finding_at_80x24(snap_compare, monkeypatch):
    monkeypatch.setenv("MLTRIAGE_IMAGES", "blocks")

    async def scroll_to_images(pilot):
        await pilot.pause()
        await pilot.press("down", "down", "down", "down", "down", "down", "down", "down")
        await pilot.pause()

    assert snap_compare(FindingHost(), terminal_size=(80, 24), run_before=scroll_to_images)


# ---------------------------------------------------------------- the HTML report


def run_with(findings: list[Finding]) -> dict:
    return {"project": "demo", "summary": {"fail": 0, "warn": 0, "pass": 0, "info": len(findings),
                                           "error": 0, "skipped": 0},
            "findings": [f.to_dict() for f in findings]}


def test_html_report_shows_images_inputs_and_escapes_labels():
    examples = digit_examples(4)
    examples[0]["label"] = "<script>alert(1)</script>"
    examples[1]["png"] = '"><img src=x onerror=alert(1)>'
    finding = input_batch_finding()
    finding.evidence = image_evidence(examples)
    page = to_html(run_with([finding]))
    assert page.count('<img src="data:image/png;base64,iVBOR') == 3
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror" not in page  # data that is not base64 PNG is never echoed into the page
    assert "image not readable" in page
    assert "64×3×32×32" in page and "float32" in page and "pred 1" in page


def test_html_report_shows_token_text_escaped_and_padding():
    evidence = token_evidence()
    evidence["examples"][0]["text"] = "<b>bold</b> & more"
    finding = Finding(status="info", title="Input batch: 32 sequences", evidence=evidence,
                      check="sanity.input_batch", step="sanity")
    page = to_html(run_with([finding]))
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert "<span class='pad'>" + " ".join(["0"] * 37) + "</span>" in page


def test_html_report_without_examples_is_unchanged():
    plain = Finding(status="pass", title="no duplicates", evidence={"rows": 3}, check="data.duplicates",
                    step="data")
    assert "input-batch" not in to_html(run_with([plain]))
