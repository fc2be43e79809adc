"""errors.confident_mistakes: the wrong predictions the model was surest of (largest residuals for regression)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analyses.evaluation import labelled
from ...analyses.predictions import model_outputs
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, RowTable, SkipCheck, passed, skipped, warn
from ...wording import num, signed
from .rows import SHOWN_EXAMPLES, label_name, row_key_columns, row_values

# Confident mistakes: wrong predictions made with probability >= 0.9. Warn when there are at least
# three times as many as the stated confidences allow and the excess is far beyond chance (z > 3).
CONFIDENT = 0.9
CONFIDENT_EXCESS_RATIO = 3.0
CONFIDENT_Z = 3.0
MIN_CONFIDENT_MISTAKES = 5
# Regression rows listed in the table: errors beyond 2 target s.d. (under a normal error, ~5% of rows).
RESIDUAL_ROWS_SD = 2.0
# The start of a row's text shown with an example: enough to recognise it on one terminal line.
SHOWN_TEXT = 80


def _label_issue_flags(ctx: RunContext):
    """The data step's suspected label errors over ctx.train rows (analyses.labels.label_issue_mask), or
    None when that analysis is not available."""
    import numpy as np

    try:
        from ...analyses.labels import label_issue_mask
    except ImportError:
        return None
    try:
        mask = label_issue_mask(ctx)
    except (SkipCheck, ImportError):
        return None
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.shape == (len(ctx.train),) else None


def _confident_examples(ctx: RunContext, so, flags=None) -> tuple[list[dict], Any, Any]:
    """The wrong predictions of a split, most confident first (row = position in that split), and the
    confidence and wrongness of every labelled row."""
    import numpy as np

    rows = np.flatnonzero(so.labelled)
    y, pred, proba = labelled(so)
    conf = proba[np.arange(len(pred)), pred]
    wrong = pred != y
    order = np.flatnonzero(wrong)[np.argsort(-conf[wrong], kind="stable")]
    examples = []
    for i in order[:SHOWN_EXAMPLES]:
        row = int(rows[i])
        example = {"row": row, "label": label_name(ctx, int(y[i])), "predicted": label_name(ctx, int(pred[i])),
                   "confidence": float(conf[i]), "probability_of_label": float(proba[i, y[i]])}
        if flags is not None:
            example["suspected_label_issue"] = bool(flags[row])
        examples.append(example)
    return examples, conf, wrong


def id_column(ctx: RunContext, frame) -> str | None:
    """The `[data] ignore` column that identifies rows (unique values; a name like row_id first), or None."""
    candidates = [c for c in (ctx.config.ignore or []) if c in getattr(frame, "columns", ())]
    candidates.sort(key=lambda c: not str(c).lower().endswith("id"))
    return next((c for c in candidates if frame[c].is_unique), None)


def row_identity(ctx: RunContext, frame, row: int, id_col: str | None) -> dict:
    """What lets a reader find the row: its id value and the start of its first text column."""
    out = {}
    if id_col is not None:
        value = frame[id_col].iloc[row]
        out["id"] = {str(id_col): value.item() if hasattr(value, "item") else value}
    text_cols = [c for c in ctx.text_columns if c in getattr(frame, "columns", ())] if not ctx.is_tensor else []
    if text_cols:
        text = frame[text_cols[0]].iloc[row]
        text = "" if text is None or text != text else " ".join(str(text).split())
        out["text"] = text if len(text) <= SHOWN_TEXT else text[:SHOWN_TEXT - 3].rstrip() + "..."
    return out


def _add_identities(ctx: RunContext, frame, examples: list[dict]) -> None:
    id_col = id_column(ctx, frame)
    for e in examples:
        e.update(row_identity(ctx, frame, e["row"], id_col))


def _row_name(e: dict) -> str:
    """"row 4 (review_id r0042)": the position, and the id when the split has an id column."""
    return f"row {e['row']}" + "".join(f" ({k} {v})" for k, v in (e.get("id") or {}).items())


def _describe_example(e: dict) -> str:
    mark = " [also suspected as a label error by data.label_issues]" if e.get("suspected_label_issue") else ""
    text = f' "{e["text"]}"' if e.get("text") else ""
    return (f"{_row_name(e)}: label '{e['label']}', predicted '{e['predicted']}' with "
            f"{e['confidence']:.3f}{mark}{text}")


@dataclass
class ConfidentMistakesMeasure:
    confidence: Any                 # probability of the predicted class, per labelled valid row
    wrong: Any                      # per labelled valid row
    examples: list[dict]            # valid mistakes, most confident first
    train_examples: list[dict] = field(default_factory=list)  # the same on train (rows the model could not fit)
    has_train_outputs: bool = False  # train predictions exist at all
    label_issue_analysis: bool = False  # train examples carry data.label_issues' marks
    row_table: RowTable | None = None   # every wrong prediction, most confident first (issue 18)

    @property
    def confident(self):
        import numpy as np

        return np.asarray(self.confidence) >= CONFIDENT

    @property
    def confident_mistakes(self) -> int:
        return int((self.wrong & self.confident).sum())

    @property
    def expected_mistakes(self) -> float:
        """How many confident predictions would be wrong if the stated confidences were right."""
        return float((1 - self.confidence[self.confident]).sum())

    @property
    def z(self) -> float:
        import numpy as np

        conf = self.confidence[self.confident]
        sd = float(np.sqrt((conf * (1 - conf)).sum()))
        k, expected = self.confident_mistakes, self.expected_mistakes
        return (k - expected) / sd if sd > 0 else (float("inf") if k > expected else 0.0)


def _measure_confident_mistakes(ctx: RunContext, outputs) -> ConfidentMistakesMeasure:
    so = outputs.get("valid")
    if so.proba is None:
        raise SkipCheck("needs class probabilities: add prob_<class> columns to the predictions file")
    examples, conf, wrong = _confident_examples(ctx, so)
    for e in examples:
        e["values"] = row_values(ctx, ctx.valid, e["row"])
    _add_identities(ctx, ctx.valid, examples)
    m = ConfidentMistakesMeasure(conf, wrong, examples)
    # On train, a confident mistake is a row the model could not fit even while learning from it: the
    # likeliest place for a wrong label. data.label_issues judges train rows, so marks apply there.
    train_so = outputs.splits.get("train")
    m.has_train_outputs = train_so is not None
    if train_so is not None and train_so.proba is not None:
        flags = _label_issue_flags(ctx)
        m.label_issue_analysis = flags is not None
        m.train_examples = _confident_examples(ctx, train_so, flags)[0]
        for e in m.train_examples:
            e["values"] = row_values(ctx, ctx.train, e["row"])
        _add_identities(ctx, ctx.train, m.train_examples)
    m.row_table = _mistake_rows(ctx, [("valid", so)] + ([("train", train_so)] if train_so is not None
                                                          and train_so.proba is not None else []))
    return m


def _mistake_rows(ctx: RunContext, parts) -> RowTable | None:
    """Every wrong prediction of the given splits, most confident first within each split (valid first):
    position, split, id, text or key values, label, prediction, confidence, is_confident_mistake and
    confident_mistake_score (the confidence of the wrong prediction, cleanlab-style)."""
    import numpy as np

    columns: dict = {}
    for split, so in parts:
        rows = np.flatnonzero(so.labelled)
        y, pred, proba = labelled(so)
        conf = proba[np.arange(len(pred)), pred]
        wrong = np.flatnonzero(pred != y)
        order = wrong[np.argsort(-conf[wrong], kind="stable")]
        part = {"position": rows[order].tolist()}
        part.update(row_key_columns(ctx, ctx.splits[split], rows[order], split=split))
        part.update({"label": [label_name(ctx, int(v)) for v in y[order]],
                     "prediction": [label_name(ctx, int(v)) for v in pred[order]],
                     "confidence": conf[order].tolist(), "probability_of_label": proba[order, y[order]].tolist(),
                     "is_confident_mistake": (conf[order] >= CONFIDENT).tolist(),
                     "confident_mistake_score": conf[order].tolist()})
        for name, values in part.items():
            columns.setdefault(name, []).extend(values)
    if not columns.get("position"):
        return None
    return RowTable.from_columns(columns)


def _mistakes_text(m: ConfidentMistakesMeasure, suspected: list[int]) -> str:
    lines = ["Valid split:"] + [_describe_example(e) for e in m.examples[:5]]
    if m.train_examples:
        lines += ["Train split (rows the model could not fit):"] + [_describe_example(e) for e in m.train_examples[:5]]
    if suspected:
        lines.append(f"{len(suspected)} of the {len(m.train_examples)} train rows shown are also suspected label "
                     f"errors: fix those labels rather than the model.")
    elif not m.has_train_outputs:
        lines.append("(Train-split mistakes, which data.label_issues can mark as likely label errors, need "
                     "train predictions: add [model] code/build and [model] checkpoint.)")
    return "\n".join(lines)


def confident_mistakes_verdict(m: ConfidentMistakesMeasure) -> Finding:
    conf, wrong, examples = m.confidence, m.wrong, m.examples
    high = m.confident
    k, expected, z = m.confident_mistakes, m.expected_mistakes, m.z
    suspected = [e["row"] for e in m.train_examples if e.get("suspected_label_issue")]
    evidence = {"confident_threshold": CONFIDENT, "confident_rows": int(high.sum()), "confident_mistakes": k,
                "expected_mistakes": expected, "z": z, "warn_ratio": CONFIDENT_EXCESS_RATIO, "warn_z": CONFIDENT_Z,
                "mistakes": int(wrong.sum()), "examples": examples, "train_examples": m.train_examples,
                "label_issue_analysis": m.label_issue_analysis, "suspected_label_issue_rows": suspected}
    plot = PlotSpec.histogram("confidence of wrong vs right predictions (valid)",
                              {"wrong": conf[wrong], "right": conf[~wrong]}, bins=20, x_label="confidence")
    text = _mistakes_text(m, suspected)
    if k >= MIN_CONFIDENT_MISTAKES and k >= CONFIDENT_EXCESS_RATIO * expected and z > CONFIDENT_Z:
        few = f"~{expected:.1f} are expected" if expected >= 0.05 else "almost none are expected"
        how_far = f"z = {z:.1f}" if z == z and abs(z) != float("inf") else "far beyond chance"
        return warn(f"{k} wrong predictions made with confidence >= {CONFIDENT}, where {few}",
                    detail=f"Among {int(high.sum())} valid rows predicted with probability >= {CONFIDENT}, {k} are "
                           f"wrong; if the probabilities were right about {num(expected, 2)} would be ({how_far}; "
                           f"warn at {CONFIDENT_EXCESS_RATIO:.0f}x expected and z > {CONFIDENT_Z:.0f}).\n" + text,
                    fix="Read the rows: confident mistakes are often label errors (relabel them) or a systematic "
                        "gap (a missing feature, a segment absent from train). If the labels are right, the "
                        "model is over-confident: see metrics.calibration (temperature scaling, less overfitting).",
                    evidence=evidence, plots=[plot], rows=m.row_table)
    if len(conf) == 0:
        return skipped("no labelled valid rows to look for mistakes in", evidence=evidence)
    title = (f"{k} mistakes with confidence >= {CONFIDENT} (~{expected:.1f} expected); top: "
             f"{_row_name(examples[0])} '{examples[0]['label']}' predicted '{examples[0]['predicted']}' "
             f"({examples[0]['confidence']:.2f})" if examples else "no wrong predictions on the valid split")
    return passed(title, detail=text, evidence=evidence, plots=[plot], rows=m.row_table)


def _largest_residuals(ctx: RunContext, so) -> Finding:
    import numpy as np

    rows = np.flatnonzero(so.labelled)
    y, pred, _ = labelled(so)
    resid = pred - y.astype(float)
    scale = float(np.std(y)) or 1.0
    order = np.argsort(-np.abs(resid), kind="stable")[:SHOWN_EXAMPLES]
    examples = [{"row": int(rows[i]), "target": float(y[i]), "predicted": float(pred[i]),
                 "error": float(resid[i]), "error_in_sd": float(resid[i] / scale),
                 "values": row_values(ctx, ctx.valid, int(rows[i]))} for i in order]
    if not examples:
        return skipped("no labelled valid rows to compare predictions with")
    _add_identities(ctx, ctx.valid, examples)
    evidence = {"examples": examples, "target_sd": scale, "mae": float(np.abs(resid).mean()),
                "row_threshold_sd": RESIDUAL_ROWS_SD}
    plot = PlotSpec.histogram("residuals (valid)", {"prediction - target": resid}, bins=30, x_label="residual")
    top = examples[0]
    lines = [f"{_row_name(e)}: predicted {e['predicted']:.4g} for {e['target']:.4g}"
             + (f' "{e["text"]}"' if e.get("text") else "") for e in examples[:5]]
    return passed(f"largest error: {_row_name(top)} predicted {top['predicted']:.4g} for {top['target']:.4g} "
                  f"({signed(top['error_in_sd'], 1)} target s.d.)", detail="\n".join(lines),
                  evidence=evidence, plots=[plot], rows=_residual_rows(ctx, rows, y, pred, resid, scale))


def _residual_rows(ctx: RunContext, rows, y, pred, resid, scale) -> RowTable | None:
    """Valid rows whose error exceeds RESIDUAL_ROWS_SD target s.d., largest first (the top examples at least)."""
    import numpy as np

    big = np.flatnonzero(np.abs(resid) > RESIDUAL_ROWS_SD * scale)
    order = np.argsort(-np.abs(resid), kind="stable")
    order = order[:max(len(big), SHOWN_EXAMPLES)]
    cols = {"position": rows[order].tolist()}
    cols.update(row_key_columns(ctx, ctx.valid, rows[order], split="valid"))
    cols.update({"label": y[order].astype(float), "prediction": pred[order].astype(float),
                 "residual": resid[order], "is_large_error": np.abs(resid[order]) > RESIDUAL_ROWS_SD * scale,
                 "large_error_score": np.abs(resid[order]) / scale})
    return RowTable.from_columns(cols) if len(order) else None


@check("errors.confident_mistakes", title="The most confident wrong predictions")
def confident_mistakes(ctx: RunContext):
    outputs = model_outputs(ctx)
    if not ctx.is_classification:
        return _largest_residuals(ctx, outputs.get("valid"))
    return confident_mistakes_verdict(_measure_confident_mistakes(ctx, outputs))
