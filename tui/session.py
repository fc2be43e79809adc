"""The app's session model: notes, ticked checklist items, step progress and the last findings.

State lives next to the project in `.mltriage/` (DESIGN §8). session.json keeps the keys that
`mltriage report` reads ("notes" {step: text}, "ticked" {step: [item text]}) plus "progress",
"current_step" and "drafts" {step: text} (a note being typed, saved as it is typed so that a dropped
connection loses nothing; cleared when the note is saved); keys written by other versions are kept on save. Findings come from the saved runs
in `.mltriage/runs/`: the newest finding of each check wins, so running one step in the app does
not hide the findings of the others. Standard library only (the app must start fast).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltriage.checks.findings import Finding
from mltriage.checks.engine.registry import STEPS
from mltriage.checks.io.state import (STATE_DIR, atomic_write_json, list_runs, load_findings, merge_findings,  # noqa: F401
                                   read_json, save_run)

SESSION_FILE = "session.json"
KNOWN_KEYS = frozenset({"notes", "ticked", "drafts", "progress", "current_step"})
# Older runs than this are not read on open: the newest finding of a check is almost always in the
# last few runs, and reading hundreds of JSON files would slow the first screen down.


class _locked:
    """An exclusive advisory lock (flock) on a small lock file for a read-modify-write."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.handle = open(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        return False


def session_path(project_root: Path) -> Path:
    return Path(project_root) / STATE_DIR / SESSION_FILE


def _clean_notes(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _clean_ticked(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): [i for i in v if isinstance(i, str)] for k, v in value.items() if isinstance(v, list)}


@dataclass
class Session:
    """What the user did in the app for one project. `path` None: nothing is saved."""

    path: Path | None
    notes: dict[str, str] = field(default_factory=dict)
    ticked: dict[str, list[str]] = field(default_factory=dict)
    drafts: dict[str, str] = field(default_factory=dict)
    progress: dict[str, dict] = field(default_factory=dict)
    current_step: str = STEPS[0]
    notice: str | None = None          # shown once: the file was damaged and set aside
    extra: dict[str, Any] = field(default_factory=dict)
    # What was on disk when this session was loaded or last saved: a save applies only what this
    # process changed since then, so two mltriage processes on one project keep each other's edits.
    base_notes: dict[str, str] = field(default_factory=dict)
    base_ticked: dict[str, list[str]] = field(default_factory=dict)
    base_drafts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base_drafts = dict(self.drafts)
        self.base_notes = dict(self.notes)
        self.base_ticked = {k: list(v) for k, v in self.ticked.items()}

    @classmethod
    def load(cls, project_root: Path) -> "Session":
        path = session_path(project_root)
        data, notice = read_json(path)
        if data is not None and not isinstance(data, dict):
            notice = f"{path} did not hold a session (found {type(data).__name__}); a fresh one was started."
            data = None
        data = data or {}
        progress = data.get("progress") if isinstance(data.get("progress"), dict) else {}
        step = data.get("current_step")
        known = KNOWN_KEYS
        return cls(path=path, notes=_clean_notes(data.get("notes")), ticked=_clean_ticked(data.get("ticked")),
                   drafts=_clean_notes(data.get("drafts")),
                   progress={k: v for k, v in progress.items() if isinstance(v, dict)},
                   current_step=step if step in STEPS else STEPS[0], notice=notice,
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra, notes={k: v for k, v in self.notes.items() if v.strip()},
                   ticked={k: v for k, v in self.ticked.items() if v}, progress=self.progress,
                   current_step=self.current_step)
        drafts = {k: v for k, v in self.drafts.items() if v}
        if drafts:
            out["drafts"] = drafts
        return out

    def save(self) -> str | None:
        """Merge this process's edits into what is on disk, under a lock, and write atomically.

        Notes: a step's note this process changed wins; other steps keep what is on disk. Ticks:
        the items this process ticked or unticked are applied to the list on disk. So two app
        windows on one project never lose each other's work. Returns an error text or None."""
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path.with_name(SESSION_FILE + ".lock")):
                on_disk, _ = read_json(self.path) if self.path.exists() else (None, None)
                self._merge(on_disk if isinstance(on_disk, dict) else {})
                atomic_write_json(self.path, self.to_dict())
        except OSError as exc:
            return f"could not save the session to {self.path}: {exc.strerror or exc}"
        self.base_notes = dict(self.notes)
        self.base_drafts = dict(self.drafts)
        self.base_ticked = {k: list(v) for k, v in self.ticked.items()}
        return None

    def _merge(self, on_disk: dict) -> None:
        for key, value in on_disk.items():
            if key not in KNOWN_KEYS:
                self.extra.setdefault(key, value)
        self.notes = _merge_texts(_clean_notes(on_disk.get("notes")), self.notes, self.base_notes)
        self.drafts = _merge_texts(_clean_notes(on_disk.get("drafts")), self.drafts, self.base_drafts)
        disk_ticked = _clean_ticked(on_disk.get("ticked"))
        ticked = {}
        for step in set(disk_ticked) | set(self.ticked) | set(self.base_ticked):
            ours, base = self.ticked.get(step, []), self.base_ticked.get(step, [])
            added = [i for i in ours if i not in base]
            removed = {i for i in base if i not in ours}
            merged = [i for i in disk_ticked.get(step, []) if i not in removed]
            ticked[step] = merged + [i for i in added if i not in merged]
        self.ticked = ticked

    # --- edits ---------------------------------------------------------------------------------
    def note(self, step: str) -> str:
        return self.notes.get(step, "")

    def set_note(self, step: str, text: str) -> None:
        """Save a step's note; its draft is done with."""
        self.notes[step] = text
        self.drafts[step] = ""

    def draft(self, step: str) -> str | None:
        """The note being typed for this step when the app last stopped, or None."""
        return self.drafts.get(step) or None

    def set_draft(self, step: str, text: str) -> None:
        """What is typed in the note dialog so far (kept until the note is saved)."""
        self.drafts[step] = text

    def pending_drafts(self) -> list[str]:
        """Steps with a draft that differs from their saved note, in step order."""
        return [s for s in STEPS if self.drafts.get(s) and self.drafts[s] != self.notes.get(s, "")]

    def is_ticked(self, step: str, item: str) -> bool:
        return item in self.ticked.get(step, [])

    def set_ticked(self, step: str, items: list[str]) -> None:
        self.ticked[step] = list(items)

    def toggle(self, step: str, item: str) -> bool:
        """Tick or untick one item; returns the new state."""
        items = self.ticked.setdefault(step, [])
        if item in items:
            items.remove(item)
            return False
        items.append(item)
        return True

    def mark_run(self, steps: list[str], when: float | None = None) -> None:
        for step in steps:
            self.progress.setdefault(step, {})["last_run"] = round(when or time.time(), 3)

    def mark_visited(self, step: str) -> None:
        self.current_step = step
        self.progress.setdefault(step, {})["visited"] = True


def _merge_texts(on_disk: dict[str, str], ours: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """Per step: what this process changed since it last read the file wins; other steps keep the disk's."""
    merged = dict(on_disk)
    for step in set(ours) | set(base):
        if ours.get(step, "") != base.get(step, ""):
            merged[step] = ours.get(step, "")
    return merged


# --- findings ----------------------------------------------------------------------------------
def save_app_run(project_root: Path, run: dict) -> tuple[Path | None, str | None]:
    """Save a completed run from the app; (path, error text)."""
    try:
        return save_run(project_root, run), None
    except OSError as exc:
        return None, f"could not save the run under {Path(project_root) / STATE_DIR}: {exc.strerror or exc}"


def session_run(project: str, findings: dict[str, Finding]) -> dict:
    """A DESIGN §5 run dict of the merged findings, in catalog order, for exporting the session."""
    from mltriage import __version__
    from mltriage.checks.findings import summarize
    from mltriage.checks.engine.registry import CATALOG_IDS

    order = {cid: i for i, cid in enumerate(CATALOG_IDS)}
    items = sorted(findings.values(), key=lambda f: (STEPS.index(f.step) if f.step in STEPS else 99,
                                                     order.get(f.check, 999), f.check))
    return {"mltriage": __version__, "project": project, "findings": [f.to_dict() for f in items],
            "summary": summarize(items)}


def export_session(project: str, findings: dict[str, Finding], session: Session, fmt: str,
                   path: Path | None = None) -> str:
    """The session as Markdown or self-contained HTML, through checks/report.py's renderers. With the
    Markdown file's `path`, its charts are written as SVG files beside it and linked."""
    from mltriage.checks.io.report import markdown_charts, to_html, to_markdown

    run = session_run(project, findings)
    notes = {k: v for k, v in session.notes.items() if v.strip()}
    ticked = {k: v for k, v in session.ticked.items() if v}
    if fmt == "html":
        return to_html(run, notes, ticked)
    text = to_markdown(run, notes)
    if ticked:
        text += "\n## Checklist\n\n" + "\n".join(
            f"- [x] {item}" for step in STEPS for item in ticked.get(step, [])) + "\n"
    return markdown_charts(text, run, path) if path is not None else text
