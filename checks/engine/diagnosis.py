"""What a stopped or dead worker says, in words: which project function a hung check was stuck in (from a
faulthandler stack dump), the last lines a dying worker wrote, and the error findings the supervisor
reports for a timeout, a crash or a run out of time."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..findings import Finding, errored, skipped
from ..project.config import ProjectConfig


def _out_of_run_time(total_timeout: float) -> Finding:
    return skipped("not run: the run's time limit was reached",
                   detail=f"The whole run is limited to {total_timeout:.0f} s.")


def role_label(role: str | None, config) -> str:
    """How findings name a project role: `build_model()` for a configured function, else in words."""
    name = getattr(config, role, None) if role in ("build", "featurize", "train_step", "predict") else None
    if name:
        return f"{name}()"
    return {"model": "model code (its forward() or a hook)", "loss": "loss function",
            "optimizer": "optimizer function", "import": "module import"}.get(role or "", "code")


def _timed_out(limit: float, role: str | None, function: str | None, where: str) -> Finding:
    if role:
        what = (f"project code ({role} = \"{function[:-2]}\")" if function and function.endswith("()")
                else f"the project's {function}")
        return errored(f"timed out after {limit:.0f} s inside the project's {function}",
                       detail=f"The check did not finish within {limit:.0f} s and its process was stopped. It was "
                              f"stuck in {what}; later checks will not "
                              f"call it again in this run.\n\n{where}".rstrip())
    return errored(f"timed out after {limit:.0f} s",
                   detail=f"The check did not finish within {limit:.0f} s and its process was stopped. If project "
                          f"code can hang (a loop, a lock, a sleep), fix that; if it is just slow, lower the data "
                          f"size or raise --budget.")


def _process_died(exit_code: int | None, last_output: str, function: str | None = None) -> Finding:
    if function:
        return errored(f"the check process died (exit code {exit_code}) inside the project's {function}",
                       detail=f"The process running this check ended without a result while it ran the project's "
                              f"{function} (os._exit, a crash in an extension, or out of memory). Later checks "
                              f"will not call it again in this run.\n\nLast output:\n" + last_output)
    return errored(f"the check process died (exit code {exit_code})",
                   detail="The process running this check ended without a result: project code "
                          "crashed it, or it ran out of memory.\n\nLast output:\n" + last_output)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def last_words(text: str, lines: int = 8) -> str:
    """The end of a worker's output for a message on the terminal: Python's traceback and stack frames
    left out (they name mltriage's internals; --debug and the findings keep them), the error lines kept."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or line[:1].isspace() or stripped.startswith(("Traceback (", "Thread 0x", "Current thread",
                                                                        "Stack (most recent")):
            continue
        kept.append(stripped[:300])
    return "\n".join(kept[-lines:])


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def hung_project_role(stack: str, config: ProjectConfig) -> tuple[str | None, str]:
    """From a faulthandler dump: the project role (build, featurize, train_step, predict; "model" for
    the model's own code: its forward or a hook, called by torch; "import" for module-level code) that
    was running, and the project frames as text; (None, "") when not in project code."""
    root = str(config.root.resolve())

    def ours(frame: dict) -> bool:
        return frame["file"].startswith(root) and not _is_library(frame["file"])

    threads = [[m.groupdict() for m in _FRAME.finditer(block)] for block in re.split(r"\n(?=\S)", stack)]
    threads = [t for t in threads if any(ours(f) for f in t)]
    if not threads:
        return None, ""
    # the thread running the check (engine/run.py's run_one on its stack), else the first with project code
    frames_all = next((t for t in threads if any(f["func"] in ("run_one", "_run_guarded") for f in t)), threads[0])
    frames = [f for f in frames_all if ours(f)]
    where = "Where it was stuck (innermost first):\n" + "\n".join(
        f'  File "{f["file"]}", line {f["line"]} in {f["func"]}' for f in frames[:8])
    names = {getattr(config, role): role for role in ("build", "featurize", "train_step", "predict")
             if getattr(config, role, None)}
    # faulthandler prints the innermost frame first: walk outwards from the innermost project frame
    start = next(i for i, f in enumerate(frames_all) if ours(f))
    for frame in frames_all[start:]:
        if ours(frame) and frame["func"] in names:
            return names[frame["func"]], where
        if not ours(frame) and "torch/nn/modules/" in frame["file"].replace("\\", "/"):
            return "model", where  # called by torch's Module.__call__: a forward() or a hook
    for frame in frames:
        if frame["func"] in names:
            return names[frame["func"]], where
    if any(frame["func"] == "<module>" for frame in frames):
        return "import", where
    # project frames but none of its configured functions: the model's own code (forward, a hook)
    return "model", where


# mltriage's own package folder: a project inside a checkout of mltriage must not see it as project code
_OWN_PACKAGE = str(Path(__file__).resolve().parents[1])


def _is_library(filename: str) -> bool:
    """Installed libraries (a virtual environment inside the project folder) and mltriage itself."""
    return ("site-packages" in filename or "dist-packages" in filename
            or filename.startswith(_OWN_PACKAGE + os.sep))
