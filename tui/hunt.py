"""Bug hunts on the sample projects: exercises, answer keys, scoring and the tour's saved progress.

Pure logic, standard library only; tui/tour.py draws it. An exercise is a `sample_projects/<name>/buggy`
folder with its answer key `bugs.toml` (DESIGN §7) and a `fixed/` twin. The user marks findings as
bugs; a mark finds a planted bug when its check id is the bug's `check` or in its `also` list.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mltriage.checks.project.answer_key import Bug, parse_answer_key, sample_projects_root
from mltriage.checks.project.config import ProjectError
from mltriage.checks.io.state import atomic_write_json, read_json

# A diff of a data file can run to thousands of lines: show the start, say how much was left out.
DIFF_MAX_LINES = 40
DIFF_MAX_BYTES = 2_000_000


def samples_root() -> Path | None:
    """The sample_projects folder (one rule for the tour and the benchmarks: checks' answer_key)."""
    return sample_projects_root()


def sample_projects(root: Path | None = None) -> list[Path]:
    """Every sample project variant folder holding a mltriage.toml, buggy before fixed."""
    root = root or samples_root()
    if root is None:
        return []
    return sorted(p.parent for p in root.glob("*/*/mltriage.toml"))


@dataclass
class Exercise:
    name: str              # the sample's folder name
    buggy: Path
    fixed: Path | None
    story: str
    difficulty: str
    bugs: list[Bug]


def load_bugs(path: Path) -> tuple[list[Bug], dict]:
    """The [[bug]] tables of an answer key and its other top-level keys."""
    return parse_answer_key(path)


def _story_from_readme(readme: Path) -> str:
    """The first sentence-like line after the heading; the heading's subtitle when that is all there is."""
    try:
        lines = [ln.strip() for ln in readme.read_text(encoding="utf-8").splitlines()]
    except OSError:
        return ""
    heading = next((ln for ln in lines if ln.startswith("#")), "")
    subtitle = heading.lstrip("# ").split("—", 1)[-1].split(" - ", 1)[-1].strip() if heading else ""
    return subtitle or next((ln for ln in lines if ln and not ln.startswith("#")), "")


def _index_table(root: Path) -> dict[str, dict[str, str]]:
    """Rows of the table in sample_projects/README.md keyed by project name: {column: cell}.

    Only the table is read: the README's prose below it names the planted bugs (spoilers).
    """
    try:
        text = (root / "README.md").read_text(encoding="utf-8")
    except OSError:
        return {}
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        record = dict(zip(header, cells))
        match = re.search(r"[A-Za-z0-9_-]+", record.get("project", cells[0]))
        if match:
            rows[match.group(0)] = record
    return rows


def difficulty_of(bugs: list[Bug], meta: dict, listed: str = "") -> str:
    """The key's or the index's difficulty; otherwise from how many bugs and steps are involved."""
    if isinstance(meta.get("difficulty"), str):
        return meta["difficulty"]
    if listed:
        return listed
    steps = {b.check.split(".", 1)[0] for b in bugs}
    if len(bugs) <= 2 and len(steps) <= 1:
        return "easy"
    if len(bugs) <= 3:
        return "medium"
    return "hard"


def exercises(root: Path | None = None) -> list[Exercise]:
    root = root or samples_root()
    if root is None:
        return []
    index = _index_table(root)
    found = []
    for key in sorted(root.glob("*/buggy/bugs.toml")):
        buggy = key.parent
        name = buggy.parent.name
        try:
            bugs, meta = load_bugs(key)
        except (OSError, ProjectError):
            continue
        fixed = buggy.parent / "fixed"
        row = index.get(name, {})
        story = (row.get("story") or (meta.get("story") if isinstance(meta.get("story"), str) else "")
                 or _story_from_readme(buggy / "README.md") or f"{len(bugs)} planted bugs")
        found.append(Exercise(name=name, buggy=buggy, fixed=fixed if fixed.is_dir() else None, story=story,
                              difficulty=difficulty_of(bugs, meta, row.get("difficulty", "")), bugs=bugs))
    return found


# --- scoring -----------------------------------------------------------------------------------
@dataclass
class Score:
    found: list[tuple[Bug, list[str]]]     # each bug with the marked check ids that caught it
    missed: list[Bug]
    false_marks: list[str]                 # marked check ids that match no planted bug

    @property
    def summary(self) -> str:
        total = len(self.found) + len(self.missed)
        extra = f", {len(self.false_marks)} false suspicion{'s' if len(self.false_marks) != 1 else ''}"
        return f"found {len(self.found)} of {total} planted bugs{extra}"


def score(bugs: list[Bug], marked: list[str] | set[str]) -> Score:
    marked = set(marked)
    found, missed = [], []
    for bug in bugs:
        hits = sorted(marked & bug.ids)
        (found.append((bug, hits)) if hits else missed.append(bug))
    matched = set().union(*(b.ids for b in bugs)) if bugs else set()
    return Score(found=found, missed=missed, false_marks=sorted(marked - matched))


def where_file(where: str) -> str:
    """'model.py: build_model' -> 'model.py'; 'mltriage.toml: [model] lr' -> 'mltriage.toml'."""
    return where.split(":", 1)[0].strip()


def bug_diff(exercise: Exercise, bug: Bug) -> str:
    """A unified diff of the file named in `where` between buggy/ and fixed/ ('' when not comparable)."""
    if exercise.fixed is None or not bug.where:
        return ""
    name = where_file(bug.where)
    before, after = exercise.buggy / name, exercise.fixed / name
    if not (before.is_file() and after.is_file()):
        return ""
    if before.stat().st_size > DIFF_MAX_BYTES or after.stat().st_size > DIFF_MAX_BYTES:
        return f"({name} is too large to diff here; compare buggy/{name} with fixed/{name})"
    try:
        a = before.read_text(encoding="utf-8").splitlines()
        b = after.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    span = _anchor_span(a, bug.where.split(":", 1)[1].strip() if ":" in bug.where else "")
    # Data rows are long and their neighbours say nothing: no context lines, rows cut to a screen width.
    data_file = name.endswith((".csv", ".tsv", ".jsonl", ".txt"))
    lines = [ln if len(ln) <= 120 else ln[:119] + "…"
             for ln in _diff_lines(a, b, name, span, context=0 if data_file else 2)]
    if len(lines) > DIFF_MAX_LINES:
        lines = lines[:DIFF_MAX_LINES] + [f"... ({len(lines) - DIFF_MAX_LINES} more diff lines)"]
    return "\n".join(lines)


def _anchor_span(lines: list[str], anchor: str) -> tuple[int, int] | None:
    """Line range of the function, class or TOML table named by `where`'s anchor.

    'build_model' -> `def build_model`; 'DigitCNN.__init__ (...)' -> `class DigitCNN`;
    '[model] lr' -> the [model] table. None when the anchor is not found.
    """
    if not anchor:
        return None
    word = anchor.split()[0]
    toml = word.startswith("[")
    name = word if toml else word.split(".")[0].split("(")[0]
    for i, line in enumerate(lines):
        head = line.strip()
        found = head.startswith(name) if toml else (
            not line[:1].isspace() and re.match(rf"(async\s+)?(def|class)\s+{re.escape(name)}\b", head))
        if not found:
            continue
        end = i + 1
        while end < len(lines):
            nxt = lines[end]
            if toml and nxt.strip().startswith("["):
                break
            if not toml and nxt[:1] not in ("", " ", "\t", "#", ")", "]", "}"):
                break
            end += 1
        return i, end
    return None


def _diff_lines(a: list[str], b: list[str], name: str, span: tuple[int, int] | None,
                context: int = 2) -> list[str]:
    """Unified diff; with a span, only the changes inside it (other bugs' changes in the file stay hidden)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if span is not None:
        inside = [op for op in changes if op[1] < span[1] and op[2] >= span[0]]
        changes = inside or changes
    low, high = (span if span is not None and changes is not None else (0, len(a)))
    lines = [f"--- buggy/{name}", f"+++ fixed/{name}"]
    hunks: list[list] = []
    for op in changes:  # changes closer than 2*context lines share a hunk, as in `diff -u`
        if hunks and op[1] - hunks[-1][-1][2] <= 2 * context:
            hunks[-1].append(op)
        else:
            hunks.append([op])
    for hunk in hunks:
        start = max(hunk[0][1] - context, low if span is not None else 0)
        end = min(hunk[-1][2] + context, high if span is not None else len(a))
        shift = hunk[0][3] - hunk[0][1]
        grown = sum((j2 - j1) - (i2 - i1) for _, i1, i2, j1, j2 in hunk)
        lines.append(f"@@ -{start + 1},{end - start} +{start + shift + 1},{end - start + grown} @@")
        at = start
        for _, i1, i2, j1, j2 in hunk:
            lines += [" " + x for x in a[at:i1]]
            lines += ["-" + x for x in a[i1:i2]]
            lines += ["+" + x for x in b[j1:j2]]
            at = i2
        lines += [" " + x for x in a[at:end]]
    return lines if hunks else []


# --- saved progress ----------------------------------------------------------------------------
def tour_state_path() -> Path:
    """$MLTRIAGE_HOME/tour.json, else $XDG_DATA_HOME/mltriage, else ~/.local/share/mltriage."""
    if os.environ.get("MLTRIAGE_HOME"):
        return Path(os.environ["MLTRIAGE_HOME"]) / "tour.json"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mltriage" / "tour.json"


@dataclass
class HuntProgress:
    """One exercise's marks {check id: what the user would fix} and whether the key was revealed."""

    name: str
    marks: dict[str, str] = field(default_factory=dict)
    revealed: bool = False
    result: str = ""


class TourState:
    def __init__(self, path: Path | None = None):
        self.path = path or tour_state_path()
        data, self.notice = read_json(self.path)
        data = data if isinstance(data, dict) else {}
        raw = data.get("exercises") if isinstance(data.get("exercises"), dict) else {}
        self.exercises: dict[str, HuntProgress] = {}
        for name, item in raw.items():
            if isinstance(item, dict):
                marks = item.get("marks") if isinstance(item.get("marks"), dict) else {}
                self.exercises[name] = HuntProgress(name, {str(k): str(v) for k, v in marks.items()},
                                                    bool(item.get("revealed")), str(item.get("result", "")))

    def get(self, name: str) -> HuntProgress:
        return self.exercises.setdefault(name, HuntProgress(name))

    def save(self) -> str | None:
        data = {"exercises": {n: {"marks": p.marks, "revealed": p.revealed, "result": p.result}
                              for n, p in self.exercises.items()}}
        try:
            atomic_write_json(self.path, data)
        except OSError as exc:
            return f"could not save the tour progress to {self.path}: {exc.strerror or exc}"
        return None
