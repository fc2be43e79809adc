"""Layout and start-up guards: checks/ never imports the UI; --help imports nothing heavy."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "pandas")


def modules_after(code: str) -> set[str]:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_checks_package_never_imports_ui_in_source():
    pattern = re.compile(r"^\s*(import|from)\s+(textual|textual_plotext|mltriage\.tui|tui)\b", re.M)
    offenders = [p.name for p in (ROOT / "checks").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_checks_and_registering_all_does_not_import_textual():
    loaded = modules_after("import mltriage.checks\nfrom mltriage.checks.engine.registry import all_checks\nall_checks()")
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_help_imports_no_heavy_library():
    loaded = modules_after("import sys\nsys.argv=['mltriage','--help']\nfrom mltriage.tui import cli\n"
                           "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass")
    assert not [m for m in HEAVY if m in loaded]


def test_console_script_help_runs():
    r = subprocess.run(["mltriage", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: mltriage" in r.stdout


def test_step_modules_import_nothing_heavy_at_top_level():
    loaded = modules_after("from mltriage.checks.engine.registry import all_checks\nall_checks()")
    assert not [m for m in HEAVY if m in loaded], "a checks module imports a heavy library at top level"


def test_readme_points_at_nothing_outside_the_repository():
    """The README is the front door of a fresh clone: every relative link resolves inside the checkout."""
    text = (ROOT / "README.md").read_text()
    assert "../" not in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    missing = [link for link in links if not link.startswith(("http://", "https://")) and not (ROOT / link).exists()]
    assert links and missing == []


def test_every_package_folder_is_listed_for_installation():
    """A package folder missing from pyproject's list works in an editable install and vanishes from a wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("checks", "mltriage.checks"), ("tui", "mltriage.tui")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set()
