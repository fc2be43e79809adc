"""mltriage's diagnostic library: checks, findings and the engine that runs them.

Never imports textual or anything of mltriage.tui (a test enforces it). Heavy libraries (pandas,
torch, scikit-learn) are imported inside the functions that need them.
"""

from .findings import Finding, PlotSpec, Series, SkipCheck, errored, fail, info, passed, skipped, warn
from .project.config import ProjectConfig, ProjectError, load_project
from .engine.registry import CATALOG, CATALOG_IDS, STEP_TITLES, STEPS, check

from mltriage import __version__  # noqa: E402  (the one version string)

__all__ = [
    "CATALOG", "CATALOG_IDS", "STEPS", "STEP_TITLES", "Finding", "PlotSpec", "ProjectConfig",
    "ProjectError", "Series", "SkipCheck", "check", "errored", "fail", "info", "load_project", "passed",
    "skipped", "warn", "__version__",
]
