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

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .log_files import (EPOCH_NAMES, EVENT_FILE_MARK, METRIC_PREFERENCE, METRIC_TOKENS, NAN_TOKENS,
                        STEP_NAMES, TrainingLogError,
                        _index_column, _read_csv, _read_json, _read_jsonl, _read_tensorboard,
                        _read_text, _tokens, classify_column, find_run_log, sniff_log)


# Columns that are bookkeeping, not curves: known, so not reported as unmapped.
BOOKKEEPING = re.compile(r"(^|[_/])(lr|learning_rate|lr-\w+|grad_norm|time|runtime|samples_per_second|"
                         r"steps_per_second|total_flos|wall_time|timestamp|created_at|momentum|"
                         r"hp_metric|num_tokens|num_input_tokens_seen)($|[_/])")


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


