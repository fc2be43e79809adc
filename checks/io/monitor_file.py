"""Reading the monitor's JSON-lines files (DESIGN §9), whole or as they grow.

A file is a header line (`{"monitor": 1, "model": ..., "layers": ...}`), step records (`{"step", "time",
"loss", "lr", "layers": {name: {...}}}`) and eval records (`{"step", "time", "eval": {...}}`). The
reader never trusts the file: lines that are not JSON objects, a half-written last line, values of the
wrong type are skipped and counted, never raised. `MonitorFollower` reads only what was appended since
its last call (a rewritten or truncated file is read again from the start), so following a run costs
what the new lines cost, however long the run has been going.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

MONITOR_DIR = Path(".mltriage") / "monitor"
# DESIGN §9's keys, then how many examples a ReLU layer's dead_fraction was measured on and, for batches too
# small to judge alone, the share of units dead on every example of the pooled recorded batches (mltriage.monitor).
# Files written before these counts existed lack them: they read as NaN.
LAYER_KEYS = ("grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction", "examples",
              "pooled_dead_fraction", "pooled_examples")


@dataclass
class MonitoredRun:
    """Everything read from one monitor file so far."""

    path: str
    model: str | None = None
    parameters: int | None = None
    every: int | None = None
    layer_types: dict[str, str] = field(default_factory=dict)    # header: layer -> module type
    matrix_layers: list[str] = field(default_factory=list)        # header: layers with a weight matrix
    steps: list[int] = field(default_factory=list)                # one per step record
    loss: list[float] = field(default_factory=list)               # NaN where the loss was not finite
    lr: list[float] = field(default_factory=list)
    layers: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # name -> key -> one per record
    eval_steps: list[int] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    skipped_lines: int = 0
    ended: bool = False                                           # the monitor's closing line was read

    @property
    def records(self) -> int:
        return len(self.steps)

    def describe(self) -> str:
        last = f", up to step {self.steps[-1]}" if self.steps else ""
        return f"the monitored run {Path(self.path).name} ({self.records} records{last})"

    def add(self, record: dict) -> None:
        """Take one parsed line; anything that is not a header, step or eval record is counted as skipped."""
        if "monitor" in record and "step" not in record:
            self._add_header(record)
        elif record.get("end") is True:
            self.ended = True
        elif isinstance(record.get("eval"), dict) and _is_int(record.get("step")):
            self.eval_steps.append(int(record["step"]))
            self.evals.append({str(k): _number(v) for k, v in record["eval"].items()})
        elif _is_int(record.get("step")) and isinstance(record.get("layers", {}), dict):
            self._add_step(record)
        else:
            self.skipped_lines += 1

    def _add_header(self, record: dict) -> None:
        self.model = str(record.get("model")) if record.get("model") is not None else None
        self.parameters = record["parameters"] if _is_int(record.get("parameters")) else None
        self.every = record["every"] if _is_int(record.get("every")) else None
        types = record.get("layer_types")
        if isinstance(types, dict):
            self.layer_types = {str(k): str(v) for k, v in types.items()}
        if isinstance(record.get("matrix"), list):
            self.matrix_layers = [str(n) for n in record["matrix"]]

    def _add_step(self, record: dict) -> None:
        n = len(self.steps)
        self.steps.append(int(record["step"]))
        self.loss.append(_number(record.get("loss")))
        self.lr.append(_number(record.get("lr")))
        for name, values in record.get("layers", {}).items():
            if not isinstance(values, dict):
                continue
            series = self.layers.setdefault(str(name), {})
            for key in LAYER_KEYS:
                if key in values:
                    column = series.setdefault(key, [])
                    column.extend([math.nan] * (n - len(column)))  # a layer first seen late
                    column.append(_number(values[key]))
        for series in self.layers.values():
            for column in series.values():
                column.extend([math.nan] * (n + 1 - len(column)))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> float:
    """A float, NaN for null (the monitor writes non-finite values as null) or anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class MonitorFollower:
    """Reads a monitor file incrementally: `poll()` parses the complete lines appended since the last call."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.run = MonitoredRun(str(self.path))
        self._offset = 0
        self._identity: tuple | None = None
        self.restarted = 0

    def poll(self) -> int:
        """Read what is new; returns how many lines were read. A missing file reads as nothing new."""
        try:
            stat = self.path.stat()
        except OSError:
            return 0
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._offset:  # rotated, replaced or truncated
            if self._identity is not None:
                self.restarted += 1
            self.run, self._offset, self._identity = MonitoredRun(str(self.path)), 0, identity
        if stat.st_size == self._offset:
            return 0
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        complete, _, _partial = chunk.rpartition(b"\n")
        if not complete and not chunk.endswith(b"\n"):
            return 0  # only a half-written line so far: read it when its newline arrives
        self._offset += len(complete) + 1
        lines = complete.split(b"\n")
        for line in lines:
            self._take(line)
        return len(lines)

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self.run.skipped_lines += 1
            return
        if isinstance(record, dict):
            self.run.add(record)
        else:
            self.run.skipped_lines += 1


def read_monitor(path: str | os.PathLike) -> MonitoredRun:
    """The whole file as it is now (a half-written last line is left out)."""
    follower = MonitorFollower(path)
    follower.poll()
    return follower.run


def newest_monitor_file(folder: Path) -> tuple[Path | None, int]:
    """The most recently written *.jsonl in a folder and how many there are (the finding says when it
    chose among several)."""
    try:
        files = [p for p in Path(folder).glob("*.jsonl") if p.is_file()]
    except OSError:
        return None, 0
    if not files:
        return None, 0
    return max(files, key=lambda p: (p.stat().st_mtime, p.name)), len(files)


def find_monitor_file(configured: Path | None, project_root: Path) -> tuple[Path | None, str]:
    """The monitor file to read and how it was chosen: `[artifacts] monitor` (a file, or a folder whose
    newest file is read), else the newest file in .mltriage/monitor/; (None, why) when there is none."""
    if configured is not None and configured.is_file():
        return configured, f"[artifacts] monitor = {configured.name}"
    folder = configured if configured is not None else Path(project_root) / MONITOR_DIR
    newest, count = newest_monitor_file(folder)
    if newest is None:
        return None, f"no monitor file in {'[artifacts] monitor' if configured is not None else str(MONITOR_DIR) + '/'}"
    return newest, (f"the newest of {count} files in {folder.name}/" if count > 1 else newest.name)
