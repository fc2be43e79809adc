"""mltriage's diagnostic library: checks, findings and the engine that runs them.

Never imports textual or anything of mltriage.tui (a test enforces it). Heavy libraries (pandas,
torch, scikit-learn) are imported inside the functions that need them. The names below load on first use
(PEP 562): importing one submodule, as `mltriage --help` does, must not pay for the project-file parser.
"""

from __future__ import annotations

import importlib

from mltriage import __version__  # noqa: F401  (the one version string)

_EXPORTS = {
    "Finding": "findings", "PlotSpec": "findings", "Series": "findings", "SkipCheck": "findings",
    "errored": "findings", "fail": "findings", "info": "findings", "passed": "findings", "skipped": "findings",
    "warn": "findings", "RowTable": "findings",
    "ProjectConfig": "project.config", "ProjectError": "project.config", "load_project": "project.config",
    "CATALOG": "engine.registry", "CATALOG_IDS": "engine.registry", "STEP_TITLES": "engine.registry",
    "STEPS": "engine.registry", "check": "engine.registry",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
