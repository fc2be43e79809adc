"""Checks that compare whole rows: duplicates (and contradictory labels) within a split, and rows
shared between train and the evaluation splits. Both read the joint row keys of analyses/rowkeys.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ...analyses.exact_counts import duplicate_numbers, exact_counts, overlap_numbers, train_unique_share
from ...analyses.neardup import NEAR_JACCARD, near_duplicate_pairs, near_rows
from ...analyses.rowkeys import (matching_positions, prefetch_row_keys, row_hashes, split_duplicate_flags,
                                 text_codes, thorough_text)
from ...engine.analysis import analysis
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, fail, info, passed, warn
from ._common import near_partner_cells, near_twins, records, short, split_rows, stack_rows

# --- duplicates ----------------------------------------------------------------------------------
# More than this share of exact duplicate rows in a split over-weights the repeated rows in training
# and inflates evaluation; deduplication practice (e.g. Lee et al. 2022, "Deduplicating training data
# makes language models better") treats a few percent as worth removing.
DUPLICATE_WARN_FRACTION = 0.01
# Inputs seen with two different labels: a handful can be honest ambiguity, beyond this share of rows
# (and this many rows) the labels contradict each other systematically.
CONFLICT_FAIL_FRACTION = 0.001
CONFLICT_FAIL_MIN_ROWS = 5
# When at most this share of rows are distinct, the features are coarse and repeats are expected.
COARSE_UNIQUE_SHARE = 0.5


@dataclass
class SplitDuplicates:
    """Duplicate counts of one split (the evidence's per_split entry, in this field order)."""

    rows: int
    duplicate_rows: int          # rows repeating an earlier row exactly, features and label
    unique_share: float          # share of distinct inputs (features only)
    conflict_rows: int = 0       # rows whose exact inputs also occur with another label
    conflict_groups: int = 0
    duplicate_fraction: float = 0.0


@dataclass
class NearDuplicates:
    """Near-duplicate texts (analyses/neardup.py: shingle Jaccard >= NEAR_JACCARD, not exact copies)."""

    per_split: dict[str, dict]                 # split -> {"rows": near rows, "conflict_rows": ... with another label}
    conflicting_examples: list[dict] = field(default_factory=list)   # most similar pairs first
    examples: list[dict] = field(default_factory=list)
    method: dict = field(default_factory=dict)
    skipped: str = ""

    @property
    def rows(self) -> int:
        return sum(v["rows"] for v in self.per_split.values())

    @property
    def conflict_rows(self) -> int:
        return sum(v.get("conflict_rows", 0) for v in self.per_split.values())


@dataclass
class DuplicatesMeasure:
    per_split: dict[str, SplitDuplicates]
    examples: dict[str, list[dict]] = field(default_factory=dict)
    near: NearDuplicates | None = None          # None without a text column
    # (split, column, near_rows result) of each search, for the finding's rows (not evidence)
    near_found: list = field(default_factory=list, repr=False)

    @property
    def train_unique_share(self) -> float:
        return self.per_split["train"].unique_share


def _split_duplicates(ctx: RunContext, split: str, show_cols: list[str], examples: dict) -> SplitDuplicates:
    """Count one split's duplicates and contradictions; add example rows of both to `examples`."""
    import numpy as np

    hashes = row_hashes(ctx, split)
    flags = split_duplicate_flags(ctx, split)
    n = len(hashes)
    exact = flags["is_duplicate"]  # same features and same label as an earlier row
    st = SplitDuplicates(rows=n, duplicate_rows=int(exact.sum()),
                         unique_share=float(flags["distinct"] / n) if n else 1.0)
    st.duplicate_fraction = st.duplicate_rows / n if n else 0.0
    if ctx.is_classification:
        in_conflict = flags["is_conflicting_label"]
        st.conflict_rows, st.conflict_groups = int(in_conflict.sum()), flags["conflict_groups"]
        if st.conflict_rows:
            conflict = np.flatnonzero(in_conflict)
            group = conflict[hashes[conflict] == hashes[conflict[0]]][:4]  # one group, its labels side by side
            examples[f"{split}_conflicting_labels"] = records(ctx.splits[split], group, show_cols)
    if st.duplicate_rows:
        examples[f"{split}_duplicates"] = records(ctx.splits[split], np.flatnonzero(exact)[:5], show_cols, 3)
    counts = exact_counts(ctx)
    if counts is not None and split in counts.rows:  # every row (DuckDB/Dask); examples stay from memory
        st = SplitDuplicates(**duplicate_numbers(counts, split))
    return st


def _pair_record(ctx: RunContext, split: str, other: str, column: str, pos: int, partner: int, jac: float) -> dict:
    a, b = ctx.splits[split], ctx.splits[other]
    out = {"jaccard": round(float(jac), 3), "row": int(pos), "text": short(a[column].iloc[pos], 120)}
    if ctx.target in a.columns:
        out["label"] = short(a[ctx.target].iloc[pos])
    out.update({f"{other}_row" if other != split else "other_row": int(partner),
                "other_text": short(b[column].iloc[partner], 120)})
    if ctx.target in b.columns:
        out["other_label"] = short(b[ctx.target].iloc[partner])
    return out


def _near_examples(ctx, split, other, column, found, mask, limit) -> list[dict]:
    import numpy as np

    rows = np.flatnonzero(mask)
    rows = rows[np.argsort(-found["jaccard"][rows], kind="stable")]
    out, seen = [], set()
    for p in rows:
        partner = int(found["partner"][p])
        if split == other and (partner, int(p)) in seen:
            continue  # the same pair seen from its other side
        seen.add((int(p), partner))
        out.append(_pair_record(ctx, split, other, column, int(p), partner, found["jaccard"][p]))
        if len(out) >= limit:
            break
    return out


def _measure_near_duplicates(ctx: RunContext, found_out: list | None = None) -> NearDuplicates | None:
    """Rows of each split whose text nearly equals another text of the same split (not an exact copy),
    and those whose near twin carries another label."""
    import numpy as np

    if not ctx.text_columns:
        return None
    near = NearDuplicates(per_split={})
    for column in ctx.text_columns:
        pairs = near_duplicate_pairs(ctx, column)
        near.method, near.skipped = dict(pairs.method, column=column), pairs.skipped
        if pairs.skipped:
            continue
        for s in ctx.splits:
            y = np.asarray(ctx.y(s)) if ctx.is_classification else None
            found = near_rows(pairs, s, s, y, y)
            if found_out is not None:
                found_out.append((s, column, found))
            st = near.per_split.setdefault(s, {"rows": 0, "conflict_rows": 0})
            st["rows"] += int(found["near"].sum())
            st["conflict_rows"] += int(found["conflict"].sum())
            if len(near.conflicting_examples) < 5:
                near.conflicting_examples += _near_examples(ctx, s, s, column, found, found["conflict"],
                                                            5 - len(near.conflicting_examples))
            if len(near.examples) < 3:
                near.examples += _near_examples(ctx, s, s, column, found, found["near"] & ~found["conflict"],
                                                3 - len(near.examples))
    return near


def _measure_duplicates(ctx: RunContext) -> DuplicatesMeasure:
    show_cols = ctx.feature_columns[:5] + [ctx.target]
    m = DuplicatesMeasure(per_split={})
    for s in ctx.splits:
        m.per_split[s] = _split_duplicates(ctx, s, show_cols, m.examples)
    m.near = _measure_near_duplicates(ctx, m.near_found)
    return m


def _conflict_verdict(s: str, st: SplitDuplicates, **kw) -> Finding:
    frac = st.conflict_rows / st.rows
    title = (f"{st.conflict_rows} {s} rows share their exact inputs with a row of another label "
             f"({st.conflict_groups} groups)")
    detail = (f"{st.conflict_rows} of {st.rows} {s} rows ({frac:.2%}) have identical feature values "
              f"but different labels. The model is asked to predict two answers for one input: either "
              f"labels are wrong, or the features miss what decides the label. Threshold for fail: "
              f"{CONFLICT_FAIL_FRACTION:.1%} of rows and at least {CONFLICT_FAIL_MIN_ROWS} rows.")
    fix = ("Look at the example groups: relabel or drop the contradicting copies, or add the feature that "
           "tells them apart.")
    bad = frac >= CONFLICT_FAIL_FRACTION and st.conflict_rows >= CONFLICT_FAIL_MIN_ROWS
    return (fail if bad else warn)(title, detail=detail, fix=fix, **kw)


def _duplicate_verdict(m: DuplicatesMeasure, s: str, st: SplitDuplicates, has_conflicts: bool, **kw) -> Finding:
    detail = (f"{st.duplicate_rows} of {st.rows} {s} rows ({st.duplicate_fraction:.2%}) repeat an "
              f"earlier row exactly (features and label).")
    if m.train_unique_share <= COARSE_UNIQUE_SHARE:
        return info(f"{st.duplicate_rows} exact duplicate rows in {s}, expected with such coarse features",
                    detail=detail + f" Only {m.train_unique_share:.0%} of training inputs are "
                                    f"distinct, so repeats happen naturally.", **kw)
    if has_conflicts:
        detail += " Some inputs repeat with different labels; with features this coarse that is expected noise."
    if st.duplicate_fraction >= DUPLICATE_WARN_FRACTION:
        return warn(f"{st.duplicate_fraction:.1%} of {s} rows are exact duplicates",
                    detail=detail + f" Above {DUPLICATE_WARN_FRACTION:.0%}, repeated rows weigh more in "
                                    f"training and, in evaluation splits, count the same answer twice.",
                    fix="Drop exact duplicates (df.drop_duplicates()) before splitting, unless repeats are "
                        "real, independent events.", **kw)
    return info(f"{st.duplicate_rows} exact duplicate rows in {s}", detail=detail,
                fix="Drop them unless they are real repeated events.", **kw)


def _near_sentence(near: NearDuplicates) -> str:
    conflict = (f", {near.conflict_rows} of them with a different label than their near twin"
                if near.conflict_rows else "")
    sampled = f" Searched in {near.method['sampled']}." if near.method.get("sampled") else ""
    return (f"{near.rows} rows have a near-duplicate text in their own split (word-shingle Jaccard >= "
            f"{NEAR_JACCARD:g}, not an exact copy: reordered sentences, a changed word){conflict}.{sampled}")


def _duplicates_verdict(m: DuplicatesMeasure) -> Finding:
    """The exact-duplicate verdict, with near-duplicate texts added as evidence. Near duplicates never raise
    the status above info: on short templated texts one added sentence ("Not great.") can change the label
    honestly, so a near match is a row to look at, not a verdict."""
    finding = _exact_duplicates_verdict(m)
    near = m.near
    if near is None:
        return finding
    finding.evidence["near_duplicates"] = asdict(near)
    if near.rows == 0:
        return finding
    splits = list(m.per_split)
    series = [Series("near-duplicate text", splits, [near.per_split.get(s, {}).get("rows", 0) for s in splits]),
              Series("near duplicate, other label", splits,
                     [near.per_split.get(s, {}).get("conflict_rows", 0) for s in splits])]
    if finding.plots:
        finding.plots[0].series.extend(series)
    else:
        finding.plots = [PlotSpec(kind="bar", title="near-duplicate texts per split", x_label="split",
                                  y_label="rows", series=series)]
    if finding.status == "pass":
        title = (f"no exact duplicates; {near.conflict_rows} rows nearly repeat a text with another label"
                 if near.conflict_rows else f"no exact duplicates; {near.rows} rows are near-duplicate texts")
        return info(title, detail=_near_sentence(near) + " Look at the example pairs: a reordered or lightly "
                    "edited copy with another label is a labelling mistake or an ambiguous text.",
                    fix="Review the conflicting pairs (evidence near_duplicates) and relabel or drop one copy.",
                    evidence=finding.evidence, plots=finding.plots)
    finding.detail = (finding.detail.rstrip() + " " + _near_sentence(near)).strip()
    return finding


def _exact_duplicates_verdict(m: DuplicatesMeasure) -> Finding:
    per_split = m.per_split
    evidence = {"per_split": {s: asdict(st) for s, st in per_split.items()}, "examples": m.examples}
    plot = PlotSpec(kind="bar", title="duplicate and contradictory rows per split", x_label="split",
                    y_label="rows", series=[
                        Series("exact duplicates", list(per_split), [st.duplicate_rows for st in per_split.values()]),
                        Series("same input, different label", list(per_split),
                               [st.conflict_rows for st in per_split.values()])])
    kw = {"evidence": evidence, "plots": [plot]}
    coarse = m.train_unique_share <= COARSE_UNIQUE_SHARE
    conflicts = {s: st for s, st in per_split.items() if st.conflict_rows}
    dups = {s: st for s, st in per_split.items() if st.duplicate_rows}
    if conflicts and not coarse:
        s, st = max(conflicts.items(), key=lambda kv: kv[1].conflict_rows / kv[1].rows)
        return _conflict_verdict(s, st, **kw)
    if dups:
        s, st = max(dups.items(), key=lambda kv: kv[1].duplicate_fraction)
        return _duplicate_verdict(m, s, st, bool(conflicts), **kw)
    if conflicts:
        s, st = next(iter(conflicts.items()))
        return info(f"{st.conflict_rows} rows repeat an input with another label, expected with coarse features",
                    detail=f"Only {m.train_unique_share:.0%} of training inputs are distinct.", **kw)
    return passed("no duplicate rows in any split", evidence=evidence)


def _shown_columns(ctx: RunContext) -> list[str]:
    return list((ctx.text_columns or ctx.feature_columns)[:8]) + [ctx.target]


def duplicate_rows(ctx: RunContext, m: DuplicatesMeasure):
    """Rows behind data.duplicates: contradictory inputs, exact copies (their first copy included), then
    near-duplicate texts with another label and other near duplicates; each with its group or near twin."""
    import numpy as np

    parts = []
    for s in ctx.splits:
        flags = split_duplicate_flags(ctx, s)
        near = near_twins([f for split, _, f in m.near_found if split == s],
                          [c for split, c, _ in m.near_found if split == s], len(flags["group"]))
        keep = flags["in_duplicate"] | flags["is_conflicting_label"] | near["near"]
        pos = np.flatnonzero(keep)
        rank = np.select([flags["is_conflicting_label"][pos], flags["in_duplicate"][pos], near["conflict"][pos]],
                         [0, 1, 2], 3)
        pos = pos[np.lexsort((pos, -np.nan_to_num(near["score"][pos]), flags["group"][pos], rank))]
        exact = flags["in_duplicate"][pos] | flags["is_conflicting_label"][pos]
        extra = {"duplicate_group": np.where(exact, flags["group"][pos], -1).astype(object),
                 "is_duplicate": flags["is_duplicate"][pos], "is_conflicting_label": flags["is_conflicting_label"][pos]}
        extra["duplicate_group"][~exact] = None
        if m.near_found:
            extra.update({"is_near_duplicate": near["near"][pos], "is_near_conflict": near["conflict"][pos],
                          "near_duplicate_score": np.round(near["score"][pos], 3)})
            extra.update(near_partner_cells(ctx, s, near, pos))
        parts.append(split_rows(ctx, s, pos, _shown_columns(ctx), extra))
    return stack_rows(parts, plain=True)


@check("data.duplicates", title="Duplicate rows and contradictory labels", prefetch=prefetch_row_keys)
def duplicates(ctx: RunContext):
    m = _measure_duplicates(ctx)
    finding = _duplicates_verdict(m)
    if finding.status != "pass":
        finding.rows = duplicate_rows(ctx, m)
    return finding


# --- split overlap -------------------------------------------------------------------------------
# Share of validation rows found in train beyond which scores are inflated enough to matter.
OVERLAP_FAIL_FRACTION = 0.01
OVERLAP_FAIL_MIN_ROWS = 5
# When train rows are themselves mostly repeats (at most this share distinct: few, coarse features),
# equal rows across splits are expected by chance and do not mean a leak.
OVERLAP_COARSE_UNIQUE_SHARE = 0.5


@dataclass
class OverlapMeasure:
    overlap: dict[str, dict]               # split -> rows, of, exact_rows, same_text, fraction
    examples: dict[str, list[dict]]
    train_unique_share: float
    text_match: str = ""                   # how texts were compared ("" without text columns)
    near: dict = field(default_factory=dict)   # split -> near-duplicate texts of train rows (not exact copies)
    near_examples: list[dict] = field(default_factory=list)
    near_method: dict = field(default_factory=dict)
    near_found: list = field(default_factory=list, repr=False)   # (split, column, near_rows result): the rows


@analysis
def _overlap_hits(ctx: RunContext, split: str):
    """(mask of the split's rows found in train, by equal rows or equal normalised text; counts), once
    per run: the measure, the near-duplicate pass and the row table all read it."""
    import numpy as np
    import pandas as pd

    rows = row_hashes(ctx, split)
    shared = pd.Index(rows).isin(pd.Index(row_hashes(ctx, "train")))
    by_text = np.zeros(len(rows), dtype=bool)
    for column in ctx.text_columns:  # blank texts (code -1) match nothing
        codes, train_codes = text_codes(ctx, split, column), text_codes(ctx, "train", column)
        by_text |= pd.Index(codes).isin(pd.Index(train_codes[train_codes >= 0]))
    hit = shared | by_text
    return hit, {"rows": int(hit.sum()), "of": int(len(rows)), "exact_rows": int(shared.sum()),
                 "same_text": int(by_text.sum()), "fraction": float(hit.mean()) if len(rows) else 0.0}


def _split_overlap_counts(ctx: RunContext, split: str):
    """_overlap_hits, with a counts dict of the caller's own (the measure replaces entries in it)."""
    hit, counts = _overlap_hits(ctx, split)
    return hit, dict(counts)


def _measure_overlap(ctx: RunContext) -> OverlapMeasure:
    import numpy as np

    train_rows = row_hashes(ctx, "train")
    overlaps, examples = {}, {}
    for split in [s for s in ("valid", "test") if s in ctx.splits]:
        hit, overlaps[split] = _split_overlap_counts(ctx, split)
        cols = (ctx.text_columns or ctx.feature_columns)[:4] + [ctx.target]
        examples[split] = ctx.splits[split].iloc[np.flatnonzero(hit)[:5]][cols].astype(str).to_dict("records")
    if not overlaps:
        raise SkipCheck("only one split")
    counts = exact_counts(ctx)
    if counts is not None:  # every row of the files (DuckDB/Dask), not the sample in memory
        for split in overlaps:
            if split in counts.overlap_rows:
                overlaps[split] = {**overlap_numbers(counts, split), "same_text": overlaps[split]["same_text"]}
    text_match = ""
    if ctx.text_columns:
        text_match = ("lower-casing and dropping punctuation" if thorough_text(ctx)
                      else "lower-casing and trimming punctuation at both ends")
    unique = (train_unique_share(counts) if counts is not None
              else split_duplicate_flags(ctx, "train")["distinct"] / max(len(train_rows), 1))
    m = OverlapMeasure(overlaps, examples, unique, text_match)
    _measure_near_overlap(ctx, m)
    return m


def _measure_near_overlap(ctx: RunContext, m: OverlapMeasure) -> None:
    """valid/test rows whose text nearly equals a train text without being one of the exact matches."""
    import numpy as np

    y_train = np.asarray(ctx.y("train")) if ctx.is_classification else None
    for column in ctx.text_columns:
        pairs = near_duplicate_pairs(ctx, column)
        m.near_method = dict(pairs.method, column=column, **({"skipped": pairs.skipped} if pairs.skipped else {}))
        if pairs.skipped:
            continue
        for split in m.overlap:
            exact, _ = _split_overlap_counts(ctx, split)
            y = np.asarray(ctx.y(split)) if ctx.is_classification else None
            found = near_rows(pairs, split, "train", y, y_train)
            m.near_found.append((split, column, found))
            hit = found["near"] & ~exact
            st = m.near.setdefault(split, {"rows": 0, "of": int(len(exact)), "fraction": 0.0, "conflict_rows": 0})
            st["rows"] += int(hit.sum())
            st["conflict_rows"] += int((found["conflict"] & ~exact).sum())
            st["fraction"] = round(st["rows"] / max(st["of"], 1), 4)
            if len(m.near_examples) < 5:
                m.near_examples += _near_examples(ctx, split, "train", column, found, hit, 5 - len(m.near_examples))


def _overlap_verdict(m: OverlapMeasure) -> Finding:
    """The exact-overlap verdict with near-duplicate texts added. As in duplicates, near matches alone are
    info at most (templated texts share sentences honestly); they are evidence of a leak to look at."""
    finding = _exact_overlap_verdict(m)
    if not m.near_method:
        return finding
    finding.evidence["near_overlap"] = m.near
    finding.evidence["near_overlap_examples"] = m.near_examples
    finding.evidence["near_method"] = m.near_method
    rows = sum(v["rows"] for v in m.near.values())
    if not rows:
        return finding
    worst = max(m.near, key=lambda s: m.near[s]["fraction"])
    st = m.near[worst]
    sentence = (f"{st['rows']} of {st['of']} {worst} rows ({st['fraction']:.1%}) have a near-duplicate text in train "
                f"(word-shingle Jaccard >= {NEAR_JACCARD:g}, not an exact copy).")
    if finding.status == "pass":
        return info(f"no exact copies; {st['rows']} {worst} rows nearly repeat a train text", detail=sentence
                    + " Reordered or lightly edited copies let the model recall rather than generalise; see the "
                      "example pairs.", fix="Split by a group key (author, product, template) so near copies land "
                                            "on one side.", evidence=finding.evidence)
    finding.detail = (finding.detail.rstrip() + " " + sentence).strip()
    return finding


def _exact_overlap_verdict(m: OverlapMeasure) -> Finding:
    evidence = {"overlap": m.overlap, "examples": m.examples, "train_unique_share": round(m.train_unique_share, 3)}
    worst_split = max(m.overlap, key=lambda s: m.overlap[s]["fraction"])
    worst = m.overlap[worst_split]
    if worst["rows"] == 0:
        return passed("no rows shared between train and the other splits", evidence=evidence)
    text_note = f" (including texts that match after {m.text_match})" if m.text_match else ""
    detail = (f"{worst['rows']} of {worst['of']} {worst_split} rows ({worst['fraction']:.1%}) also appear in "
              f"train{text_note}. The model has seen them, so {worst_split} scores overstate how it does on new data.")
    fix = ("Deduplicate before splitting, then split by a group key (user, product, document) so near-copies "
           "land on one side; drop the shared rows from the evaluation splits now.")
    coarse = m.train_unique_share <= OVERLAP_COARSE_UNIQUE_SHARE
    if worst["fraction"] >= OVERLAP_FAIL_FRACTION and worst["rows"] >= OVERLAP_FAIL_MIN_ROWS and not coarse:
        return fail(f"{worst['rows']} {worst_split} rows also appear in train", detail=detail, fix=fix,
                    evidence=evidence)
    if coarse:
        return info(f"{worst['rows']} {worst_split} rows equal a train row, expected with such coarse features",
                    detail=detail + f" Only {m.train_unique_share:.0%} of train rows are distinct, so matches "
                                    f"happen by chance.", evidence=evidence)
    return warn(f"{worst['rows']} {worst_split} rows also appear in train", detail=detail, fix=fix, evidence=evidence)


def _exact_matches(ctx: RunContext, split: str, pos):
    """(match kind, the first train positions holding the same row, else the same normalised text)."""
    import numpy as np

    same_row = matching_positions(row_hashes(ctx, split)[pos], row_hashes(ctx, "train"))
    kind = np.where([bool(t) for t in same_row], "same row", None).astype(object)
    for column in ctx.text_columns:
        codes = text_codes(ctx, split, column)[pos]
        by_text = matching_positions(np.where(codes >= 0, codes, -2), text_codes(ctx, "train", column))
        for i, found in enumerate(by_text):
            if kind[i] is None and found:
                kind[i], same_row[i] = f"same {column}", found
    return kind, same_row


def overlap_rows(ctx: RunContext, m: OverlapMeasure):
    """Rows behind data.split_overlap: each valid/test row equal to a train row (or its text to a train
    text), with the train positions it matches, then rows whose text is a near duplicate of a train text."""
    import numpy as np

    parts, train = [], ctx.splits["train"]
    for split in m.overlap:
        hit, _ = _split_overlap_counts(ctx, split)
        found = [(f, c) for s, c, f in m.near_found if s == split]
        near = near_twins([f for f, _ in found], [c for _, c in found], len(hit))
        near["near"] &= ~hit
        near_pos = np.flatnonzero(near["near"])
        near_pos, n_exact = near_pos[np.argsort(-near["score"][near_pos], kind="stable")], int(hit.sum())
        pos = np.r_[np.flatnonzero(hit), near_pos]
        kind, train_pos = _exact_matches(ctx, split, pos[:n_exact])
        first = np.asarray([t[0] if t else -1 for t in train_pos] + near["partner"][near_pos].tolist(), np.int64)
        flag = np.arange(len(pos)) < n_exact
        extra = {"match": list(kind) + ["near text"] * len(near_pos),
                 "train_positions": list(train_pos) + [[int(p)] for p in first[n_exact:]],
                 "train_label": np.where(first >= 0, train[ctx.target].to_numpy(dtype=object)[first], None),
                 "is_overlap": flag, "is_near_overlap": ~flag,
                 "near_duplicate_score": [None] * n_exact + np.round(near["score"][near_pos], 3).tolist()}
        if m.near_found:
            texts = near_partner_cells(ctx, "train", near, near_pos)["near_partner_text"]
            extra["train_text"] = [None] * n_exact + texts
        parts.append(split_rows(ctx, split, pos, _shown_columns(ctx), extra))
    return stack_rows(parts, plain=True)


@check("data.split_overlap", title="Rows shared between train and valid/test", prefetch=prefetch_row_keys)
def split_overlap(ctx: RunContext):
    m = _measure_overlap(ctx)
    finding = _overlap_verdict(m)
    if finding.status != "pass":
        finding.rows = overlap_rows(ctx, m)
    return finding
