"""Following a training log while it grows (`mltriage watch`, the app's live view): only what was
appended is parsed, so a poll costs the same at line 100 and at line 1,000,000."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .log_files import (EPOCH_NAMES, EVENT_FILE_MARK, NAN_TOKENS, RUN_DEPTH, SNIFF_BYTES, STEP_NAMES,
                        TrainingLogError, _json_constant, _text_line, _walk, classify_column, sniff_log)
from .logs import TrainingCurves, read_training_log


# --- following a log while it grows (`mltriage watch`, the app's live view) ------------------------
class LogFollower:
    """Reads a training log incrementally: `poll()` returns the points appended since the last call as
    ("step", step, train loss) and ("eval", step, valid loss), so the cost of a poll is the cost of the
    new lines, however long the run.

    Line formats (CSV/TSV, JSON lines, regular text) are read from the last offset, whole lines only (a
    half-written last line waits for its newline). A file replaced or truncated starts over (`restarted`
    counts it); a CSV rewritten with a new header (Lightning adds a column when a new metric appears)
    is re-read and the rows already seen are skipped. TensorBoard event files are read with
    tensorboard's own incremental loader. Other files (trainer_state.json, rewritten at each save) are
    re-read whole when they change, and only the new points are returned.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.kind: str | None = None
        self.restarted = 0
        self.error: str | None = None
        self.steps: list[float] = []          # every point so far (the live view draws them)
        self.losses: list[float] = []
        self.eval_steps: list[float] = []
        self.eval_losses: list[float] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self._offset = 0
        self._identity: tuple | None = None
        self._header: list[str] | None = None
        self._sep = ","
        self._rows = 0                         # data rows read (CSV), to skip them after a rewrite
        self._loaders: dict[str, object] = {}
        self._whole_seen = (0, 0)
        self._signature = None
        self._count = 0                        # records without a step column: their position is the step

    def _start_over(self) -> None:
        self.restarted += 1
        self.steps, self.losses, self.eval_steps, self.eval_losses = [], [], [], []
        self._reset_state()

    def curves(self) -> TrainingCurves:
        """What has been read so far, as curves on the step axis."""
        return TrainingCurves(path=str(self.path), source_format=self.kind or "log", index_name="step",
                              index=list(self.eval_steps), valid_loss=list(self.eval_losses),
                              train_loss=[math.nan] * len(self.eval_steps),
                              train_metric=[math.nan] * len(self.eval_steps),
                              valid_metric=[math.nan] * len(self.eval_steps),
                              step=list(self.steps), step_loss=list(self.losses))

    # --- polling -------------------------------------------------------------------------------------
    def poll(self) -> list[tuple[str, float, float]]:
        try:
            if self.path.is_dir() or EVENT_FILE_MARK in self.path.name:
                self.kind = "tensorboard"
                return self._keep(self._poll_tensorboard())
            stat = self.path.stat()
        except OSError:
            return []  # not there (yet, or any more): nothing new
        identity = (stat.st_dev, stat.st_ino)
        if self._identity is not None and (identity != self._identity or stat.st_size < self._offset):
            if self.kind in ("csv", "text", "jsonl"):
                self._start_over()
        self._identity = identity
        if self.kind is None or self.kind not in ("csv", "text", "jsonl"):
            if stat.st_size == 0:
                return []
            kind = sniff_log(self.path)
            if kind is None:
                return self._fail(f"{self.path}: not (yet) a training log mltriage can read")
            self.kind = kind
        if self.kind == "json":
            return self._keep(self._poll_whole(stat))
        return self._keep(self._poll_lines(stat))

    def _fail(self, message: str) -> list:
        self.error = message
        return []

    def _keep(self, points: list) -> list:
        for kind, step, value in points:
            if kind == "step":
                self.steps.append(step)
                self.losses.append(value)
            else:
                self.eval_steps.append(step)
                self.eval_losses.append(value)
        if points:
            self.error = None
        return points

    def _poll_lines(self, stat) -> list:
        if self.kind == "csv" and self._header is not None and self._header_changed():
            self._offset, self._header, skip = 0, None, self._rows   # rewritten with more columns
        else:
            skip = 0
        if stat.st_size == self._offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        complete, newline, _ = chunk.rpartition(b"\n")
        if not newline:
            return []   # only a half-written line so far
        self._offset += len(complete) + 1
        lines = complete.decode("utf-8", errors="replace").split("\n")
        points = []
        if self.kind == "csv":
            self._rows -= skip
        for line in lines:
            record = self._parse(line)
            if record is None:
                continue
            if self.kind == "csv":
                self._rows += 1
                if skip:
                    skip -= 1
                    continue
            points += self._points(record)
        return points

    def _header_changed(self) -> bool:
        try:
            with open(self.path, "rb") as handle:
                first = handle.readline(SNIFF_BYTES).decode("utf-8", errors="replace").rstrip("\r\n")
        except OSError:
            return False
        return [h.strip() for h in first.split(self._sep)] != self._header

    def _parse(self, line: str) -> dict | None:
        line = line.rstrip("\r")
        if not line.strip():
            return None
        if self.kind == "jsonl":
            try:
                record = json.loads(line, parse_constant=_json_constant)
            except ValueError:
                return None
            return record if isinstance(record, dict) else None
        if self.kind == "text":
            record = _text_line(line)
            return record if len(record) >= 2 and any(classify_column(k) for k in record) else None
        if self._header is None:   # csv
            for sep in (",", "\t", ";", "|"):
                if len(line.split(sep)) >= 2:
                    self._sep = sep
                    break
            self._header = [h.strip() for h in line.lstrip("\ufeff").split(self._sep)]
            return None
        cells = line.split(self._sep)
        return {name: cell for name, cell in zip(self._header, cells) if cell.strip() != ""}

    def _poll_whole(self, stat) -> list:
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._signature:
            return []
        self._signature = signature
        try:
            curves = read_training_log(self.path)
        except TrainingLogError as exc:   # half-written while it is rewritten: try on the next change
            return self._fail(str(exc).splitlines()[0])
        steps = list(zip(curves.step, curves.step_loss)) if curves.step_loss else \
            list(zip(curves.index, curves.train_loss))
        evals = [(s, v) for s, v in zip(curves.index, curves.valid_loss) if not math.isnan(v)]
        seen_steps, seen_evals = self._whole_seen
        if len(steps) < seen_steps:
            self._start_over()
            self._signature, seen_steps, seen_evals = signature, 0, 0
        self._whole_seen = (len(steps), len(evals))
        return [("step", s, v) for s, v in steps[seen_steps:]] + [("eval", s, v) for s, v in evals[seen_evals:]]

    def _poll_tensorboard(self) -> list:
        try:
            # the raw loader: records as bytes, parsed here without tensorboard's per-event data migration
            # (which rewrites every simple_value as a tensor and costs as much again)
            from tensorboard.backend.event_processing.event_file_loader import (
                RawEventFileLoader,
            )
            from tensorboard.compat.proto import event_pb2
        except ImportError:
            return self._fail(f"{self.path}: following TensorBoard logs needs the tensorboard package")
        files = [self.path] if self.path.is_file() else \
            sorted(p for p in _walk(self.path, RUN_DEPTH) if EVENT_FILE_MARK in p.name)
        points = []
        for file in files:
            loader = self._loaders.get(str(file))
            if loader is None:
                loader = self._loaders[str(file)] = RawEventFileLoader(str(file))
            prefix = "" if file == self.path else str(file.parent.relative_to(self.path))
            try:
                for raw in loader.Load():
                    event = event_pb2.Event.FromString(raw)
                    if not event.HasField("summary"):
                        continue
                    for value in event.summary.value:
                        number = _summary_number(value)
                        if number is None:
                            continue
                        tag = f"{prefix}/{value.tag}" if prefix and prefix != "." else value.tag
                        points += self._points({"step": float(event.step), tag: number}, tensorboard=True)
            except Exception as exc:  # a damaged or half-written record: the loader resumes next time
                self.error = f"{file}: {exc}"
        return points

    # --- records -> points ---------------------------------------------------------------------------
    def _points(self, record: dict, tensorboard: bool = False) -> list:
        numbers = {}
        for key, value in record.items():
            number = _cell_number(value)
            if number is not None:
                numbers[str(key)] = number
        lowered = {k.lower(): k for k in numbers}
        step_key = next((lowered[n] for n in STEP_NAMES + EPOCH_NAMES if n in lowered), None)
        self._count += 1
        step = numbers[step_key] if step_key is not None else float(self._count)
        train, valid = None, None
        for key, value in numbers.items():
            kind = classify_column(key)
            if kind is None or kind[0] != "loss":
                continue
            if kind[1] == "train" and kind[2] != "epoch":
                if train is None or kind[2] == "step":
                    train = value
            elif kind[1] == "valid":
                valid = value if valid is None else valid
        points = []
        if train is not None:
            points.append(("step", step, train))
        if valid is not None:
            points.append(("eval", step, valid))
        return points


def _cell_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return math.inf if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in NAN_TOKENS:
            return math.inf  # a logged NaN (kept as inf: NaN means "not logged")
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _summary_number(value) -> float | None:
    """The number of a scalar summary value (simple_value, or a scalar tensor as TF2 writes it)."""
    if value.HasField("simple_value"):
        number = float(value.simple_value)
    elif value.HasField("tensor") and value.tensor.dtype in (1, 2):  # DT_FLOAT, DT_DOUBLE
        t = value.tensor
        vals = list(t.float_val) or list(t.double_val)
        if not vals and t.tensor_content:
            import numpy as np

            vals = np.frombuffer(t.tensor_content, dtype=np.float32 if t.dtype == 1 else np.float64).tolist()
        if len(vals) != 1:
            return None
        number = float(vals[0])
    else:
        return None
    return math.inf if math.isnan(number) else number
