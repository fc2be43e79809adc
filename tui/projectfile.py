"""Edit mltriage.toml from the app with tomlkit, keeping the user's comments and layout.

The new text is validated with the project loader before it replaces the file; when it would not
load, the file is left as it was and the loader's message is returned.
"""

from __future__ import annotations

from pathlib import Path

from mltriage.checks.project.config import ProjectConfig, ProjectError, load_project
from mltriage.checks.io.state import atomic_write_text


def set_project_keys(text: str, values: dict[str, str]) -> str:
    """The file text with [project] keys set; a missing [project] table is added at the top."""
    import tomlkit

    doc = tomlkit.parse(text)
    if "project" in doc:
        table = doc["project"]
        for key, value in values.items():
            table[key] = value
        return tomlkit.dumps(doc)
    table = tomlkit.table()
    for key, value in values.items():
        table[key] = value
    fresh = tomlkit.document()
    fresh["project"] = table
    head = tomlkit.dumps(fresh).rstrip("\n") + "\n\n"
    # Keep a leading comment block (a file header) above the new table.
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and lines[n].lstrip().startswith("#"):
        n += 1
    return "".join(lines[:n]) + ("\n" if n else "") + head + "".join(lines[n:]).lstrip("\n")


def write_task_metric(config: ProjectConfig, task: str, metric: str) -> ProjectConfig:
    """Write [project] task and metric; returns the reloaded config. Raises ProjectError, file untouched."""
    path = Path(config.path)
    old = path.read_text(encoding="utf-8")
    new = set_project_keys(old, {"task": task, "metric": metric})
    if new == old:
        return config
    atomic_write_text(path, new)
    try:
        return load_project(path)
    except ProjectError:
        atomic_write_text(path, old)
        raise
