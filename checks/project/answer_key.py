"""Answer keys of the sample projects (DESIGN §7, contract): `buggy/bugs.toml` `[[bug]]` tables.

Used by the detection test and benchmark (is every planted bug flagged by its check?) and by the
tour (tui/hunt.py: which bugs did the learner find, miss, or suspect wrongly?).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .config import ProjectError

FLAGGING = ("warn", "fail")


@dataclass
class Bug:
    check: str
    summary: str
    also: list[str] = field(default_factory=list)
    where: str = ""
    explain: str = ""
    fix: str = ""
    pending: bool = False   # no check detects it yet; `issue` names the issue that will deliver it
    issue: str = ""

    @property
    def ids(self) -> set[str]:
        """The check ids that count as flagging this bug."""
        return {self.check, *self.also}


def load_answer_key(buggy_dir: Path) -> list[Bug]:
    return parse_answer_key(Path(buggy_dir) / "bugs.toml")[0]


def parse_answer_key(path: Path) -> tuple[list[Bug], dict]:
    """The [[bug]] tables of an answer key file and its other top-level keys (story, difficulty, ...)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path}: no answer key (bugs.toml) for this project.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: is not valid TOML: {exc}.") from None
    bugs = []
    for i, table in enumerate(doc.get("bug", []), start=1):
        if "check" not in table or "summary" not in table:
            raise ProjectError(f"{path}: [[bug]] #{i} needs check and summary.")
        bugs.append(Bug(check=table["check"], summary=str(table["summary"]),
                        also=[a for a in table.get("also", []) if isinstance(a, str)],
                        where=str(table.get("where", "")), explain=str(table.get("explain", "")).strip(),
                        fix=str(table.get("fix", "")).strip(), pending=bool(table.get("pending", False)),
                        issue=str(table.get("issue", ""))))
    return bugs, {k: v for k, v in doc.items() if k != "bug"}


def flagged_by(bug: Bug, findings: list[dict]) -> list[str]:
    """Ids of the findings (warn or fail) that flag this bug."""
    ids = set(bug.ids)
    return [f["check"] for f in findings if f["check"] in ids and f["status"] in FLAGGING]


def sample_projects_root() -> Path | None:
    """The sample_projects folder: $MLTRIAGE_SAMPLES, the checkout this package runs from, or under the
    current directory (None when mltriage is installed without it)."""
    import os

    candidates = [Path(os.environ["MLTRIAGE_SAMPLES"])] if os.environ.get("MLTRIAGE_SAMPLES") else []
    candidates += [parent / "sample_projects" for parent in Path(__file__).resolve().parents[:4]]
    candidates.append(Path.cwd() / "sample_projects")
    return next((folder for folder in candidates if folder.is_dir()), None)


def sample_variants(root: Path | None = None) -> list[tuple[str, Path, Path]]:
    """(name, buggy_dir, fixed_dir) for every sample project with both variants."""
    root = root or sample_projects_root()
    if root is None:
        return []
    return [(p.name, p / "buggy", p / "fixed") for p in sorted(root.iterdir())
            if (p / "buggy" / "mltriage.toml").exists() and (p / "fixed" / "mltriage.toml").exists()]
