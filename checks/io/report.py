"""Render a run as text, JSON (DESIGN §5, contract), Markdown or JUnit XML. Pure functions."""

from __future__ import annotations

import json
import re
import textwrap
from xml.sax.saxutils import escape, quoteattr

from ..findings import Finding, PlotSpec
from ..engine.registry import STEP_TITLES, STEPS

ICONS = {"pass": "PASS", "info": "INFO", "warn": "WARN", "fail": "FAIL", "error": "ERR ", "skipped": "SKIP"}
COLORS = {"pass": "32", "info": "36", "warn": "33", "fail": "31;1", "error": "35", "skipped": "2"}


# Control characters (ESC, BEL, backspace, C1 codes such as CSI) and the bidirectional overrides that can
# reorder what a reader sees: data must not be able to move the cursor, retitle or recolour the user's
# terminal, or disguise a line. They are shown as visible escapes instead. Newlines and tabs stay.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character shown as a \\xNN / \\uNNNN escape."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                            else f"\\u{ord(m.group()):04x}", text)


def _printable_finding(raw: dict) -> Finding:
    f = Finding.from_dict(raw)
    f.title, f.detail, f.fix = printable(f.title), printable(f.detail), printable(f.fix or "")
    return f


def _printable_findings(run: dict) -> list[Finding]:
    return [_printable_finding(f) for f in run["findings"]]


def to_json(run: dict) -> str:
    return json.dumps(run, indent=2, ensure_ascii=False)


def _summary_line(summary: dict) -> str:
    order = ("fail", "warn", "error", "info", "pass", "skipped")
    return ", ".join(f"{summary.get(k, 0)} {k}" for k in order)


def _by_step(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        grouped.setdefault(f.step, []).append(f)
    return {s: grouped[s] for s in STEPS if s in grouped}


def plot_as_text(plot: PlotSpec, width: int = 60) -> str:
    """A compact text rendering for reports: bars for bar/histogram, value ranges for lines, grids for heatmaps."""
    lines = [f"[plot] {plot.title}"]
    if plot.kind in ("bar", "histogram"):
        values = [v for s in plot.series for v in s.y if v is not None]
        top = max([abs(v) for v in values] + [1e-12])
        for s in plot.series:
            if len(plot.series) > 1:
                lines.append(f"  {s.name}:")
            for x, y in list(zip(s.x, s.y))[:20]:
                label = f"{x:.3g}" if isinstance(x, float) else str(x)
                bar = "#" * int(round((abs(y or 0) / top) * (width - 30)))
                lines.append(f"  {label[:14]:>14} {bar} {y:.4g}" if y is not None else f"  {label[:14]:>14} -")
    elif plot.kind == "heatmap" and plot.matrix:
        cols = plot.col_labels or [str(i) for i in range(len(plot.matrix[0]))]
        rows = plot.row_labels or [str(i) for i in range(len(plot.matrix))]
        lines.append("  " + " " * 10 + " ".join(f"{str(c)[:6]:>6}" for c in cols[:10]))
        for r, row in zip(rows[:10], plot.matrix[:10]):
            lines.append(f"  {str(r)[:10]:>10}" + " ".join(f"{v:>6.3g}" if v is not None else "     -" for v in row[:10]))
    else:
        for s in plot.series:
            ys = [y for y in s.y if y is not None]
            if ys:
                lines.append(f"  {s.name}: {len(ys)} points, first {ys[0]:.4g}, min {min(ys):.4g}, "
                             f"max {max(ys):.4g}, last {ys[-1]:.4g}")
    return "\n".join(lines)


def to_text(run: dict, width: int = 80, color: bool = False, verbose: bool = False) -> str:
    findings = _printable_findings(run)
    out = [f"mltriage {run.get('mltriage', '')} - project {printable(str(run['project']))}", ""]
    wrap = textwrap.TextWrapper(width=width, initial_indent="       ", subsequent_indent="       ")

    def paint(status: str, text: str) -> str:
        return f"\033[{COLORS[status]}m{text}\033[0m" if color else text

    for step, items in _by_step(findings).items():
        out.append(f"== {STEP_TITLES[step]} ({step}) ==")
        for f in items:
            head = f"{paint(f.status, ICONS[f.status])}  {f.check}: {f.title}"
            out.append(textwrap.shorten(head, width=width + (len(head) - len(f"{ICONS[f.status]}  {f.check}: {f.title}")),
                                        placeholder="...") if len(f.title) > 200 else head)
            if f.status in ("warn", "fail", "error") or verbose:
                for para in (f.detail, ("Fix: " + f.fix) if f.fix else ""):
                    for line in para.strip().splitlines()[:12 if f.status != "error" or verbose else 6]:
                        out.extend(wrap.wrap(line) or [""])
        out.append("")
    out.append(f"Summary: {_summary_line(run['summary'])}")
    return "\n".join(out)


def to_markdown(run: dict, notes: dict[str, str] | None = None) -> str:
    findings = _printable_findings(run)
    out = [f"# mltriage report: {printable(str(run['project']))}", "", f"**Summary:** {_summary_line(run['summary'])}", ""]
    for step, items in _by_step(findings).items():
        out += [f"## {STEP_TITLES[step]}", "", "| status | check | finding |", "|---|---|---|"]
        for f in items:
            out.append(f"| {f.status} | `{f.check}` | {f.title.replace('|', '/')} |")
        out.append("")
        for f in items:
            if f.status in ("warn", "fail", "error"):
                out += [f"### {f.status.upper()}: `{f.check}` — {f.title}", "", f.detail.strip(), ""]
                if f.fix:
                    out += [f"**Fix:** {f.fix}", ""]
                for plot in f.plots:
                    out += ["```", plot_as_text(plot), "```", ""]
        if notes and notes.get(step):
            out += ["**Notes:**", "", notes[step].strip(), ""]
    return "\n".join(out)


def to_junit(run: dict) -> str:
    """One testsuite per step, one testcase per check; slice tests as their own testcases."""
    findings = _printable_findings(run)
    suites = []
    for step, items in _by_step(findings).items():
        cases = []
        for f in items:
            cases.extend(_junit_cases(f))
        counts = {"failures": sum('<failure' in c for c in cases), "errors": sum('<error' in c for c in cases),
                  "skipped": sum('<skipped' in c for c in cases)}
        time_total = sum(f.seconds for f in items)
        suites.append(
            f'  <testsuite name={quoteattr("mltriage." + step)} tests="{len(cases)}" failures="{counts["failures"]}" '
            f'errors="{counts["errors"]}" skipped="{counts["skipped"]}" time="{time_total:.3f}">\n'
            + "\n".join(cases) + "\n  </testsuite>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name={quoteattr("mltriage " + printable(str(run["project"])))}>\n' + "\n".join(suites) + "\n</testsuites>\n")


def _junit_case(classname: str, name: str, status: str, title: str, body: str, seconds: float) -> str:
    head = f'    <testcase classname={quoteattr(classname)} name={quoteattr(name)} time="{seconds:.3f}"'
    if status == "fail":
        inner = f'<failure message={quoteattr(title)}>{escape(body)}</failure>'
    elif status == "error":
        inner = f'<error message={quoteattr(title)}>{escape(body)}</error>'
    elif status == "skipped":
        inner = f'<skipped message={quoteattr(title)}/>'
    else:
        # warn/info/pass are passing testcases; the verdict is kept in system-out for the CI log.
        inner = f'<system-out>{escape(status.upper() + ": " + title + (chr(10) + body if body else ""))}</system-out>'
    return f"{head}>{inner}</testcase>"


def _junit_cases(f: Finding) -> list[str]:
    body = f.detail + (("\nFix: " + f.fix) if f.fix else "")
    cases = [_junit_case(f"mltriage.{f.step}", f.check, f.status, f.title, body, f.seconds)]
    for result in f.evidence.get("slices", []) if f.check == "errors.slice_tests" else []:
        if isinstance(result, dict) and "name" in result:
            status = result.get("status", "pass")
            cases.append(_junit_case("mltriage.errors.slice_tests", f"slice: {result['name']}", status,
                                     result.get("title", ""), result.get("detail", ""), 0.0))
    return cases


def render(run: dict, fmt: str, **kwargs) -> str:
    if fmt == "json":
        return to_json(run)
    if fmt == "markdown":
        return to_markdown(run)
    if fmt == "junit":
        return to_junit(run)
    return to_text(run, **kwargs)


def to_html(run: dict, notes: dict[str, str] | None = None, ticked: dict | None = None) -> str:
    """A self-contained HTML page: inline CSS, plots as preformatted text, no external assets."""
    import html

    findings = _printable_findings(run)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>mltriage report: {html.escape(run['project'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}"
        ".fail{color:#b00;font-weight:bold}.warn{color:#a60}.pass{color:#070}.error{color:#909}"
        ".info{color:#068}.skipped{color:#888}pre{background:#f4f4f4;padding:.5rem;overflow:auto}</style>",
        "</head><body>",
        f"<h1>mltriage report: {html.escape(run['project'])}</h1>",
        f"<p><b>Summary:</b> {html.escape(_summary_line(run['summary']))}</p>",
    ]
    for step, items in _by_step(findings).items():
        parts.append(f"<h2>{html.escape(STEP_TITLES[step])}</h2><table>")
        for f in items:
            parts.append(f"<tr><td class='{f.status}'>{f.status}</td><td><code>{html.escape(f.check)}</code></td>"
                         f"<td>{html.escape(f.title)}</td></tr>")
        parts.append("</table>")
        for f in items:
            if f.status in ("warn", "fail", "error"):
                parts.append(f"<h3 class='{f.status}'>{f.status.upper()}: {html.escape(f.title)}</h3>"
                             f"<p>{html.escape(f.detail).replace(chr(10), '<br>')}</p>")
                if f.fix:
                    parts.append(f"<p><b>Fix:</b> {html.escape(f.fix)}</p>")
                for plot in f.plots:
                    parts.append(f"<pre>{html.escape(plot_as_text(plot))}</pre>")
        if notes and notes.get(step):
            parts.append(f"<h4>Notes</h4><p>{html.escape(notes[step]).replace(chr(10), '<br>')}</p>")
        if ticked and ticked.get(step):
            parts.append("<h4>Checklist</h4><ul>" + "".join(f"<li>&#10003; {html.escape(t)}</li>"
                                                             for t in ticked[step]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_session(config, fmt: str) -> str:
    """The project's latest findings (newest per check across saved runs) with the session's notes
    and ticked items."""
    from ..engine.registry import in_catalog_order
    from ..findings import run_document
    from ..project.config import ProjectError
    from .state import STATE_DIR, load_findings, load_previous_run, read_json

    merged, _ = load_findings(config.root)
    if not merged:
        raise ProjectError(f"No saved run in {config.root / STATE_DIR / 'runs'}. Run `mltriage check "
                           f"{config.root}` (or the app) first, then export.")
    latest = load_previous_run(config.root) or {}
    run = run_document(latest.get("project", config.name), in_catalog_order(merged.values()),
                       version=latest.get("mltriage", ""))
    session, _ = read_json(config.root / STATE_DIR / "session.json")
    session = session if isinstance(session, dict) else {}
    notes = session.get("notes", {}) if isinstance(session.get("notes"), dict) else {}
    ticked = session.get("ticked", {}) if isinstance(session.get("ticked"), dict) else {}
    if fmt == "json":
        return to_json(dict(run, notes=notes, ticked=ticked))
    if fmt == "html":
        return to_html(run, notes, ticked)
    text = to_markdown(run, notes)
    if ticked:
        text += "\n## Checklist\n\n" + "\n".join(f"- [x] {item}" for items in ticked.values() for item in items) + "\n"
    return text
