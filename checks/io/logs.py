"""Read the training logs people already have into one shape: `TrainingCurves`.

Formats: plain CSV/TSV/JSONL with epoch or step columns, PyTorch Lightning CSVLogger metrics.csv
(train-step, train-epoch and validation rows interleaved, NaN where a row does not log a column),
Keras CSVLogger, Hugging Face trainer_state.json (`log_history`), and TensorBoard event files or
run folders (read with tensorboard's own EventAccumulator, never a hand-written protobuf parser).

Column names are mapped onto four roles: train loss, valid loss, train metric, valid metric.
Whatever cannot be mapped is kept in `unmapped` so a finding can say which columns it saw.
Every unreadable file becomes a TrainingLogError (a ProjectError) naming the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..project.config import ProjectError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
RECORD_SUFFIXES = (".jsonl", ".ndjson")
EVENT_FILE_MARK = "tfevents"
NAN_TOKENS = ("nan", "-nan", "+nan")

EPOCH_NAMES = ("epoch", "epochs")
STEP_NAMES = ("step", "global_step", "steps", "iteration", "iter", "iterations", "batch", "trainer/global_step")
VALID_TOKENS = ("val", "valid", "validation", "eval", "dev")
TRAIN_TOKENS = ("train", "training", "tr")
# Metric name fragments of log columns and whether higher is better. Wider than vocab.METRICS on
# purpose: logs name metrics their own way (acc, err, precision, recall, mse as a metric).
METRIC_TOKENS = {
    "accuracy": True, "acc": True, "f1": True, "auc": True, "roc_auc": True, "precision": True,
    "recall": True, "r2": True, "rmse": False, "mae": False, "mse": False, "error": False, "err": False,
}
# Metric preference when several are logged: the one most people read first.
METRIC_PREFERENCE = ("accuracy", "acc", "f1", "auc", "roc_auc", "r2", "rmse", "mae", "mse", "precision",
                     "recall", "error", "err")
# Columns that are bookkeeping, not curves: known, so not reported as unmapped.
BOOKKEEPING = re.compile(r"(^|[_/])(lr|learning_rate|lr-\w+|grad_norm|time|runtime|samples_per_second|"
                         r"steps_per_second|total_flos|wall_time|timestamp|created_at|momentum|"
                         r"hp_metric|num_tokens|num_input_tokens_seen)($|[_/])")


class TrainingLogError(ProjectError):
    """The training log cannot be read; the message names the file and what to do."""


@dataclass
class TrainingCurves:
    """Curves from a log, aligned on evaluation points (epochs, or steps when no epoch is logged).

    The four series have one value per `index` entry (NaN where that point logged nothing).
    `step`/`step_loss` hold the finer-grained training loss when the log has one (per batch).
    A non-finite value the log did write (`nan`, `inf`) is kept as +-inf, so that NaN keeps meaning
    "nothing logged here" and a NaN loss is still seen as non-finite.
    """

    path: str
    source_format: str
    index_name: str = "epoch"                       # "epoch" | "step"
    index: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    valid_metric: list[float] = field(default_factory=list)
    metric_name: str | None = None
    metric_higher_is_better: bool = True
    step: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)     # every value column seen
    mapped: dict[str, str] = field(default_factory=dict)  # role -> column
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)       # how the file was chosen, rows left out

    def has(self, role: str) -> bool:
        values = getattr(self, role)
        return any(isinstance(v, (int, float)) and math.isfinite(v) for v in values)

    def describe_columns(self) -> str:
        shown = ", ".join(self.columns[:30]) + (" ..." if len(self.columns) > 30 else "")
        return f"columns seen in {Path(self.path).name}: {shown or '(none)'}"


# --- column names --------------------------------------------------------------------------------
def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def classify_column(name: str) -> tuple[str, str, str] | None:
    """(kind, phase, granularity) for a value column, or None when it is not a loss or metric.

    kind: "loss" | metric name; phase: "train" | "valid" | "test"; granularity: "step" | "epoch" | "".
    """
    tokens = _tokens(name)
    if not tokens:
        return None
    granularity = ""
    if tokens[-1] in ("step", "epoch") and len(tokens) > 1:
        granularity = tokens[-1]
        tokens = tokens[:-1]
    if tokens[0] == "epoch" and len(tokens) > 1:  # Keras TensorBoard tags: epoch_loss, epoch_accuracy
        granularity, tokens = "epoch", tokens[1:]
    phase = "train"
    if any(t in VALID_TOKENS for t in tokens):
        phase = "valid"
    elif "test" in tokens:
        phase = "test"
    if "loss" in tokens or "nll" in tokens:
        return "loss", phase, granularity
    for metric in METRIC_PREFERENCE:
        if metric in tokens:
            return ("accuracy" if metric == "acc" else metric), phase, granularity
    return None


def _is_bookkeeping(name: str) -> bool:
    return bool(BOOKKEEPING.search(name.lower())) or name.lower() in EPOCH_NAMES + STEP_NAMES


# --- readers ------------------------------------------------------------------------------------
def read_training_log(path) -> TrainingCurves:
    """Read a training log of any supported format into TrainingCurves.

    The format is told from the content, not the extension (Keras' CSVLogger writes `training.log`); a
    folder is searched for a Lightning `metrics.csv`, a Hugging Face `trainer_state.json` or TensorBoard
    events, and when it holds several runs the newest is read and `notes` says so.
    """
    path = Path(path)
    if not path.exists():
        raise TrainingLogError(f"{path}: [artifacts] training_log does not exist. Point it at your "
                               f"metrics.csv, trainer_state.json or TensorBoard run folder.")
    notes: list[str] = []
    if path.is_dir():
        path, notes = find_run_log(path)
    if path.is_dir() or EVENT_FILE_MARK in path.name:
        frame, fmt = _read_tensorboard(path), "tensorboard"
    elif path.stat().st_size == 0:
        raise TrainingLogError(f"{path}: the training log is empty (0 bytes).")
    else:
        kind = sniff_log(path)
        if kind == "json":
            frame, fmt = _read_json(path)
        elif kind == "jsonl":
            frame, fmt = _read_jsonl(path), "jsonl"
        elif kind == "csv":
            frame, fmt = _read_csv(path)
        elif kind == "text":
            frame, fmt = _read_text(path), "text"
        else:
            raise TrainingLogError(
                f"{path}: not a training log mltriage can read (neither CSV/TSV, JSON lines, a Hugging Face "
                f"trainer_state.json, a TensorBoard event file, nor regular text lines like "
                f"'epoch 3 loss 0.42 acc 0.81' or 'step=100 loss=1.2').")
    curves = curves_from_frame(frame, str(path), fmt)
    curves.notes = notes + curves.notes
    return curves


SNIFF_BYTES = 65536
TEXT_MIN_LINES = 3             # a text log needs this many regular lines ...
TEXT_MIN_SHARE = 0.5           # ... making up half of its non-empty lines (or TEXT_ENOUGH_LINES of them)
TEXT_ENOUGH_LINES = 20


def sniff_log(path: Path) -> str | None:
    """"json" | "jsonl" | "csv" | "text" from the first bytes of the file, None when none fits."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\0" in head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl" if path.suffix.lower() != ".json" or "\n{" in stripped.rstrip() else "json"
        except ValueError:
            return "json"   # a multi-line JSON document (trainer_state.json is indented)
    lines = [line for line in text.splitlines() if line.strip()][:5]
    if lines and _looks_like_csv(lines):
        return "csv"
    if _text_records(text.splitlines()) is not None:
        return "text"
    suffix = path.suffix.lower()   # the name as the last hint: its reader says what is wrong with it
    if suffix in TABLE_SUFFIXES:
        return "csv"
    if suffix in RECORD_SUFFIXES:
        return "jsonl"
    return "json" if suffix == ".json" else None


def _looks_like_csv(lines: list[str]) -> bool:
    """A header of names split by one delimiter, and a next line with as many fields."""
    for sep in (",", "\t", ";", "|"):
        header = lines[0].split(sep)
        if len(header) < 2 or any(_NUMBER.fullmatch(h.strip()) or _NAMED_VALUE.search(h) for h in header):
            continue   # a data line, or "epoch: 3, loss: 0.42" (a text log with commas)
        if len(lines) == 1 or len(lines[1].split(sep)) == len(header):
            return True
    return False


_NAMED_VALUE = re.compile(r"([:=]|\s)\s*[-+]?(\d|\.\d)")   # "loss: 0.4", "loss=0.4", "loss 0.4" in a cell
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_TOKEN = re.compile(r"(?P<value>(?i:[-+]?nan|[-+]?inf(?:inity)?)\b|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<word>[A-Za-z_][\w/.\-]*)|(?P<slash>/)")


def _parse_number(text: str) -> float:
    value = float(text)
    return math.copysign(math.inf, value) if math.isnan(value) else value  # a logged NaN is kept (as inf)


def _text_line(line: str) -> dict[str, float]:
    """`name value` pairs of one line: 'epoch 3 loss 0.42', 'step=100 loss=1.2', 'Epoch 3/10 - val loss:
    0.5'. A value takes the (up to two) words before it as its name; '3/10' is read as 3."""
    record: dict[str, float] = {}
    words: list[str] = []
    after_slash = False
    for m in _TOKEN.finditer(line):
        if m.group("slash"):
            after_slash = True
            continue
        if m.group("word"):
            words.append(m.group("word").lower().strip(".-/"))
            after_slash = False
            continue
        if words and not after_slash:
            name = "_".join(w for w in words[-2:] if w)
            if name and name not in record:
                record[name] = _parse_number(m.group("value"))
        words, after_slash = [], False
    return record


def _text_records(lines: list[str]) -> list[dict[str, float]] | None:
    """The records of a regular text log, or None when the lines are not regular enough to be one."""
    records, nonempty = [], 0
    for line in lines:
        if not line.strip():
            continue
        nonempty += 1
        record = _text_line(line)
        useful = [k for k in record if classify_column(k) is not None]
        if len(record) >= 2 and useful:
            records.append(record)
    if len(records) < TEXT_MIN_LINES:
        return None
    if len(records) < TEXT_MIN_SHARE * nonempty and len(records) < TEXT_ENOUGH_LINES:
        return None
    return records


def _read_text(path: Path):
    import pandas as pd

    records = _text_records(path.read_text(errors="replace").splitlines())
    if records is None:
        raise TrainingLogError(f"{path}: the text log has too few regular lines like 'epoch 3 loss 0.42'.")
    frame = pd.DataFrame.from_records(records)
    # each line is an event in order: a line without an epoch belongs to the last epoch named before it
    epoch = _index_column(frame, EPOCH_NAMES)
    if epoch is not None:
        frame[epoch] = frame[epoch].ffill()
    return frame


# --- run folders ----------------------------------------------------------------------------------
RUN_DEPTH = 4                  # how deep a run folder is searched for its logs


def find_run_log(folder: Path) -> tuple[Path, list[str]]:
    """The log to read in a run folder: a Lightning metrics.csv (lightning_logs/version_N/), a Hugging
    Face trainer_state.json (checkpoint-N/), else the folder itself (TensorBoard events). Several runs:
    the newest, said in the notes."""
    found: list[tuple[str, Path]] = []
    for candidate in _walk(folder, RUN_DEPTH):
        if candidate.name == "metrics.csv":
            found.append(("Lightning", candidate))
        elif candidate.name == "trainer_state.json":
            found.append(("Hugging Face", candidate))
    if not found:
        events = [p for p in _walk(folder, RUN_DEPTH) if EVENT_FILE_MARK in p.name]
        runs = sorted({_run_of(folder, p.parent) for p in events}, key=lambda r: _newest(r))
        if len(runs) > 1 and all(re.fullmatch(r"version_\d+", r.name) for r in runs):
            chosen = runs[-1]
            return chosen, [_several_runs_note(folder, chosen, len(runs))]
        return folder, []
    kinds = {k for k, _ in found}
    kind = "Lightning" if "Lightning" in kinds else "Hugging Face"
    paths = [p for k, p in found if k == kind]
    # HF's newest checkpoint-N holds the whole history; Lightning's newest version_N is the last run
    chosen = max(paths, key=lambda p: (p.stat().st_mtime, _number(p.parent.name)))
    notes = []
    if len(paths) > 1:
        notes.append(_several_runs_note(folder, chosen.parent, len(paths)))
    return chosen, notes


def _walk(folder: Path, depth: int):
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_file():
            yield entry
        elif entry.is_dir() and depth > 0 and not entry.is_symlink():
            yield from _walk(entry, depth - 1)


def _run_of(root: Path, folder: Path) -> Path:
    """The version_N folder an event folder belongs to (itself when none)."""
    for part in (folder, *folder.parents):
        if part == root:
            break
        if re.fullmatch(r"version_\d+", part.name):
            return part
    return folder


def _newest(folder: Path) -> float:
    times = [p.stat().st_mtime for p in _walk(folder, RUN_DEPTH)]
    return max(times, default=0.0)


def _number(name: str) -> int:
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else -1


def _several_runs_note(folder: Path, chosen: Path, n: int) -> str:
    return (f"{folder} holds {n} runs; reading the newest, {chosen.relative_to(folder) if chosen != folder else '.'}"
            f" (point [artifacts] training_log at another run's folder to choose it)")


def _read_csv(path: Path):
    import pandas as pd

    try:
        # only an empty cell is "not logged": a written nan/inf stays a value (see _numeric_frame)
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        seps = [d for d in (",", "\t", ";", "|") if d in first]
        # one delimiter in the header: that one; none: a single column; several: let pandas sniff
        sep = seps[0] if len(seps) == 1 else "," if not seps else None
        frame = pd.read_csv(path, sep=sep, engine="python", keep_default_na=False, na_values=[""])
    except Exception as exc:  # pandas raises many kinds for damaged text
        raise TrainingLogError(f"{path}: could not read the training log as CSV ({exc}).") from exc
    cols = {str(c) for c in frame.columns}
    if {"epoch", "step"} <= cols and any(str(c).endswith(("_step", "_epoch")) for c in cols):
        fmt = "lightning_csv"
    elif {"epoch", "loss"} <= cols and any(str(c).startswith("val_") for c in cols) and "step" not in cols:
        fmt = "keras_csv"
    else:
        fmt = "csv"
    return frame, fmt


def _read_jsonl(path: Path):
    import pandas as pd

    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_json_constant)
        except json.JSONDecodeError as exc:
            raise TrainingLogError(f"{path}: line {number} is not valid JSON ({exc.msg}). Each line of a "
                                   f"JSONL training log must be one JSON object.") from exc
        if not isinstance(record, dict):
            raise TrainingLogError(f"{path}: line {number} is not a JSON object.")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _json_constant(name: str) -> float:
    """NaN/Infinity in a JSON log: a logged non-finite value, kept as +-inf (NaN means "not logged")."""
    return -math.inf if name.startswith("-") else math.inf


def _read_json(path: Path):
    import pandas as pd

    try:
        data = json.loads(path.read_text(errors="replace"), parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise TrainingLogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if isinstance(data, dict) and isinstance(data.get("log_history"), list):
        # Hugging Face Trainer: the last entry is a run summary (train_runtime, a whole-run mean
        # train_loss), not a point on the curve.
        rows = [r for r in data["log_history"] if isinstance(r, dict) and "train_runtime" not in r]
        return pd.DataFrame.from_records(rows), "huggingface_trainer_state"
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame.from_records(data), "json"
    raise TrainingLogError(f"{path}: a JSON training log must be a Hugging Face trainer_state.json (with "
                           f"\"log_history\") or a list of records; this file is neither.")


def _event_dirs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    dirs = sorted({p.parent for p in path.rglob(f"*{EVENT_FILE_MARK}*") if p.is_file()})
    if not dirs:
        raise TrainingLogError(f"{path}: no TensorBoard event files (events.out.tfevents.*) in this folder.")
    return dirs


def _read_tensorboard(path: Path):
    import pandas as pd

    try:
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )
    except ImportError as exc:
        raise TrainingLogError(f"{path}: reading TensorBoard logs needs the tensorboard package "
                               f"(pip install tensorboard).") from exc
    values: dict[str, dict[int, float]] = {}
    for source in _event_dirs(path):
        prefix = "" if source == path or source.is_file() else str(source.relative_to(path))
        try:
            acc = EventAccumulator(str(source), size_guidance={"scalars": 0})
            acc.Reload()
            tags = acc.Tags().get("scalars", [])
        except Exception as exc:
            raise TrainingLogError(f"{source}: could not read TensorBoard events ({exc}).") from exc
        for tag in tags:
            name = f"{prefix}/{tag}" if prefix and prefix != "." else tag
            series = values.setdefault(name, {})
            for event in acc.Scalars(tag):
                value = float(event.value)
                series[int(event.step)] = math.inf if math.isnan(value) else value
    if not values:
        raise TrainingLogError(f"{path}: the TensorBoard events hold no scalar values.")
    frame = pd.DataFrame(values).sort_index()
    frame.index.name = "step"
    frame = frame.reset_index()
    if "epoch" in frame.columns:  # Lightning logs the epoch as a scalar at each step
        frame["epoch"] = frame["epoch"].ffill().bfill()
    elif all(str(c).split("/")[-1].startswith("epoch_") for c in frame.columns if c != "step"):
        frame = frame.rename(columns={"step": "epoch"})  # Keras TensorBoard callback: step = epoch
    return frame


# --- mapping columns onto curves --------------------------------------------------------------
def _index_column(frame, names) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _per_epoch(frame, column: str, epoch_col: str | None) -> bool:
    """A column is logged once per epoch when each epoch carries at most one value of it."""
    if epoch_col is None:
        return False
    epochs = frame.loc[frame[column].notna(), epoch_col].dropna()
    # Hugging Face logs fractional epochs (0.25, 0.5, ...) on per-step rows: not per epoch.
    integral = bool(((epochs - epochs.round()).abs() < 1e-9).all())
    return bool(len(epochs)) and integral and epochs.nunique() == len(epochs)


def _pick(candidates: list[str], prefer: str) -> str | None:
    """The first candidate with the preferred granularity suffix, else the first without any."""
    for c in candidates:
        if _tokens(c)[-1:] == [prefer]:
            return c
    plain = [c for c in candidates if _tokens(c)[-1:] not in (["step"], ["epoch"])]
    return (plain or candidates or [None])[0]


@dataclass
class _Columns:
    """Which columns of a log frame hold what: the index columns and one column (or None) per curve."""

    epoch: str | None
    step: str | None
    step_loss: str | None = None
    epoch_loss: str | None = None
    valid_loss: str | None = None
    train_metric: str | None = None
    valid_metric: str | None = None

    @property
    def epoch_level(self) -> list[str]:
        return [c for c in (self.epoch_loss, self.valid_loss, self.train_metric, self.valid_metric) if c]


def curves_from_frame(frame, path: str, fmt: str) -> TrainingCurves:
    """Map a wide table of logged values (NaN where a row logs nothing) onto TrainingCurves."""
    frame, epoch_col, step_col, value_cols = _numeric_frame(frame)
    curves = TrainingCurves(path=path, source_format=fmt, columns=value_cols)
    if not len(frame):
        raise TrainingLogError(f"{path}: the training log has no rows.")
    epoch_col, step_col = _usable_index(frame, epoch_col), _usable_index(frame, step_col)
    roles = _roles(curves, value_cols)
    cols = _pick_columns(frame, roles, epoch_col, step_col)
    _map_columns(curves, cols, roles)
    _fill_curves(curves, frame, cols)
    if not curves.mapped:
        raise TrainingLogError(
            f"{path}: no loss or metric column could be recognised. Name columns like train_loss / "
            f"val_loss / val_accuracy (Keras, Lightning and Hugging Face names are understood). "
            f"{curves.describe_columns()}.")
    return curves


def _numeric_frame(frame):
    """A copy with string column names and float value columns; (frame, epoch col, step col, value cols)."""
    import pandas as pd

    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    epoch_col = _index_column(frame, EPOCH_NAMES)
    step_col = _index_column(frame, STEP_NAMES)
    value_cols = []
    for c in frame.columns:
        if c in (epoch_col, step_col):
            continue
        numeric = pd.to_numeric(frame[c], errors="coerce")
        if not pd.api.types.is_numeric_dtype(frame[c]):  # a written "nan" is a logged non-finite value: kept as inf
            text = frame[c].astype(str).str.strip().str.lower()
            numeric = numeric.astype(float).mask(text.isin(NAN_TOKENS), math.inf)
        if numeric.notna().any():
            frame[c] = numeric.astype(float)
            value_cols.append(c)
    return frame, epoch_col, step_col, value_cols


def _usable_index(frame, col: str | None) -> str | None:
    """The index column as numbers, or None when it holds no number at all."""
    import pandas as pd

    if col is None:
        return None
    frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return None if frame[col].isna().all() else col


def _roles(curves: TrainingCurves, value_cols: list[str]) -> dict[tuple[str, str], list[str]]:
    """(loss|metric, train|valid) -> candidate columns; sets the curves' metric and names the unmapped."""
    roles: dict[tuple[str, str], list[str]] = {}
    metric_names: dict[str, str] = {}
    for c in value_cols:
        kind = classify_column(c)
        if kind is None or kind[1] == "test":
            if not _is_bookkeeping(c):
                curves.unmapped.append(c)
            continue
        what = "loss" if kind[0] == "loss" else "metric"
        roles.setdefault((what, kind[1]), []).append(c)
        if what == "metric":
            metric_names[c] = kind[0]
    # Several metrics: keep the most common kind across train and valid, in preference order.
    metric_kind = None
    for m in METRIC_PREFERENCE:
        m = "accuracy" if m == "acc" else m
        if m in metric_names.values():
            metric_kind = m
            break
    for phase in ("train", "valid"):
        cols = roles.get(("metric", phase), [])
        kept = [c for c in cols if metric_names[c] == metric_kind]
        curves.unmapped += [c for c in cols if c not in kept]
        roles[("metric", phase)] = kept
    curves.metric_name = metric_kind
    curves.metric_higher_is_better = METRIC_TOKENS.get(metric_kind or "accuracy", True)
    return roles


def _pick_columns(frame, roles, epoch_col: str | None, step_col: str | None) -> _Columns:
    """One column per curve: the per-step and per-epoch training loss are told apart by their suffix or
    by how often each epoch logs them."""
    cols = _Columns(epoch_col, step_col)
    train_losses = roles.get(("loss", "train"), [])
    cols.step_loss = next((c for c in train_losses if _tokens(c)[-1] == "step"), None)
    if cols.step_loss is None:
        has_index = epoch_col is not None or step_col is not None  # without one, rows are epochs
        cols.step_loss = next((c for c in train_losses if has_index and _tokens(c)[-1] != "epoch"
                               and not _per_epoch(frame, c, epoch_col)), None)
    cols.epoch_loss = next((c for c in train_losses if c != cols.step_loss
                            and (_tokens(c)[-1] == "epoch" or _per_epoch(frame, c, epoch_col)
                                 or epoch_col is None and step_col is None)), None)
    cols.valid_loss = _pick(roles.get(("loss", "valid"), []), "epoch")
    cols.train_metric = _pick(roles.get(("metric", "train"), []), "epoch")
    cols.valid_metric = _pick(roles.get(("metric", "valid"), []), "epoch")
    return cols


def _map_columns(curves: TrainingCurves, cols: _Columns, roles) -> None:
    """Record role -> column, and every candidate column left over as unmapped."""
    if cols.step_loss is not None:
        curves.mapped["step_loss"] = cols.step_loss
    for role, col in (("train_loss", cols.epoch_loss), ("valid_loss", cols.valid_loss),
                      ("train_metric", cols.train_metric), ("valid_metric", cols.valid_metric)):
        if col is not None:
            curves.mapped[role] = col
    train_losses = roles.get(("loss", "train"), [])
    for candidates in roles.values():
        for c in candidates:
            if c not in curves.mapped.values() and c not in curves.unmapped and c not in train_losses:
                curves.unmapped.append(c)


def _fill_curves(curves: TrainingCurves, frame, cols: _Columns) -> None:
    """The per-step loss, the evaluation points, and one value per point of each per-epoch curve."""
    import numpy as np
    import pandas as pd

    if cols.step_loss is not None:
        rows = frame[frame[cols.step_loss].notna()]
        x = rows[cols.step] if cols.step is not None else pd.Series(np.arange(len(rows)), index=rows.index)
        curves.step = [float(v) for v in x]
        curves.step_loss = [float(v) for v in rows[cols.step_loss]]
    key = _point_key(curves, frame, cols)
    points = curves.index

    def last_per_point(col):
        if col is None:
            return [math.nan] * len(points)
        rows = frame[frame[col].notna() & frame[key].notna()]
        last = rows.groupby(key)[col].last()
        return [float(last.get(p, math.nan)) for p in points]

    def bucket_means(col):
        """Mean of a per-step column over each interval (previous point, point]."""
        rows = frame[frame[col].notna() & frame[key].notna()]
        out, prev = [], -math.inf
        for p in points:
            sel = rows[(rows[key] > prev) & (rows[key] <= p)][col]
            out.append(float(sel.mean()) if len(sel) else math.nan)
            prev = p
        return out

    curves.train_loss = last_per_point(cols.epoch_loss) if cols.epoch_loss else (
        bucket_means(cols.step_loss) if cols.step_loss else [math.nan] * len(points))
    if cols.epoch_loss is None and cols.step_loss is not None and points:
        curves.mapped["train_loss"] = f"{cols.step_loss} (mean per {curves.index_name})"
    curves.valid_loss = last_per_point(cols.valid_loss)
    curves.train_metric = last_per_point(cols.train_metric)
    curves.valid_metric = last_per_point(cols.valid_metric)
    _drop_evaluation_after_training(curves, frame, cols, key)


def _drop_evaluation_after_training(curves: TrainingCurves, frame, cols: _Columns, key: str) -> None:
    """The last point is left out when no training happened in it: the row `trainer.validate()`/`test()`
    append to a Lightning metrics.csv after fit (a new epoch at the last training step, no training loss).
    It is an evaluation of the final model, not a training epoch: its validation value must not be read
    as the last epoch's, nor its missing training loss as a NaN."""
    train_cols = [c for c in (cols.step_loss, cols.epoch_loss) if c]
    if not train_cols or cols.step is None or len(curves.index) < 2:
        return
    trained = frame[frame[train_cols].notna().any(axis=1)]
    last = curves.index[-1]
    if not len(trained) or (trained[key] == last).any():
        return
    if frame.loc[frame[key] == last, cols.step].max() > trained[cols.step].max():
        return  # training steps went by (only not logged): a real point
    for role in ("index", "train_loss", "valid_loss", "train_metric", "valid_metric"):
        setattr(curves, role, getattr(curves, role)[:-1])
    curves.notes.append(f"left out {curves.index_name} {last:g}: an evaluation after training (no training "
                        f"steps; trainer.validate() or test() after fit), not a training {curves.index_name}")


def _point_key(curves: TrainingCurves, frame, cols: _Columns) -> str:
    """Set the evaluation points (the epochs, or steps, at which epoch-level values were logged) and
    return the frame column they are read from."""
    import numpy as np

    if cols.epoch is not None:
        key, curves.index_name = cols.epoch, "epoch"
    elif cols.step is not None:
        key, curves.index_name = cols.step, "step"
    else:
        frame["_row"] = np.arange(len(frame), dtype=float)
        key, curves.index_name = "_row", "epoch"
    if cols.epoch_level:
        points = sorted({float(v) for c in cols.epoch_level for v in frame.loc[frame[c].notna(), key].dropna()})
    elif cols.step_loss is not None and cols.epoch is not None:
        points = sorted({float(v) for v in frame[cols.epoch].dropna()})
    else:
        points = []
    curves.index = points
    return key


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
