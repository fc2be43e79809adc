"""The label column: values that fit the classes and the loss, likely mislabelled rows (confident
learning), and a training file ordered by label."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...analyses.exact_counts import exact_counts, outside_classes
from ...analyses.labels import CONFIDENT_P_GIVEN, CV_FOLDS, label_issue_analysis
from ...analyses.sampling import sample_note
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import ROWS_KEPT, Finding, PlotSpec, RowTable, Series, SkipCheck, fail, info, passed, warn
from ...io.engines.counts import run_statistics
from ...vocab import BINARY_LOSSES
from ._common import Problem, id_column, row_cell, short, worst_problem_finding
from ...wording import cut_list

# --- label values --------------------------------------------------------------------------------
_VECTOR_LABEL = re.compile(r"^\s*[\[(]?\s*-?\d+(\.\d+)?\s*([,;\s]\s*-?\d+(\.\d+)?\s*){1,}[\])]?\s*$")


def _label_form(value) -> str:
    """A normal form under which spellings of one label compare equal: ' Pos' ~ 'pos', '1.0' ~ '1'."""
    text = str(value).strip().lower()
    try:
        number = float(text)
        if number == int(number):
            return str(int(number))
        return repr(number)
    except (ValueError, OverflowError):
        return text


def _regression_label_problems(ctx: RunContext) -> tuple[list[Problem], dict]:
    import numpy as np
    import pandas as pd

    problems, evidence = [], {"splits": {}}
    for s in ctx.splits:
        raw = ctx.labels(s)
        numbers = pd.to_numeric(raw, errors="coerce")
        unparsable = raw.notna() & numbers.isna()
        inf = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
        evidence["splits"][s] = {"rows": len(raw), "not_numbers": int(unparsable.sum()), "infinite": int(inf.sum()),
                                 "examples": [short(v) for v in raw[unparsable].head(5).tolist()]}
        if unparsable.any():
            problems.append(("fail", f"{int(unparsable.sum())} {s} target value(s) are not numbers",
                             "A regression target must be numeric; these rows are dropped or crash the loss."))
        if inf.any():
            problems.append(("fail", f"{int(inf.sum())} {s} target value(s) are infinite",
                             "An infinite target makes the loss infinite."))
    raw = ctx.labels("train")
    if not pd.api.types.is_numeric_dtype(raw) and not problems:
        problems.append(("info", "numeric targets are stored as text",
                         "Every value parses as a number, but the column is text; other tools may treat it as labels."))
    return problems, evidence


def _split_label_problems(ctx: RunContext, s: str, declared: bool, evidence: dict,
                          seen_forms: dict[str, set]) -> list[Problem]:
    """Labels of one split outside the classes, or stored as vectors; records each spelling seen."""
    problems = []
    raw = ctx.labels(s)
    n_rows, n_outside, values, present = _outside_counts(ctx, s, raw)
    evidence["splits"][s] = {"rows": n_rows, "outside_classes": n_outside, "outside_values": values}
    if n_outside and (declared or s != "train"):
        where = "[data] classes" if declared else "the labels seen in train"
        problems.append(("fail" if declared else "warn", f"{n_outside} {s} label(s) are not in {where}: "
                                                         f"{cut_list(list(values), 5)}",
                         "These rows are encoded as 'no class' (-1): they are dropped from training or "
                         "scoring, or crash a loss that indexes by class."))
    for v in present:
        seen_forms.setdefault(_label_form(v), set()).add(str(v))
    sample = raw.dropna().astype(str).head(1000)
    if len(sample) and sample.str.match(_VECTOR_LABEL).mean() > 0.5:
        problems.append(("fail", f"{s} labels look like vectors (e.g. '{sample.iloc[0]}')",
                         "A one-hot or multi-value label stored as text becomes one class per distinct "
                         "vector; index targets (0..C-1) are what a cross-entropy loss expects."))
    return problems


def _outside_counts(ctx: RunContext, s: str, raw) -> tuple[int, int, dict[str, int], list]:
    """(rows, labels outside the classes, the 8 most common of them, the distinct labels present) of a
    split: over every row when the run counted exactly (DuckDB/Dask), else over the DataFrame."""
    import pandas as pd

    counts = exact_counts(ctx)
    if counts is not None and s in counts.rows:
        n_outside, values = outside_classes(counts, ctx, s)
        return counts.rows[s], n_outside, values, list(counts.label_counts[s])
    outside = raw.notna().to_numpy() & (ctx.y(s) < 0)
    values = raw[outside].astype(str).value_counts().head(8)
    return len(raw), int(outside.sum()), {str(k): int(v) for k, v in values.items()}, list(pd.unique(raw.dropna()))


def _integer_classes(classes) -> list[int] | None:
    """The classes as sorted integers when every one is a whole number, else None."""
    try:
        return sorted(int(c) for c in classes) if classes and all(
            float(str(c)) == int(float(str(c))) for c in classes) else None
    except (TypeError, ValueError):
        return None


def _encoding_problems(ctx: RunContext, classes: list, declared: bool, evidence: dict) -> list[Problem]:
    """How the classes map to outputs: text-stored numbers, a binary loss on many classes, integer labels
    that are not 0..C-1, declared classes never seen."""
    import pandas as pd

    problems = []
    raw_train = ctx.labels("train").dropna()
    if (pd.api.types.is_string_dtype(raw_train) or raw_train.dtype == object) and len(raw_train):
        parsed = pd.to_numeric(raw_train.astype(str), errors="coerce")
        if parsed.notna().all():
            problems.append(("info", "numeric class labels are stored as text",
                             "Sorting text puts '10' before '2', so class indices follow string order; declare "
                             "[data] classes to fix the order."))
    if ctx.loss_name in BINARY_LOSSES and len(classes) > 2:
        problems.append(("fail", f"{ctx.loss_name} with {len(classes)} classes",
                         f"A binary loss gives the model one output, which cannot represent {len(classes)} classes."))
    ints = _integer_classes(classes)
    if ints is not None and not declared and ints != list(range(len(ints))):
        evidence["integer_labels"] = ints[:20]
        problems.append(("info", f"integer labels are {ints[0]}..{ints[-1]}, not 0..{len(ints) - 1}",
                         "mltriage maps them to output indices in sorted order; code that uses the raw values "
                         "as indices into the model's outputs would be off or out of range."))
    if declared:
        present = _present_forms(ctx)
        never = [str(c) for c in classes if _label_form(c) not in present]
        if never:
            evidence["declared_never_seen"] = never
            problems.append(("warn", f"declared class(es) never appear in any split: {cut_list(never, 5)}",
                             "[data] classes and the label column disagree; check spelling and order."))
    return problems


def _present_forms(ctx: RunContext) -> set[str]:
    """The normal forms of every label value present in any split."""
    import pandas as pd

    counts = exact_counts(ctx)
    forms = {_label_form(v) for v in pd.unique(pd.concat([ctx.labels(s) for s in ctx.splits]).dropna())}
    if counts is not None:
        forms |= {_label_form(v) for per in counts.label_counts.values() for v in per}
    return forms


def _classification_label_problems(ctx: RunContext) -> tuple[list[Problem], dict]:
    problems = []
    classes = list(ctx.classes)
    declared = ctx.config.classes is not None
    evidence = {"classes": [str(c) for c in classes], "declared": declared, "loss": ctx.loss_name,
                "n_outputs": ctx.n_outputs, "splits": {}}
    seen_forms: dict[str, set] = {}
    for s in ctx.splits:
        problems += _split_label_problems(ctx, s, declared, evidence, seen_forms)
    clashes = {form: sorted(v) for form, v in seen_forms.items() if len(v) > 1}
    if clashes:
        evidence["spelling_variants"] = clashes
        shown = "; ".join(" / ".join(repr(x) for x in v) for v in list(clashes.values())[:4])
        problems.append(("fail", f"{len(clashes)} label(s) are spelled in more than one way: {shown}",
                         "Each spelling becomes its own class, so one real class is split in two."))
    problems += _encoding_problems(ctx, classes, declared, evidence)
    return problems, evidence


@dataclass
class LabelValuesMeasure:
    problems: list[Problem]             # in the order found; the worst titles the finding
    evidence: dict
    train_counts: list[tuple[str, int]]  # the 20 most common training label values (classification only)
    summary: str                         # what a clean column holds: "3 classes" or "numeric target"


def _measure_label_values(ctx: RunContext) -> LabelValuesMeasure:
    if ctx.is_classification:
        problems, evidence = _classification_label_problems(ctx)
        exact = exact_counts(ctx)
        if exact is not None:
            top = sorted(exact.label_counts["train"].items(), key=lambda kv: -kv[1])[:20]
            return LabelValuesMeasure(problems, {**evidence, "counted_by": exact.engine}, top,
                                      f"{len(ctx.classes)} classes")
        counts = ctx.labels("train").astype(str).value_counts(dropna=False).head(20)
        return LabelValuesMeasure(problems, evidence, list(zip(counts.index, counts.tolist())),
                                  f"{len(ctx.classes)} classes")
    problems, evidence = _regression_label_problems(ctx)
    return LabelValuesMeasure(problems, evidence, [], "numeric target")


def _label_values_verdict(m: LabelValuesMeasure) -> Finding:
    plots = []
    if m.train_counts:
        plots.append(PlotSpec(kind="bar", title="train label values", x_label="label", y_label="rows",
                              series=[Series("train", [k for k, _ in m.train_counts], [n for _, n in m.train_counts])]))
    evidence = {**m.evidence, "problems": [{"status": s, "title": t} for s, t, _ in m.problems]}
    if not m.problems:
        return passed(f"every label is valid ({m.summary})", evidence=evidence, plots=plots)
    return worst_problem_finding(
        m.problems, fix="Clean the label column at export: one spelling per class, values inside [data] classes, "
                        "class indices rather than one-hot vectors; set [data] classes to fix the output order.",
        evidence=evidence, plots=plots)


@check("data.label_values", title="Label values match the classes and the model")
def label_values(ctx: RunContext):
    return _label_values_verdict(_measure_label_values(ctx))


# --- label issues --------------------------------------------------------------------------------
# Northcutt, Athalye & Mueller 2021 ("Pervasive label errors in test sets destabilize machine learning
# benchmarks") estimate 3.3% label errors on average across ten popular benchmarks (about 6% in ImageNet
# validation, ~10% at worst in QuickDraw). We warn from 5% and fail from 10% estimated noise.
LABEL_NOISE_WARN = 0.05
LABEL_NOISE_FAIL = 0.10
LABEL_NOISE_INFO = 0.01
LABEL_ISSUE_MIN_ROWS = 10
# The verdict counts only flags where the model gives the given label under CONFIDENT_P_GIVEN (analyses/
# labels.py: ambiguous rows with a plausible label stay above it, a wrong label on a clear row sits far below).
# Confident learning trusts the model's probabilities (Northcutt, Jiang & Chuang 2021 assume them
# out-of-sample and roughly calibrated). Out-of-fold probabilities whose log loss, a proper scoring rule, is
# no better than the class frequencies' know nothing the base rate does not: their confident rejections
# come from overfitting (hundreds of weak columns, a few thousand rows: correct labels drawn from a noisy
# process get p < 0.05), so the check then says so as info and judges no label. This holds the check's own
# models on table columns. On tensor projects the inputs are the project's network after mltriage's probe,
# and one that has not learnt yet (a bug elsewhere) still ranks wrong labels lowest: images/buggy's misfiled
# crops are 27% of its p < 0.05 rejections against 15% of all crops, at a log loss of 2.48 against 2.30.


@dataclass
class LabelIssueMeasure:
    rows_examined: int               # training rows the label model scored (out of fold)
    flagged: int                     # rows confident learning flags (the recall-oriented set)
    flagged_confident: int           # ... of which the model gives the given label < CONFIDENT_P_GIVEN
    train_rows: int
    labelled: int                    # labelled training rows
    model: str
    features: str | None
    oof_accuracy: float
    per_class: dict[str, dict] = field(default_factory=dict)
    design: str | None = None        # the label model's inputs (analyses.labels.LabelModel.design)
    log_loss: float | None = None    # out-of-fold log loss of the label model
    prior_log_loss: float | None = None  # ... of the class frequencies, on the same rows
    examples: list[dict] = field(default_factory=list)
    precision_set: int = 0           # rows in the precision-oriented set (analyses.labels.confident_learning_sets)
    fit_rows: int = 0                # rows each fold's model was fitted on (at most)
    rows: RowTable | None = None     # the flagged rows, most suspicious first

    @property
    def noise_rate(self) -> float:
        return self.flagged_confident / self.rows_examined

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.rows_examined

    @property
    def judged(self) -> bool:
        """False where the check's own table model does no better than the class frequencies."""
        return self.design == "embedding" or self.log_loss is None or self.log_loss < self.prior_log_loss


def _per_class_flags(classes: list[str], y_used, flags_used) -> dict[str, dict]:
    per_class = {}
    for i, c in enumerate(classes):
        rows = int((y_used == i).sum())
        if rows:
            per_class[c] = {"rows": rows, "flagged": int(flags_used[y_used == i].sum()),
                            "noise_rate": round(float(flags_used[y_used == i].mean()), 4)}
    return per_class


def _shown_columns(ctx: RunContext) -> list[str]:
    return [c for c in (ctx.text_columns or ctx.feature_columns)][:3]


def _flagged_examples(ctx: RunContext, order, proba, classes: list[str]) -> list[dict]:
    """The first ten of the flagged rows (most suspicious first), with a few identifying columns."""
    import numpy as np

    y = ctx.y("train")
    ids = [c for c in ctx.config.ignore if c in ctx.train.columns][:2]
    examples = []
    for r in order[:10]:
        row = {"row": int(r), "given": classes[int(y[r])], "predicted": classes[int(np.nanargmax(proba[r]))],
               "p_given": round(float(proba[r, y[r]]), 3), "p_predicted": round(float(np.nanmax(proba[r])), 3)}
        row.update({c: short(ctx.train[c].iloc[int(r)]) for c in ids + _shown_columns(ctx)})
        examples.append(row)
    return examples


def _issue_rows(ctx: RunContext, order, analysis, p_given, classes: list[str]) -> RowTable:
    """position, split, id, text or key values, given and suggested label, is_label_issue, label_score
    (cleanlab's self-confidence) and in_confident_set of the flagged rows in `order` (native values built
    column-wise: 50,000 rows take well under a second)."""
    import numpy as np
    import pandas as pd

    shown, train = order[:ROWS_KEPT], ctx.train
    cols = {"position": shown.tolist(), "split": ["train"] * len(shown)}
    for c in [id_column(ctx, train)] + _shown_columns(ctx):
        if c is not None and str(c) not in cols:
            v = train[c].iloc[shown]
            cols[str(c)] = v.tolist() if pd.api.types.is_numeric_dtype(v) else [row_cell(x) for x in v.tolist()]
    cols.update({"given_label": [classes[int(v)] for v in ctx.y("train")[shown]],
                 "suggested_label": [classes[int(v)] for v in np.nanargmax(analysis.oof.proba[shown], axis=1)],
                 "is_label_issue": analysis.mask[shown].tolist(), "label_score": np.round(p_given[shown], 4).tolist(),
                 "in_confident_set": analysis.confident[shown].tolist()})
    return RowTable(list(cols), [list(r) for r in zip(*cols.values())], total=len(order))


def _measure_label_issues(ctx: RunContext) -> LabelIssueMeasure:
    import numpy as np

    analysis = label_issue_analysis(ctx)
    oof = analysis.oof
    if oof.model is None:
        raise SkipCheck(f"cannot cross-validate a label model: {oof.reason or 'no usable rows'}")
    mask, pos, y = analysis.mask, oof.positions, ctx.y("train")
    p_given = np.full(len(ctx.train), np.nan)  # the model's probability of the given label, per train row
    p_given[pos] = analysis.self_confidence
    confident = mask & (np.nan_to_num(p_given, nan=1.0) < CONFIDENT_P_GIVEN)
    flagged = np.flatnonzero(mask)  # most suspicious first: the precision set, then by self-confidence
    order = flagged[np.lexsort((p_given[flagged], ~analysis.confident[flagged]))]
    classes = [str(c) for c in ctx.classes]
    return LabelIssueMeasure(
        rows_examined=len(pos), flagged=int(mask.sum()), flagged_confident=int(confident.sum()),
        train_rows=len(ctx.train), labelled=oof.labelled, model=oof.model, features=oof.features,
        oof_accuracy=oof.accuracy, per_class=_per_class_flags(classes, y[pos], mask[pos]),
        design=oof.design, log_loss=oof.log_loss, prior_log_loss=oof.prior_log_loss,
        examples=_flagged_examples(ctx, order, oof.proba, classes), precision_set=int(analysis.confident.sum()),
        fit_rows=oof.fit_rows, rows=_issue_rows(ctx, order, analysis, p_given, classes) if len(order) else None)


def _label_issue_detail(m: LabelIssueMeasure) -> str:
    worst = max(m.per_class.items(), key=lambda kv: kv[1]["noise_rate"])
    judged = ", the estimate judged here" if m.judged else ""
    how = (f"Out-of-fold probabilities from {m.model} ({CV_FOLDS}-fold, each fold's model fitted on up to "
           f"{m.fit_rows:,} rows, out-of-fold accuracy {m.oof_accuracy:.1%}) on {m.features} for every labelled "
           f"training row{sample_note(m.rows_examined, m.labelled)}; confident learning (cleanlab) flags rows "
           f"whose given label the model confidently rejects.")
    return (f"{how} Recall-oriented set (find_label_issues, prune_by_noise_rate): {m.flagged:,} of "
            f"{m.rows_examined:,} rows ({m.flagged_share:.1%}). Precision-oriented set (every confident-learning "
            f"rule agrees, or the given label gets under {CONFIDENT_P_GIVEN:.0%}): {m.precision_set:,} rows. In "
            f"{m.flagged_confident:,} flagged rows ({m.noise_rate:.1%}{judged}) the model gives "
            f"the given label less than {CONFIDENT_P_GIVEN:.0%}; the rest are ambiguous rows. Highest flagged "
            f"share in class '{worst[0]}' ({worst[1]['noise_rate']:.1%}). For comparison, Northcutt et al. (2021) "
            f"estimate about 3% label errors in widely used benchmark test sets; thresholds: info "
            f"{LABEL_NOISE_INFO:.0%}, warn {LABEL_NOISE_WARN:.0%}, fail {LABEL_NOISE_FAIL:.0%}.")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _unjudged_note(m: LabelIssueMeasure) -> str:
    return (f"The label model rejects {m.flagged_confident:,} given labels with p < {CONFIDENT_P_GIVEN:.0%}, but its "
            f"out-of-fold log loss ({m.log_loss:.3f}) is no better than predicting the class frequencies "
            f"({m.prior_log_loss:.3f}): it is confident where it has learnt nothing (overfitting, typically many "
            f"weak columns for the rows), so these rejections say nothing about the labels.")


def _label_issues_verdict(m: LabelIssueMeasure) -> Finding:
    fraction, n_confident, n_flagged, n_used = m.noise_rate, m.flagged_confident, m.flagged, m.rows_examined
    evidence = {"flagged": n_flagged, "flagged_confident": n_confident, "rows_examined": n_used,
                "train_rows": m.train_rows, "flagged_share": round(m.flagged_share, 4),
                "estimated_noise_rate": round(fraction, 4), "confident_p_given": CONFIDENT_P_GIVEN,
                "recall_set": {"rows": n_flagged, "rule": "cleanlab find_label_issues (prune_by_noise_rate)"},
                "precision_set": {"rows": m.precision_set, "rule": "filter_by='both' and an off-diagonal of the "
                                  f"confident joint, or p(given label) < {CONFIDENT_P_GIVEN}"},
                "per_class": m.per_class, "model": m.model, "features": m.features, "cv_folds": CV_FOLDS,
                "fit_rows": m.fit_rows, "oof_accuracy": round(m.oof_accuracy, 4), "examples": m.examples,
                "oof_log_loss": _rounded(m.log_loss), "class_frequency_log_loss": _rounded(m.prior_log_loss),
                "thresholds": {"info": LABEL_NOISE_INFO, "warn": LABEL_NOISE_WARN, "fail": LABEL_NOISE_FAIL}}
    plot = PlotSpec(kind="bar", title="share of rows flagged as likely mislabelled, per given class",
                    x_label="class", y_label="flagged share",
                    series=[Series("flagged", list(m.per_class), [v["noise_rate"] for v in m.per_class.values()])])
    kw = {"detail": _label_issue_detail(m), "evidence": evidence, "plots": [plot], "rows": m.rows}
    fix = ("Review the example rows (highest-confidence disagreements first); relabel or drop the wrong ones, "
           "and find the step that produced them (a shifted join, an augmentation script, an annotator).")
    if not m.judged and n_confident >= LABEL_ISSUE_MIN_ROWS:
        return info(f"labels not judged: the label model does no better than the class frequencies "
                    f"(log loss {m.log_loss:.3f} vs {m.prior_log_loss:.3f})",
                    detail=f"{_unjudged_note(m)} {kw['detail']}",
                    fix="Give the check features a model can learn from (a featurize with fewer, more informative "
                        "columns), or more rows; data.feature_relevance says whether the columns carry the label.",
                    evidence=evidence, plots=[plot], rows=m.rows)
    if fraction >= LABEL_NOISE_FAIL and n_confident >= 2 * LABEL_ISSUE_MIN_ROWS:
        return fail(f"about {fraction:.0%} of training labels look wrong ({n_confident} rows)", fix=fix, **kw)
    if fraction >= LABEL_NOISE_WARN and n_confident >= LABEL_ISSUE_MIN_ROWS:
        return warn(f"{n_confident} training rows ({fraction:.1%}) look mislabelled", fix=fix, **kw)
    if (fraction >= LABEL_NOISE_INFO and n_confident >= LABEL_ISSUE_MIN_ROWS) or m.flagged_share >= LABEL_NOISE_WARN:
        return info(f"{n_confident} training rows ({fraction:.1%}) look mislabelled, {n_flagged} are doubtful",
                    fix=fix, **kw)
    return passed(f"{n_flagged} of {n_used} training rows flagged as possibly mislabelled ({m.flagged_share:.1%})",
                  **kw)


@check("data.label_issues", title="Likely mislabelled training rows", needs=("classification",),
       imports=("sklearn.linear_model", "sklearn.model_selection", "sklearn.feature_extraction.text",
                "sklearn.ensemble", "sklearn.metrics", "cleanlab.filter", "cleanlab.count"))
def label_issues(ctx: RunContext):
    return _label_issues_verdict(_measure_label_issues(ctx))


# --- label order ---------------------------------------------------------------------------------
# Excess same-label adjacency, kappa = (s - s0) / (1 - s0) where s is the share of neighbouring rows with
# the same label and s0 its expectation under a random order (a k-category Wald-Wolfowitz runs test).
# 0 = shuffled, 1 = fully blocked. Half-way to blocked, mini-batches hold mostly one class.
ORDER_KAPPA_WARN = 0.5
ORDER_KAPPA_INFO = 0.1
ORDER_Z = 5.0  # significance guard for small files
ORDER_MIN_ROWS = 20


@dataclass
class OrderMeasure:
    """How strongly labels cluster along the training file (kappa: 0 shuffled, 1 blocked)."""

    kappa: float
    z: float                      # significance of the clustering
    evidence: dict
    description: str              # the measurement in words
    plot: PlotSpec
    sklearn_model: bool = False   # most estimators see all rows at once, so order matters less


def _class_order(raw) -> OrderMeasure:
    """Same-label adjacency of class labels in file order."""
    import math

    import numpy as np
    import pandas as pd

    n = len(raw)
    codes, uniques = pd.factorize(raw.astype("string"))
    counts = np.bincount(codes)
    same = int((codes[1:] == codes[:-1]).sum())
    s0 = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    if s0 >= 1:
        raise SkipCheck("a single class: order does not matter")
    s = same / (n - 1)
    kappa = (s - s0) / (1 - s0)
    z = (same - (n - 1) * s0) / math.sqrt(max((n - 1) * s0 * (1 - s0), 1e-12))
    runs = int(n - same)
    expected_runs = float(n - (n - 1) * s0)
    evidence = {"rows": n, "runs": runs, "expected_runs": round(expected_runs, 1), "kappa": round(kappa, 4),
                "z": round(z, 2), "sorted": bool(runs == len(counts[counts > 0]))}
    description = f"{runs} label runs where a shuffled file would have about {expected_runs:.0f} (kappa {kappa:.2f})"
    blocks = max(1, n // 50)
    idx = np.arange(0, n, blocks)
    share = [Series(str(k), idx.tolist(), [float((codes[i:i + blocks] == j).mean()) for i in idx])
             for j, k in enumerate(uniques[:6])]
    plot = PlotSpec(kind="line", title="label share along the training file", x_label="row",
                    y_label="share in block", series=share)
    return OrderMeasure(kappa, z, evidence, description, plot)


def _numeric_order(raw, target: str) -> OrderMeasure:
    """Lag-1 rank autocorrelation of a numeric target in file order."""
    import math

    import numpy as np
    import pandas as pd

    y = pd.to_numeric(raw, errors="coerce").dropna().to_numpy(dtype=float)
    if len(y) < ORDER_MIN_ROWS or np.ptp(y) == 0:
        raise SkipCheck("too few numeric targets")
    r = pd.Series(y).rank().to_numpy()
    kappa = float(np.corrcoef(r[1:], r[:-1])[0, 1])
    z = kappa * math.sqrt(len(y))
    evidence = {"rows": len(y), "lag1_rank_autocorrelation": round(kappa, 4), "z": round(z, 2),
                "sorted": bool(np.all(np.diff(y) >= 0) or np.all(np.diff(y) <= 0))}
    step = max(1, len(y) // 500)
    plot = PlotSpec(kind="scatter", title="target along the training file", x_label="row", y_label=target,
                    series=[Series("target", list(range(0, len(y), step)), y[::step].tolist())])
    return OrderMeasure(kappa, z, evidence, f"lag-1 rank autocorrelation of the target {kappa:.2f}", plot)


def _exact_class_order(m: OrderMeasure, counts) -> OrderMeasure:
    """The runs statistics over every labelled training row in file order (the exact counts); the
    plot stays the one drawn from the rows in memory."""
    n = counts.label_rows_in_order
    stats = run_statistics(counts.label_same_adjacent, n, list(counts.label_counts["train"].values()))
    if "kappa" not in stats:
        raise SkipCheck("a single class: order does not matter")
    m.kappa, m.z = stats["kappa"], stats["z"]
    m.evidence = {"rows": n, "runs": stats["runs"], "expected_runs": round(stats["expected_runs"], 1),
                  "kappa": round(m.kappa, 4), "z": round(m.z, 2), "sorted": bool(stats["runs"] == stats["classes"]),
                  "counted_by": counts.engine}
    m.description = (f"{stats['runs']} label runs where a shuffled file would have about "
                     f"{stats['expected_runs']:.0f} (kappa {m.kappa:.2f})")
    return m


def _measure_order(ctx: RunContext) -> OrderMeasure:
    raw = ctx.raw_splits["train"][ctx.target].dropna()  # file order
    n = len(raw)
    if n < ORDER_MIN_ROWS:
        raise SkipCheck(f"only {n} labelled training rows")
    m = _class_order(raw) if ctx.is_classification else _numeric_order(raw, ctx.target)
    counts = exact_counts(ctx) if ctx.is_classification else None  # regression: the rows in memory
    if counts is not None:
        m = _exact_class_order(m, counts)
    if _blocked(m):  # model_kind builds the model (time, and it may fail): ask only when it matters
        m.sklearn_model = ctx.has_model and ctx.model_kind == "sklearn"
    return m


def _blocked(m: OrderMeasure) -> bool:
    return m.kappa >= ORDER_KAPPA_WARN and m.z > ORDER_Z


def _order_verdict(m: OrderMeasure) -> Finding:
    evidence = {**m.evidence, "thresholds": {"warn": ORDER_KAPPA_WARN, "info": ORDER_KAPPA_INFO, "z": ORDER_Z}}
    if _blocked(m):
        title = "the training file is sorted by label" if evidence["sorted"] else "the training file is blocked by label"
        detail = (f"{m.description}. A loader that reads the file in order (shuffle=False, streaming, or an sklearn "
                  f"SGD/MLP with shuffle off) feeds batches of one class at a time: the model chases each block "
                  f"and forgets the last.")
        fix = "Shuffle the training rows every epoch (DataLoader(shuffle=True)) or once when writing the file."
        if m.sklearn_model:
            return info(title + " (most estimators see all rows at once)", detail=detail, fix=fix,
                        evidence=evidence, plots=[m.plot])
        return warn(title, detail=detail, fix=fix, evidence=evidence, plots=[m.plot])
    if m.kappa >= ORDER_KAPPA_INFO and m.z > ORDER_Z:
        return info("labels cluster somewhat along the training file", detail=f"{m.description}; mild, typical of "
                    f"data written in time or source order.", fix="Shuffle when loading.", evidence=evidence,
                    plots=[m.plot])
    return passed("the training file is not ordered by label", detail=m.description, evidence=evidence)


@check("data.label_order", title="Training file ordered by label")
def label_order(ctx: RunContext):
    return _order_verdict(_measure_order(ctx))
