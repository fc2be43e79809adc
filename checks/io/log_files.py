"""Reading a training log file of any supported kind into a table: the format told from the content
(CSV/TSV, JSON lines, a Hugging Face trainer_state.json, regular text lines, TensorBoard events), and the
run a folder holds (Lightning, Hugging Face, TensorBoard; the newest of several). logs.py maps the table
onto TrainingCurves."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..project.config import ProjectError


TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


RECORD_SUFFIXES = (".jsonl", ".ndjson")


EVENT_FILE_MARK = "tfevents"


NAN_TOKENS = ("nan", "-nan", "+nan")


class TrainingLogError(ProjectError):
    """The training log cannot be read; the message names the file and what to do."""


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


_NAMED_VALUE = re.compile(r"([:=]|\s)\s*[-+]?(\d|\.\d)")   # "loss: 0.4", "loss=0.4", "loss 0.4" in a cell


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


_TOKEN = re.compile(r"(?P<value>(?i:[-+]?nan|[-+]?inf(?:inity)?)\b|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<word>[A-Za-z_][\w/.\-]*)|(?P<slash>/)")


# --- run folders ----------------------------------------------------------------------------------
RUN_DEPTH = 4                  # how deep a run folder is searched for its logs


# --- mapping columns onto curves --------------------------------------------------------------
def _index_column(frame, names) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None
