"""Property-based tests: arbitrary small tables never break a problem or data check.

Whatever the data (mixed dtypes, NaN, inf, empty strings, one row, a single class, unicode), every
check returns a valid Finding: never an exception, never the `error` status."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import write_project

TEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10**6, 10**6))
CELLS = {
    "float": NUMBERS,
    "int": st.integers(-5, 5),
    "text": st.one_of(TEXTS, st.sampled_from(["", " ", "Ã©tÃ©", "caf\ufffd", "a\x07b", "long text " * 5])),
    "category": st.sampled_from(["a", "b", "c", "ß", "日本", None]),
    "bool": st.booleans(),
}
LABELS = st.one_of(st.sampled_from(["x", "y", "z", "1", "1.0", " x", None]), st.integers(0, 3),
                   st.floats(-3, 3, width=32), st.just(float("nan")))


@st.composite
def tables(draw):
    n = draw(st.integers(1, 30))
    kinds = draw(st.lists(st.sampled_from(sorted(CELLS)), min_size=1, max_size=4))
    data = {f"{k}_{i}": draw(st.lists(CELLS[k], min_size=n, max_size=n)) for i, k in enumerate(kinds)}
    label_kind = draw(st.sampled_from(["class", "single", "number", "mixed"]))
    if label_kind == "class":
        labels = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n))
    elif label_kind == "single":
        labels = ["only"] * n
    elif label_kind == "number":
        labels = draw(st.lists(st.floats(-100, 100, width=32), min_size=n, max_size=n))
    else:
        labels = draw(st.lists(LABELS, min_size=n, max_size=n))
    df = pd.DataFrame(data)
    df["label"] = labels
    with_valid = draw(st.booleans())
    return df, with_valid


def _run_all(root: Path):
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.engine.run import run_one
    from mltriage.checks.findings import STATUSES, Finding
    from mltriage.checks.project.config import ProjectError, load_project
    from mltriage.checks.engine.registry import checks_for

    ctx = RunContext(load_project(root))
    try:
        ctx.prepare()
    except ProjectError:
        return  # unreadable projects are the loader's business (exit code 2), not a check's
    for spec in checks_for(["problem", "data"]):
        f = run_one(spec, ctx)
        assert isinstance(f, Finding) and f.status in STATUSES
        assert f.status != "error", (spec.id, f.title, f.detail)
        f.to_dict()  # JSON-able


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_every_check_survives_arbitrary_tables(case):
    df, with_valid = case
    with tempfile.TemporaryDirectory() as tmp:
        valid = df.sample(frac=1.0, random_state=1).reset_index(drop=True) if with_valid else None
        root = write_project(Path(tmp), df, valid)
        _run_all(root)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.booleans())
def test_tiny_and_degenerate_tables(n, single_class):
    rng = np.random.default_rng(n)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": [np.inf, -np.inf, np.nan, 0.0][:n],
                       "c": ["", "é", "\x00", "日本"][:n], "label": ["p"] * n if single_class else (["p", "q"] * n)[:n]})
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp), df, df.copy())
        _run_all(root)
