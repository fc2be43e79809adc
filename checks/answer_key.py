"""Answer keys of the sample projects (DESIGN §7, contract): `buggy/bugs.toml` `[[bug]]` tables.

Used by the detection test and benchmark (is every planted bug flagged by its check?) and by the
tour (which bugs did the learner find, miss, or suspect wrongly?).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .project import ProjectError

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
    def ids(self) -> list[str]:
        return [self.check] + list(self.also)


def load_answer_key(buggy_dir: Path) -> list[Bug]:
    path = Path(buggy_dir) / "bugs.toml"
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
        bugs.append(Bug(check=table["check"], summary=table["summary"], also=list(table.get("also", [])),
                        where=table.get("where", ""), explain=table.get("explain", ""), fix=table.get("fix", ""),
                        pending=bool(table.get("pending", False)), issue=str(table.get("issue", ""))))
    return bugs


def flagged_by(bug: Bug, findings: list[dict]) -> list[str]:
    """Ids of the findings (warn or fail) that flag this bug."""
    ids = set(bug.ids)
    return [f["check"] for f in findings if f["check"] in ids and f["status"] in FLAGGING]


@dataclass
class HuntScore:
    found: list[Bug]
    missed: list[Bug]
    false_suspicions: list[str]   # check ids the learner marked that match no planted bug


def score_hunt(bugs: list[Bug], marked_checks: list[str]) -> HuntScore:
    """Compare the check ids a learner marked as 'this is a bug' with the answer key."""
    marked = set(marked_checks)
    found = [b for b in bugs if marked & set(b.ids)]
    missed = [b for b in bugs if not marked & set(b.ids)]
    explained = {i for b in bugs for i in b.ids}
    return HuntScore(found=found, missed=missed, false_suspicions=sorted(marked - explained))


def sample_projects_root() -> Path | None:
    """The sample_projects folder of this checkout (None when mltriage is installed without it)."""
    here = Path(__file__).resolve().parent.parent / "sample_projects"
    return here if here.is_dir() else None


def sample_variants(root: Path | None = None) -> list[tuple[str, Path, Path]]:
    """(name, buggy_dir, fixed_dir) for every sample project with both variants."""
    root = root or sample_projects_root()
    if root is None:
        return []
    return [(p.name, p / "buggy", p / "fixed") for p in sorted(root.iterdir())
            if (p / "buggy" / "mltriage.toml").exists() and (p / "fixed" / "mltriage.toml").exists()]
