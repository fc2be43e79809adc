"""The model's input batch as the finding screen shows it (`sanity.input_batch`'s evidence, DESIGN §6):
a table of the input tensors, then the examples — images drawn in the terminal with their label and
prediction under each, in a grid that wraps to the width; token sequences one line each.

Images are drawn with half-blocks by default: each cell is "▀" with the top pixel as foreground and the
bottom pixel as background, so it reads in any 24-bit or 256-colour terminal, over SSH and in tmux, and
in snapshot tests. A graphics protocol (kitty, sixel) is used only when `prepare_terminal_graphics()`
ran before the app started: textual-image asks the terminal what it supports by writing a query and
reading the answer from stdin, which cannot be done once Textual owns stdin.

Every string shown comes from the user's data (labels, decoded text): it is put in rich Text, never
parsed as markup, and control characters are escaped (plain()).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import sys
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widgets import Static

from mltriage.checks.io.input_examples import (INPUT_EXAMPLE_FIELDS, input_table_rows, padding_run, png_base64,
                                       shows_input_examples)

from ..plain import plain, plain_text

# 16 cells x 8 rows of half-blocks = 16x16 pixels, square on screen (a cell is about twice as tall as it
# is wide): a 32x32 input is averaged 2x2, and four tiles plus gutters fit the 74 columns the finding
# screen leaves at 80 (padding 2 each side, scrollbar).
TILE_CELLS = 16
TILE_ROWS = 8
TILE_GUTTER = 2
# Decoding a PNG whose header claims a huge size would stall the app; thumbnails are at most 64x64.
MAX_IMAGE_SIDE = 1024
EXAMPLES_SHOWN = 32  # 8 rows of 4 tiles, about 90 lines: enough to spot a wrong batch, short to scroll
# The evidence keys the widget shows; the finding's text lists only the others.
DRAWN_KEYS = ("modality", "batch_size", "inputs", "target", "examples")


def wants_input_examples(check: str, evidence: Any) -> bool:
    """The finding screen mounts InputExamples for this finding (the input batch, or any drawable examples)."""
    return shows_input_examples(check, evidence)


def decode_png(value: Any) -> tuple[Any, str]:
    """(PIL RGB image, "") from a base64 PNG string, or (None, why not in a tile's width: 16 characters)."""
    if value is None:
        return None, "png missing"
    data = png_base64(value)
    if data is None:
        return None, "not a base64 PNG"
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        if max(image.size) > MAX_IMAGE_SIDE:
            return None, f"too large {image.size[0]}x{image.size[1]}"
        return image.convert("RGB"), ""
    except (UnidentifiedImageError, OSError, ValueError, binascii.Error, Image.DecompressionBombError):
        return None, "PNG unreadable"


def fit_pixels(size: tuple[int, int], cells: int = TILE_CELLS, rows: int = TILE_ROWS) -> tuple[int, int]:
    """The pixel size (w, h) that keeps the aspect ratio inside cells x (2 * rows) pixels."""
    width, height = max(1, size[0]), max(1, size[1])
    scale = min(cells / width, 2 * rows / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def half_block_text(image, cells: int = TILE_CELLS, rows: int = TILE_ROWS) -> Text:
    """The image as rows of "▀": foreground the upper pixel, background the lower one (as rich-pixels)."""
    from PIL import Image

    width, height = fit_pixels(image.size, cells, rows)
    # Shrinking averages each block of pixels (BOX: no ringing on small digits); enlarging a tiny image
    # repeats pixels (NEAREST) so an 8x8 digit stays crisp instead of blurred.
    smaller = width <= image.size[0]
    resample = Image.Resampling.BOX if smaller else Image.Resampling.NEAREST
    pixels = image.convert("RGB").resize((width, height + height % 2), resample).load()
    text = Text(no_wrap=True, end="")
    for y in range(0, height + height % 2, 2):
        for x in range(width):
            text.append("▀", style=f"{_hex(pixels[x, y])} on {_hex(pixels[x, y + 1])}")
        if y + 2 < height:
            text.append("\n")
    return text


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def caption_lines(example: dict) -> list[Text]:
    """'label 3' and, after a run, 'pred 8' (green when it matches the label, red when not)."""
    label = plain(example.get("label"))
    lines = [Text.assemble(("label ", "dim"), (label, "bold"))]
    prediction = example.get("prediction")
    if prediction is not None:
        pred = plain(prediction)
        lines.append(Text.assemble(("pred ", "dim"), (pred, "green" if pred == label else "red")))
    return lines


def ids_text(ids: list) -> Text:
    """The ids separated by spaces; the trailing run of padding (the last id repeated) dimmed and counted."""
    pad = padding_run(ids)
    body = ids[:len(ids) - pad] if pad else ids
    text = Text(" ".join(plain(i) for i in body))
    if pad:
        text.append(" " if body else "")
        text.append(f"{plain(ids[-1])}×{pad}", style="dim")
    return text


def token_line(example: Any) -> Text:
    """One example of a token batch on one line: caption, then the decoded text, else the ids."""
    if not isinstance(example, dict):
        return Text("an example that is not an object", style="dim italic")
    line = Text(f"#{plain(example.get('index', '?'))} ", style="dim")
    for part in caption_lines(example):
        line.append_text(part)
        line.append(" ")
    line.append("│ ", style="dim")
    if isinstance(example.get("text"), str):
        line.append_text(plain_text(example["text"]))
    elif isinstance(example.get("ids"), list):
        line.append_text(ids_text(example["ids"]))
    else:
        line.append("no decoded text or ids in the evidence", style="dim italic")
    return line


def inputs_table(evidence: dict) -> Table | None:
    """Name, shape, dtype, range, mean ± std of each input tensor, as measured on the batch."""
    rows = input_table_rows(evidence)
    if not rows:
        return None
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for column in ("input", "shape", "dtype", "range", "mean ± std"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(plain_text(cell) for cell in row))
    return table


def batch_header(evidence: dict) -> Text:
    """'Input batch: images, 64 per batch · target shape 64, int64' from what the evidence holds."""
    text = Text("Input batch", style="bold")
    modality, size = evidence.get("modality"), evidence.get("batch_size")
    if modality is not None:
        text.append(f": {plain(modality)}")
    if size is not None:
        text.append(f", {plain(size)} per batch")
    target = evidence.get("target")
    if isinstance(target, dict):
        shape = target.get("shape")
        shape_text = "×".join(plain(d) for d in shape) if isinstance(shape, list) else "?"
        text.append(f" · target shape {shape_text}, {plain(target.get('dtype', '?'))}", style="dim")
    return text


def graphics_image_class():
    """textual-image's widget when a graphics protocol was detected before the app started, else None."""
    if os.environ.get("MLTRIAGE_IMAGES", "").lower() == "blocks":
        return None
    renderable = sys.modules.get("textual_image.renderable")
    widget = sys.modules.get("textual_image.widget")
    if renderable is None or widget is None:
        return None  # never imported here: importing it inside a running app would query the terminal
    if renderable.Image not in (renderable.TGPImage, renderable.SixelImage):
        return None  # no protocol: our half-blocks (same look, testable)
    return widget.Image


def prepare_terminal_graphics() -> bool:
    """Call before App.run(): lets textual-image detect kitty/sixel support. True when one was found."""
    if not sys.__stdout__ or not sys.__stdout__.isatty() or os.environ.get("MLTRIAGE_IMAGES", "") == "blocks":
        return False
    try:
        import textual_image.widget  # noqa: F401  (the import itself queries the terminal, once)
    except Exception:  # noqa: BLE001  (third-party terminal I/O at start-up: any failure means half-blocks)
        return False
    return graphics_image_class() is not None


class ImageTile(Vertical):
    """One example image with its caption; a one-line note instead when the image cannot be shown."""

    DEFAULT_CSS = f"""
    ImageTile {{ width: {TILE_CELLS}; height: auto; }}
    ImageTile .tile-image {{ width: {TILE_CELLS}; height: auto; }}
    ImageTile .tile-note {{ color: $warning; text-style: italic; text-wrap: nowrap; text-overflow: ellipsis; }}
    ImageTile .tile-caption {{ width: {TILE_CELLS}; text-wrap: nowrap; text-overflow: ellipsis; }}
    """

    def __init__(self, example: dict, graphics=None) -> None:
        super().__init__(classes="image-tile")
        self.example = example
        self.graphics = graphics
        self.tooltip = f"example #{plain(example.get('index', '?'))}"

    def compose(self) -> ComposeResult:
        image, note = decode_png(self.example.get("png"))
        if image is None:
            yield Static(Text(note), classes="tile-note")
        elif self.graphics is not None:
            yield self.graphics(image, classes="tile-image")
        else:
            yield Static(half_block_text(image), classes="tile-image")
        for line in caption_lines(self.example):
            yield Static(line, classes="tile-caption")


class ImageGrid(Container):
    """Tiles in as many columns as the width holds (4 at 80 columns), rows wrapping below."""

    DEFAULT_CSS = f"""
    ImageGrid {{ layout: grid; grid-size: 4; grid-columns: {TILE_CELLS}; grid-rows: auto;
                 grid-gutter: 1 {TILE_GUTTER}; height: auto; margin: 1 0 0 0; }}
    """

    def on_resize(self) -> None:
        columns = max(1, (self.size.width + TILE_GUTTER) // (TILE_CELLS + TILE_GUTTER))
        if self.styles.grid_size_columns != columns:
            self.styles.grid_size_columns = columns


class InputExamples(Vertical):
    """The input batch of a finding's evidence: inputs table, then images or token lines.

    `graphics`: None picks a graphics protocol when one was detected (prepare_terminal_graphics), False
    always draws half-blocks (snapshot tests, or MLTRIAGE_IMAGES=blocks)."""

    DEFAULT_CSS = """
    InputExamples { height: auto; margin: 1 0; }
    InputExamples .token-line { text-wrap: nowrap; text-overflow: ellipsis; }
    InputExamples .input-note { color: $text-muted; text-style: italic; text-wrap: nowrap;
                                text-overflow: ellipsis; }
    """

    def __init__(self, evidence: Any, graphics: bool | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.evidence = evidence if isinstance(evidence, dict) else {}
        self.image_class = None if graphics is False else graphics_image_class()

    def compose(self) -> ComposeResult:
        if not self.evidence:
            yield Static(Text("The input batch evidence is empty or not an object."), classes="input-note")
            return
        yield Static(batch_header(self.evidence))
        table = inputs_table(self.evidence)
        if table is not None:
            yield Static(table)
        examples = self.evidence.get("examples")
        if not isinstance(examples, list) or not examples:
            yield Static(Text("No examples in the evidence."), classes="input-note")
            return
        yield from self._examples(examples[:EXAMPLES_SHOWN])
        if len(examples) > EXAMPLES_SHOWN:
            yield Static(Text(f"… {len(examples) - EXAMPLES_SHOWN} more examples"), classes="input-note")

    def _examples(self, examples: list) -> ComposeResult:
        images = self.evidence.get("modality") == "images" or any(
            isinstance(e, dict) and e.get("png") is not None for e in examples)
        if images:
            with ImageGrid():
                for example in examples:
                    if isinstance(example, dict):
                        yield ImageTile(example, self.image_class)
                    else:
                        yield Static(Text("not an example"), classes="input-note")
            return
        for example in examples:
            shown = isinstance(example, dict) and any(example.get(k) is not None for k in INPUT_EXAMPLE_FIELDS)
            yield Static(token_line(example), classes="token-line" if shown else "token-line input-note")
