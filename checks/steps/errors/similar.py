"""errors.similar_unlabeled: the unlabeled rows most like the model's weak slices and confident mistakes,
ranked for labelling next (DESIGN §6). A to-do list, never a verdict on the project: info or pass."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.similar import KNN, MIN_BIN_ROWS, RESEMBLES, PoolRanking, pool_ranking
from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, PlotSpec, RowTable, Series, info, passed
from ...wording import cut_list
from .rows import id_column_of, row_key_columns

# Rows listed for labelling: 200, a query batch of the size active-learning studies use for a labelling
# round (100 to 1,000: Settles 2009, Ash et al. 2020) and what one person labels in a sitting; it is also
# enough to move a 30-row slice's estimate (the smallest slice errors.weak_slices reports) several-fold.
TOP_N = 200
SHOWN_TARGETS = 10


@dataclass
class SimilarMeasure:
    pool_rows: int
    space: str
    targets: list[dict] = field(default_factory=list)   # kind, name, valid_rows, resembling, best (, auc)
    resembling_rows: int = 0                            # pool rows that resemble at least one target
    top: list[dict] = field(default_factory=list)       # the first rows of the ranking, for the text
    row_table: RowTable | None = None


def _mistake_name(ctx: RunContext, position: int) -> str:
    ident = id_column_of(ctx, ctx.valid) if not ctx.is_tensor else None
    value = ctx.valid[ident].iloc[position] if ident is not None else None
    return f"mistake row {position}" + (f" ({ident} {value})" if ident is not None else "")


def _measure(ctx: RunContext, r: PoolRanking) -> SimilarMeasure:
    import numpy as np

    names = []
    for t in r.targets:
        if t.kind == "confident mistake":
            t.name = _mistake_name(ctx, int(t.name.rsplit(" ", 1)[1]))
        names.append(t.name)
    targets = [{"kind": t.kind, "name": t.name, "valid_rows": t.valid_rows, "resembling": t.resembling,
                "best": round(t.best, 4), "threshold": round(t.threshold, 4), **({"separation_auc": round(t.separation_auc, 4)}
                                             if t.separation_auc is not None else {})} for t in r.targets]
    hit = np.flatnonzero(r.target >= 0)
    order = hit[np.argsort(-r.score[hit], kind="stable")][:TOP_N]
    m = SimilarMeasure(r.pool_rows, r.space, targets, int(len(hit)))
    if len(order):
        cols = {"position": order.tolist()}
        if r.frame is not None:
            cols.update(row_key_columns(ctx, r.frame, order, split="unlabeled"))
        cols["resembles"] = [names[int(t)] for t in r.target[order]]
        cols["resembles_kind"] = [r.targets[int(t)].kind for t in r.target[order]]
        cols["similarity_score"] = np.round(r.score[order], 4).tolist()
        m.row_table = RowTable.from_columns(cols, total=len(hit))
        m.top = [dict(zip(m.row_table.columns, rec)) for rec in m.row_table.records[:5]]
    return m


def _what_matched(resembled: list[dict]) -> str:
    """Name only the kinds some pool row resembles: "the weak slices" claimed where none exists misleads."""
    kinds = {t["kind"] for t in resembled}
    names = [name for kind, name in (("weak slice", "the weak slices"), ("confident mistake", "confident mistakes"))
             if kind in kinds]
    return " or ".join(names) or "the weak slices or confident mistakes"


def similar_verdict(m: SimilarMeasure) -> Finding:
    evidence = {"pool_rows": m.pool_rows, "feature_space": m.space, "targets": m.targets,
                "resembling_rows": m.resembling_rows, "listed": min(m.resembling_rows, TOP_N), "top_n": TOP_N,
                "resembles_at": RESEMBLES, "bin_rows": MIN_BIN_ROWS, "neighbours": KNN}
    method = (f"Similarity is cosine similarity in {m.space}. A pool row resembles a weak slice when the "
              f"probability that it belongs there (isotonic fit of slice membership on similarity to the "
              f"slice's centre, over the valid rows, bins of {MIN_BIN_ROWS}) is at least {RESEMBLES} and twice "
              f"the slice's share; it resembles a confident mistake when at least half of its {KNN} nearest "
              f"valid rows (and twice the valid error rate) are mistakes, that one among them.")
    if not m.targets:
        return passed("no weak slice or confident mistake to look for in the pool",
                      detail="errors.weak_slices found no weak slice and the valid split has no confident mistake, "
                             "so there is nothing to mine the pool for. " + method, evidence=evidence)
    shown = [t for t in m.targets if t["resembling"]][:SHOWN_TARGETS]
    plot = PlotSpec(kind="bar", title="pool rows resembling each weak slice / mistake", x_label="target",
                    y_label="pool rows", series=[Series("pool rows", [t["name"] for t in shown],
                                                        [t["resembling"] for t in shown])])
    if not m.resembling_rows:
        return passed(f"none of the {m.pool_rows} pool rows resembles a weak slice or a confident mistake",
                      detail=f"Looked for rows like {cut_list([t['name'] for t in m.targets], 5)}. " + method,
                      evidence=evidence)
    listing = "\n".join(f"- {t['kind']} {t['name']}: {t['resembling']} pool row(s)" for t in shown)
    tops = "\n".join(f"  pool row {row['position']}: {row['similarity_score']:.2f} like {row['resembles']}"
                     + (f" \"{_text(row)}\"" if _text(row) else "") for row in m.top)
    matched = _what_matched([t for t in m.targets if t["resembling"]])
    return info(f"{m.resembling_rows} of {m.pool_rows} pool rows resemble {matched}; "
                f"top {min(m.resembling_rows, TOP_N)} listed for labelling next",
                detail=f"{listing}\nFirst in the ranking:\n{tops}\n{method}",
                fix="Label the listed rows first (the export holds them, best first), add them to train, retrain "
                    "and compare with errors.regressions on the same slices.",
                evidence=evidence, plots=[plot], rows=m.row_table)


def _text(row: dict) -> str:
    skip = {"position", "split", "resembles", "resembles_kind", "similarity_score"}
    value = next((v for k, v in row.items() if k not in skip and isinstance(v, str) and " " in v), "")
    return value if len(value) <= 80 else value[:77] + "..."


@check("errors.similar_unlabeled", title="Unlabeled rows like the weak slices and mistakes, to label next")
def similar_unlabeled(ctx: RunContext):
    return similar_verdict(_measure(ctx, pool_ranking(ctx)))
