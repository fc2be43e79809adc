"""Charts in reports (issue 18 item 3): SVG rendering of every plot kind, self-contained HTML, Markdown chart
files, and the HTML drawn by a real headless browser (skipped with the reason when no Chromium is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mltriage.checks.findings import Finding, PlotSpec, Series, run_document
from mltriage.checks.io.report import markdown_charts, to_html, to_markdown
from mltriage.checks.io.svg import linear_ticks, log_ticks, plot_to_svg


def _plots() -> list[PlotSpec]:
    epochs = list(range(1, 21))
    return [
        PlotSpec(kind="line", title="loss curves", x_label="epoch", y_label="loss", y_log=True,
                 series=[Series("train", epochs, [2.0 * 0.8 ** e + 0.553 for e in epochs]),
                         Series("valid", epochs, [2.1 * 0.85 ** e + 0.6 for e in epochs])]),
        PlotSpec(kind="line", title="lr range test", x_label="learning rate", y_label="training loss", x_log=True,
                 series=[Series("loss", [1e-6 * 10 ** (i / 5) for i in range(30)],
                                [2.3 - 0.05 * i if i < 22 else 5.0 for i in range(30)])]),
        PlotSpec(kind="scatter", title="target along the file", x_label="row", y_label="y",
                 series=[Series("y", list(range(200)), [(i * 37 % 101) / 10 for i in range(200)])]),
        PlotSpec(kind="bar", title="per-class recall", x_label="class", y_label="recall",
                 series=[Series("recall", ["neg", "neu", "pos"], [0.9, 0.4, 0.85])]),
        PlotSpec.histogram("feature x by split", {"train": [i % 17 for i in range(300)],
                                                  "valid": [(i % 13) + 3 for i in range(100)]}, bins=10),
        PlotSpec(kind="heatmap", title="confusion", matrix=[[50, 3, 1], [4, 30, 9], [0, 5, 60]],
                 row_labels=["neg", "neu", "pos"], col_labels=["neg", "neu", "pos"], x_label="predicted",
                 y_label="true"),
    ]


def _run(plots=None) -> dict:
    findings = [Finding(status="warn", title=f"finding {i}", detail="detail", fix="fix", plots=[p],
                        check=f"data.example_{i}", step="data") for i, p in enumerate(plots or _plots())]
    return run_document("charts", findings, version="0.1.0")


@pytest.mark.parametrize("plot", _plots(), ids=lambda p: p.kind + ":" + p.title)
def test_every_kind_is_well_formed_svg_with_axes_and_title(plot):
    svg = plot_to_svg(plot)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = [t.text or "" for t in root.iter() if t.tag.endswith("text")]
    assert plot.title in texts
    assert len(texts) >= 5  # title, tick labels, axis labels
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_legend_names_every_series():
    svg = plot_to_svg(_plots()[0])
    assert ">train<" in svg and ">valid<" in svg


def test_log_ticks_make_the_loss_floor_readable():
    ticks = log_ticks(0.553, 2.2)
    assert 0.6 in [round(t, 6) for t in ticks] or 0.5 in [round(t, 6) for t in ticks]
    assert all(len(f"{t:g}") <= 4 for t in ticks)
    wide = log_ticks(1e-6, 1e-1)
    assert wide[0] == pytest.approx(1e-6) and len(wide) <= 9


def test_epoch_axis_has_integer_ticks_only():
    plot = PlotSpec(kind="line", title="short run", x_label="epoch", y_label="loss",
                    series=[Series("train", [1, 2, 3], [1.0, 0.8, 0.7])])
    svg = plot_to_svg(plot)
    root = ET.fromstring(svg)
    bottom_ticks = [t.text for t in root.iter() if t.tag.endswith("text") and t.get("font-size") == "10"
                    and t.get("text-anchor") == "middle"]
    assert bottom_ticks and all(re.fullmatch(r"-?\d+", s or "") for s in bottom_ticks), bottom_ticks
    assert linear_ticks(1, 3, integer=True) == [1, 2, 3]


def test_odd_data_draws_a_note_not_a_traceback():
    for plot in (PlotSpec(kind="line", title="empty"),
                 PlotSpec(kind="line", title="nan", series=[Series("a", [1, 2], [float("nan"), None])]),
                 PlotSpec(kind="heatmap", title="no matrix"),
                 PlotSpec(kind="line", title="log of negatives", y_log=True, series=[Series("a", [1, 2], [-1, 0])])):
        ET.fromstring(plot_to_svg(plot))


def test_html_inlines_one_svg_per_plot_and_fetches_nothing():
    page = to_html(_run())
    assert page.count("<svg") == len(_plots())
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"(src|href)=['\"]https?:", page)


def test_markdown_writes_chart_files_next_to_the_report(tmp_path):
    run = _run()
    md = tmp_path / "report.md"
    (tmp_path / "report_files").mkdir()
    (tmp_path / "report_files" / "mine.txt").write_text("keep me")
    text = markdown_charts(to_markdown(run), run, md)
    files = sorted((tmp_path / "report_files").glob("*.svg"))
    assert len(files) == len(_plots())
    for f in files:
        assert f"(report_files/{f.name})" in text
        ET.fromstring(f.read_text())
    assert (tmp_path / "report_files" / "mine.txt").read_text() == "keep me"
    assert "[plot] loss curves" in text  # the text summary stays


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_pixels(path: Path):
    from PIL import Image

    return Image.open(path).convert("L")


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (apt-get install chromium) for the browser test")
def test_html_charts_are_drawn_in_a_headless_browser(tmp_path):
    pytest.importorskip("PIL", reason="Pillow is needed to read the screenshot")
    import numpy as np

    # Every chart stacked at a known place (one per 360 px band), so each chart's plot area is known exactly.
    plots = _plots()
    page = tmp_path / "charts.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}svg{display:block}"
                    "</style></head><body>" + "".join(plot_to_svg(p) for p in plots) + "</body></html>",
                    encoding="utf-8")
    img = np.asarray(_png_pixels(_screenshot(page, tmp_path, 700, 360 * len(plots))), dtype=float)
    for i, plot in enumerate(plots):
        area = img[360 * i + 36:360 * i + 304, 70:620]  # the plot area (margins of checks/io/svg.py)
        assert area.std() > 5, f"{plot.title}: chart area is blank (std {area.std():.2f})"
        assert (area < 200).mean() > 0.005, f"{plot.title}: hardly anything drawn"

    # The full report too: it renders and is not blank.
    report = tmp_path / "report.html"
    report.write_text(to_html(_run()), encoding="utf-8")
    img = np.asarray(_png_pixels(_screenshot(report, tmp_path, 1000, 2400)), dtype=float)
    assert img.std() > 5


def test_render_session_markdown_with_output_writes_charts(tmp_path):
    from app_fixtures import write_fixed_run, write_tiny_project

    from mltriage.checks.io.report import render_session
    from mltriage.checks.project.config import load_project

    root = write_tiny_project(tmp_path / "tiny")
    write_fixed_run(root)
    config = load_project(root)
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    text = render_session(config, "markdown", output=out)
    svgs = sorted((out.parent / "report_files").glob("*.svg"))
    assert len(svgs) == 1 and f"](report_files/{svgs[0].name})" in text  # the warn finding's lr curve
    assert "[plot] loss vs learning rate" in text
    plain = render_session(config, "markdown")  # to stdout: the text summary only, no files
    assert ".svg)" not in plain and "[plot] loss vs learning rate" in plain
    page = render_session(config, "html")
    assert page.count("<svg") == 3  # every plot of the run, pass/info ones folded under <details>


def _sample_run(name: str, variant: str = "buggy") -> dict:
    """The problem and data findings of a sample project, run in-process."""
    from helpers import context_for, run_check

    from mltriage.checks.engine.registry import checks_for

    root = Path(__file__).resolve().parent.parent / "sample_projects" / name / variant
    ctx = context_for(root)
    findings = [run_check(ctx, spec.id) for spec in checks_for(["problem", "data"])]
    return run_document(name, findings, version="0.1.0")


def test_sample_project_html_has_a_chart_for_every_plot():
    run = _sample_run("tabular")
    plots = sum(len(f.get("plots", [])) for f in run["findings"])
    assert plots >= 3
    assert to_html(run).count("<svg") == plots


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (apt-get install chromium) for the browser test")
def test_sample_project_html_report_in_a_headless_browser(tmp_path):
    pytest.importorskip("PIL", reason="Pillow is needed to read the screenshot")
    import numpy as np

    run = _sample_run("tabular")
    plots = [PlotSpec.from_dict(p) for f in run["findings"] for p in f.get("plots", [])]
    # Every chart of the run stacked at known places (one per 360 px band), then checked one by one.
    stacked = tmp_path / "stacked.html"
    stacked.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}svg{display:block}"
                       "</style></head><body>" + "".join(plot_to_svg(p) for p in plots) + "</body></html>",
                       encoding="utf-8")
    shot = _screenshot(stacked, tmp_path, 700, 360 * len(plots))
    img = np.asarray(_png_pixels(shot), dtype=float)
    for i, plot in enumerate(plots):
        area = img[360 * i + 36:360 * i + 304, 70:620]
        assert area.std() > 5 and (area < 200).mean() > 0.003, f"{plot.title}: blank chart"
    # The report itself opens and draws (charts folded under <details> opened).
    report = tmp_path / "report.html"
    report.write_text(to_html(run).replace("<details class='charts'>", "<details class='charts' open>"),
                      encoding="utf-8")
    img = np.asarray(_png_pixels(_screenshot(report, tmp_path, 1000, 4000)), dtype=float)
    assert img.std() > 5 and ((img < 200).mean(axis=1) > 0.02).sum() > 200


def _screenshot(page: Path, tmp_path: Path, width: int, height: int) -> Path:
    shot = page.with_suffix(".png")
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", "--disable-background-networking",
                           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", f"--screenshot={shot}",
                           f"--window-size={width},{height}", page.as_uri()], capture_output=True, text=True,
                          timeout=180)
    assert shot.exists(), proc.stderr[-2000:]
    return shot


def test_cli_report_html_end_to_end(tmp_path):
    import sys

    from app_fixtures import write_fixed_run, write_tiny_project

    root = write_tiny_project(tmp_path / "tiny")
    write_fixed_run(root)
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "mltriage.tui.cli", "report", str(root), "--format", "html",
                        "--output", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "Traceback" not in r.stderr


def test_markdown_charts_never_write_beside_a_device(tmp_path):
    from mltriage.checks.io.report import _regular_file_target

    assert not _regular_file_target("/dev/stdout") and not _regular_file_target("-")
    assert not _regular_file_target(None) and not _regular_file_target(tmp_path / "missing" / "r.md")
    assert _regular_file_target(tmp_path / "r.md")
