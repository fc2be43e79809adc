"""State next to the project, in `.mltriage/` (DESIGN §8): atomic writes, damaged files set aside."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

STATE_DIR = ".mltriage"
RUNS_DIR = "runs"


class UnsafeStatePath(OSError):
    """A state path that would lead outside the project folder (a symbolic link): never written through."""

    def __init__(self, message: str):
        super().__init__(errno.ELOOP, message)  # strerror is the message, as callers print it


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str, follow_symlinks: bool = True) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers see the old or the new file.

    The user's file keeps what is theirs: a symbolic link is written through to its target (unless
    follow_symlinks is False, for state files, where a link is refused), an existing file keeps its
    permission bits, a new one gets the umask's (mkstemp alone would make it 0600). A target that is not
    a regular file (/dev/stdout, a FIFO, a terminal) is written in place, never replaced by a rename."""
    path = Path(path)
    if follow_symlinks and path.exists() and not path.is_file() and not path.is_dir():
        # /dev/stdout or /dev/fd/N on a pipe: the link resolves to a name like "pipe:[N]" that cannot be
        # opened, so the device is written through the name it was given
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    if path.is_symlink():
        if not follow_symlinks:
            raise UnsafeStatePath(f"{path} is a symbolic link (to {os.path.realpath(path)}); mltriage does not "
                                  f"write its state through links. Remove the link.")
        path = Path(os.path.realpath(path))
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (path.stat().st_mode & 0o7777) if path.exists() else (0o666 & ~_current_umask())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, follow_symlinks: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False), follow_symlinks=follow_symlinks)


def state_dir(project_root: Path) -> Path:
    """The project's `.mltriage/` folder, refused when it is a link or leads outside the project (a
    hostile checkout could point it at the user's home and have mltriage write there)."""
    root = Path(project_root)
    folder = root / STATE_DIR
    if folder.is_symlink() or (folder.exists() and not folder.resolve().is_relative_to(root.resolve())):
        raise UnsafeStatePath(f"{folder} is a symbolic link (to {os.path.realpath(folder)}); mltriage keeps its "
                              f"state inside the project folder and does not write through links. Remove the "
                              f"link (or make {STATE_DIR} a plain folder).")
    return folder


def state_file(project_root: Path, *parts: str) -> Path:
    """A file under `.mltriage/`, refused when the folders on the way are links out of the project."""
    path = state_dir(project_root).joinpath(*parts)
    for parent in reversed(path.parents):
        if parent.is_relative_to(state_dir(project_root)) and parent.is_symlink():
            raise UnsafeStatePath(f"{parent} is a symbolic link; mltriage does not write its state through links.")
    return path


def read_json(path: Path) -> tuple[Any | None, str | None]:
    """(data, notice). A missing file gives (None, None); a damaged one is renamed aside with a notice."""
    path = Path(path)
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
        except OSError:
            aside = path
        return None, (f"{path} was damaged ({type(exc).__name__}) and was moved to {aside.name}; "
                      f"a fresh one was started.")


def runs_dir(project_root: Path) -> Path:
    return Path(project_root) / STATE_DIR / RUNS_DIR


def save_run(project_root: Path, run: dict) -> Path:
    """Save one run (DESIGN §5 schema) as .mltriage/runs/<UTC time>.json and return its path."""
    folder = state_file(project_root, RUNS_DIR)  # refused when .mltriage or runs/ is a link
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run.get("started", time.time())))
    path = folder / f"{stamp}.json"
    n = 1
    while path.exists():
        path = folder / f"{stamp}-{n}.json"
        n += 1
    atomic_write_json(path, run, follow_symlinks=False)
    return path


def list_runs(project_root: Path) -> list[Path]:
    folder = runs_dir(project_root)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def load_previous_run(project_root: Path, before: Path | None = None) -> dict | None:
    """The newest readable saved run (older than `before` when given)."""
    for path in reversed(list_runs(project_root)):
        if before is not None and path >= before:
            continue
        data, _ = read_json(path)
        if isinstance(data, dict) and isinstance(data.get("findings"), list):
            return data
    return None


# Older runs than this are not read when merging: a check not run in the last 50 runs is "not run".
MAX_RUNS_READ = 50


def merge_findings(runs: list[dict]):
    """The newest finding per check id, from runs given newest first (a step run alone saves a
    partial run, so the latest picture of a project spans several run files)."""
    from ..findings import Finding

    merged: dict[str, Finding] = {}
    for run in runs:
        for raw in run.get("findings", []):
            try:
                finding = Finding.from_dict(raw)
            except (KeyError, TypeError, ValueError):
                continue
            if finding.check and finding.check not in merged:
                merged[finding.check] = finding
    return merged


def load_findings(project_root: Path):
    """(newest finding per check across saved runs, notices about damaged run files)."""
    runs, notices = [], []
    for path in list(reversed(list_runs(project_root)))[:MAX_RUNS_READ]:
        data, notice = read_json(path)
        if notice:
            notices.append(notice)
        if isinstance(data, dict) and isinstance(data.get("findings"), list):
            runs.append(data)
    return merge_findings(runs), notices
