"""Free-text columns: encoding damage, empty texts, control characters, outlying lengths, and the same
text carrying two labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...analyses.rowkeys import prefetch_row_keys, several_label_rows, split_duplicate_flags, text_codes
from ...analyses.sampling import STATS_SAMPLE, sample_note, sample_range
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, passed
from ._common import Problem, records, short, split_rows, stack_rows, worst_problem_finding

_MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€|ï»¿")  # UTF-8 read as Latin-1/cp1252
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
# Encoding damage or contradictory duplicate texts in at least this share of rows is systematic: fail.
TEXT_DAMAGE_FAIL = 0.01
EMPTY_TEXT_WARN = 0.01
# Lengths more than this many robust SDs from the median (log scale) are truncation or concatenation
# accidents rather than long reviews.
LENGTH_Z = 5.0


def _length_outliers(lengths, empty):
    """Mask of outlying lengths (robust z on log length, among non-empty texts); None under 20 texts."""
    import numpy as np

    loglen = np.log1p(lengths[~empty])
    if len(loglen) < 20:
        return None
    med = np.median(loglen)
    mad = 1.4826 * np.median(np.abs(loglen - med))
    outlying = np.zeros(len(lengths), bool)
    if mad > 0:
        outlying[~empty] = np.abs(loglen - med) > LENGTH_Z * mad
    return outlying


def _text_masks(series) -> dict:
    """Per text (row of `series`): the problem masks data.text_quality counts, and the lengths."""
    filled = series.astype("string").fillna("")
    empty = (filled.str.strip() == "").to_numpy(dtype=bool)
    lengths = filled.str.len().to_numpy(dtype=float, na_value=0)
    return {"empty": empty, "lengths": lengths,
            "replacement_char": filled.str.contains("\ufffd", regex=False).to_numpy(dtype=bool),
            "mojibake": filled.str.contains(_MOJIBAKE).to_numpy(dtype=bool),
            "control_chars": filled.str.contains(_CONTROL).to_numpy(dtype=bool),
            "length_outliers": _length_outliers(lengths, empty)}


def _text_stats(series, masks: dict) -> dict:
    """The counts of `masks` (_text_masks of `series`) and up to three damaged texts."""
    import numpy as np

    stats = {"rows": len(series)} | {k: int(masks[k].sum()) for k in
                                     ("empty", "replacement_char", "mojibake", "control_chars")}
    if masks["length_outliers"] is not None:
        stats.update({"length_outliers": int(masks["length_outliers"].sum()),
                      "median_length": float(np.median(masks["lengths"][~masks["empty"]]))})
    damaged = masks["replacement_char"] | masks["mojibake"] | masks["control_chars"]
    stats["_damaged"] = series[damaged].astype("string").head(3).tolist()
    return stats


def _rows_with_contradictory_inputs(ctx: RunContext):
    """Training rows data.duplicates reports: their whole input (every feature, the text included) also
    occurs with another label. The same row keys as there, so both checks see the same rows."""
    return split_duplicate_flags(ctx, "train")["is_conflicting_label"]


def _conflicting_texts(ctx: RunContext, masks: dict | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per text column: training texts that repeat (after normalisation) with different labels, leaving
    out the rows data.duplicates already reports; and, per column, what was left out for that reason."""
    import numpy as np

    conflicts, referred = {}, {}
    y = ctx.y("train")
    reported = _rows_with_contradictory_inputs(ctx)
    for c in ctx.text_columns:
        codes = text_codes(ctx, "train", c)
        blank = codes < 0  # empty texts are counted as empty, not as contradictions
        usable = (y >= 0) & ~blank
        # text codes are already small non-negative ints; blank rows (-1) carry no label below, so any
        # key does for them
        keys = np.maximum(codes, 0)
        bad_all = several_label_rows(keys, np.where(blank, -1, y))
        bad = several_label_rows(keys, np.where(blank | reported, -1, y))
        if (bad_all & reported).any():
            referred[c] = {"rows": int((bad_all & reported).sum()), "reported_by": "data.duplicates"}
        if bad.any():
            if masks is not None:
                masks[c] = bad
            rows = np.flatnonzero(bad)
            conflicts[c] = {"rows": int(bad.sum()), "fraction": round(float(bad.sum() / max(usable.sum(), 1)), 4),
                            "examples": records(ctx.train, rows[:4], [c, ctx.target], 4)}
    return conflicts, referred


def _text_problems(per: dict, conflicts: dict) -> list[Problem]:
    rows = list(per.values())
    worst_frac = max(((st["replacement_char"] + st["mojibake"]) / max(st["rows"], 1) for st in rows), default=0.0)
    empty_frac = max((st["empty"] / max(st["rows"], 1) for st in rows), default=0.0)
    control = sum(st["control_chars"] for st in rows)
    conflict_frac = max((v["fraction"] for v in conflicts.values()), default=0.0)
    problems = []
    if worst_frac:
        problems.append(("fail" if worst_frac >= TEXT_DAMAGE_FAIL else "warn",
                         f"encoding damage in up to {worst_frac:.1%} of texts",
                         "Replacement characters (U+FFFD) or mojibake such as 'Ã©' mean the text was decoded with the "
                         "wrong codec somewhere; the tokenizer sees garbage words."))
    if conflicts:
        problems.append(("fail" if conflict_frac >= TEXT_DAMAGE_FAIL else "warn",
                         f"{sum(v['rows'] for v in conflicts.values())} training texts repeat with different labels",
                         "The same text (after lower-casing and dropping punctuation) carries two labels."))
    if empty_frac:
        problems.append(("warn" if empty_frac >= EMPTY_TEXT_WARN else "info",
                         f"up to {empty_frac:.1%} of texts are empty or whitespace", "Empty inputs carry no signal."))
    if control:
        problems.append(("warn", f"{control} texts contain control characters",
                         "Control characters usually come from binary junk or broken escaping in the export."))
    outliers = sum(v.get("length_outliers", 0) for v in rows)
    if outliers:
        problems.append(("info", f"{outliers} texts have outlying lengths",
                         f"Lengths more than {LENGTH_Z:g} robust SDs from the median (log scale): often truncated "
                         f"or concatenated records."))
    return problems


@dataclass
class TextMeasure:
    columns: list[str]
    per_split: dict[str, dict]                  # "split:column" -> counts of each problem
    damaged_examples: dict[str, list[str]]
    conflicts: dict[str, dict]                  # column -> texts repeating with different labels
    note: str = ""                              # the sample note, when the counts come from a sample
    # column -> contradictory texts left out because data.duplicates reports their rows (one finding per problem)
    referred: dict[str, dict] = field(default_factory=dict)
    conflict_masks: dict = field(default_factory=dict, repr=False)   # column -> train rows in conflicts
    masks: dict = field(default_factory=dict, repr=False)            # (split, column) -> _text_masks of its sample

    @property
    def referred_rows(self) -> int:
        return sum(v["rows"] for v in self.referred.values())


def _measure_text(ctx: RunContext) -> TextMeasure:
    texts = ctx.text_columns
    if not texts:
        raise SkipCheck('no free-text column (set [data] text = ["..."] if there is one)')
    m = TextMeasure(texts, {}, {}, {})
    for c in texts:
        for s, df in ctx.splits.items():
            pos = sample_range(len(df), STATS_SAMPLE, ctx.seed)
            m.note = m.note or sample_note(len(pos), len(df))
            sample = df[c].iloc[pos]
            m.masks[(s, c)] = _text_masks(sample)
            st = _text_stats(sample, m.masks[(s, c)])
            damaged = st.pop("_damaged")
            if damaged:
                m.damaged_examples[f"{s}:{c}"] = [short(repr(t), 100) for t in damaged]
            m.per_split[f"{s}:{c}"] = st
    if ctx.is_classification:
        m.conflicts, m.referred = _conflicting_texts(ctx, m.conflict_masks)
    return m


def _text_verdict(m: TextMeasure) -> Finding:
    per, note = m.per_split, m.note
    evidence = {"columns": m.columns, "per_split": per, "damaged_examples": m.damaged_examples,
                "duplicate_texts_different_labels": m.conflicts}
    plot = PlotSpec(kind="bar", title="text problems per split and column", x_label="split:column", y_label="rows",
                    series=[Series(k, list(per), [v.get(k, 0) for v in per.values()])
                            for k in ("empty", "replacement_char", "mojibake", "control_chars", "length_outliers")])
    referral = ""
    if m.referred:
        evidence["reported_by"] = "data.duplicates"
        evidence["referred_conflicts"] = m.referred
        referral = (f" {m.referred_rows} training rows whose text repeats with another label are left out here: "
                    f"their whole input repeats with another label, which data.duplicates reports.")
    problems = _text_problems(per, m.conflicts)
    if not problems:
        title = (f"text in {', '.join(m.columns)} is clean; {m.referred_rows} contradictory rows are reported by "
                 f"data.duplicates" if m.referred else f"text in {', '.join(m.columns)} is clean{note}")
        return passed(title, detail=referral.strip(), evidence=evidence)
    return worst_problem_finding(
        problems, fix="Decode files as UTF-8 at the source (ftfy.fix_text repairs mojibake), drop empty texts, strip "
                      "control characters, and resolve texts that carry two labels.",
        detail_suffix=referral + (f" Measured{note}." if note else ""), evidence=evidence, plots=[plot])


# The problem each flagged row shows, in the order they are listed (most telling first).
_ROW_PROBLEMS = (("encoding damage", ("replacement_char", "mojibake")), ("same text, other label", ("conflict",)),
                 ("empty", ("empty",)), ("odd characters", ("control_chars",)),
                 ("length outlier", ("length_outliers",)))


def text_rows(ctx: RunContext, m: TextMeasure):
    """Rows behind data.text_quality: each text with a problem (in the rows it measured: a sample of big
    splits), with the problems found and its length; damaged texts first."""
    import numpy as np

    parts = []
    for c in m.columns:
        for s, df in ctx.splits.items():
            pos = sample_range(len(df), STATS_SAMPLE, ctx.seed)
            masks = dict(m.masks[(s, c)])
            masks["conflict"] = m.conflict_masks[c][pos] if s == "train" and c in m.conflict_masks else None
            flags = [np.logical_or.reduce([masks[k] if masks.get(k) is not None else np.zeros(len(pos), bool)
                                           for k in keys]) for _, keys in _ROW_PROBLEMS]
            hit = np.logical_or.reduce(flags)
            rank = np.argmax(np.stack(flags), axis=0)
            order = np.flatnonzero(hit)[np.argsort(rank[hit], kind="stable")]
            problem = [", ".join(name for (name, _), f in zip(_ROW_PROBLEMS, flags) if f[i]) for i in order]
            parts.append(split_rows(ctx, s, np.asarray(pos)[order], [c, ctx.target], {
                "text_column": [c] * len(order), "problem": problem,
                "length": masks["lengths"][order].astype(int)}))
    return stack_rows(parts, plain=True)


@check("data.text_quality", title="Text hygiene", prefetch=prefetch_row_keys)
def text_quality(ctx: RunContext):
    m = _measure_text(ctx)
    finding = _text_verdict(m)
    if finding.status != "pass":
        finding.rows = text_rows(ctx, m)
    return finding
