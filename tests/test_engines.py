"""Exact counting checks on data beyond memory (DESIGN §3, [data] engine): the DuckDB and Dask engines
return the same counts as pandas on the same Parquet dataset, under a small memory cap, and find what
was planted."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mltriage.checks.analyses.exact_counts import choose_engine, count_with
from mltriage.checks.io.engines.counts import (
    CountRequest,
    count_frames,
    run_statistics,
    top_share_or_none,
)
from mltriage.checks.io.readers import read_table
from mltriage.checks.project.config import ProjectError

ROWS = 280_000        # 30 float64 columns: ~67 MB in memory, above the 64 MB DuckDB is given below
FILES = 4
N_DUPLICATES = 123    # rows copied within train (features and label)
N_CONFLICTS = 40      # rows copied within train with the other label
N_OVERLAP = 77        # valid rows copied from train's features
N_MISSING = 500       # NaNs planted in column f1
FEATURES = [f"f{i}" for i in range(27)] + ["const", "quasi", "colour"]


def _frame(rng, n: int) -> pd.DataFrame:
    df = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(27)})  # continuous: rows are distinct
    df["const"] = 3.0
    df["quasi"] = np.where(np.arange(n) % 2000 == 0, 1.0, 0.0)  # 0.9995 one value
    df["colour"] = rng.choice(["red", "green", "blue"], n)
    df["label"] = np.repeat(rng.choice(["cat", "dog"], n // 1000 + 1), 1000)[:n]  # blocks of 1,000
    return df


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("engines")
    base = _frame(rng, ROWS - N_DUPLICATES - N_CONFLICTS)
    dup = base.iloc[rng.choice(len(base), N_DUPLICATES, replace=False)]
    conflict = base.iloc[rng.choice(len(base), N_CONFLICTS, replace=False)].copy()
    conflict["label"] = conflict["label"].map({"cat": "dog", "dog": "cat"})
    train = pd.concat([base, dup, conflict], ignore_index=True)
    train.loc[rng.choice(ROWS, N_MISSING, replace=False), "f1"] = np.nan
    folder = root / "train"
    folder.mkdir()
    for i, idx in enumerate(np.array_split(np.arange(ROWS), FILES)):
        train.iloc[idx].to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    valid = pd.concat([_frame(rng, 5_000), base.iloc[rng.choice(len(base), N_OVERLAP, replace=False)]],
                      ignore_index=True)
    valid.to_parquet(root / "valid.parquet", index=False)
    return {"root": root, "train": folder, "valid": root / "valid.parquet", "train_df": train, "valid_df": valid}


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setenv("MLTRIAGE_DUCKDB_MEMORY_MB", "64")
    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", "1")


def _request(dataset, frames: bool = False) -> CountRequest:
    sources = ({"train": dataset["train_df"], "valid": dataset["valid_df"]} if frames
               else {"train": dataset["train"], "valid": dataset["valid"]})
    return CountRequest(sources, FEATURES, "label", classification=True)


@pytest.fixture(scope="module")
def pandas_counts(dataset):
    return count_frames(_request(dataset, frames=True))


def test_auto_picks_duckdb_beyond_the_read_limit(dataset, small_memory, monkeypatch):
    paths = {"train": dataset["train"], "valid": dataset["valid"]}
    assert choose_engine("auto", paths) == "duckdb"
    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", "4096")
    assert choose_engine("auto", paths) == "pandas"
    assert choose_engine("dask", paths) == "dask"


def test_duckdb_counts_exactly_under_a_small_memory_cap(dataset, pandas_counts, small_memory, tmp_path):
    from mltriage.checks.io.engines.duck import connect

    con = connect(tmp_path / "spill")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "61.0 MiB"  # 64 MB
    con.close()
    counts = count_with("duckdb", _request(dataset), spill_dir=tmp_path / "spill")
    assert counts.comparable() == pandas_counts.comparable()
    assert counts.rows == {"train": ROWS, "valid": 5_000 + N_OVERLAP}
    assert counts.duplicate_rows["train"] == N_DUPLICATES
    assert counts.conflict_groups["train"] == N_CONFLICTS and counts.conflict_rows["train"] == 2 * N_CONFLICTS
    assert counts.overlap_rows == {"valid": N_OVERLAP}
    assert counts.missing["train"] == {"f1": N_MISSING}
    assert counts.constant["train"] == ["const"]
    assert counts.top_share["quasi"] == pytest.approx(0.9995, abs=1e-3) and counts.top_share["f0"] is None
    assert sum(counts.label_counts["train"].values()) == ROWS
    stats = run_statistics(counts.label_same_adjacent, counts.label_rows_in_order,
                           list(counts.label_counts["train"].values()))
    assert stats["kappa"] > 0.9  # written in blocks of 1,000 equal labels


def test_dask_on_a_two_worker_cluster_gives_the_same_counts(dataset, pandas_counts):
    """Through [data] scheduler: the address of a 2-worker LocalCluster (threads, to stay light)."""
    import distributed
    from mltriage.checks.io.engines.dask_engine import count_dask

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        counts = count_dask(_request(dataset), scheduler=cluster.scheduler_address)
    assert counts.engine == "dask"
    assert counts.comparable() == pandas_counts.comparable()


def test_dask_not_installed_is_one_clear_message(dataset, monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith(("dask.", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ProjectError) as err:
        count_with("dask", _request(dataset))
    assert "pip install 'mltriage[dask]'" in str(err.value)


def test_duckdb_reads_csv_and_hive_partitions(tmp_path):
    df = pd.DataFrame({"a": [1, 1, 2, None, 5, 1], "s": ["x", "x", "y", "z", None, "x"], "label": [0, 0, 1, 1, 0, 1]})
    df.to_csv(tmp_path / "t.csv", index=False)
    for part in ("p=1", "p=2"):
        (tmp_path / "hive" / part).mkdir(parents=True)
        df.to_parquet(tmp_path / "hive" / part / "x.parquet", index=False)
    req = CountRequest({"train": tmp_path / "t.csv"}, ["a", "s"], "label")
    assert count_with("duckdb", req).comparable() == count_frames(CountRequest({"train": df}, ["a", "s"], "label")).comparable()
    hive = count_with("duckdb", CountRequest({"train": tmp_path / "hive"}, ["a", "s", "p"], "label"))
    assert hive.rows == {"train": 12} and hive.duplicate_rows["train"] == 2  # the repeated row, in each partition


def test_duckdb_names_a_missing_column(dataset):
    with pytest.raises(ProjectError, match="no column"):
        count_with("duckdb", CountRequest({"train": dataset["train"]}, ["nope"], "label"))


def test_read_table_reads_a_parquet_folder_whole_or_as_a_sample(dataset, monkeypatch):
    whole = read_table(dataset["train"], "[data] train")
    assert len(whole) == ROWS and "mltriage_sample" not in whole.attrs
    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", "10")
    sample = read_table(dataset["train"], "[data] train")
    assert 0 < len(sample) < ROWS and sample.attrs["mltriage_sample"]["rows_in_file"] == ROWS


def test_top_share_is_reported_only_above_half():
    assert top_share_or_none(6, 10) == 0.6
    assert top_share_or_none(5, 10) is None


def test_run_statistics_of_a_sorted_and_an_alternating_file():
    assert run_statistics(98, 100, [50, 50])["kappa"] == pytest.approx(1.0, abs=0.03)
    assert run_statistics(0, 100, [50, 50])["kappa"] < -0.9
    assert "kappa" not in run_statistics(99, 100, [100])  # one class: order cannot matter


# --- the counting checks on a project whose train split is a Parquet folder beyond the read limit --
COUNTING_CHECKS = ("data.missing_values", "data.constant_features", "data.label_values", "data.label_order",
                   "problem.class_balance")


def _project(root: Path, dataset, engine: str) -> Path:
    root.mkdir()
    (root / "mltriage.toml").write_text(
        f'[project]\ntask = "classification"\n\n[data]\ntrain = "{dataset["train"]}"\n'
        f'valid = "{dataset["valid"]}"\ntarget = "label"\nengine = "{engine}"\n')
    return root


def test_counting_checks_read_every_row_beyond_the_read_limit(dataset, tmp_path, monkeypatch):
    from helpers import context_for, run_check

    monkeypatch.setenv("MLTRIAGE_DUCKDB_MEMORY_MB", "64")
    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", "10")  # the folder (~60 MB) is read as a sample
    ctx = context_for(_project(tmp_path / "auto", dataset, "auto"))
    assert len(ctx.raw_splits["train"]) < ROWS  # the model-based checks see a sample ...
    found = {c: run_check(ctx, c) for c in COUNTING_CHECKS}
    missing = found["data.missing_values"].evidence  # ... the counting checks every row
    assert missing["counted_by"] == "duckdb" and missing["rows"]["train"] == ROWS
    assert missing["missing_per_split"]["train"] == {"f1": N_MISSING}
    const = found["data.constant_features"].evidence
    assert const["constant"] == ["const"] and list(const["quasi_constant"]) == ["quasi"]
    assert found["data.label_order"].status == "warn" and found["data.label_order"].evidence["rows"] == ROWS
    balance = found["problem.class_balance"].evidence["counts"]
    assert sum(balance["train"].values()) == ROWS and sum(balance["valid"].values()) == 5_000 + N_OVERLAP
    assert found["data.label_values"].status == "pass"

    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", "4096")  # fits: pandas reads it whole, same findings
    whole = context_for(_project(tmp_path / "pandas", dataset, "auto"))
    for check_id, finding in found.items():
        again = run_check(whole, check_id)
        assert (again.status, again.title) == (finding.status, finding.title), check_id


def test_duplicate_and_overlap_numbers_fit_what_rows_py_reads(dataset, pandas_counts):
    """The numbers data.duplicates and data.split_overlap will read (wired in rows.py by the lead)."""
    from mltriage.checks.analyses.exact_counts import duplicate_numbers, overlap_numbers
    from mltriage.checks.steps.data.rows import SplitDuplicates

    st = SplitDuplicates(**duplicate_numbers(pandas_counts, "train"))
    assert (st.duplicate_rows, st.conflict_groups, st.conflict_rows) == (N_DUPLICATES, N_CONFLICTS, 2 * N_CONFLICTS)
    assert overlap_numbers(pandas_counts, "valid") == {"rows": N_OVERLAP, "of": 5_000 + N_OVERLAP,
                                                       "exact_rows": N_OVERLAP, "same_text": 0,
                                                       "fraction": N_OVERLAP / (5_000 + N_OVERLAP)}


def test_overlap_matches_an_integer_column_against_a_float_one(tmp_path):
    """A column with one missing value turns float on export; its rows still equal the integer split's."""
    train = pd.DataFrame({"n": [1.0, 2.0, None, 4.0], "label": ["a", "b", "a", "b"]})
    valid = pd.DataFrame({"n": [1, 2, 3], "label": ["a", "a", "b"]})
    train.to_parquet(tmp_path / "train.parquet", index=False)
    valid.to_parquet(tmp_path / "valid.parquet", index=False)
    paths = CountRequest({"train": tmp_path / "train.parquet", "valid": tmp_path / "valid.parquet"}, ["n"], "label")
    frames = CountRequest({"train": train, "valid": valid}, ["n"], "label")
    assert count_with("duckdb", paths).overlap_rows == count_frames(frames).overlap_rows == {"valid": 2}
