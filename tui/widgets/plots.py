"""Draw checks' PlotSpecs in the terminal: plotext (through textual-plotext) for curves and bars,
a shaded table for heatmaps (a confusion matrix is read as numbers, which plotext's matrix plot hides).

Colours are the basic ANSI names so plots stay readable on a 16-colour terminal.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from mltriage.checks.findings import PlotSpec
from mltriage.checks.io.svg import integer_axis, linear_ticks, log_ticks, series_kind, tick_label

from ..plain import plain

# Basic ANSI colours: present on every terminal, distinct from each other and from the background.
SERIES_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")
PLOT_HEIGHT = 15
TITLE_CHARS = 60  # the widest title that fits a plot in the app's pane on an 80-column terminal
HEATMAP_MAX = 12  # rows/columns shown; larger matrices say how many were left out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(xs: list, ys: list, x_log: bool, y_log: bool) -> tuple[list, list]:
    """Pairs with a finite y (and positive values on log axes); non-numeric x become positions."""
    out_x, out_y = [], []
    for i, (x, y) in enumerate(zip(xs, ys)):
        xv = x if _is_number(x) else i
        if not _is_number(y) or (x_log and xv <= 0) or (y_log and y <= 0):
            continue
        out_x.append(xv)
        out_y.append(y)
    return out_x, out_y


def _log10(values: list[float]) -> list[float]:
    return [math.log10(v) for v in values]


def draw(plt, spec: PlotSpec) -> None:
    """Issue the plotext calls for one spec on a textual-plotext Plot (or the plotext module).

    Log axes are drawn as log10 of the values on a linear axis labelled with the same readable ticks as
    the SVG charts (0.5, 0.6, 0.8, 1, 2 over a short range; powers of ten over many decades): plotext's
    own log scale rewrites its data in place and fails when the widget draws a second time. Epoch and
    step axes get whole-number ticks.
    """
    plt.clear_figure()
    # plotext drops a title wider than the plot: cut long ones so an 80-column terminal still shows it
    plt.title(spec.title if len(spec.title) <= TITLE_CHARS else spec.title[:TITLE_CHARS - 1] + "…")
    if spec.x_label:
        plt.xlabel(spec.x_label + (" (log)" if spec.x_log and spec.kind != "bar" else ""))
    if spec.y_label:
        plt.ylabel(spec.y_label + (" (log)" if spec.y_log and spec.kind != "bar" else ""))
    series = [s for s in spec.series if s.y]
    if spec.kind == "bar":
        _draw_bars(plt, series)
        return
    all_x: list[float] = []
    all_y: list[float] = []
    if spec.kind == "histogram" and len(series) == 1:
        xs, ys = _points(series[0].x, series[0].y, False, spec.y_log)
        width = (xs[1] - xs[0]) * 0.9 if len(xs) > 1 else 0.8
        ys = _log10(ys) if spec.y_log else ys
        if xs:
            plt.bar(xs, ys, color=SERIES_COLORS[0], width=width)
        all_y = ys
    else:  # line, scatter, histogram with overlaid samples (drawn as outlines)
        for i, s in enumerate(series):
            xs, ys = _points(s.x, s.y, spec.x_log, spec.y_log)
            if not xs:
                continue
            xs = _log10(xs) if spec.x_log else xs
            ys = _log10(ys) if spec.y_log else ys
            all_x += xs
            all_y += ys
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            label = s.name if len(series) > 1 else None
            if series_kind(spec, s.name) == "scatter":
                plt.scatter(xs, ys, color=color, label=label, marker="dot")
            else:
                plt.plot(xs, ys, color=color, label=label, marker="braille")
        first = series[0] if series else None
        if first and first.x and not any(_is_number(x) for x in first.x):
            step = max(1, len(first.x) // 8)
            plt.xticks(list(range(0, len(first.x), step)), [str(x)[:10] for x in first.x[::step]])
    if spec.x_log and all_x:
        ticks = log_axis_ticks(all_x)
        plt.xticks(*ticks)
        if min(ticks[0]) < min(all_x) or max(ticks[0]) > max(all_x):  # keep the floor's tick on the axis
            plt.xlim(min(ticks[0] + all_x), max(ticks[0] + all_x))
    elif all_x and integer_axis(spec.x_label, all_x, spec.x_integer):
        plt.xticks(*integer_ticks(all_x))
    if spec.y_log and all_y:
        ticks = log_axis_ticks(all_y)
        plt.yticks(*ticks)
        if min(ticks[0]) < min(all_y) or max(ticks[0]) > max(all_y):
            plt.ylim(min(ticks[0] + all_y), max(ticks[0] + all_y))


def log_axis_ticks(logged: list[float]) -> tuple[list[float], list[str]]:
    """Tick positions (log10 units) and labels for values drawn as their log10: the SVG charts' ticks
    (checks/io/svg.log_ticks), so a loss floor of 0.553 sits between labelled 0.5 and 0.6."""
    lo, hi = 10 ** min(logged), 10 ** max(logged)
    ticks = [t for t in log_ticks(lo, hi) if t > 0]
    positions = [math.log10(t) for t in ticks]
    if max(logged) - min(logged) >= 3 and all(abs(p - round(p)) < 1e-9 for p in positions):
        # many decades, ticks on powers of ten: 1e-5, 1e-4, 1e-3 read as one scale (not 1e-5, 0.0001)
        return positions, [f"1e{round(p)}" if round(p) else "1" for p in positions]
    return positions, [tick_label(t) for t in ticks]


def integer_ticks(values: list[float]) -> tuple[list[float], list[str]]:
    """Whole-number ticks (epochs, steps) over the values' range, labelled without a decimal point."""
    ticks = linear_ticks(min(values), max(values), integer=True)
    ticks = [t for t in ticks if min(values) - 1e-9 <= t <= max(values) + 1e-9] or [round(min(values))]
    return [float(t) for t in ticks], [str(int(round(t))) for t in ticks]


def _draw_bars(plt, series) -> None:
    if not series:
        return
    labels = [str(x)[:12] for x in series[0].x]
    values = [[y if _is_number(y) else 0 for y in s.y[:len(labels)]] for s in series]
    if len(series) == 1:
        plt.bar(labels, values[0], color=SERIES_COLORS[0])
    else:
        plt.multiple_bar(labels, values, labels=[s.name for s in series],
                         color=[SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(series))])


def has_data(spec: PlotSpec) -> bool:
    if spec.kind == "heatmap":
        return bool(spec.matrix)
    return any(_is_number(y) for s in spec.series for y in s.y)


class SpecPlot(PlotextPlot):
    """One PlotSpec drawn by plotext; redrawn at every size."""

    DEFAULT_CSS = """
    SpecPlot { height: 15; width: 1fr; }
    """

    def __init__(self, spec: PlotSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        draw(self.plt, spec)


def heatmap_view(spec: PlotSpec) -> Group:
    """Title, the shaded table, and which axis is which."""
    axes = ", ".join(filter(None, [f"rows: {spec.y_label}" if spec.y_label else "",
                                   f"columns: {spec.x_label}" if spec.x_label else ""]))
    parts = [Text(spec.title, style="bold"), heatmap_table(spec)]
    if axes:
        parts.append(Text(axes, style="dim"))
    return Group(*parts)


def heatmap_table(spec: PlotSpec) -> Table:
    """The matrix as a table with its labels; larger values drawn stronger (works in 16 colours)."""
    matrix = spec.matrix or []
    rows = (spec.row_labels or [str(i) for i in range(len(matrix))])[:HEATMAP_MAX]
    cols = (spec.col_labels or [str(i) for i in range(len(matrix[0]) if matrix else 0)])[:HEATMAP_MAX]
    values = [v for row in matrix[:HEATMAP_MAX] for v in row[:HEATMAP_MAX] if _is_number(v)]
    top = max([abs(v) for v in values] + [1e-12])
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    for c in cols:
        table.add_column(Text(plain(c)[:8]), justify="right", no_wrap=True)
    for label, row in zip(rows, matrix):
        cells = []
        for v in row[:len(cols)]:
            if not _is_number(v):
                cells.append(Text("-", style="dim"))
                continue
            share = abs(v) / top
            style = "reverse bold" if share >= 0.66 else "bold" if share >= 0.33 else "dim"
            cells.append(Text(f"{v:.3g}", style=style))
        table.add_row(Text(plain(label)[:12]), *cells)
    left_out = max(0, len(matrix) - HEATMAP_MAX) + max(0, (len(matrix[0]) if matrix else 0) - HEATMAP_MAX)
    if left_out:
        table.add_row(Text(f"(first {HEATMAP_MAX} rows/columns shown)", style="dim"))
    return table


def plain_spec(spec: PlotSpec) -> PlotSpec:
    """A copy of the spec whose texts (title, axis labels, series names, category labels) have their
    control characters escaped: plotext copies them into ANSI text as they are."""
    import dataclasses

    def text(v):
        return plain(v) if isinstance(v, str) else v

    series = [dataclasses.replace(s, name=plain(s.name), x=[text(x) for x in s.x]) for s in spec.series]
    return dataclasses.replace(
        spec, title=plain(spec.title), x_label=plain(spec.x_label or ""), y_label=plain(spec.y_label or ""),
        series=series, row_labels=[plain(v) for v in spec.row_labels] if spec.row_labels else spec.row_labels,
        col_labels=[plain(v) for v in spec.col_labels] if spec.col_labels else spec.col_labels)


def plot_widget(spec: PlotSpec, **kwargs):
    """The widget that shows one spec, or None when it holds no data."""
    spec = plain_spec(spec)
    if not has_data(spec):
        return Static(Text(f"{spec.title}: no data to draw", style="dim"), classes="plot-empty")
    if spec.kind == "heatmap":
        return Static(heatmap_view(spec), classes="heatmap", **kwargs)
    return SpecPlot(spec, classes="plot", **kwargs)
