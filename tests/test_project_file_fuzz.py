"""Fuzzing the project-file loader: any document gives a config or a ProjectError, never another exception."""

import tomllib

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltriage.checks.project.config import SCHEMA, SLICE_SCHEMA, ProjectError, load_project

KEYS = sorted({k for table in SCHEMA.values() for k in table} | set(SLICE_SCHEMA) | {"tagret", "trian", "x"})
SECTIONS = sorted(SCHEMA) + ["modle", "slices"]
scalars = st.one_of(st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["data/train.csv", "model.py", "label", "accuracy",
                                                           "classification", "regression", "cross_entropy"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2))
documents = st.dictionaries(st.sampled_from(SECTIONS),
                            st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
                                      st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4), max_size=2),
                                      scalars),
                            max_size=5)


def to_toml(doc) -> str:
    import tomlkit

    return tomlkit.dumps(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_loader_never_raises_anything_but_project_error(tmp_path, doc):
    (tmp_path / "data").mkdir(exist_ok=True)
    pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}).to_csv(tmp_path / "data" / "train.csv", index=False)
    try:
        text = to_toml(doc)
        tomllib.loads(text)
    except Exception:
        return  # hypothesis built something TOML cannot hold (e.g. NaN keys); not the loader's business
    (tmp_path / "mltriage.toml").write_text(text)
    try:
        load_project(tmp_path)
    except ProjectError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_rejected_cleanly(tmp_path, text):
    (tmp_path / "mltriage.toml").write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else None
    if not (tmp_path / "mltriage.toml").exists():
        return
    try:
        load_project(tmp_path)
    except ProjectError:
        pass
