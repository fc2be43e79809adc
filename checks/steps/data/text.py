"""Free-text columns: encoding damage, empty texts, control characters, outlying lengths, and the same
text carrying two labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...analyses.rowkeys import keys_with_several_labels, prefetch_row_keys, row_hashes, text_codes
from ...analyses.sampling import STATS_SAMPLE, sample_note, sample_range
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, passed
from ._common import Problem, records, short, worst_problem_finding

_MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€|ï»¿")  # UTF-8 read as Latin-1/cp1252
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
# Encoding damage or contradictory duplicate texts in at least this share of rows is systematic: fail.
TEXT_DAMAGE_FAIL = 0.01
EMPTY_TEXT_WARN = 0.01
# Lengths more than this many robust SDs from the median (log scale) are truncation or concatenation
# accidents rather than long reviews.
LENGTH_Z = 5.0


def _length_stats(lengths, empty) -> dict:
    """Outlying lengths (robust z on log length) and the median length of the non-empty texts."""
    import numpy as np

    loglen = np.log1p(lengths[~empty])
    if len(loglen) < 20:
        return {}
    med = np.median(loglen)
    mad = 1.4826 * np.median(np.abs(loglen - med))
    outlying = np.abs(loglen - med) > LENGTH_Z * max(mad, 1e-9) if mad > 0 else np.zeros(len(loglen), bool)
    return {"length_outliers": int(outlying.sum()), "median_length": float(np.median(lengths[~empty]))}


def _text_stats(series) -> dict:
    s = series.astype("string")
    filled = s.fillna("")
    empty = (filled.str.strip() == "").to_numpy(dtype=bool)
    stats = {"rows": len(s), "empty": int(empty.sum()),
             "replacement_char": int(filled.str.contains("\ufffd", regex=False).sum()),
             "mojibake": int(filled.str.contains(_MOJIBAKE).sum()),
             "control_chars": int(filled.str.contains(_CONTROL).sum())}
    stats.update(_length_stats(filled.str.len().to_numpy(dtype=float, na_value=0), empty))
    stats["_damaged"] = filled[filled.str.contains("\ufffd", regex=False) | filled.str.contains(_MOJIBAKE)
                               | filled.str.contains(_CONTROL)].head(3).tolist()
    return stats


def _rows_with_contradictory_inputs(ctx: RunContext):
    """Training rows data.duplicates reports: their whole input (every feature, the text included) also
    occurs with another label. The same row keys as there, so both checks see the same rows."""
    import numpy as np

    return keys_with_several_labels(row_hashes(ctx, "train"), np.asarray(ctx.y("train")))[1]


def _conflicting_texts(ctx: RunContext) -> tuple[dict[str, dict], dict[str, dict]]:
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
        keys = codes.view(np.uint64)
        _, bad_all = keys_with_several_labels(keys, np.where(blank, -1, y))
        _, bad = keys_with_several_labels(keys, np.where(blank | reported, -1, y))
        if (bad_all & reported).any():
            referred[c] = {"rows": int((bad_all & reported).sum()), "reported_by": "data.duplicates"}
        if bad.any():
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
            st = _text_stats(df[c].iloc[pos])
            damaged = st.pop("_damaged")
            if damaged:
                m.damaged_examples[f"{s}:{c}"] = [short(repr(t), 100) for t in damaged]
            m.per_split[f"{s}:{c}"] = st
    if ctx.is_classification:
        m.conflicts, m.referred = _conflicting_texts(ctx)
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


@check("data.text_quality", title="Text hygiene", prefetch=prefetch_row_keys)
def text_quality(ctx: RunContext):
    return _text_verdict(_measure_text(ctx))
