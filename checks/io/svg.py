"""Plot specs (checks/findings.py PlotSpec) drawn as self-contained SVG charts. Pure functions, no dependency.

Every chart has axes with ticks and labels, a title, and a legend when there is more than one series. Log axes
get ticks on powers of ten (with 2 and 5 in between when the range spans few decades, and plain "nice" ticks
placed on the log scale when it spans less than one, so that a loss floor of 0.553 reads as a number). Axes
the spec marks `x_integer`, whose label names epochs or steps (a whole word), or whose values are all integers
get integer ticks only. A spec's `series_kind` draws single series as lines or points whatever the plot's kind
(the y = x line of a scatter, a marked threshold on a curve). The SVG names only the generic font families,
holds no script and no link, so a page that inlines it opens offline.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable
from xml.sax.saxutils import escape

from ..findings import PlotSpec

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 36, 56
# A colour-blind-safe qualitative palette (Okabe & Ito 2008, "Color Universal Design").
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
FONT = "font-family='sans-serif'"
MAX_POINTS = 2000          # points per series drawn; longer series are thinned evenly (the shape survives)
MAX_CATEGORIES = 40        # bar categories drawn; the rest are summarised in a note
MAX_HEATMAP = 40           # heatmap rows/columns drawn
INTEGER_AXIS_WORDS = ("epoch", "step", "iteration", "iter", "batch", "row", "fold", "layer", "count")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def tick_label(v: float) -> str:
    """A tick or value as a short readable number (0.553, 1.5, 2e-5, 12000)."""
    return _fmt(v)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        mant, exp = f"{v:.2g}".split("e") if "e" in f"{v:.2g}" else (f"{v:.2g}", None)
        if exp is None:
            return f"{v:.3g}"
        return f"{mant}e{int(exp)}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.4g}"


def nice_step(span: float, target: int = 5) -> float:
    """A 1-2-5 step that splits `span` into about `target` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def linear_ticks(lo: float, hi: float, integer: bool = False, target: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + (1.0 if lo == 0 else abs(lo) * 0.1)
    step = nice_step(hi - lo, target)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(0.0 if abs(t) < step * 1e-9 else round(t, 12))
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis over [lo, hi] (both > 0): readable numbers, never more than about 8."""
    lo_e, hi_e = math.log10(lo), math.log10(hi)
    decades = hi_e - lo_e
    if decades < 0.3:
        step = nice_step(hi - lo, 4)
        ticks = [t for t in linear_ticks(math.floor(lo / step) * step, hi, target=4) if t > 0]
        return [float(f"{t:.6g}") for t in ticks] or [lo, hi]
    if decades < 1.5:
        # Little more than a decade: 1-1.5-2-3-4-5-6-8 per decade reads best (0.6, 0.7, 0.8, 1, 1.5, 2),
        # extended to the candidate just below the lowest value so the floor sits on a labelled tick.
        cands = [m * 10.0 ** e for e in range(math.floor(lo_e) - 1, math.ceil(hi_e) + 1)
                 for m in (1, 1.5, 2, 3, 4, 5, 6, 7, 8)]
        below = [c for c in cands if c <= lo * (1 + 1e-9)]
        ticks = ([max(below)] if below else []) + [c for c in cands if lo * (1 + 1e-9) < c <= hi * (1 + 1e-9)]
        while len(ticks) > 8:
            ticks = ticks[::2] if len(ticks) % 2 else ticks[::2] + [ticks[-1]]
        return [float(f"{t:.6g}") for t in ticks] or [lo, hi]
    mults = (1, 2, 5) if decades <= 3 else (1,)
    ticks = []
    for e in range(math.floor(lo_e), math.ceil(hi_e) + 1):
        for m in mults:
            t = m * 10.0 ** e
            if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9):
                ticks.append(t)
    if len(ticks) > 9:
        stride = math.ceil(len(ticks) / 8)
        ticks = ticks[::stride]
    return ticks or [lo, hi]


class _Axis:
    def __init__(self, lo: float, hi: float, log: bool, pixel_lo: float, pixel_hi: float, integer: bool = False):
        self.log = log and lo > 0
        if self.log:
            self.ticks = log_ticks(lo, hi)
            lo, hi = min([lo] + self.ticks), max([hi] + self.ticks)
            self.lo, self.hi = math.log10(lo), math.log10(hi)
            if self.hi - self.lo < 1e-12:
                self.lo, self.hi = self.lo - 0.5, self.hi + 0.5
        else:
            if hi - lo < 1e-12:
                pad = 1.0 if lo == 0 else abs(lo) * 0.1
                lo, hi = lo - pad, hi + pad
            self.ticks = linear_ticks(lo, hi, integer=integer)
            self.lo, self.hi = min([lo] + self.ticks), max([hi] + self.ticks)
        self.p0, self.p1 = pixel_lo, pixel_hi

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-size='{size}' {FONT}{extra}>"
            f"{escape(str(s))}</text>")


def integer_axis(label: str, values: Iterable[float], declared: bool = False) -> bool:
    """Whether an axis gets whole-number ticks only: the spec says so (x_integer), its label names epochs,
    steps or counts, or every value is a whole number. Shared with the terminal drawing (tui/widgets/plots)."""
    if declared:
        return True
    vals = [float(v) for v in values]
    # Whole words only ("epoch", "global_step", "rows"), never part of one ("growth_rate", "arrow"); and a range
    # of at least 2, or whole-number ticks would leave the axis with a single tick.
    words = {w[:-1] if w.endswith("s") else w for w in re.findall(r"[a-z]+", label.lower())}
    if words & set(INTEGER_AXIS_WORDS) and vals and max(vals) - min(vals) >= 2:
        return True
    return bool(vals) and all(v.is_integer() for v in vals) and len(set(vals)) > 1


def series_kind(plot: PlotSpec, name: str) -> str:
    """How one series is drawn: the plot's kind unless the spec names the series in series_kind (a y = x
    line in a scatter, one marked point on a curve). Bars and heatmaps are drawn whole, never mixed."""
    kind = (plot.series_kind or {}).get(name)
    return kind if kind in ("line", "scatter") and plot.kind in ("line", "scatter", "histogram") else plot.kind


def _thin(points: list, limit: int = MAX_POINTS) -> list:
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    return [points[int(i * stride)] for i in range(limit)] + [points[-1]]


def _frame(plot: PlotSpec, width: int, height: int) -> list[str]:
    return [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' role='img' class='mltriage-chart'>",
            f"<title>{escape(plot.title)}</title>",
            f"<rect x='0' y='0' width='{width}' height='{height}' fill='#ffffff'/>",
            _text(width / 2, 20, plot.title, size=13, extra=" font-weight='bold'")]


def _empty(plot: PlotSpec, width: int, height: int, why: str = "no data to draw") -> str:
    return "\n".join(_frame(plot, width, height) + [_text(width / 2, height / 2, why, size=12, extra=" fill='#666'"),
                                                     "</svg>"])


def _rotated(categories: list[str], width: int) -> bool:
    """Whether category labels must be drawn slanted to fit under their bars."""
    slot = (width - MARGIN_LEFT - MARGIN_RIGHT) / max(len(categories), 1)
    return len(categories) > 8 or max((len(c) for c in categories), default=0) * 6 > slot


ROTATED_EXTRA = 26  # the plot area gives up this much height to slanted category labels


def _axes(parts: list[str], xa: _Axis | None, ya: _Axis, plot: PlotSpec, width: int, height: int,
          categories: list[str] | None = None) -> None:
    left, right, top, bottom = MARGIN_LEFT, width - MARGIN_RIGHT, MARGIN_TOP, height - MARGIN_BOTTOM
    rotate = categories is not None and _rotated(categories, width)
    if rotate:
        bottom -= ROTATED_EXTRA
    for t in ya.ticks:
        y = ya(t)
        parts.append(f"<line x1='{left}' x2='{right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e6e6e6'/>")
        parts.append(_text(left - 6, y + 4, _fmt(t), anchor="end", size=10))
    if xa is not None:
        for t in xa.ticks:
            x = xa(t)
            parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{bottom}' stroke='#f0f0f0'/>")
            parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{bottom}' y2='{bottom + 4}' stroke='#333'/>")
            parts.append(_text(x, bottom + 16, _fmt(t), size=10))
    elif categories is not None:
        n = len(categories)
        slot = (right - left) / max(n, 1)
        keep = 18 if rotate else max(6, int(slot / 6.2))
        for i, c in enumerate(categories):
            x = left + (i + 0.5) * slot
            label = c if len(c) <= keep else c[:keep - 1] + "…"
            if rotate:
                parts.append(f"<text x='{x:.1f}' y='{bottom + 10}' text-anchor='end' font-size='9' {FONT} "
                             f"transform='rotate(-35 {x:.1f} {bottom + 10})'>{escape(label)}</text>")
            else:
                parts.append(_text(x, bottom + 16, label, size=10))
    parts.append(f"<line x1='{left}' x2='{left}' y1='{top}' y2='{bottom}' stroke='#333'/>")
    parts.append(f"<line x1='{left}' x2='{right}' y1='{bottom}' y2='{bottom}' stroke='#333'/>")
    x_label = plot.x_label + (" (log scale)" if plot.x_log and xa is not None and xa.log else "")
    y_label = plot.y_label + (" (log scale)" if plot.y_log and ya.log else "")
    if x_label:
        parts.append(_text((left + right) / 2, height - 8, x_label, size=11))
    if y_label:
        parts.append(f"<text x='14' y='{(top + bottom) / 2:.1f}' text-anchor='middle' font-size='11' {FONT} "
                     f"transform='rotate(-90 14 {(top + bottom) / 2:.1f})'>{escape(y_label)}</text>")


def _legend(parts: list[str], names: list[str], width: int) -> None:
    if len(names) < 2:
        return
    shown = names[:8]
    x = width - MARGIN_RIGHT - 8
    box_w = 18 + 6.5 * max(len(n[:24]) for n in shown)
    parts.append(f"<rect x='{x - box_w:.1f}' y='{MARGIN_TOP + 4}' width='{box_w:.1f}' height='{14 * len(shown) + 8}' "
                 f"fill='#ffffff' fill-opacity='0.85' stroke='#ccc' class='legend'/>")
    for i, name in enumerate(shown):
        y = MARGIN_TOP + 16 + 14 * i
        parts.append(f"<rect x='{x - box_w + 5:.1f}' y='{y - 8}' width='10' height='10' "
                     f"fill='{PALETTE[i % len(PALETTE)]}'/>")
        parts.append(_text(x - box_w + 19, y + 1, name[:24], anchor="start", size=10))


def _xy_chart(plot: PlotSpec, width: int, height: int) -> str:
    numeric_x = all(_num(x) is not None for s in plot.series for x in s.x) and any(s.x for s in plot.series)
    if not numeric_x:
        return _bar_chart(plot, width, height)
    pts = []
    for s in plot.series:
        p = [(float(x), float(y)) for x, y in zip(s.x, s.y) if _num(x) is not None and _num(y) is not None]
        pts.append(p)
    xs = [x for p in pts for x, _ in p]
    ys = [y for p in pts for _, y in p]
    if not xs:
        return _empty(plot, width, height)
    x_log = plot.x_log and min(xs) > 0
    y_log = plot.y_log and min(ys) > 0
    if plot.x_log and not x_log:
        pts = [[(x, y) for x, y in p if x > 0] for p in pts]
    if plot.y_log and not y_log:
        positive = [y for y in ys if y > 0]
        y_log = bool(positive)
        pts = [[(x, y) for x, y in p if y > 0] for p in pts] if y_log else pts
        ys = positive if y_log else ys
    xs = [x for p in pts for x, _ in p] or xs
    left, right, top, bottom = MARGIN_LEFT, width - MARGIN_RIGHT, MARGIN_TOP, height - MARGIN_BOTTOM
    x_lo, x_hi = min(xs), max(xs)
    if plot.kind == "histogram" and not x_log:
        # Bars are drawn from edge to edge: the axis spans the outer bin edges, not only the centres.
        centres = sorted(set(xs))
        half = (centres[1] - centres[0]) / 2 if len(centres) > 1 else 0.5
        x_lo, x_hi = x_lo - half, x_hi + half
    xa = _Axis(x_lo, x_hi, x_log, left, right, integer=integer_axis(plot.x_label, xs, plot.x_integer))
    y_lo, y_hi = min(ys), max(ys)
    if plot.kind == "histogram" and not y_log:
        y_lo = min(0.0, y_lo)
    ya = _Axis(y_lo, y_hi, y_log, bottom, top)
    parts = _frame(plot, width, height)
    _axes(parts, xa, ya, plot, width, height)
    parts.append(f"<g class='plot-area' data-x0='{left}' data-y0='{top}' data-x1='{right}' data-y1='{bottom}'>")
    for i, p in enumerate(pts):
        color = PALETTE[i % len(PALETTE)]
        kind = series_kind(plot, plot.series[i].name)
        p = _thin(sorted(p) if kind in ("line", "histogram") else p)
        if not p:
            continue
        if kind == "scatter":
            r = 4.5 if len(p) <= 3 else 2.5 if len(p) < 500 else 1.5  # a marked point (a threshold) stands out
            parts.extend(f"<circle cx='{xa(x):.1f}' cy='{ya(y):.1f}' r='{r}' fill='{color}' fill-opacity='0.7'/>"
                         for x, y in p)
        elif kind == "histogram":
            # Pre-binned: x = bin centres. Drawn as filled steps, translucent so overlaid splits stay visible.
            half = (p[1][0] - p[0][0]) / 2 if len(p) > 1 else 0.5
            base = ya(ya.ticks[0]) if y_log else ya(0.0)
            d = [f"M{xa(p[0][0] - half) if not x_log else xa(p[0][0]):.1f},{base:.1f}"]
            for x, y in p:
                x0, x1 = (x - half, x + half) if not x_log else (x, x)
                d.append(f"L{xa(x0):.1f},{ya(y):.1f} L{xa(x1):.1f},{ya(y):.1f}")
            d.append(f"L{xa(p[-1][0] + half) if not x_log else xa(p[-1][0]):.1f},{base:.1f} Z")
            parts.append(f"<path d='{' '.join(d)}' fill='{color}' fill-opacity='0.35' stroke='{color}' "
                         f"stroke-width='1.2'/>")
        else:
            d = " ".join(f"{'M' if j == 0 else 'L'}{xa(x):.1f},{ya(y):.1f}" for j, (x, y) in enumerate(p))
            parts.append(f"<path d='{d}' fill='none' stroke='{color}' stroke-width='1.8'/>")
            if len(p) <= 40:
                parts.extend(f"<circle cx='{xa(x):.1f}' cy='{ya(y):.1f}' r='2.2' fill='{color}'/>" for x, y in p)
    parts.append("</g>")
    _legend(parts, [s.name for s in plot.series], width)
    parts.append("</svg>")
    return "\n".join(parts)


def _bar_chart(plot: PlotSpec, width: int, height: int) -> str:
    categories: list[str] = []
    for s in plot.series:
        for x in s.x:
            label = _fmt(float(x)) if _num(x) is not None and not isinstance(x, int) else str(x)
            if label not in categories:
                categories.append(label)
    note = ""
    if len(categories) > MAX_CATEGORIES:
        note = f"first {MAX_CATEGORIES} of {len(categories)} categories"
        categories = categories[:MAX_CATEGORIES]
    index = {c: i for i, c in enumerate(categories)}
    values = []
    for s in plot.series:
        row: dict[int, float] = {}
        for x, y in zip(s.x, s.y):
            label = _fmt(float(x)) if _num(x) is not None and not isinstance(x, int) else str(x)
            if label in index and _num(y) is not None:
                row[index[label]] = float(y)
        values.append(row)
    ys = [v for row in values for v in row.values()]
    if not ys:
        return _empty(plot, width, height)
    y_log = plot.y_log and any(v > 0 for v in ys)
    if y_log:
        ys = [v for v in ys if v > 0]
    left, right, top, bottom = MARGIN_LEFT, width - MARGIN_RIGHT, MARGIN_TOP, height - MARGIN_BOTTOM
    if _rotated(categories, width):
        bottom -= ROTATED_EXTRA
    ya = _Axis(min(ys) if y_log else min(0.0, min(ys)), max(ys) if y_log else max(0.0, max(ys)), y_log, bottom, top,
               integer=False)
    parts = _frame(plot, width, height)
    _axes(parts, None, ya, plot, width, height, categories=categories)
    parts.append(f"<g class='plot-area' data-x0='{left}' data-y0='{top}' data-x1='{right}' data-y1='{bottom}'>")
    slot = (right - left) / max(len(categories), 1)
    n = max(len(values), 1)
    bar_w = slot * 0.8 / n
    base = ya(ya.ticks[0]) if y_log else ya(0.0)
    for i, row in enumerate(values):
        color = PALETTE[i % len(PALETTE)]
        for j, v in row.items():
            if y_log and v <= 0:
                continue
            x = left + j * slot + slot * 0.1 + i * bar_w
            y = ya(v)
            parts.append(f"<rect x='{x:.1f}' y='{min(y, base):.1f}' width='{max(bar_w - 1, 1):.1f}' "
                         f"height='{max(abs(base - y), 0.5):.1f}' fill='{color}'><title>{escape(categories[j])}: "
                         f"{_fmt(v)}</title></rect>")
    parts.append("</g>")
    if note:
        parts.append(_text(right, top - 4, note, anchor="end", size=9, extra=" fill='#666'"))
    _legend(parts, [s.name for s in plot.series], width)
    parts.append("</svg>")
    return "\n".join(parts)


def _heat_colour(t: float) -> str:
    """White to dark blue, t in [0, 1] (sequential, readable in greyscale)."""
    t = min(max(t, 0.0), 1.0)
    lo, hi = (255, 255, 255), (8, 48, 107)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(plot: PlotSpec, width: int, height: int) -> str:
    matrix = [row[:MAX_HEATMAP] for row in (plot.matrix or [])[:MAX_HEATMAP]]
    vals = [float(v) for row in matrix for v in row if _num(v) is not None]
    if not vals:
        return _empty(plot, width, height)
    n_rows, n_cols = len(matrix), max(len(r) for r in matrix)
    rows = [str(r) for r in (plot.row_labels or range(n_rows))][:n_rows]
    cols = [str(c) for c in (plot.col_labels or range(n_cols))][:n_cols]
    left, top = 100, MARGIN_TOP + 4
    right, bottom = width - 70, height - MARGIN_BOTTOM
    cw, ch = (right - left) / n_cols, (bottom - top) / n_rows
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    parts = _frame(plot, width, height)
    parts.append(f"<g class='plot-area' data-x0='{left}' data-y0='{top}' data-x1='{right:.0f}' data-y1='{bottom}'>")
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            f = _num(v)
            fill = "#dddddd" if f is None else _heat_colour((f - lo) / span)
            parts.append(f"<rect x='{left + j * cw:.1f}' y='{top + i * ch:.1f}' width='{cw:.1f}' height='{ch:.1f}' "
                         f"fill='{fill}' stroke='#ffffff' stroke-width='0.5'><title>{escape(rows[i] if i < len(rows) else str(i))}"
                         f" / {escape(cols[j] if j < len(cols) else str(j))}: {'-' if f is None else _fmt(f)}</title></rect>")
            if f is not None and n_rows <= 12 and n_cols <= 12:
                dark = (f - lo) / span > 0.55
                parts.append(_text(left + (j + 0.5) * cw, top + (i + 0.5) * ch + 4, _fmt(f), size=10,
                                   extra=f" fill='{'#ffffff' if dark else '#111111'}'"))
    parts.append("</g>")
    for i, r in enumerate(rows):
        if n_rows <= 30:
            parts.append(_text(left - 6, top + (i + 0.5) * ch + 4, r[:14], anchor="end", size=10))
    for j, c in enumerate(cols):
        if n_cols <= 30:
            x = left + (j + 0.5) * cw
            parts.append(f"<text x='{x:.1f}' y='{bottom + 12}' text-anchor='end' font-size='10' {FONT} "
                         f"transform='rotate(-30 {x:.1f} {bottom + 12})'>{escape(c[:14])}</text>")
    # colour scale
    for k in range(20):
        parts.append(f"<rect x='{right + 20}' y='{bottom - (k + 1) * (bottom - top) / 20:.1f}' width='12' "
                     f"height='{(bottom - top) / 20 + 0.5:.1f}' fill='{_heat_colour((k + 0.5) / 20)}'/>")
    parts.append(_text(right + 36, top + 8, _fmt(hi), anchor="start", size=9))
    parts.append(_text(right + 36, bottom, _fmt(lo), anchor="start", size=9))
    if plot.x_label:
        parts.append(_text((left + right) / 2, height - 6, plot.x_label, size=11))
    if plot.y_label:
        parts.append(f"<text x='14' y='{(top + bottom) / 2:.1f}' text-anchor='middle' font-size='11' {FONT} "
                     f"transform='rotate(-90 14 {(top + bottom) / 2:.1f})'>{escape(plot.y_label)}</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def plot_to_svg(plot: PlotSpec, width: int = WIDTH, height: int = HEIGHT) -> str:
    """One chart as an SVG document (a string), never raising on odd data: a broken spec draws a note."""
    try:
        if plot.kind == "heatmap":
            return _heatmap(plot, width, height)
        if plot.kind == "bar":
            return _bar_chart(plot, width, height)
        if not plot.series:
            return _empty(plot, width, height)
        return _xy_chart(plot, width, height)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:  # odd data must not lose the report
        return _empty(plot, width, height, f"could not draw this plot ({type(exc).__name__})")


def svg_filename(index: int, plot: PlotSpec, check: str = "") -> str:
    """A safe, stable file name for a chart: <nn>-<check>-<title>.svg."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", f"{check}-{plot.title}".lower()).strip("-")[:60] or "plot"
    return f"{index:02d}-{stem}.svg"


__all__ = ["plot_to_svg", "svg_filename", "linear_ticks", "log_ticks", "nice_step", "integer_axis", "series_kind",
           "tick_label"]
