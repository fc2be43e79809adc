"""Small helpers the data checks share: example rows for evidence, and picking the worst of a list of
problems. Nothing here reads a run context's caches."""

from __future__ import annotations

from ...findings import Finding, fail, info, warn

# A problem is (status, title, detail); the worst one titles the finding.
Problem = tuple[str, str, str]
_SEVERITY = {"fail": 0, "warn": 1, "info": 2}
_MAKE = {"fail": fail, "warn": warn, "info": info}


def records(df, positions, columns, limit: int = 5) -> list[dict]:
    """Up to `limit` rows of df (by position) as JSON-able dicts of the given columns, with their row."""
    cols = [c for c in columns if c in df.columns]
    out = []
    for p in list(positions)[:limit]:
        row = {"row": int(p)}
        row.update({c: short(df[c].iloc[int(p)]) for c in cols})
        out.append(row)
    return out


def short(value, width: int = 80):
    """A cell value fit for evidence: JSON-able, long strings cut to `width` characters."""
    from ...findings import jsonable

    value = jsonable(value)
    if isinstance(value, str) and len(value) > width:
        return value[:width - 1] + "…"
    return value


def worst_problem_finding(problems: list[Problem], fix: str, detail_suffix: str = "", **kw) -> Finding:
    """One finding for several problems: titled by the worst (+N more), detailing all of them."""
    problems = sorted(problems, key=lambda p: _SEVERITY[p[0]])  # stable: equal severities keep their order
    status, title, _ = problems[0]
    return _MAKE[status](title + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                         detail=" ".join(f"{t}: {d}" for _, t, d in problems) + detail_suffix, fix=fix, **kw)
