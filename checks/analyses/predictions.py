"""Where the metrics and error steps get their predictions from, computed once per run.

Order of preference (DESIGN §3): the `[artifacts] predictions` file for the valid split; else the
project's checkpoint loaded into a fresh model; else the reference model mltriage trains within the
budget (scikit-learn estimators are fitted). Train and test predictions can only come from a model:
with a predictions file they come from the checkpoint when there is one, else they are missing and
`Outputs.missing` says what to add. A damaged predictions file is a ProjectError naming the file and
the column, which the engine turns into an `error` finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.analysis import analysis
from ..engine.context import RunContext
from ..findings import SkipCheck
from ..project.config import ProjectError
from ..project.usercode import UserCodeError

PREDICTION_COLUMN = "prediction"
PROB_PREFIX = "prob_"
# Probabilities written to CSV with a few decimals drift from 1 by rounding (10 classes at 4 decimals
# can be 5e-4 off); 0.01 is far above rounding and far below any real bug (a missing class, logits).
PROB_SUM_TOLERANCE = 0.01
# Rows of the valid split the project's predict is called on to read the shape it returns, when mltriage's
# own training already turned its output into probabilities (a few rows show the shape as well as all).
PREDICT_SHAPE_ROWS = 8


class PredictOutputError(UserCodeError):
    """The project's predict returned something that is not scores of the documented shape (DESIGN §3)."""

    def __init__(self, message: str, returned: str):
        super().__init__(message)
        self.returned = returned   # e.g. "shape (500,)", for the skip reason of later checks


@dataclass
class SplitOutputs:
    """One split's labels and the model's outputs, row-aligned with ctx.splits[split]."""

    y_true: Any            # encoded labels: int64 class index (-1 unknown) or float32 values
    pred: Any              # int64 class index or float prediction per row
    proba: Any | None      # (N, C) class probabilities, or None when the source has none
    source: str            # where these outputs came from, for finding texts

    @property
    def labelled(self):
        """Rows that can be scored: the label is known (inside `classes`, not NaN)."""
        import numpy as np

        y = self.y_true
        return (y >= 0) if y.dtype.kind in "iu" else np.isfinite(y)

    @property
    def correct(self):
        """Per-row correctness (classification)."""
        return self.pred == self.y_true

    @property
    def confidence(self):
        """Probability of the predicted class, or None without probabilities."""
        import numpy as np

        if self.proba is None:
            return None
        idx = np.clip(self.pred.astype(int), 0, self.proba.shape[1] - 1)
        return self.proba[np.arange(len(self.pred)), idx]


@dataclass
class Outputs:
    kind: str                                   # "file" | "checkpoint" | "reference"
    source: str                                 # a sentence for finding texts
    splits: dict[str, SplitOutputs] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # split -> what to add to get it
    # True when mltriage trained the model and the time budget cut training short: another run may
    # stop at a different step, so differences between runs are not only the project's doing.
    budget_limited: bool = False

    def get(self, split: str) -> SplitOutputs:
        """The split's outputs, or SkipCheck saying what to add."""
        if split in self.splits:
            return self.splits[split]
        raise SkipCheck(self.missing.get(split, f"no {split} split in this project"))


def model_outputs(ctx: RunContext) -> Outputs:
    """Predictions for every split available, computed once per run. A predict of the wrong shape is an
    `error` for the first check that asks and a skip, pointing at that error, for every later one."""
    try:
        return _all_outputs(ctx)
    except PredictOutputError as exc:
        reported = ctx.shared(("predictions.predict_output_reported",), list)
        if not reported:
            reported.append(True)
            raise
        raise SkipCheck(f"the project's predict returned {exc.returned}, not scores\n{exc}\nThe first check "
                        f"that asked for predictions reported it as an error; see also sanity.eval_determinism."
                        ) from None


@analysis
def _all_outputs(ctx: RunContext) -> Outputs:
    cfg = ctx.config
    if cfg.predictions is not None:
        outputs = Outputs("file", f"the predictions file {_short(ctx, cfg.predictions)}")
        outputs.splits["valid"] = read_predictions_file(ctx, cfg.predictions, "[artifacts] predictions")
        others = [s for s in ctx.splits if s != "valid"]
        if cfg.checkpoint is not None and ctx.has_model:
            from_model = _checkpoint_outputs(ctx, others)
            outputs.splits.update(from_model)
            outputs.source += f" (train/test: the checkpoint {_short(ctx, cfg.checkpoint)})"
        else:
            for split in others:
                outputs.missing[split] = (
                    f"needs {split}-split predictions: add [model] checkpoint\n"
                    f"The predictions file covers the valid split only. Add [model] code/build and [model] "
                    f"checkpoint (the weights that wrote the file) so mltriage can predict the {split} split itself.")
        return outputs
    if cfg.checkpoint is not None and ctx.has_model:
        splits = _checkpoint_outputs(ctx, list(ctx.splits))
        return Outputs("checkpoint", f"the checkpoint {_short(ctx, cfg.checkpoint)}", splits)
    if ctx.has_model:
        return _reference_outputs(ctx)
    raise SkipCheck("needs predictions: [artifacts] predictions = \"preds/valid.csv\" (column \"prediction\", "
                    "and prob_<class> columns for classifiers), or a model ([model] code and build)")


def previous_outputs(ctx: RunContext) -> SplitOutputs | None:
    """The previous run's valid-split predictions (`[artifacts] previous_predictions`), or None."""
    if ctx.config.previous_predictions is None:
        return None
    return _previous_predictions(ctx)


@analysis
def _previous_predictions(ctx: RunContext) -> SplitOutputs:
    return read_predictions_file(ctx, ctx.config.previous_predictions, "[artifacts] previous_predictions")


def _short(ctx: RunContext, path: Path) -> str:
    try:
        return str(Path(path).relative_to(ctx.root))
    except ValueError:
        return str(path)


# --- predictions files ------------------------------------------------------------------------
def read_predictions_file(ctx: RunContext, path: Path, key: str) -> SplitOutputs:
    """Read and validate a predictions file against the valid split (DESIGN §3 format)."""
    from ..io.readers import read_table

    name = _short(ctx, path)
    df = read_table(Path(path), key)
    n_valid = len(ctx.valid)
    if len(df) != n_valid:
        where = ("the validation rows mltriage holds out of train (no [data] valid is set)"
                 if ctx.valid_is_holdout else f"{_short(ctx, ctx.config.valid)}")
        raise ProjectError(f"{name} ({key}) has {len(df)} rows but the valid split has {n_valid}; "
                           f"the file must have one row per row of {where}, in the same order.")
    if PREDICTION_COLUMN not in df.columns:
        raise ProjectError(f"{name} ({key}) has no \"{PREDICTION_COLUMN}\" column (columns: "
                           f"{', '.join(map(str, list(df.columns)[:12]))}). Write the predicted label or value "
                           f"of each row in a column named \"{PREDICTION_COLUMN}\".")
    y_true = ctx.y("valid")
    if not ctx.is_classification:
        pred = _numeric_predictions(df[PREDICTION_COLUMN], name, key)
        return SplitOutputs(y_true, pred, None, name)
    pred = _encode_predicted_labels(ctx, df[PREDICTION_COLUMN], name, key)
    proba = _probabilities(ctx, df, name, key)
    return SplitOutputs(y_true, pred, proba, name)


def _numeric_predictions(column, name: str, key: str):
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        rows = list(np.flatnonzero(bad.to_numpy())[:5])
        raise ProjectError(f"{name} ({key}): column \"{PREDICTION_COLUMN}\" has {int(bad.sum())} empty, "
                           f"non-numeric or infinite value(s) (rows {rows}); a regression prediction must be "
                           f"a finite number on every row.")
    return values.to_numpy(dtype=np.float64)


def _encode_predicted_labels(ctx: RunContext, column, name: str, key: str):
    import numpy as np

    codes = ctx.encode_labels(column)
    unknown = codes < 0
    if unknown.any():
        values = sorted({str(v) for v in column[unknown]})[:5]
        rows = list(np.flatnonzero(unknown)[:5])
        raise ProjectError(f"{name} ({key}): column \"{PREDICTION_COLUMN}\" holds {int(unknown.sum())} label(s) "
                           f"that are not classes of this project: {values} (rows {rows}). Classes: "
                           f"{[str(c) for c in ctx.classes][:20]}. Write the predicted class label as it "
                           f"appears in the target column.")
    return codes


def prob_column(ctx: RunContext, label: Any) -> str:
    return f"{PROB_PREFIX}{ctx.label_key(label)}"


def _probabilities(ctx: RunContext, df, name: str, key: str):
    """(N, C) probabilities from prob_<class> columns; None when the file has none at all."""
    import numpy as np
    import pandas as pd

    wanted = [prob_column(ctx, c) for c in ctx.classes]
    present = [c for c in wanted if c in df.columns]
    if not present:
        return None
    if len(present) < len(wanted):
        lacking = [c for c in wanted if c not in df.columns]
        raise ProjectError(f"{name} ({key}) has probability columns for some classes but not for "
                           f"{lacking[:8]}; write one {PROB_PREFIX}<class> column per class "
                           f"({len(wanted)} in all), or none.")
    proba = df[wanted].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(proba) | (proba < 0) | (proba > 1)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ProjectError(f"{name} ({key}): column \"{wanted[col]}\" row {row} is "
                           f"{df[wanted[col]].iloc[row]!r}; probabilities must be numbers in [0, 1] "
                           f"({int(bad.any(axis=1).sum())} row(s) affected). If these are logits, apply softmax.")
    sums = proba.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ProjectError(f"{name} ({key}): the {PROB_PREFIX}<class> columns do not sum to 1 on "
                           f"{int(off.sum())} row(s) (row {row} sums to {sums[row]:.4f}). Write the full "
                           f"softmax output, one column per class.")
    return proba / sums[:, None]


# --- the project's predict: its output shape ---------------------------------------------------
def accepted_score_tails(task_is_classification: bool, n_classes: int) -> list[tuple[int, ...]]:
    """The shapes after the row dimension that DESIGN §3 accepts from predict: (C,) scores for C > 2
    classes; (), (1,) or (2,) for a binary classifier; () or (1,) for regression."""
    if not task_is_classification:
        return [(), (1,)]
    if n_classes <= 2:
        return [(), (1,), (2,)]
    return [(n_classes,)]


def expected_score_shapes(task_is_classification: bool, n_classes: int, n: int | str = "N") -> str:
    """The accepted shapes in words: "(500, 10)", "(N,) or (N, 1)"."""
    return " or ".join(f"({n},)" if not tail else f"({n}, {', '.join(map(str, tail))})"
                       for tail in accepted_score_tails(task_is_classification, n_classes))


def predict_shape_problem(shape: tuple, rows: int | None, task_is_classification: bool, n_classes: int) -> str:
    """Why an output of `shape` is not scores for `rows` rows ("" when it is). Pure: shapes only.
    `rows` None: the row count is not compared."""
    shape = tuple(int(d) for d in shape)
    if not shape:
        return "a single value, not one per row"
    if rows is not None and shape[0] != rows:
        return f"{shape[0]} rows for {rows} input rows"
    if shape[1:] in accepted_score_tails(task_is_classification, n_classes):
        return ""
    if task_is_classification and n_classes > 2 and len(shape) == 1:
        return "one value per row, like class ids, where one score per class is needed"
    return f"{shape[1] if len(shape) > 1 else 1} column(s) per row"


def check_predict_output(ctx: RunContext, scores, rows: int | None) -> None:
    """Raise PredictOutputError naming `[model] predict` when its output is not scores of the right shape."""
    import numpy as np

    if ctx.is_tensor and ctx.target_kind == "sequence":
        return  # per-position outputs are flattened to one row per position; their width is the vocabulary
    shape = tuple(np.shape(scores))
    n_classes = len(ctx.classes) if ctx.is_classification else 0
    problem = predict_shape_problem(shape, None if ctx.is_tensor else rows, ctx.is_classification, n_classes)
    if not problem:
        return
    n = rows if rows is not None and not ctx.is_tensor else "N"
    expected = expected_score_shapes(ctx.is_classification, n_classes, n)
    returned = f"shape {shape}" + (f" for {rows} rows" if rows is not None else "")
    what = (f"scores of shape {expected}: one column per class, logits or probabilities, before any argmax"
            if ctx.is_classification and n_classes > 2 else f"an output of shape {expected}")
    raise PredictOutputError(
        f"[model] predict = \"{ctx.config.predict}\" returned {returned} ({problem}); mltriage needs {what}. "
        f"Return the model's outputs (e.g. model(X) or its softmax), not the predicted class ids.", returned)


def _checked_reference_predict(ctx: RunContext, model) -> None:
    """The shape the project's predict returns on a few valid rows, checked before its outputs are used."""
    from .modeling import forward_scores

    if ctx.function("predict") is None:
        return
    X = ctx.X("valid")
    head = X[:PREDICT_SHAPE_ROWS]
    check_predict_output(ctx, forward_scores(ctx, model, head), len(head))


# --- model outputs ----------------------------------------------------------------------------
def _split_outputs_from_scores(ctx: RunContext, split: str, raw, source: str, has_proba: bool = True) -> SplitOutputs:
    """SplitOutputs from probabilities (classification) or values (regression)."""
    import numpy as np

    y = ctx.y(split)
    values = np.asarray(raw, dtype=np.float64)
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1) if len(values) else np.zeros(0, bool)
    if bad.any():
        # a diverged model (an absurd lr, a loss that blew up): no metric means anything on these outputs
        raise SkipCheck(f"the model's outputs are not finite (NaN or infinite) on {int(bad.sum()):,} of "
                        f"{len(values):,} {split} rows, from {source}\nTraining diverged: see "
                        f"training.divergence and training.lr_range; metrics are not computed on such outputs.")
    if ctx.is_classification:
        return SplitOutputs(y, values.argmax(axis=1).astype(np.int64), values if has_proba else None, source)
    return SplitOutputs(y, values.reshape(-1), None, source)


def _checkpoint_outputs(ctx: RunContext, splits: list[str]) -> dict[str, SplitOutputs]:
    from .modeling import forward_scores, scores_to_proba

    model = _load_checkpoint(ctx)
    source = f"the checkpoint {_short(ctx, ctx.config.checkpoint)}"
    result = {}
    for split in splits:
        X = ctx.X(split)
        scores = forward_scores(ctx, model, X)
        if ctx.function("predict") is not None:
            check_predict_output(ctx, scores, len(X))
        raw = scores_to_proba(ctx, scores) if ctx.is_classification else scores.reshape(len(scores), -1)[:, 0]
        result[split] = _split_outputs_from_scores(ctx, split, raw, source)
    return result


@analysis
def _load_checkpoint(ctx: RunContext):
    """The project's model with the checkpoint's weights, in eval mode (loaded once per run)."""
    import torch

    path = ctx.config.checkpoint
    name = _short(ctx, path)
    if ctx.model_kind != "torch":
        raise ProjectError(f"[model] checkpoint = \"{name}\" is a PyTorch state_dict, but build_model returns a "
                           f"{ctx.model_kind} model. Remove the checkpoint key, or give predictions instead.")
    if not Path(path).is_file():
        raise ProjectError(f"[model] checkpoint: {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors for damaged or unsafe files
        raise ProjectError(f"{name} ([model] checkpoint) could not be loaded with weights_only=True: "
                           f"{str(exc).splitlines()[0][:200]}. Save it with torch.save(model.state_dict(), path).") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = ctx.build_model()
    try:
        model.load_state_dict(state)
    except Exception as exc:
        raise ProjectError(f"{name} ([model] checkpoint) does not fit the model build_model returns: "
                           f"{str(exc).splitlines()[0][:300]}") from None
    model.to(ctx.device)
    model.eval()
    return model


def _reference_outputs(ctx: RunContext) -> Outputs:
    from .probe import train_reference

    ref = train_reference(ctx)
    if ref.kind == "torch":
        _checked_reference_predict(ctx, ref.model)
    has_proba = ref.kind == "torch" or hasattr(ref.model, "predict_proba")
    if ref.kind == "sklearn":
        source = "the project's estimator, fitted by mltriage on the train split"
    else:
        source = f"the project's model, {ref.note or 'trained by mltriage'}"
    splits = {split: _split_outputs_from_scores(ctx, split, raw, source, has_proba)
              for split, raw in ref.outputs.items()}
    stopped = ref.history is not None and ref.history.stopped == "budget"
    return Outputs("reference", source, splits, budget_limited=stopped)
