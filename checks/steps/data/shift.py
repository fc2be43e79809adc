"""Distribution shift between train and the evaluation splits: per-feature effect sizes with a
significance guard, and a domain classifier that tries to tell the splits apart."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.sampling import (MODEL_SAMPLE, chunk_width, numeric_chunks, numeric_values, one_thread, sample_note,
                                  sample_range)
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, Series, SkipCheck, info, passed, warn
from .tables import id_like_columns
from ...wording import cut_list

# Effect sizes, not p-values: with 100k rows a KS test rejects for shifts nobody cares about. A shift
# counts when the effect is large enough (KS D / Jensen-Shannon distance >= 0.1, the level drift monitors
# such as Evidently use by default for large samples) AND it is significant at p < 0.001, which guards
# small validation sets where D fluctuates by chance.
DRIFT_EFFECT = 0.1
DRIFT_P = 1e-3
DRIFT_SAMPLE = 10_000  # KS D is accurate to about 0.02 at this size, 5x below the effect threshold
# A classifier that tells train rows from valid rows with AUC >= 0.7 finds a systematic difference
# (0.5 = indistinguishable); 0.6 is a noticeable one.
DOMAIN_AUC_WARN = 0.7
DOMAIN_AUC_INFO = 0.6
MAX_CATEGORIES = 50


def _categorical_drift(a, b):
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    a = a.astype("string").fillna("<missing>")
    b = b.astype("string").fillna("<missing>")
    top = a.value_counts().index[:MAX_CATEGORIES]
    ca = a.where(a.isin(top), "<other>").value_counts()
    cb = b.where(b.isin(top), "<other>").value_counts()
    keys = sorted(set(ca.index) | set(cb.index))
    fa = np.array([ca.get(k, 0) for k in keys], dtype=float)
    fb = np.array([cb.get(k, 0) for k in keys], dtype=float)
    js = float(jensenshannon(fa / fa.sum(), fb / fb.sum(), base=2)) if fa.sum() and fb.sum() else 0.0
    table = np.vstack([fa, fb])
    table = table[:, table.sum(axis=0) > 0]
    p = float(chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0
    return {"kind": "categorical", "effect": round(js, 4), "measure": "Jensen-Shannon distance", "p_value": p}


def wasserstein_1d(a, b) -> float:
    """scipy.stats.wasserstein_distance of two unweighted samples by scipy's own formula (the area between
    the two empirical CDFs, Ramdas et al. 2017), without the general weighted machinery: 3.8 ms of CPU per
    pair of 20,000-value samples against scipy 1.17's 8.1 ms with one BLAS thread, as the worker runs
    (tests/test_data_speed_rowhash.py keeps it equal to scipy's to 1e-12)."""
    import numpy as np

    a, b = np.sort(a), np.sort(b)
    both = np.sort(np.concatenate((a, b)), kind="mergesort")
    a_cdf = a.searchsorted(both[:-1], "right") / a.size
    b_cdf = b.searchsorted(both[:-1], "right") / b.size
    return float(np.sum(np.abs(a_cdf - b_cdf) * np.diff(both)))


def _ks_and_wasserstein(a_sorted, b_sorted) -> tuple[float, float]:
    """(two-sided Kolmogorov-Smirnov D, wasserstein_1d) of two sorted samples from one pooled sort: both
    read the two empirical CDFs at the pooled values, by the formulas of scipy.stats.ks_2samp (the largest
    gap) and wasserstein_distance (the area between them); the same numbers as scipy's, at half the cost."""
    import numpy as np

    both = np.sort(np.concatenate((a_sorted, b_sorted)), kind="mergesort")
    a_cdf = a_sorted.searchsorted(both, "right") / a_sorted.size
    b_cdf = b_sorted.searchsorted(both, "right") / b_sorted.size
    gaps = a_cdf - b_cdf
    d = float(max(np.clip(-gaps.min(), 0, 1), gaps.max()))
    return d, float(np.sum(np.abs(a_cdf[:-1] - b_cdf[:-1]) * np.diff(both)))


def ks_p_values(d, n_a, n_b):
    """ks_2samp(method="asymp")'s two-sided p-values for statistics d of samples sized n_a and n_b (arrays):
    Smirnov's distribution at the effective size m n / (m + n). It is evaluated once per distinct (d, size)
    pair: scipy computes it in Python, 0.17 ms a value, and D of equal-sized samples takes few distinct
    values (a table of 10,000 columns: 1.7 s -> 0.01 s)."""
    import numpy as np
    from scipy.stats import kstwo

    n_a, n_b = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    pairs = np.column_stack([np.asarray(d, dtype=float), np.round(n_a * n_b / (n_a + n_b))])
    distinct, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return np.clip(kstwo.sf(distinct[:, 0], distinct[:, 1]), 0, 1)[inverse.ravel()]


def _numeric_drift_measure(a, b):
    """The drift statistics of one numeric feature but its p-value (see ks_p_values), with the sample sizes
    under "_n"; None when either split has fewer than 5 finite values."""
    import numpy as np

    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 5 or len(b) < 5:
        return None
    spread = np.subtract(*np.percentile(a, [75, 25])) or np.std(a) or 1.0
    d, wasserstein = _ks_and_wasserstein(np.sort(a), np.sort(b))
    return {"kind": "numeric", "effect": round(d, 4), "measure": "KS D", "p_value": None,
            "wasserstein_over_iqr": round(wasserstein / float(spread), 4),
            "mean_train": float(np.mean(a)), "mean_other": float(np.mean(b)), "_d": d, "_n": (len(a), len(b))}


def _with_p_values(measures: dict[str, dict]) -> dict[str, dict]:
    """The numeric measures with their KS p-values filled in, all in one call."""
    import numpy as np

    if measures:
        names = list(measures)
        sizes = np.array([measures[c]["_n"] for c in names])
        p = ks_p_values(np.array([measures[c]["_d"] for c in names]), sizes[:, 0], sizes[:, 1])
        for c, value in zip(names, p):
            measures[c]["p_value"] = float(value)
            del measures[c]["_n"], measures[c]["_d"]
    return measures


def _numeric_drift(a, b):
    """Drift statistics of one numeric feature (KS D with its p-value, Wasserstein over IQR, means)."""
    measure = _numeric_drift_measure(a, b)
    return None if measure is None else _with_p_values({"x": measure})["x"]


def _domain_design(ctx: RunContext, other: str, columns: list[str]):
    """(X, target) for telling sampled train rows (0) from `other` rows (1) apart, or None when too few
    rows or no column varies."""
    import numpy as np
    import pandas as pd

    cap = MODEL_SAMPLE // 2
    frames = []
    for i, s in enumerate(("train", other)):
        df = ctx.splits[s]
        frames.append(df.iloc[sample_range(len(df), cap, ctx.seed + i)][columns])
    if min(len(f) for f in frames) < 20:
        return None
    both = pd.concat(frames, ignore_index=True)
    blocks = []
    for c in columns:
        if c in ctx.numeric_columns:
            blocks.append(numeric_values(both[c]))
        else:
            codes, _ = pd.factorize(both[c].astype("string"))
            blocks.append(np.where(codes < 0, np.nan, codes).astype(float))
    X = np.column_stack(blocks)
    varies = [j for j in range(X.shape[1]) if len(np.unique(X[:, j])) > 1]  # NaNs count as distinct
    if not varies:  # every feature constant: nothing tells the splits apart (and the model cannot bin it)
        return None
    return X[:, varies], np.r_[np.zeros(len(frames[0])), np.ones(len(frames[1]))]


def _domain_auc(ctx: RunContext, other: str, columns: list[str]) -> float | None:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if not columns:
        return None
    design = _domain_design(ctx, other, columns)
    if design is None:
        return None
    X, target = design
    model = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, early_stopping=False,
                                           random_state=ctx.seed)
    # Two folds: every row still gets an out-of-fold score; on synthetic mean shifts of 0 to 0.5 SD the
    # AUC moved by at most 0.006 against three folds, at 60% of the cost.
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=ctx.seed)
    with one_thread():
        return float(np.mean(cross_val_score(model, X, target, cv=folds, scoring="roc_auc")))


@dataclass
class DriftMeasure:
    others: list[str]                               # the splits compared with train
    per_split: dict[str, dict[str, dict]]           # split -> feature -> drift statistics
    domain_auc: dict[str, float | None]             # split -> domain classifier AUC
    excluded_id_like: list[str]
    train_sample: int
    train_rows: int
    valid_is_holdout: bool
    shifted: dict[str, list[tuple[str, dict]]] = field(init=False)

    def __post_init__(self) -> None:
        self.shifted = {s: _shifted(st) for s, st in self.per_split.items()}

    @property
    def worst_auc(self) -> float | None:
        return max((v for v in self.domain_auc.values() if v is not None), default=None)


def _p_limit(stats: dict) -> float:
    # Bonferroni over the features tested: with 10,000 columns, p < 0.001 alone would flag ~10 by chance.
    return DRIFT_P / max(1, len(stats))


def _shifted(stats: dict[str, dict]) -> list[tuple[str, dict]]:
    """(feature, statistics) of the features that shifted, largest effect first."""
    limit = _p_limit(stats)
    return sorted([(c, r) for c, r in stats.items() if r["effect"] >= DRIFT_EFFECT and r["p_value"] < limit],
                  key=lambda cr: -cr[1]["effect"])


def _split_drift(ctx: RunContext, s: str, columns: list[str], tpos) -> dict[str, dict]:
    train, df = ctx.train, ctx.splits[s]
    opos = sample_range(len(df), DRIFT_SAMPLE, ctx.seed + 1)
    numeric = set(ctx.numeric_columns)
    names = [c for c in columns if c in numeric]
    measured, width = {}, chunk_width(max(len(tpos), len(opos)))
    for (chunk, A), (_, B) in zip(numeric_chunks(train, names, tpos, width),
                                  numeric_chunks(df, names, opos, width)):
        measured.update({c: _numeric_drift_measure(A[:, j], B[:, j]) for j, c in enumerate(chunk)})
    measured = _with_p_values({c: r for c, r in measured.items() if r})
    stats = {}
    for c in columns:  # in the columns' order, as before
        r = measured.get(c) if c in numeric else _categorical_drift(train[c].iloc[tpos], df[c].iloc[opos])
        if r:
            stats[c] = r
    for c in ctx.text_columns:  # free text: compare lengths
        r = _numeric_drift(train[c].iloc[tpos].astype("string").str.len().to_numpy(dtype=float, na_value=0),
                           df[c].iloc[opos].astype("string").str.len().to_numpy(dtype=float, na_value=0))
        if r:
            stats[f"len({c})"] = r
    return stats


def _drift_columns(ctx: RunContext, ids) -> list[str]:
    """Features compared one by one: neither identifiers nor free text."""
    texts = ctx.text_columns
    return [c for c in ctx.feature_columns if c not in ids and c not in texts]


def _measure_drift(ctx: RunContext) -> DriftMeasure:
    others = [s for s in ("valid", "test") if s in ctx.splits]
    ids = id_like_columns(ctx)
    columns = _drift_columns(ctx, ids)
    tpos = sample_range(len(ctx.train), DRIFT_SAMPLE, ctx.seed)
    per_split, domain = {}, {}
    for s in others:
        per_split[s] = _split_drift(ctx, s, columns, tpos)
        domain[s] = _domain_auc(ctx, s, columns)
    if not columns and not ctx.text_columns:
        raise SkipCheck("no feature columns to compare")
    return DriftMeasure(others, per_split, domain, list(ids), int(len(tpos)), len(ctx.train), ctx.valid_is_holdout)


def density_histogram(title: str, values: dict, bins: int = 30, x_label: str = "") -> PlotSpec:
    """Several samples binned on shared edges, each as a density (count / (rows x bin width), so every
    split's bars integrate to 1): splits of different sizes compare by shape, not by how many rows they have.
    Series are named with their row counts."""
    import numpy as np

    arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    arrays = {k: a[np.isfinite(a)] for k, a in arrays.items()}
    pooled = np.concatenate([a for a in arrays.values() if a.size]) if any(a.size for a in arrays.values()) else None
    if pooled is None:
        return PlotSpec(kind="histogram", title=title, x_label=x_label, y_label="density")
    edges = np.histogram_bin_edges(pooled, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    series = [Series(f"{k} ({a.size:,} rows)", centres, np.histogram(a, bins=edges, density=True)[0]
                     if a.size else np.zeros(len(centres))) for k, a in arrays.items()]
    return PlotSpec(kind="histogram", title=title, series=series, x_label=x_label,
                    y_label="density (area 1 per split)")


def _drift_plots(ctx: RunContext, m: DriftMeasure) -> list[PlotSpec]:
    """Train against the other split for the three largest shifts of each split."""
    train = ctx.train
    tpos = sample_range(len(train), DRIFT_SAMPLE, ctx.seed)
    plots = []
    for s, sh in m.shifted.items():
        for c, r in sh[:3]:
            df = ctx.splits[s]
            opos = sample_range(len(df), DRIFT_SAMPLE, ctx.seed + 1)
            if r["kind"] == "numeric" and c in ctx.numeric_columns:
                plots.append(density_histogram(f"{c}: train vs {s} (KS D = {r['effect']:.2f})",
                                               {"train": numeric_values(train[c].iloc[tpos]),
                                                s: numeric_values(df[c].iloc[opos])}, x_label=c))
            elif r["kind"] == "categorical":
                a = train[c].iloc[tpos].astype("string").value_counts(normalize=True).head(12)
                b = df[c].iloc[opos].astype("string").value_counts(normalize=True)
                plots.append(PlotSpec(kind="bar", title=f"{c}: train vs {s} (JS = {r['effect']:.2f})",
                                      x_label=c, y_label="share", series=[
                                          Series("train", list(a.index), a.tolist()),
                                          Series(s, list(a.index), [float(b.get(k, 0.0)) for k in a.index])]))
    return plots


def _drift_evidence(m: DriftMeasure) -> dict:
    return {"compared": m.others, "sample_rows": {"train": m.train_sample}, "excluded_id_like": m.excluded_id_like,
            "domain_classifier_auc": {s: (round(v, 4) if v is not None else None) for s, v in m.domain_auc.items()},
            "shifted": {s: [{"feature": c, **r} for c, r in sh[:10]] for s, sh in m.shifted.items()},
            "largest_effects": {s: sorted(({"feature": c, "effect": r["effect"], "measure": r["measure"]}
                                           for c, r in st.items()), key=lambda d: -d["effect"])[:5]
                                for s, st in m.per_split.items()},
            "thresholds": {"effect": DRIFT_EFFECT, "p_value": DRIFT_P,
                           "p_value_bonferroni": {s: _p_limit(st) for s, st in m.per_split.items()},
                           "domain_auc_warn": DOMAIN_AUC_WARN}}


def _drift_detail(m: DriftMeasure) -> str:
    worst_auc = m.worst_auc
    lines = []
    for s, sh in m.shifted.items():
        if sh:
            lines.append(f"{s}: " + cut_list([f"{c} ({r['measure']} {r['effect']:.2f})" for c, r in sh], 5)
                         + (f" and {len(sh) - 5} more" if len(sh) > 5 else ""))
    note = sample_note(m.train_sample, m.train_rows)
    return (("Shifted features (effect >= " f"{DRIFT_EFFECT:g}, p < {DRIFT_P:g}){note}: " + "; ".join(lines) + ". "
             if lines else "")
            + (f"A classifier telling train rows from other-split rows reaches AUC {worst_auc:.2f} "
               f"(0.5 = indistinguishable). " if worst_auc is not None else "")
            + ("Note: valid was held out at random from train, so a shift there is chance or an ordering effect."
               if m.valid_is_holdout else "The model is judged on data that differs from what it learnt from."))


def _drift_verdict(m: DriftMeasure, plots: list[PlotSpec] | None = None) -> Finding:
    plots = plots or []
    evidence = _drift_evidence(m)
    worst_auc, others, shifted = m.worst_auc, m.others, m.shifted
    n_shifted = sum(len(v) for v in shifted.values())
    if not n_shifted and (worst_auc is None or worst_auc < DOMAIN_AUC_INFO):
        return passed("train and " + "/".join(others) + " look alike"
                      + (f" (domain classifier AUC {worst_auc:.2f})" if worst_auc is not None else ""),
                      evidence=evidence, plots=plots)
    detail = _drift_detail(m)
    fix = ("If the splits come from different periods or sources, that is the shift you will meet in production: "
           "keep it and track per-segment metrics. If they should be alike, re-split at random (or by group) and "
           "check the export for unit or encoding changes in the shifted columns.")
    if n_shifted or (worst_auc or 0) >= DOMAIN_AUC_WARN:
        title = (f"{n_shifted} feature shift(s) between train and {'/'.join(s for s in shifted if shifted[s]) or others[0]}"
                 if n_shifted else f"train and {others[0]} are distinguishable (AUC {worst_auc:.2f})")
        return warn(title, detail=detail, fix=fix, evidence=evidence, plots=plots)
    return info(f"a slight difference between train and {'/'.join(others)} (domain AUC {worst_auc:.2f})",
                detail=detail, fix=fix, evidence=evidence, plots=plots)


@check("data.drift", title="Distribution shift between train and valid/test",
       imports=("scipy.stats", "sklearn.ensemble", "sklearn.model_selection"))
def drift(ctx: RunContext):
    m = _measure_drift(ctx)
    return _drift_verdict(m, _drift_plots(ctx, m))
