"""Render a run as text, JSON (DESIGN §5, contract), Markdown or JUnit XML. Pure functions."""

from __future__ import annotations

import json
import textwrap
from xml.sax.saxutils import escape, quoteattr

from ..findings import Finding, PlotSpec
from ..wording import printable
from .input_examples import html_input_examples, shows_input_examples
from ..engine.registry import STEP_TITLES, STEPS

ICONS = {"pass": "PASS", "info": "INFO", "warn": "WARN", "fail": "FAIL", "error": "ERR ", "skipped": "SKIP"}
COLORS = {"pass": "32", "info": "36", "warn": "33", "fail": "31;1", "error": "35", "skipped": "2"}


# Control characters (ESC, BEL, backspace, C1 codes such as CSI) and the bidirectional overrides that can
# reorder what a reader sees: data must not be able to move the cursor, retitle or recolour the user's
# terminal, or disguise a line. They are shown as visible escapes instead. Newlines and tabs stay.
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
                if plot.kind == "line" and len(ys) > 2:
                    lines.append(f"  {'':>{min(len(s.name), 20)}}  {_sparkline(ys, plot.y_log)}"
                                 + ("  (log scale)" if plot.y_log else ""))
    return "\n".join(lines)


_SPARKS = "▁▂▃▄▅▆▇█"


def _sparkline(ys: list[float], log: bool = False, width: int = 48) -> str:
    """The shape of a series in one line of block characters (resampled to at most `width`)."""
    import math

    vals = [math.log10(y) if log and y > 0 else (y if not log else None) for y in ys]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return ""
    if len(vals) > width:
        vals = [vals[int(i * len(vals) / width)] for i in range(width)]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(_SPARKS[min(len(_SPARKS) - 1, int((v - lo) / span * len(_SPARKS)))] for v in vals)


def _terminal_width() -> int:
    """The terminal's width when stdout is one, else 80 (a pipe, a file, a CI log)."""
    import shutil
    import sys

    try:
        if sys.stdout.isatty():
            return max(40, shutil.get_terminal_size((80, 24)).columns)
    except (AttributeError, ValueError, OSError):
        pass
    return 80


def _with_causes(findings: list[Finding]) -> list[Finding]:
    """The findings with `caused_by` set (engine/causes.py) unless the run already carries it."""
    if not any(f.caused_by for f in findings):
        from ..engine.causes import assign_causes

        assign_causes(findings)
    return findings


def _skip_groups(findings: list[Finding]) -> list[tuple[str, str, list[str]]]:
    """[(reason, detail, [check ids])]: skipped findings with the same reason, once, in run order."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for f in findings:
        if f.status == "skipped":
            reason = f.title.strip() or "skipped"
            groups.setdefault(reason, (f.detail.strip(), []))[1].append(f.check)
    return [(reason, detail, ids) for reason, (detail, ids) in groups.items()]


def to_text(run: dict, width: int | None = None, color: bool = False, verbose: bool = False) -> str:
    """The run for a terminal or a log: likely causes first ("Start here"), then every finding by step
    (knock-ons folded to one line that names their cause), identical skip reasons once, the summary.
    Every line fits in `width` columns (default: the terminal's width, 80 when stdout is not one)."""
    from ..engine.causes import reason_for, start_here

    width = max(40, int(width or _terminal_width()))
    findings = _with_causes(_printable_findings(run))
    body = textwrap.TextWrapper(width=width, initial_indent="      ", subsequent_indent="      ",
                                break_on_hyphens=False)
    sub = textwrap.TextWrapper(width=width, initial_indent="        - ", subsequent_indent="          ",
                               break_on_hyphens=False)

    def paint(status: str, line: str) -> str:
        # Only the status word is coloured; it is the first 4 characters of a headline.
        return f"\033[{COLORS[status]}m{line[:4]}\033[0m{line[4:]}" if color else line

    def headline(f: Finding, indent: str = "") -> list[str]:
        text = f.title if len(f.title) <= 300 else textwrap.shorten(f.title, 300, placeholder=" ...")
        lines = textwrap.wrap(f"{ICONS[f.status]}  {f.check}: {text}", width=width - len(indent),
                              subsequent_indent="      ", break_on_hyphens=False) or [ICONS[f.status]]
        return [indent + paint(f.status, lines[0])] + [indent + line for line in lines[1:]]

    def paragraphs(*texts: str, limit: int = 12) -> list[str]:
        lines = []
        for para in texts:
            for line in para.strip().splitlines()[:limit] if para else []:
                lines.extend(body.wrap(line) or [""])
        return lines

    out = textwrap.wrap(f"mltriage {run.get('mltriage', '')} - project {printable(str(run['project']))}",
                        width=width) + [""]
    roots = start_here(findings)
    if roots:
        n = len(roots)
        out.append(f"Start here: {n} likely cause{'s' if n != 1 else ''}")
        for f, knock_ons in roots:
            out.extend(headline(f, indent="  "))
            if knock_ons:
                out.extend(sub.wrap(f"explains {len(knock_ons)} more: "
                                    + ", ".join(f"{k.check} ({k.status})" for k in knock_ons)))
        out.append("")
    for step, items in _by_step(findings).items():
        shown = [f for f in items if f.status != "skipped"]
        if not shown:
            continue
        out.append(f"== {STEP_TITLES[step]} ({step}) ==")
        for f in shown:
            out.extend(headline(f))
            if f.caused_by and not verbose:
                reason = reason_for(f.check, f.caused_by, f.status)
                out.extend(body.wrap(f"Likely a knock-on of {f.caused_by}" + (f": {reason}." if reason else ".")))
            elif f.status in ("warn", "fail", "error") or verbose:
                # verbose shows whole tables (the architecture summary has a line per layer)
                limit = (80 if verbose else 12) if f.status != "error" or verbose else 6
                out.extend(paragraphs(f.detail, ("Fix: " + f.fix) if f.fix else "", limit=limit))
            if f.rows_file:
                out.append(f"{body.initial_indent}Rows: {f.rows_file}")  # a path is never broken: it is copied
        out.append("")
    skips = _skip_groups(findings)
    if skips:
        out.append(f"Skipped ({sum(len(ids) for _, _, ids in skips)} checks):")
        for reason, detail, ids in skips:
            head = f"{ids[0]}: {reason}" if len(ids) == 1 else f"{len(ids)} checks: {reason}"
            lines = textwrap.wrap(f"{ICONS['skipped']}  {head}", width=width, subsequent_indent="      ",
                                  break_on_hyphens=False)
            out.extend([paint("skipped", lines[0])] + lines[1:])
            if len(ids) > 1:
                out.extend(body.wrap(", ".join(ids)))
            if verbose and detail and detail != reason:
                out.extend(paragraphs(detail))
        out.append("")
    out.extend(textwrap.wrap(f"Summary: {_summary_line(run['summary'])}", width=width))
    return "\n".join(out)


def _md(text: str) -> str:
    """One line of a Markdown table cell."""
    return " ".join(text.split()).replace("|", "/")


def to_markdown(run: dict, notes: dict[str, str] | None = None) -> str:
    from ..engine.causes import reason_for, start_here

    findings = _with_causes(_printable_findings(run))
    out = [f"# mltriage report: {printable(str(run['project']))}", "", f"**Summary:** {_summary_line(run['summary'])}", ""]
    roots = start_here(findings)
    if roots:
        n = len(roots)
        out += [f"## Start here: {n} likely cause{'s' if n != 1 else ''}", ""]
        for f, knock_ons in roots:
            out.append(f"- **{f.status}** `{f.check}`: {_md(f.title)}")
            for k in knock_ons:
                out.append(f"  - {k.status} `{k.check}`: {_md(k.title)}")
        out.append("")
    for step, items in _by_step(findings).items():
        out += [f"## {STEP_TITLES[step]}", "", "| status | check | finding |", "|---|---|---|"]
        for f in items:
            cause = f" (knock-on of `{f.caused_by}`)" if f.caused_by else ""
            out.append(f"| {f.status} | `{f.check}` | {_md(f.title)}{cause} |")
        out.append("")
        for f in items:
            if f.status in ("warn", "fail", "error"):
                out += [f"### {f.status.upper()}: `{f.check}` — {f.title}", ""]
                if f.caused_by:
                    reason = reason_for(f.check, f.caused_by, f.status)
                    out += [f"*Likely a knock-on of `{f.caused_by}`" + (f": {reason}.*" if reason else ".*"), ""]
                out += [f.detail.strip(), ""]
                if f.fix:
                    out += [f"**Fix:** {f.fix}", ""]
                if f.rows_file:
                    out += [f"**Rows:** `{f.rows_file}`", ""]
                for plot in f.plots:
                    out += ["```", plot_as_text(plot), "```", ""]
        if notes and notes.get(step):
            out += ["**Notes:**", "", notes[step].strip(), ""]
    return "\n".join(out)


def to_junit(run: dict, fail_on: str = "fail") -> str:
    """One testsuite per step, one testcase per check; slice tests as their own testcases.

    Every finding at or above `fail_on` is a `<failure>` (warn too with fail_on="warn"), every `error`
    an `<error>` (DESIGN §4: a check that could not run is not a pass), `skipped` is `<skipped>`; the
    detail and fix are the body. Passing verdicts keep their text in `<system-out>` for the CI log."""
    from ..vocab import SEVERITY

    threshold = SEVERITY[fail_on]

    def case(classname: str, name: str, status: str, title: str, body: str, seconds: float) -> str:
        head = f'    <testcase classname={quoteattr(classname)} name={quoteattr(name)} time="{seconds:.3f}"'
        if status == "error":
            inner = f'<error message={quoteattr(title)} type="error">{escape(body)}</error>'
        elif status == "skipped":
            inner = f'<skipped message={quoteattr(title)}/>'
        elif SEVERITY.get(status, 0) >= threshold:
            inner = f'<failure message={quoteattr(title)} type={quoteattr(status)}>{escape(body)}</failure>'
        else:
            inner = f'<system-out>{escape(status.upper() + ": " + title + (chr(10) + body if body else ""))}</system-out>'
        return f"{head}>{inner}</testcase>"

    def cases_of(f: Finding) -> list[str]:
        body = f"{f.status.upper()}: {f.title}" + (("\n\n" + f.detail) if f.detail else "") \
            + (("\n\nFix: " + f.fix) if f.fix else "")
        found = [case(f"mltriage.{f.step}", f.check, f.status, f.title, body, f.seconds)]
        for result in f.evidence.get("slices", []) if f.check == "errors.slice_tests" else []:
            if isinstance(result, dict) and "name" in result:
                status = result.get("status", "pass")
                status = status if status in SEVERITY else "pass"
                found.append(case("mltriage.errors.slice_tests", f"slice: {result['name']}", status,
                                  printable(str(result.get("title", ""))), printable(str(result.get("detail", ""))),
                                  0.0))
        return found

    findings = _printable_findings(run)
    suites = []
    for step, items in _by_step(findings).items():
        cases = []
        for f in items:
            cases.extend(cases_of(f))
        counts = {"failures": sum('<failure' in c for c in cases), "errors": sum('<error' in c for c in cases),
                  "skipped": sum('<skipped' in c for c in cases)}
        time_total = sum(f.seconds for f in items)
        suites.append(
            f'  <testsuite name={quoteattr("mltriage." + step)} tests="{len(cases)}" failures="{counts["failures"]}" '
            f'errors="{counts["errors"]}" skipped="{counts["skipped"]}" time="{time_total:.3f}">\n'
            + "\n".join(cases) + "\n  </testsuite>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name={quoteattr("mltriage " + printable(str(run["project"])))}>\n' + "\n".join(suites) + "\n</testsuites>\n")


def render(run: dict, fmt: str, fail_on: str = "fail", **kwargs) -> str:
    """The run in one of the CLI's formats; `fail_on` decides which JUnit testcases are failures."""
    if fmt == "json":
        return to_json(run)
    if fmt == "markdown":
        return to_markdown(run)
    if fmt == "junit":
        return to_junit(run, fail_on=fail_on)
    return to_text(run, **kwargs)


def to_html(run: dict, notes: dict[str, str] | None = None, ticked: dict | None = None) -> str:
    """A self-contained HTML page: inline CSS, every plot an inline SVG chart, no script and no external asset."""
    import html

    findings = _printable_findings(run)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>mltriage report: {html.escape(run['project'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}"
        ".fail{color:#b00;font-weight:bold}.warn{color:#a60}.pass{color:#070}.error{color:#909}"
        ".info{color:#068}.skipped{color:#888}pre{background:#f4f4f4;padding:.5rem;overflow:auto}"
        "figure.chart{margin:1rem 0}figure.chart svg{max-width:100%;height:auto;border:1px solid #ddd}"
        "figure.chart figcaption{font-size:.8rem;color:#555}"
        "figure.example{display:inline-block;margin:.3rem;text-align:center;font-size:.8rem;max-width:8rem;"
        "overflow-wrap:anywhere;vertical-align:top}"
        "figure.example img{width:64px;height:64px;image-rendering:pixelated;border:1px solid #ddd}"
        ".pad{color:#999}.miss,.wrong{color:#b00}.right{color:#070}</style>",
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
                if f.rows_file:
                    parts.append(f"<p><b>Rows:</b> <code>{html.escape(f.rows_file)}</code></p>")
                for plot in f.plots:
                    parts.append(_html_chart(plot))
            elif f.plots:
                # pass/info findings keep their charts too, folded away under the finding's title
                parts.append(f"<details class='charts'><summary><code>{html.escape(f.check)}</code>: "
                             f"{html.escape(f.title)}</summary>" + "".join(_html_chart(p) for p in f.plots)
                             + "</details>")
            if shows_input_examples(f.check, f.evidence):
                parts.append(html_input_examples(f.check, f.title, f.evidence))
        if notes and notes.get(step):
            parts.append(f"<h4>Notes</h4><p>{html.escape(notes[step]).replace(chr(10), '<br>')}</p>")
        if ticked and ticked.get(step):
            parts.append("<h4>Checklist</h4><ul>" + "".join(f"<li>&#10003; {html.escape(t)}</li>"
                                                             for t in ticked[step]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_chart(plot: PlotSpec) -> str:
    """One plot as an inline SVG figure, its text summary kept as the caption for readers without graphics."""
    import html

    from .svg import plot_to_svg

    return (f"<figure class='chart'>{plot_to_svg(plot)}<figcaption><details><summary>as text</summary><pre>"
            f"{html.escape(plot_as_text(plot))}</pre></details></figcaption></figure>")


def markdown_charts(markdown: str, run: dict, md_path) -> str:
    """Write every plot of `run`'s warn/fail/error findings as an SVG file in `<md stem>_files/` next to
    `md_path`, and link each from `markdown` (the text summary stays under the picture). Returns the new
    Markdown. Only the chart files it names are written (atomically); nothing else in the folder is touched."""
    from pathlib import Path

    from .svg import plot_to_svg, svg_filename

    md_path = Path(md_path)
    folder = md_path.parent / f"{md_path.stem}_files"
    index = 0
    for f in _printable_findings(run):
        if f.status not in ("warn", "fail", "error"):
            continue
        for plot in f.plots:
            block = "```\n" + plot_as_text(plot) + "\n```"
            at = markdown.find(block)
            while at >= 0 and markdown[:at].endswith(".svg)\n\n"):  # that copy already has its picture
                at = markdown.find(block, at + len(block))
            if at < 0:
                continue
            index += 1
            name = svg_filename(index, plot, f.check)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / (name + ".tmp")
                tmp.write_text(plot_to_svg(plot), encoding="utf-8")
                tmp.replace(folder / name)
            except OSError:  # the folder cannot be written: the report keeps its text plots
                return markdown
            alt = plot.title.replace("[", "(").replace("]", ")")
            link = f"![{alt}]({folder.name}/{name})\n\n"
            markdown = markdown[:at] + link + markdown[at:]
    return markdown


def _regular_file_target(output) -> bool:
    """Whether `output` names a file a report can have a `<stem>_files/` folder beside (not stdout, a FIFO or a
    device such as /dev/stdout)."""
    from pathlib import Path

    if output is None or str(output) in ("", "-"):
        return False
    path = Path(output).absolute()
    if str(path).startswith(("/dev/", "/proc/")):  # /dev/stdout may resolve to a file: it is still a stream
        return False
    return (path.is_file() or not path.exists()) and path.parent.is_dir()


def render_session(config, fmt: str, output=None) -> str:
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
    if _regular_file_target(output):
        text = markdown_charts(text, run, output)
    if ticked:
        text += "\n## Checklist\n\n" + "\n".join(f"- [x] {item}" for items in ticked.values() for item in items) + "\n"
    return text
