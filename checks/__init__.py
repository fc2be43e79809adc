"""mltriage's diagnostic library: checks, findings and the engine that runs them.

Never imports textual or anything of mltriage.tui (a test enforces it). Heavy libraries (pandas,
torch, scikit-learn) are imported inside the functions that need them.
"""

from .findings import Finding, PlotSpec, Series, SkipCheck, errored, fail, info, passed, skipped, warn
from .project import ProjectConfig, ProjectError, load_project
from .registry import CATALOG, CATALOG_IDS, STEP_TITLES, STEPS, check

__version__ = "0.1.0"

__all__ = [
    "CATALOG", "CATALOG_IDS", "STEPS", "STEP_TITLES", "Finding", "PlotSpec", "ProjectConfig",
    "ProjectError", "Series", "SkipCheck", "check", "errored", "fail", "info", "load_project", "passed",
    "skipped", "warn",
]
